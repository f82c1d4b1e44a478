import { randomBytes } from 'node:crypto'
import { type Clock, isoSeconds } from '../../clock'
import type { RateLimit } from '../../config'
import { FileNotFoundError, InvalidRequestError, RateLimitedError } from '../../errors'
import type { Storage } from '../../storage/disk'
import { assertValidNames } from '../../storage/names'
import type { RateLimiter } from '../../store/rate-limit'
import type { TokenStore } from '../../store/types'
import type { DownloadTokenCodec } from './download-token'

/** The body of a successful token request (SPEC §3.1). */
export interface IssuedToken {
	readonly token: string
	readonly expires_in: number
	readonly download_url: string
	readonly jti: string
	readonly expires_at: string
	readonly max_uses: number | null
}

/** A token request as the HTTP layer received it: strings, not yet validated. */
export interface IssueRequest {
	readonly userId: string
	readonly filename: string
	readonly ttl: string | undefined
	readonly maxUses: string | undefined
	/** Absolute origin for `download_url`, e.g. `https://files.example.com`. */
	readonly baseUrl: string
}

export interface TokenServiceDeps {
	readonly store: TokenStore
	readonly storage: Storage
	readonly codec: DownloadTokenCodec
	readonly clock: Clock
	readonly defaultTtlS: number
	readonly maxTtlS: number
	readonly resumeAllowanceBytes: number
	readonly rateLimiter: RateLimiter
	readonly rateLimitIssue: RateLimit
}

export interface TokenService {
	/**
	 * Validates, checks the file exists, writes the `jti` record, then signs.
	 * Throws `InvalidRequestError`, `RateLimitedError`, `FileNotFoundError`,
	 * `StoreUnavailableError`.
	 */
	issue(request: IssueRequest): Promise<IssuedToken>
}

const MAX_USES_LIMIT = 1_000_000
const POSITIVE_INT = /^[1-9][0-9]{0,9}$/

function positiveInt(name: string, raw: string, max: number): number {
	if (!POSITIVE_INT.test(raw) || Number(raw) > max)
		throw new InvalidRequestError(`${name} must be a whole number from 1 to ${max}, got "${raw.slice(0, 32)}"`)
	return Number(raw)
}

/** The `/api/download/...` path of a file, each segment percent-encoded. */
export function downloadPath(userId: string, filename: string): string {
	return `/api/download/${encodeURIComponent(userId)}/${encodeURIComponent(filename)}`
}

/** Builds the token service; it never sees an HTTP request. */
export function createTokenService(deps: TokenServiceDeps): TokenService {
	return {
		async issue(request) {
			const { userId, filename } = request
			assertValidNames(userId, filename)
			const ttl = request.ttl === undefined ? deps.defaultTtlS : positiveInt('ttl', request.ttl, deps.maxTtlS)
			const maxUses = request.maxUses === undefined ? null : positiveInt('max_uses', request.maxUses, MAX_USES_LIMIT)
			const limit = await deps.rateLimiter.hit('issue', userId, deps.rateLimitIssue)
			if (!limit.allowed) throw new RateLimitedError(limit.retryAfterS)

			const file = await deps.storage.find(userId, filename)
			if (!file) throw new FileNotFoundError()
			const budgetBytes = maxUses === null ? null : maxUses * file.size
			if (budgetBytes !== null && !Number.isSafeInteger(budgetBytes))
				throw new InvalidRequestError('max_uses is too large for a file of this size')

			const iat = Math.floor(deps.clock() / 1000)
			const exp = iat + ttl
			// Hex, not base64url: an id starting with '-' reads as an option on command lines.
			const jti = randomBytes(16).toString('hex')
			await deps.store.create({
				jti,
				userId,
				filename,
				issuedAtS: iat,
				expiresAtS: exp,
				maxUses,
				budgetBytes,
				allowanceBytes: budgetBytes === null ? 0 : Math.min(file.size, deps.resumeAllowanceBytes),
			})
			const token = await deps.codec.sign({ user_id: userId, filename, action: 'download', jti, iat, exp })
			return {
				token,
				expires_in: ttl,
				download_url: `${request.baseUrl}${downloadPath(userId, filename)}`,
				jti,
				expires_at: isoSeconds(exp),
				max_uses: maxUses,
			}
		},
	}
}
