import { FileNotFoundError, ForbiddenError, TokenError } from '../../errors'
import { type ConditionalRequest, type Selection, selectRepresentation } from '../../http/conditional'
import type { Logger } from '../../log'
import { errorFields } from '../../log'
import type { Storage, StoredFile } from '../../storage/disk'
import { assertValidNames } from '../../storage/names'
import type { TakeResult, TokenStore } from '../../store/types'
import type { DownloadClaims, DownloadTokenCodec } from '../tokens/download-token'

/** What the download route is about to send, all checks passed. */
export interface DownloadPlan {
	readonly claims: DownloadClaims
	readonly file: StoredFile
	readonly selection: Selection
	/** True when the body was paid for from a `max_uses` budget. */
	readonly budgeted: boolean
	/** Bytes reserved from the budget (0 when none). */
	readonly reserved: number
}

export interface DownloadRequest {
	readonly token: string | null
	readonly userId: string
	readonly filename: string
	readonly conditional: ConditionalRequest
}

export interface DownloadService {
	/**
	 * Runs the checks of SPEC §3.2 in order and reserves the body's bytes for a
	 * budgeted token. Throws `InvalidRequestError`, `TokenError`,
	 * `ForbiddenError`, `FileNotFoundError`, `StoreUnavailableError`.
	 */
	prepare(request: DownloadRequest): Promise<DownloadPlan>
	/** After a broken connection: gives back what was reserved but not delivered. Never throws. */
	settle(plan: DownloadPlan, written: number): Promise<void>
}

export interface DownloadServiceDeps {
	readonly codec: DownloadTokenCodec
	readonly store: TokenStore
	readonly storage: Storage
	readonly log: Logger
	/** Revoked jtis remembered per process (oldest dropped first; default 4096); 0 asks the store every time. */
	readonly revokedCacheSize?: number
}

function bodyLength(selection: Selection, file: StoredFile, method: 'GET' | 'HEAD'): number {
	if (method === 'HEAD') return 0
	if (selection.kind === 'full') return file.size
	if (selection.kind === 'partial') return selection.end - selection.start + 1
	return 0
}

/** Builds the download service; it never sees an HTTP request. */
export function createDownloadService(deps: DownloadServiceDeps): DownloadService {
	const { codec, store, storage, log } = deps

	const denyMissingRecord = () =>
		new TokenError('token_revoked', 'This download token has been revoked or is no longer valid.')

	// Revocation is final until the token expires (and expiry is checked before
	// this), so a jti the store once reported revoked is refused here without
	// asking again: a leaked link scraped after revocation costs no round trip.
	// Missing and used-up are not final (a restored store, bytes given back).
	const revokedCacheSize = deps.revokedCacheSize ?? 4096
	const knownRevoked = new Set<string>()
	const revokedKey = (claims: DownloadClaims) => `${claims.user_id}\0${claims.jti}`
	const rememberRevoked = (claims: DownloadClaims) => {
		if (knownRevoked.size >= revokedCacheSize) knownRevoked.delete(knownRevoked.values().next().value as string)
		knownRevoked.add(revokedKey(claims))
	}
	const refuseTaken = (claims: DownloadClaims, taken: TakeResult): never => {
		if (taken.status === 'revoked' && revokedCacheSize > 0) rememberRevoked(claims)
		throw denyMissingRecord()
	}

	return {
		async prepare(request) {
			assertValidNames(request.userId, request.filename)
			if (request.token === null) throw new TokenError('missing_token', 'A download token is required.')
			const claims = await codec.verify(request.token)
			if (claims.action !== 'download' || claims.user_id !== request.userId || claims.filename !== request.filename)
				throw new ForbiddenError('token_mismatch', 'This token was not issued for this user and file.')
			// The size test spares the happy path a key string while nothing is remembered.
			if (knownRevoked.size > 0 && knownRevoked.has(revokedKey(claims))) throw denyMissingRecord()

			const file = await storage.find(request.userId, request.filename)
			if (!file) {
				// The record check (5) comes before the file check (6), even with nothing to send.
				const check = await store.take(claims.user_id, claims.jti, 0)
				if (check.status === 'missing' || check.status === 'revoked') refuseTaken(claims, check)
				throw new FileNotFoundError()
			}
			const selection = selectRepresentation(request.conditional, file)
			const length = bodyLength(selection, file, request.conditional.method)
			const taken = await store.take(claims.user_id, claims.jti, length)
			switch (taken.status) {
				case 'missing':
				case 'revoked':
					return refuseTaken(claims, taken)
				case 'used_up':
					throw new TokenError(
						'token_used_up',
						`This token's downloads are used up (${taken.bytesLeft} of the ${length} bytes asked for remain).`,
					)
				default:
					return { claims, file, selection, budgeted: taken.budgeted, reserved: taken.budgeted ? length : 0 }
			}
		},

		async settle(plan, written) {
			if (!plan.budgeted) return
			const unwritten = Math.max(0, plan.reserved - written)
			try {
				await store.giveBack(plan.claims.user_id, plan.claims.jti, unwritten, Math.min(written, plan.reserved))
			} catch (err) {
				// Failing to give bytes back only ever errs on the side of the budget.
				log.warn('could not return unsent bytes to the budget', {
					jti: plan.claims.jti,
					unwritten,
					...errorFields(err),
				})
			}
		},
	}
}
