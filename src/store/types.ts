import type { RateLimit } from '../config'

/** The policy a token was issued with, kept in its record for the listing. */
export interface TokenPolicy {
	/** Not valid before (epoch seconds). */
	readonly nbf?: number
	/** Canonical CIDR ranges. */
	readonly cidr?: readonly string[]
	/** Bytes per second. */
	readonly rate?: number
}

/** A token record to create: one per `jti`, expiring with the token (or at the end of its grace). */
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
	/** The file's size at issuance: what a whole copy is, for counting delivered copies. */
	readonly sizeBytes: number
	readonly policy: TokenPolicy
	/** `EXPIRY_GRACE_S`: the record outlives `expiresAtS` by this long, for downloads that started in time. */
	readonly graceS: number
}

/** What the store knows of a live token (for listing). */
export interface TokenInfo {
	readonly jti: string
	readonly filename: string
	readonly issuedAtS: number
	readonly expiresAtS: number
	readonly maxUses: number | null
	readonly bytesLeft: number | null
	readonly policy: TokenPolicy
}

/** One page of a user's live tokens, newest first, and where the next page starts (null: none). */
export interface TokenPage {
	readonly tokens: readonly TokenInfo[]
	/** The position after the last token of this page, for `list`'s `after`; null on the last page. */
	readonly next: string | null
}

/** Who caused a change, carried into the lifecycle event it writes (docs/contract.md §7). */
export interface EventContext {
	/** The request that caused it, when one did. */
	readonly requestId?: string | undefined
	/** Who revoked: the holder of the token, the user it belongs to, a service key. */
	readonly by?: 'holder' | 'owner' | 'service' | 'anonymous'
}

/** What `create` checks besides writing: the per-user issue rate and the bound on live tokens. */
export interface CreateOptions extends EventContext {
	readonly issueLimit?: RateLimit
	/** `MAX_LIVE_TOKENS_PER_USER`: refused (`too_many_live`) when the user already holds this many. */
	readonly maxLive: number
}

/** Outcome of `create`: written, or refused (nothing written). */
export type CreateResult =
	| { readonly status: 'created' }
	| { readonly status: 'rate_limited'; readonly retryAfterS: number }
	| { readonly status: 'too_many_live' }

/**
 * Outcome of `take`: `missing` (never issued, or expired from the store) and
 * `revoked` both deny with `token_revoked`; `mismatch` when the record names
 * another file than the token's claims; `expired` when a token past its `exp`
 * (within its grace) never started a body before `exp`; `used_up` when the
 * budget cannot cover the bytes asked for; `too_many_downloads` when the
 * user holds every download slot; `cancelled` when the reservation was
 * cancelled before it reached the store (its request had already failed).
 */
export type TakeResult =
	| { readonly status: 'ok'; readonly budgeted: false }
	| { readonly status: 'ok'; readonly budgeted: true; readonly bytesLeft: number }
	| { readonly status: 'missing' }
	| { readonly status: 'revoked' }
	| { readonly status: 'mismatch' }
	| { readonly status: 'expired' }
	| { readonly status: 'used_up'; readonly bytesLeft: number }
	| { readonly status: 'too_many_downloads'; readonly retryAfterS: number }
	| { readonly status: 'cancelled' }

/** A download slot to hold while a body is in flight (`MAX_CONCURRENT_DOWNLOADS_PER_USER`). */
export interface LeaseRequest {
	/** Unique per body. */
	readonly id: string
	/** Slots the user may hold at once. */
	readonly limit: number
	/** The slot is freed by itself this long after it was last renewed (an instance that died). */
	readonly ttlMs: number
}

/** What binds a take to the request that asked for it. */
export interface TakeOptions extends EventContext {
	/** The token's `filename` claim: a record for another file answers `mismatch`. */
	readonly filename?: string
	/**
	 * A per-request reservation id: a charge is recorded under it, so that
	 * `settle` and `cancel` find it and a repeated delivery charges once.
	 */
	readonly reservation?: string
	/** Where the body's bytes start in the file (for counting delivered copies). */
	readonly start?: number
	/** Set when the token is past `exp` (within its grace): the take stands only if a first body started before it. */
	readonly expiredAtS?: number
	/** Record when the token's first body starts (with `EXPIRY_GRACE_S`). */
	readonly markStart?: boolean
	/** Hold a download slot for this body (only when `bytes > 0`). */
	readonly lease?: LeaseRequest
}

/** What `settle` learned: bytes given back to the budget. */
export type SettleOptions = EventContext

/**
 * The token store contract, met by Redis and by the in-memory store alike.
 * Every method rejects with `StoreUnavailableError` when the store cannot be
 * reached; callers must then refuse, never serve.
 */
export interface TokenStore {
	/**
	 * Counts one issue against the user's issue limit and, when allowed and
	 * the user holds fewer than `maxLive` live tokens, writes the record and
	 * its index entries in the same atomic step, before the token is handed out.
	 */
	create(record: NewTokenRecord, options: CreateOptions): Promise<CreateResult>
	/**
	 * One atomic step: the record exists, names `options.filename` and is not
	 * revoked (and, past `exp`, started in time); for a budgeted token `bytes`
	 * are reserved from its budget; with `options.lease`, a download slot is
	 * taken (nothing is charged when none is free). `bytes = 0` only checks.
	 */
	take(userId: string, jti: string, bytes: number, options?: TakeOptions): Promise<TakeResult>
	/**
	 * Ends a reservation once its body is done. `broken`: the client went away
	 * after `written` bytes; the unwritten rest comes back, plus up to the
	 * remaining resume allowance of the written ones (the allowance shrinks by
	 * as much). Idempotent: a reservation is settled once. Resolves with the bytes given back.
	 */
	settle(
		userId: string,
		jti: string,
		reservation: string,
		written: number,
		broken: boolean,
		options?: SettleOptions,
	): Promise<number>
	/**
	 * Undoes a reservation whose request failed (the store answered too late, or
	 * not at all): its bytes come back if it was charged, and a charge arriving
	 * after this is refused. Idempotent.
	 */
	cancel(userId: string, jti: string, reservation: string): Promise<void>
	/** Frees download slots (bodies that ended). Idempotent. */
	release(userId: string, leaseIds: readonly string[]): Promise<void>
	/** Keeps download slots of bodies still in flight from expiring. */
	renew(userId: string, leaseIds: readonly string[], ttlMs: number): Promise<void>
	/** Marks one token revoked; false when unknown (or already expired). */
	revoke(userId: string, jti: string, context?: EventContext): Promise<boolean>
	/**
	 * Revokes every live token of the user, or only those for `filename`, in
	 * bounded batches (no single step runs long whatever the count); returns
	 * how many. Repeating it after an interruption is safe.
	 */
	revokeAll(userId: string, filename?: string, context?: EventContext): Promise<number>
	/**
	 * One page of the user's live tokens (unexpired, unrevoked, not used up),
	 * newest first, of at most `limit`, starting after the position `after`
	 * (a previous page's `next`). Stable while tokens come and go between pages.
	 */
	list(userId: string, page: { readonly limit: number; readonly after?: string | undefined }): Promise<TokenPage>
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

/** A listing position: the token's issue time and id, ordered newest first. */
export const POSITION_PATTERN = /^[0-9]{12}:[A-Za-z0-9_-]{1,64}$/

/** The position of a token in its user's listing (sorts by issue time, then id). */
export const positionOf = (issuedAtS: number, jti: string): string => `${String(issuedAtS).padStart(12, '0')}:${jti}`

/** The token id of a listing position (`positionOf`). */
export const jtiOfPosition = (position: string): string => position.slice(13)
