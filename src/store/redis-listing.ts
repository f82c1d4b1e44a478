import { StoreUnavailableError } from '../errors'
import { redisKeys } from './redis-keys'
import { LISTED_FIELDS, tokenInfoOf } from './redis-replies'
import type { ScriptRunner } from './redis-runner'
import { PAGE, PRUNE } from './redis-scripts'
import { defineScripts, type RedisClient } from './scripts'
import { jtiOfPosition, type TokenInfo } from './types'

/** Expired listing entries one step drops. */
const PRUNE_BATCH = 200
/**
 * Records one command of a listing page reads. A command per token (a
 * pipeline of HMGETs) left ~0.5 MB of client objects per page of 1,000; a
 * script per 100 leaves a tenth of it and holds Redis well under a millisecond.
 */
const PAGE_CHUNK = 100

/** A user's listing in Redis: positions newest first, and the live records behind them. */
export interface RedisListing {
	/** Up to `limit` positions of `userId` older than `after` (from the newest when null), newest first. */
	positionsBefore(userId: string, after: string | null, limit: number): Promise<string[]>
	/** The live tokens among `positions` (revoked, expired, used-up and gone ones left out), in their order. */
	liveTokens(userId: string, positions: readonly string[], nowS: number): Promise<TokenInfo[]>
	/** Drops a bounded number of expired entries from the user's indexes. */
	prune(userId: string, nowS: number): Promise<void>
}

/** The listing over `client`; every failure is a `StoreUnavailableError`. */
export function createRedisListing(client: RedisClient, prefix: string, guard: ScriptRunner['guard']): RedisListing {
	const keys = redisKeys(prefix)
	const scripts = defineScripts(client, { page: { lua: PAGE }, prune: { numberOfKeys: 2, lua: PRUNE } })
	return {
		positionsBefore(userId, after, limit) {
			return guard(() =>
				client.zrange(
					keys.byPosition(userId),
					after === null ? '+' : `(${after}`,
					'-',
					'BYLEX',
					'REV',
					'LIMIT',
					0,
					limit,
				),
			)
		},

		async liveTokens(userId, positions, nowS) {
			const chunks: string[][] = []
			for (let from = 0; from < positions.length; from += PAGE_CHUNK)
				chunks.push(positions.slice(from, from + PAGE_CHUNK).map((p) => keys.token(userId, jtiOfPosition(p))))
			const replies = await guard(() => Promise.all(chunks.map((chunk) => scripts.page.run(chunk, LISTED_FIELDS))))
			const fields = replies.flatMap((reply) => (Array.isArray(reply) ? (reply as (string | null)[]) : []))
			const width = LISTED_FIELDS.length
			if (fields.length !== positions.length * width)
				throw new StoreUnavailableError(new Error(`unexpected page reply of ${fields.length} fields`))
			const tokens: TokenInfo[] = []
			positions.forEach((position, n) => {
				const token = tokenInfoOf(jtiOfPosition(position), fields.slice(n * width, (n + 1) * width), nowS)
				if (token !== null) tokens.push(token)
			})
			return tokens
		},

		async prune(userId, nowS) {
			await scripts.prune.run([keys.byExpiry(userId), keys.byPosition(userId)], [nowS, PRUNE_BATCH])
		},
	}
}
