/** A token record to create: one per `jti`, expiring with the token. */
export interface NewTokenRecord {
	readonly jti: string
	readonly userId: string
	readonly filename: string
	readonly issuedAtS: number
	readonly expiresAtS: number
	/** `null` = unlimited within the TTL. */
	readonly maxUses: number | null
	/** `maxUses × file size`; `null` when unlimited. */
	readonly budgetBytes: number | null
	/** One-off resume allowance, `min(size, RESUME_ALLOWANCE)`; 0 when unlimited. */
	readonly allowanceBytes: number
}

/** What the store knows of a live token (for listing). */
export interface TokenInfo {
	readonly jti: string
	readonly filename: string
	readonly issuedAtS: number
	readonly expiresAtS: number
	readonly maxUses: number | null
	readonly bytesLeft: number | null
}

/**
 * Outcome of `take`: `missing` (never issued, or expired from the store) and
 * `revoked` both deny with `token_revoked`; `used_up` when the budget cannot
 * cover the bytes asked for.
 */
export type TakeResult =
	| { readonly status: 'ok'; readonly budgeted: false }
	| { readonly status: 'ok'; readonly budgeted: true; readonly bytesLeft: number }
	| { readonly status: 'missing' }
	| { readonly status: 'revoked' }
	| { readonly status: 'used_up'; readonly bytesLeft: number }

/**
 * The token store contract, met by Redis and by the in-memory store alike.
 * Every method rejects with `StoreUnavailableError` when the store cannot be
 * reached; callers must then refuse, never serve.
 */
export interface TokenStore {
	/** Writes the record (and the user's index entry) before the token is handed out. */
	create(record: NewTokenRecord): Promise<void>
	/**
	 * One atomic step: the record exists and is not revoked, and for a budgeted
	 * token `bytes` are reserved from its budget. `bytes = 0` only checks.
	 */
	take(userId: string, jti: string, bytes: number): Promise<TakeResult>
	/**
	 * After a broken connection: returns the `unwritten` reserved bytes, plus up
	 * to the remaining resume allowance of the `written` ones (the allowance
	 * shrinks by as much). A no-op for unknown or unlimited tokens.
	 */
	giveBack(userId: string, jti: string, unwritten: number, written: number): Promise<void>
	/** Marks one token revoked; false when unknown (or already expired). */
	revoke(userId: string, jti: string): Promise<boolean>
	/** Revokes every live token of the user, or only those for `filename`; returns how many. */
	revokeAll(userId: string, filename?: string): Promise<number>
	/** The user's live (unexpired, unrevoked) tokens, pruning expired index entries. */
	list(userId: string): Promise<TokenInfo[]>
	/** Resolves when the store answers. */
	ping(): Promise<void>
	/** Releases what this store created (timers; not a client it was given). */
	close(): Promise<void>
}
