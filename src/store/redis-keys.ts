/**
 * The keys of one user's state under `prefix`. Every key of a user shares the
 * hash tag `{user}`, so one script may touch them all on a Cluster shard.
 */
export function redisKeys(prefix: string) {
	return {
		token: (userId: string, jti: string) => `${prefix}t:{${userId}}:${jti}`,
		/** Live tokens by expiry (pruning). */
		byExpiry: (userId: string) => `${prefix}ue:{${userId}}`,
		/** Live tokens by listing position (`positionOf`), newest last. */
		byPosition: (userId: string) => `${prefix}ul:{${userId}}`,
		/** Download slots held, by lease id, scored by when they lapse. */
		slots: (userId: string) => `${prefix}dl:{${userId}}`,
		issueLimit: (userId: string) => `${prefix}rl:issue:{${userId}}`,
		/** Tokens issued before the listing had two indexes lived in this one; revoke-all still drains it. */
		legacyIndex: (userId: string) => `${prefix}u:{${userId}}`,
	}
}
