import { BoundedCache, stringBytes } from '../../bounded-cache'
import type { Clock } from '../../clock'
import {
	AppError,
	FileNotFoundError,
	ForbiddenError,
	StorageUnavailableError,
	StoreUnavailableError,
	TokenError,
	TooManyDownloadsError,
} from '../../errors'
import { rangeMatcher } from '../../http/cidr'
import { type ConditionalRequest, type Selection, selectRepresentation } from '../../http/conditional'
import { contentDisposition } from '../../http/content-disposition'
import { SINGLE_READ_BYTES } from '../../http/file-stream'
import { contentTypeFor } from '../../http/mime'
import type { Logger } from '../../log'
import { errorFields } from '../../log'
import { assertValidNames } from '../../storage/names'
import { type CheckedFile, ObjectChangedError, type RangeReader, type Storage } from '../../storage/types'
import type { CancellationQueue } from '../../store/cancellations'
import type { LeaseRequest, TakeResult, TokenStore } from '../../store/types'
import type { EventWriter } from '../events/writer'
import type { DownloadClaims, DownloadTokenCodec } from '../tokens/download-token'
import { bodyLength, type DownloadPlan, type PlannedBody, rangeOf } from './plan'
import type { BodyEnd } from './response'
import type { SlotKeeper } from './slots'

export type { DownloadPlan } from './plan'

export interface DownloadRequest {
	readonly token: string | null
	readonly userId: string
	readonly filename: string
	readonly conditional: ConditionalRequest
	/** The client's address (per `TRUST_PROXY`), asked only for a token bound to address ranges. */
	readonly clientAddress: () => string
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
	 * and `signal` will say when the client leaves before it is sent: writes
	 * the events of an unlimited token's body. Never throws.
	 */
	started(plan: DownloadPlan, signal: AbortSignal): void
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

const revoked = () => new TokenError('token_revoked', 'This download token has been revoked or is no longer valid.')
const boundElsewhere = () => new TokenError('invalid_token', "This token's record names another file.")
const changedTwice = (cause: unknown) =>
	new StorageUnavailableError(cause, 'The file changed twice while it was being sent; try again.')

/** All `length` bytes of a range reader, as one blob; rejects (the reader cancelled) when it fails or ends early. */
async function readWhole(reader: RangeReader, length: number): Promise<Blob> {
	const bytes = new Uint8Array(length)
	let at = 0
	try {
		while (at < length) {
			const chunk = await reader.read(length - at)
			if (chunk === null) throw new Error(`the source ended ${length - at} bytes early`)
			bytes.set(chunk, at)
			at += chunk.length
		}
	} catch (err) {
		reader.cancel()
		throw err
	}
	return new Blob([bytes])
}

/** Builds the download service; it never sees an HTTP request. */
export function createDownloadService(deps: DownloadServiceDeps): DownloadService {
	const { codec, store, storage, log, cancellations, clock } = deps
	const redirectTtlS = deps.redirectTtlS ?? null
	const graceS = deps.graceS ?? 0
	const slots = deps.slots && deps.slots.limit > 0 ? deps.slots : null
	const events = deps.events ?? null

	// Revocation is final until the token expires (and expiry is checked before
	// this), so a jti the store once reported revoked is refused here without
	// asking again: a leaked link scraped after revocation costs no round trip.
	// Missing and used-up are not final (a restored store, bytes given back).
	const revokedCacheBytes = deps.revokedCacheBytes ?? 1024 * 1024
	const knownRevoked = new BoundedCache<true>(revokedCacheBytes, (key) => stringBytes(key))
	const revokedKey = (claims: DownloadClaims) => `${claims.user_id}\0${claims.jti}`

	// A token's ranges are parsed once per process, not once per request; bounded like every cache here.
	const matchers = new BoundedCache<(client: string) => boolean>(256 * 1024, (key) => stringBytes(key) + 256)
	function matcherOf(cidr: readonly string[]): (client: string) => boolean {
		const key = cidr.join(',')
		let matcher = matchers.get(key)
		if (matcher === undefined) {
			matcher = rangeMatcher(cidr)
			matchers.set(key, matcher)
		}
		return matcher
	}

	// Refusals the store's answer decides (checks 3 within the grace, 5, 7 and 8), in the
	// order of docs/contract.md §3.2; null when the record allows the request.
	function storeRefusal(claims: DownloadClaims, taken: TakeResult, length: number): AppError | null {
		switch (taken.status) {
			case 'revoked':
				if (revokedCacheBytes > 0) knownRevoked.set(revokedKey(claims), true)
				return revoked()
			case 'missing':
				return revoked()
			case 'mismatch':
				return boundElsewhere()
			case 'expired':
				return new TokenError('token_expired', 'The download token has expired; ask for a new one.')
			case 'used_up':
				return new TokenError(
					'token_used_up',
					`This token's downloads are used up (${taken.bytesLeft} of the ${length} bytes asked for remain).`,
				)
			case 'too_many_downloads':
				return new TooManyDownloadsError(slots?.limit ?? 0, taken.retryAfterS)
			// Only a request that already failed has its reservation cancelled; this one has not.
			case 'cancelled':
				return new StoreUnavailableError()
			default:
				return null
		}
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

	// Checks 1 and 4, and a remembered revocation: the same whether the rest is known or asked.
	function presented(request: DownloadRequest): string {
		assertValidNames(request.userId, request.filename)
		if (request.token === null) throw new TokenError('missing_token', 'A download token is required.')
		return request.token
	}
	function bound(claims: DownloadClaims, request: DownloadRequest): DownloadClaims {
		let refusal: AppError | null = null
		if (claims.action !== 'download' || claims.user_id !== request.userId || claims.filename !== request.filename)
			refusal = new ForbiddenError('token_mismatch', 'This token was not issued for this user and file.')
		else if (claims.cidr !== undefined && !matcherOf(claims.cidr)(request.clientAddress()))
			refusal = new ForbiddenError('ip_not_allowed', 'This token may not be used from this address.')
		// The size test spares the happy path a key string while nothing is remembered.
		else if (knownRevoked.size > 0 && knownRevoked.has(revokedKey(claims))) refusal = revoked()
		if (refusal === null) return claims
		// These tokens are authentic: the download.denied event names the one refused (a link used elsewhere).
		refusal.jti = claims.jti
		throw refusal
	}

	/**
	 * How the body goes out. Zero-copy where the storage has it and nothing
	 * needs to see the bytes go: a budgeted body larger than one write is
	 * counted, so a broken connection can give back what was never written; a
	 * paced one is paced; one holding a download slot must say when it ends. A
	 * deliberate 200 to a Range request (If-Range failed, an unparsable range)
	 * is streamed, since Bun answers a Range request itself for a whole-file body.
	 */
	function bodyFor(
		file: CheckedFile,
		claims: DownloadClaims,
		selection: Selection,
		method: 'GET' | 'HEAD',
		budgeted: boolean,
		zeroCopy: boolean,
	): PlannedBody | Promise<PlannedBody> {
		const { filename } = claims
		if (method === 'HEAD' || selection.kind === 'not-modified' || selection.kind === 'unsatisfiable')
			return { kind: 'none' }
		const { start, end } = rangeOf(selection, file.size)
		// Budgeted bytes must be counted here, and paced ones paced here: only the others may leave for a presigned URL.
		if (!budgeted && claims.rate === undefined && redirectTtlS !== null) {
			const url = file.presignedUrl(redirectTtlS, contentDisposition(filename), contentTypeFor(filename))
			if (url !== null) return { kind: 'redirect', url }
		}
		const counted = (budgeted && end - start > SINGLE_READ_BYTES) || slots !== null || claims.rate !== undefined
		const ignoredRange = selection.kind === 'full' && selection.rangeIgnored
		if (zeroCopy && !counted && !ignoredRange) {
			const blob = file.zeroCopy(start, end)
			if (blob !== null) return { kind: 'zero-copy', blob }
		}
		const reader = file.openRange(start, end)
		// A short body from a storage without zero-copy (a bucket) is read whole and handed over as one
		// blob, as a disk's would be: Bun sends every stream body chunked, without its Content-Length
		// (oven-sh/bun#10507, README "Uses are whole downloads"), and players probe with tiny ranges.
		if (!counted && !ignoredRange && end - start <= SINGLE_READ_BYTES)
			return Promise.resolve(reader).then(async (r): Promise<PlannedBody> => {
				const blob = await readWhole(r, end - start)
				return { kind: 'zero-copy', blob }
			})
		return reader instanceof Promise
			? reader.then((r): PlannedBody => ({ kind: 'stream', reader: r }))
			: { kind: 'stream', reader }
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
			const refusal = storeRefusal(claims, taken, length)
			if (refusal) throw refusal
			const budgeted = taken.status === 'ok' && taken.budgeted
			reservation = budgeted ? (asked?.reservation ?? null) : null
			if (asked?.lease && slots) {
				lease = asked.lease.id
				slots.keeper.hold(claims.user_id, lease)
			}
			const body = await bodyFor(
				file,
				claims,
				selection,
				request.conditional.method,
				budgeted,
				request.zeroCopy !== false,
			)
			return { claims, file, selection, body, budgeted, reservation, lease, requestId: request.requestId }
		} catch (err) {
			file.close()
			// The body could not start: what was reserved for it comes back whole, its slot is freed.
			if (reservation !== null) cancellations.cancel(claims.user_id, claims.jti, reservation)
			if (lease !== null && slots) void slots.keeper.release(claims.user_id, lease)
			throw err
		}
	}

	/** An unlimited token's body event (a budgeted one's is written by the store, in the step that counts it). */
	function bodyEvent(
		plan: DownloadPlan,
		type: 'download.started' | 'download.completed' | 'download.broken',
		extra: Record<string, unknown> = {},
	) {
		if (events === null || plan.budgeted) return
		const { claims, file, selection } = plan
		const { start, end } = rangeOf(selection, file.size)
		events.emit(type, {
			jti: claims.jti,
			user_id: claims.user_id,
			filename: claims.filename,
			size: file.size,
			range: `${start}-${end - 1}`,
			...extra,
			request_id: plan.requestId,
		})
	}
	/** Unlimited tokens' bodies report events when they begin at the first byte: the start of a copy. */
	const reportsEvents = (plan: DownloadPlan) =>
		events !== null &&
		!plan.budgeted &&
		plan.body.kind !== 'none' &&
		rangeOf(plan.selection, plan.file.size).start === 0
	/** Only a body of the whole file completes a copy: a player's `bytes=0-1` probe is no download. */
	const wholeFile = (plan: DownloadPlan) => rangeOf(plan.selection, plan.file.size).end === plan.file.size

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
			const body = bodyFor(file, claims, selection, request.conditional.method, false, request.zeroCopy !== false)
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
			if (!reportsEvents(plan)) return
			bodyEvent(plan, 'download.started')
			// A zero-copy body ends for the service when it is handed over: the runtime reports a client
			// that leaves before the last byte through the request's signal, and nothing when all was sent.
			if (plan.body.kind === 'zero-copy') {
				if (wholeFile(plan)) bodyEvent(plan, 'download.completed', { handed_over: true })
				signal.addEventListener('abort', () => bodyEvent(plan, 'download.broken', { bytes_written: null }), {
					once: true,
				})
			}
		},

		async finish(plan, end) {
			const { claims } = plan
			if (plan.lease !== null && slots) void slots.keeper.release(claims.user_id, plan.lease)
			if (reportsEvents(plan) && plan.body.kind !== 'zero-copy') {
				if (!end.complete) bodyEvent(plan, 'download.broken', { bytes_written: end.written })
				else if (wholeFile(plan)) bodyEvent(plan, 'download.completed')
			}
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
