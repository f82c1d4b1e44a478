import { BoundedCache, stringBytes } from '../../bounded-cache'
import { FileNotFoundError, ForbiddenError, StoreUnavailableError, TokenError } from '../../errors'
import { type ConditionalRequest, type Selection, selectRepresentation } from '../../http/conditional'
import type { Logger } from '../../log'
import { errorFields } from '../../log'
import type { OpenedFile, Storage } from '../../storage/disk'
import { assertValidNames } from '../../storage/names'
import type { CancellationQueue } from '../../store/cancellations'
import type { TakeResult, TokenStore } from '../../store/types'
import type { DownloadClaims, DownloadTokenCodec } from '../tokens/download-token'

/**
 * What the download route is about to send, all checks passed. It owns the
 * opened file: whoever sends the plan closes `file` (see `downloadResponse`).
 */
export interface DownloadPlan {
	readonly claims: DownloadClaims
	readonly file: OpenedFile
	readonly selection: Selection
	/** True when the body was paid for from a `max_uses` budget. */
	readonly budgeted: boolean
	/** The reservation's id in the store, when bytes were reserved. */
	readonly reservation: string | null
	readonly requestId: string | undefined
}

export interface DownloadRequest {
	readonly token: string | null
	readonly userId: string
	readonly filename: string
	readonly conditional: ConditionalRequest
	/** Carried into the service's log lines about this request. */
	readonly requestId?: string
}

export interface DownloadService {
	/**
	 * Runs the checks of docs/contract.md §3.2 in order, opens the file once and reserves
	 * the body's bytes for a budgeted token. Throws `InvalidRequestError`,
	 * `TokenError`, `ForbiddenError`, `FileNotFoundError`,
	 * `StoreUnavailableError`; the file is closed on every refusal.
	 */
	prepare(request: DownloadRequest): Promise<DownloadPlan>
	/**
	 * The same checks answered from what this process already knows and may
	 * trust right now (the token's verdict, an unlimited token's live record),
	 * without waiting on anything: the plan, or null to ask with `prepare`.
	 * Throws the refusals it can decide on its own, as `prepare` would.
	 */
	prepareKnown(request: DownloadRequest): DownloadPlan | null
	/**
	 * After the body: ends the reservation, giving back what a broken
	 * connection did not deliver. Resolves with the bytes given back; never rejects.
	 */
	settle(plan: DownloadPlan, written: number, complete: boolean): Promise<number>
}

export interface DownloadServiceDeps {
	readonly codec: DownloadTokenCodec
	readonly store: TokenStore
	readonly storage: Storage
	readonly cancellations: CancellationQueue
	readonly log: Logger
	/** Bytes of revoked jtis remembered per process (default 1 MiB); 0 asks the store every time. */
	readonly revokedCacheBytes?: number
}

function bodyLength(selection: Selection, size: number, method: 'GET' | 'HEAD'): number {
	if (method === 'HEAD') return 0
	if (selection.kind === 'full') return size
	if (selection.kind === 'partial') return selection.end - selection.start + 1
	return 0
}

// Unique per process and per request: a retried delivery of one take carries the same id.
const processTag = crypto.randomUUID().slice(0, 8)
let reservationCounter = 0
const newReservation = () => `${processTag}${(reservationCounter++).toString(36)}`

const revoked = () => new TokenError('token_revoked', 'This download token has been revoked or is no longer valid.')
const boundElsewhere = () => new TokenError('invalid_token', "This token's record names another file.")

/** Builds the download service; it never sees an HTTP request. */
export function createDownloadService(deps: DownloadServiceDeps): DownloadService {
	const { codec, store, storage, log, cancellations } = deps

	// Revocation is final until the token expires (and expiry is checked before
	// this), so a jti the store once reported revoked is refused here without
	// asking again: a leaked link scraped after revocation costs no round trip.
	// Missing and used-up are not final (a restored store, bytes given back).
	const revokedCacheBytes = deps.revokedCacheBytes ?? 1024 * 1024
	const knownRevoked = new BoundedCache<true>(revokedCacheBytes, (key) => stringBytes(key))
	const revokedKey = (claims: DownloadClaims) => `${claims.user_id}\0${claims.jti}`

	// Refusals of the record check (step 5), in the order of docs/contract.md §3.2; null when the record allows the request.
	function recordRefusal(claims: DownloadClaims, taken: TakeResult): TokenError | null {
		switch (taken.status) {
			case 'revoked':
				if (revokedCacheBytes > 0) knownRevoked.set(revokedKey(claims), true)
				return revoked()
			case 'missing':
				return revoked()
			case 'mismatch':
				return boundElsewhere()
			default:
				return null
		}
	}

	async function take(claims: DownloadClaims, bytes: number, reservation: string | null): Promise<TakeResult> {
		try {
			return await store.take(claims.user_id, claims.jti, bytes, {
				filename: claims.filename,
				...(reservation === null ? {} : { reservation }),
			})
		} catch (err) {
			// The store may still run this reservation after we gave up: make sure it costs nothing.
			if (reservation !== null && err instanceof StoreUnavailableError)
				cancellations.cancel(claims.user_id, claims.jti, reservation)
			throw err
		}
	}

	// Checks 1 and 4, and a remembered revocation: the same whether the rest is known or asked.
	function presented(request: DownloadRequest): string {
		assertValidNames(request.userId, request.filename)
		if (request.token === null) throw new TokenError('missing_token', 'A download token is required.')
		return request.token
	}
	function bound(claims: DownloadClaims, request: DownloadRequest): DownloadClaims {
		if (claims.action !== 'download' || claims.user_id !== request.userId || claims.filename !== request.filename)
			throw new ForbiddenError('token_mismatch', 'This token was not issued for this user and file.')
		// The size test spares the happy path a key string while nothing is remembered.
		if (knownRevoked.size > 0 && knownRevoked.has(revokedKey(claims))) throw revoked()
		return claims
	}

	return {
		prepareKnown(request) {
			const claims = codec.verifiedSync(presented(request))
			if (claims === null) return null
			bound(claims, request)
			if (!store.peek(claims.user_id, claims.jti, claims.filename)) return null
			const file = storage.open(request.userId, request.filename)
			// A missing file is answered by the full path, which asks the store first (docs/contract.md §3.2 order).
			if (!file) return null
			return {
				claims,
				file,
				selection: selectRepresentation(request.conditional, file),
				budgeted: false,
				reservation: null,
				requestId: request.requestId,
			}
		},

		async prepare(request) {
			const claims = bound(await codec.verify(presented(request)), request)

			const file = storage.open(request.userId, request.filename)
			if (!file) {
				// The record check (5) comes before the file check (6), even with nothing to send.
				const refusal = recordRefusal(claims, await take(claims, 0, null))
				throw refusal ?? new FileNotFoundError()
			}
			try {
				const selection = selectRepresentation(request.conditional, file)
				const length = bodyLength(selection, file.size, request.conditional.method)
				const reservation = length > 0 ? newReservation() : null
				const taken = await take(claims, length, reservation)
				const refusal = recordRefusal(claims, taken)
				if (refusal) throw refusal
				if (taken.status === 'used_up')
					throw new TokenError(
						'token_used_up',
						`This token's downloads are used up (${taken.bytesLeft} of the ${length} bytes asked for remain).`,
					)
				// Only a request that already failed has its reservation cancelled; this one has not.
				if (taken.status === 'cancelled') throw new StoreUnavailableError()
				const budgeted = taken.status === 'ok' && taken.budgeted
				return {
					claims,
					file,
					selection,
					budgeted,
					reservation: budgeted ? reservation : null,
					requestId: request.requestId,
				}
			} catch (err) {
				file.close()
				throw err
			}
		},

		async settle(plan, written, complete) {
			if (!plan.budgeted || plan.reservation === null) return 0
			const { claims, reservation } = plan
			try {
				return await store.settle(claims.user_id, claims.jti, reservation, written, !complete)
			} catch (err) {
				// Failing to give bytes back only ever errs on the side of the budget.
				log.warn('could not settle a reservation', {
					request_id: plan.requestId,
					jti: claims.jti,
					written,
					...errorFields(err),
				})
				return 0
			}
		},
	}
}
