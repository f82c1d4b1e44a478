import type { Clock } from '../../clock'
import { AppError, FileNotFoundError, StorageUnavailableError, StoreUnavailableError } from '../../errors'
import { type ConditionalRequest, selectRepresentation } from '../../http/conditional'
import type { Logger } from '../../log'
import { errorFields } from '../../log'
import { ObjectChangedError, type Storage } from '../../storage/types'
import type { CancellationQueue } from '../../store/cancellations'
import type { LeaseRequest, TakeResult, TokenStore } from '../../store/types'
import type { EventWriter } from '../events/writer'
import type { DownloadClaims, DownloadTokenCodec } from '../tokens/download-token'
import { createBindingChecks, type PresentedRequest } from './binding'
import { type BodyRules, bodyFor } from './body'
import { createBodyEvents } from './body-events'
import { bodyLength, type DownloadPlan, rangeOf } from './plan'
import type { BodyEnd } from './response'
import type { SlotKeeper } from './slots'
import { refusalOf } from './store-answers'

export type { DownloadPlan } from './plan'

/** One download request, as the service sees it (the client's address per `TRUST_PROXY`). */
export interface DownloadRequest extends PresentedRequest {
	readonly conditional: ConditionalRequest
	/** Carried into the service's log lines about this request. */
	readonly requestId?: string
	/**
	 * False when the Response may be read after this turn of the event loop
	 * (`app.handle`, where the caller holds it as long as it likes): a
	 * zero-copy body names the descriptor, which closes soon after, so such a
	 * body is streamed instead. Default true (a listening server takes it at once).
	 */
	readonly zeroCopy?: boolean
}

export interface DownloadService {
	/**
	 * Runs the checks of docs/contract.md §3.2 in order, pins the file's
	 * version once, reserves the body's bytes for a budgeted token and starts
	 * its body (from a bucket: the answer already confirmed to be the checked
	 * version; a version replaced in between is checked once more). Throws
	 * `InvalidRequestError`, `TokenError`, `ForbiddenError`,
	 * `FileNotFoundError`, `StoreUnavailableError`, `StorageUnavailableError`;
	 * the file is closed and any reservation given back on every refusal.
	 */
	prepare(request: DownloadRequest): Promise<DownloadPlan>
	/**
	 * The same checks answered from what this process already knows and may
	 * trust right now (the token's verdict, an unlimited token's live record, a
	 * file on a local disk), without waiting on anything: the plan, or null to
	 * ask with `prepare`. Throws the refusals it can decide on its own, as `prepare` would.
	 */
	prepareKnown(request: DownloadRequest): DownloadPlan | null
	/**
	 * After the body: ends the reservation (giving back what a broken
	 * connection did not deliver), frees the download slot, and writes the
	 * events of an unlimited token's body. Resolves with the bytes given back; never rejects.
	 */
	finish(plan: DownloadPlan, end: BodyEnd): Promise<number>
	/**
	 * The body was handed over (a zero-copy body ends there for the service)
	 * and `signal()` will say when the client leaves before it is sent: writes
	 * the events of an unlimited token's body. Never throws.
	 */
	started(plan: DownloadPlan, signal: () => AbortSignal): void
	/** A refused download, for the download.denied event. Never throws. */
	refused(err: AppError, context: { userId: string; filename: string; requestId: string; ip: string }): void
}

export interface DownloadServiceDeps {
	readonly codec: DownloadTokenCodec
	readonly store: TokenStore
	readonly storage: Storage
	readonly cancellations: CancellationQueue
	readonly log: Logger
	readonly clock: Clock
	/** `S3_REDIRECT=unlimited`: unlimited tokens' GETs go to a presigned URL valid this long (seconds); null = proxy. */
	readonly redirectTtlS?: number | null
	/** `EXPIRY_GRACE_S`: the store remembers each token's first body, and a token past `exp` is served within it. */
	readonly graceS?: number
	/** `MAX_CONCURRENT_DOWNLOADS_PER_USER` (0 = no limit) and who keeps the slots. */
	readonly slots?: { readonly limit: number; readonly keeper: SlotKeeper } | null
	/** Lifecycle events of unlimited tokens' downloads (budgeted ones are written by the store); null = none. */
	readonly events?: EventWriter | null
	/** Bytes of revoked jtis remembered per process (default 1 MiB); 0 asks the store every time. */
	readonly revokedCacheBytes?: number
}

// Unique per process and per request: a retried delivery of one take carries the same id.
const processTag = crypto.randomUUID().slice(0, 8)
let reservationCounter = 0
const newReservation = () => `${processTag}${(reservationCounter++).toString(36)}`

const changedTwice = (cause: unknown) =>
	new StorageUnavailableError(cause, 'The file changed twice while it was being sent; try again.')

/** Builds the download service; it never sees an HTTP request. */
export function createDownloadService(deps: DownloadServiceDeps): DownloadService {
	const { codec, store, storage, log, cancellations, clock } = deps
	const redirectTtlS = deps.redirectTtlS ?? null
	const graceS = deps.graceS ?? 0
	const slots = deps.slots && deps.slots.limit > 0 ? deps.slots : null
	const events = deps.events ?? null
	const bodyEvents = events === null ? null : createBodyEvents(events)
	const rules: BodyRules = { redirectTtlS, slotsHeld: slots !== null }

	const { presented, bound, rememberRevoked } = createBindingChecks(deps.revokedCacheBytes ?? 1024 * 1024)

	// The store's refusal of a take; a revocation is remembered (final until the token expires).
	function storeRefusal(claims: DownloadClaims, taken: TakeResult, length: number): AppError | null {
		if (taken.status === 'revoked') rememberRevoked(claims)
		return refusalOf(taken, length, slots?.limit ?? 0)
	}

	/** What a body asks of the store besides its bytes. */
	interface BodyTake {
		readonly reservation: string | null
		readonly start: number
		readonly lease: LeaseRequest | undefined
	}

	async function take(
		claims: DownloadClaims,
		bytes: number,
		body: BodyTake | null,
		requestId: string | undefined,
	): Promise<TakeResult> {
		const nowS = Math.floor(clock() / 1000)
		try {
			return await store.take(claims.user_id, claims.jti, bytes, {
				filename: claims.filename,
				// The download.started a take may write names the request.
				...(requestId !== undefined ? { requestId } : {}),
				...(body?.reservation ? { reservation: body.reservation } : {}),
				...(body ? { start: body.start } : {}),
				...(body?.lease ? { lease: body.lease } : {}),
				// Past exp (within the grace, or verify would have refused): only if the first body started in time.
				...(claims.exp <= nowS ? { expiredAtS: claims.exp } : {}),
				...(graceS > 0 ? { markStart: true } : {}),
			})
		} catch (err) {
			// The store may still run this take after we gave up: make sure it costs nothing and holds nothing.
			if (body?.reservation && err instanceof StoreUnavailableError)
				cancellations.cancel(claims.user_id, claims.jti, body.reservation)
			if (body?.lease && slots) void slots.keeper.release(claims.user_id, body.lease.id)
			throw err
		}
	}

	/** One attempt of the checks from the file onwards (6, 7, 8) and the body's start. */
	async function attempt(claims: DownloadClaims, request: DownloadRequest): Promise<DownloadPlan> {
		const file = await storage.open(request.userId, request.filename)
		if (!file) {
			// The record check (5) comes before the file check (6), even with nothing to send.
			const refusal = storeRefusal(claims, await take(claims, 0, null, request.requestId), 0)
			throw refusal ?? new FileNotFoundError()
		}
		let reservation: string | null = null
		let lease: string | null = null
		try {
			const selection = selectRepresentation(request.conditional, file)
			const length = bodyLength(selection, file.size, request.conditional.method)
			const asked: BodyTake | null =
				length > 0
					? {
							reservation: newReservation(),
							start: rangeOf(selection, file.size).start,
							lease: slots?.keeper.lease(slots.limit),
						}
					: null
			const taken = await take(claims, length, asked, request.requestId)
			// A failed request of this token left a reservation the store could not be told to give back yet
			// (it was away): "used up" may not be the last word, so the client is told to retry, not that it is over.
			if (taken.status === 'used_up' && cancellations.waitingFor(claims.jti)) throw new StoreUnavailableError()
			const refusal = storeRefusal(claims, taken, length)
			if (refusal) throw refusal
			const budgeted = taken.status === 'ok' && taken.budgeted
			reservation = budgeted ? (asked?.reservation ?? null) : null
			if (asked?.lease && slots) {
				lease = asked.lease.id
				slots.keeper.hold(claims.user_id, lease)
			}
			const body = await bodyFor(rules, {
				file,
				claims,
				selection,
				method: request.conditional.method,
				budgeted,
				zeroCopy: request.zeroCopy !== false,
			})
			return { claims, file, selection, body, budgeted, reservation, lease, requestId: request.requestId }
		} catch (err) {
			file.close()
			// The body could not start: what was reserved for it comes back whole, its slot is freed.
			if (reservation !== null) cancellations.cancel(claims.user_id, claims.jti, reservation)
			if (lease !== null && slots) void slots.keeper.release(claims.user_id, lease)
			throw err
		}
	}

	return {
		prepareKnown(request) {
			const openNow = storage.openNow
			// A body holding a download slot must ask the store for it.
			if (openNow === undefined || slots !== null) return null
			const claims = codec.verifiedSync(presented(request))
			if (claims === null) return null
			bound(claims, request)
			if (!store.peek(claims.user_id, claims.jti, claims.filename)) return null
			const file = openNow(request.userId, request.filename)
			// A missing file is answered by the full path, which asks the store first (docs/contract.md §3.2 order).
			if (!file) return null
			const selection = selectRepresentation(request.conditional, file)
			const body = bodyFor(rules, {
				file,
				claims,
				selection,
				method: request.conditional.method,
				budgeted: false,
				zeroCopy: request.zeroCopy !== false,
			})
			if (body instanceof Promise) {
				// Only a storage that answers at once gets here; anything that waits goes through prepare.
				file.close()
				body.then(
					(b) => b.kind === 'stream' && b.reader.cancel(),
					() => {},
				)
				return null
			}
			return {
				claims,
				file,
				selection,
				body,
				budgeted: false,
				reservation: null,
				lease: null,
				requestId: request.requestId,
			}
		},

		async prepare(request) {
			let claims: DownloadClaims | null = null
			try {
				claims = bound(await codec.verify(presented(request)), request)
				try {
					return await attempt(claims, request)
				} catch (err) {
					if (!(err instanceof ObjectChangedError)) throw err
					log.info('the file changed between its check and its read; checking again', {
						request_id: request.requestId,
						jti: claims.jti,
					})
				}
				try {
					return await attempt(claims, request)
				} catch (err) {
					throw err instanceof ObjectChangedError ? changedTwice(err) : err
				}
			} catch (err) {
				// The refusal names the authentic token it concerns, for the download.denied event.
				if (claims !== null && err instanceof AppError) err.jti = claims.jti
				throw err
			}
		},

		started(plan, signal) {
			bodyEvents?.started(plan, signal)
		},

		async finish(plan, end) {
			const { claims } = plan
			if (plan.lease !== null && slots) void slots.keeper.release(claims.user_id, plan.lease)
			bodyEvents?.ended(plan, end)
			if (!plan.budgeted || plan.reservation === null) return 0
			try {
				return await store.settle(claims.user_id, claims.jti, plan.reservation, end.written, !end.complete, {
					requestId: plan.requestId,
				})
			} catch (err) {
				// Failing to give bytes back only ever errs on the side of the budget.
				log.warn('could not settle a reservation', {
					request_id: plan.requestId,
					jti: claims.jti,
					written: end.written,
					...errorFields(err),
				})
				return 0
			}
		},

		refused(err, context) {
			if (events === null || err.status >= 500) return
			events.denied({
				jti: err.jti ?? null,
				user_id: context.userId,
				filename: context.filename,
				reason: err.code,
				ip: context.ip,
				request_id: context.requestId,
			})
		},
	}
}
