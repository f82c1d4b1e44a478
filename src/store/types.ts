import type { RateLimit } from '../config'

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

/** Outcome of `create`: written, or refused by the per-user issue limit (nothing written). */
export type CreateResult =
	| { readonly status: 'created' }
	| { readonly status: 'rate_limited'; readonly retryAfterS: number }

/**
 * Outcome of `take`: `missing` (never issued, or expired from the store) and
 * `revoked` both deny with `token_revoked`; `mismatch` when the record names
 * another file than the token's claims; `used_up` when the budget cannot
 * cover the bytes asked for; `cancelled` when the reservation was cancelled
 * before it reached the store (its request had already failed).
 */
export type TakeResult =
	| { readonly status: 'ok'; readonly budgeted: false }
	| { readonly status: 'ok'; readonly budgeted: true; readonly bytesLeft: number }
	| { readonly status: 'missing' }
	| { readonly status: 'revoked' }
	| { readonly status: 'mismatch' }
	| { readonly status: 'used_up'; readonly bytesLeft: number }
	| { readonly status: 'cancelled' }

/** What binds a take to the request that asked for it. */
export interface TakeOptions {
	/** The token's `filename` claim: a record for another file answers `mismatch`. */
	readonly filename?: string
	/**
	 * A per-request reservation id: a charge is recorded under it, so that
	 * `settle` and `cancel` find it and a repeated delivery charges once.
	 */
	readonly reservation?: string
}

/**
 * The token store contract, met by Redis and by the in-memory store alike.
 * Every method rejects with `StoreUnavailableError` when the store cannot be
 * reached; callers must then refuse, never serve.
 */
export interface TokenStore {
	/**
	 * Counts one issue against `limit` for the user and, when allowed, writes
	 * the record (and the user's index entry) in the same atomic step, before
	 * the token is handed out.
	 */
	create(record: NewTokenRecord, limit?: RateLimit): Promise<CreateResult>
	/**
	 * One atomic step: the record exists, names `options.filename` and is not
	 * revoked, and for a budgeted token `bytes` are reserved from its budget.
	 * `bytes = 0` only checks.
	 */
	take(userId: string, jti: string, bytes: number, options?: TakeOptions): Promise<TakeResult>
	/**
	 * Ends a reservation once its body is done. `broken`: the client went away
	 * after `written` bytes; the unwritten rest comes back, plus up to the
	 * remaining resume allowance of the written ones (the allowance shrinks by
	 * as much). Idempotent: a reservation is settled once. Resolves with the bytes given back.
	 */
	settle(userId: string, jti: string, reservation: string, written: number, broken: boolean): Promise<number>
	/**
	 * Undoes a reservation whose request failed (the store answered too late, or
	 * not at all): its bytes come back if it was charged, and a charge arriving
	 * after this is refused. Idempotent.
	 */
	cancel(userId: string, jti: string, reservation: string): Promise<void>
	/** Marks one token revoked; false when unknown (or already expired). */
	revoke(userId: string, jti: string): Promise<boolean>
	/** Revokes every live token of the user, or only those for `filename`; returns how many. */
	revokeAll(userId: string, filename?: string): Promise<number>
	/** The user's live (unexpired, unrevoked, not used-up) tokens, pruning expired index entries. */
	list(userId: string): Promise<TokenInfo[]>
	/**
	 * Without asking anyone: true when this process already knows (and may
	 * trust right now) that the token is live, unrevoked, unlimited and for
	 * `filename`. False means "ask with `take`", never "refused".
	 */
	peek(userId: string, jti: string, filename: string): boolean
	/** Resolves when the store answers. */
	ping(): Promise<void>
	/** Releases what this store created (timers; not a client it was given). */
	close(): Promise<void>
}
