import { randomBytes } from 'node:crypto'
import { type Clock, isoSeconds } from '../../clock'
import type { RateLimit } from '../../config'
import { FileNotFoundError, InvalidRequestError, RateLimitedError, TooManyLiveTokensError } from '../../errors'
import { assertValidNames } from '../../storage/names'
import type { Storage } from '../../storage/types'
import type { TokenStore } from '../../store/types'
import { downloadPathOf } from '../downloads/endpoint'
import type { DownloadTokenCodec } from './download-token'
import type { IssuedToken } from './model'
import { type PolicyRequest, policyClaims } from './policy'

/** A token request, its numbers already validated and bounded by the route schema. */
export interface IssueRequest {
	readonly userId: string
	readonly filename: string
	/** Seconds; the default lifetime when absent. */
	readonly ttl?: number | undefined
	/** Whole downloads; unlimited when absent. */
	readonly maxUses?: number | undefined
	/** Absolute origin for `download_url`, e.g. `https://files.example.com`. */
	readonly baseUrl: string
	/** From when, from where and how fast (`not_before`, `ip`, `rate`); none by default. */
	readonly policy?: PolicyRequest
	/** Who asked (for the token.issued event). */
	readonly requestId?: string | undefined
}

export interface TokenServiceDeps {
	readonly store: TokenStore
	readonly storage: Storage
	readonly codec: DownloadTokenCodec
	readonly clock: Clock
	readonly defaultTtlS: number
	readonly resumeAllowanceBytes: number
	readonly rateLimitIssue: RateLimit
	/** `MAX_LIVE_TOKENS_PER_USER`. */
	readonly maxLiveTokens: number
	/** `EXPIRY_GRACE_S`: how long the record outlives the token, for downloads that started in time. */
	readonly expiryGraceS: number
}

export interface TokenService {
	/**
	 * Checks the names, the policy and that the file exists, then counts the request against
	 * the user's issue limit and live tokens and writes the `jti` record in one store round
	 * trip, then signs. Throws `InvalidRequestError`, `RateLimitedError`, `TooManyLiveTokensError`,
	 * `FileNotFoundError`, `StoreUnavailableError`, `StorageUnavailableError`.
	 */
	issue(request: IssueRequest): Promise<IssuedToken>
}

/** Builds the token service; it never sees an HTTP request. */
export function createTokenService(deps: TokenServiceDeps): TokenService {
	return {
		async issue(request) {
			const { userId, filename } = request
			assertValidNames(userId, filename)
			const ttl = request.ttl ?? deps.defaultTtlS
			const maxUses = request.maxUses ?? null
			const iat = Math.floor(deps.clock() / 1000)
			const exp = iat + ttl
			const policy = policyClaims(request.policy ?? {}, exp)

			const size = await deps.storage.size(userId, filename)
			if (size === null) throw new FileNotFoundError()
			const budgetBytes = maxUses === null ? null : maxUses * size
			if (budgetBytes !== null && !Number.isSafeInteger(budgetBytes))
				throw new InvalidRequestError('max_uses is too large for a file of this size')

			// Hex, not base64url: an id starting with '-' reads as an option on command lines.
			const jti = randomBytes(16).toString('hex')
			const created = await deps.store.create(
				{
					jti,
					userId,
					filename,
					issuedAtS: iat,
					expiresAtS: exp,
					maxUses,
					budgetBytes,
					allowanceBytes: budgetBytes === null ? 0 : Math.min(size, deps.resumeAllowanceBytes),
					sizeBytes: size,
					policy,
					graceS: deps.expiryGraceS,
				},
				{ issueLimit: deps.rateLimitIssue, maxLive: deps.maxLiveTokens, requestId: request.requestId },
			)
			if (created.status === 'rate_limited') throw new RateLimitedError(created.retryAfterS)
			if (created.status === 'too_many_live') throw new TooManyLiveTokensError(deps.maxLiveTokens)
			const token = await deps.codec.sign({ user_id: userId, filename, action: 'download', jti, iat, exp, ...policy })
			return {
				token,
				expires_in: ttl,
				download_url: `${request.baseUrl}${downloadPathOf(userId, filename)}`,
				jti,
				expires_at: isoSeconds(exp),
				max_uses: maxUses,
				size,
				not_before: policy.nbf === undefined ? null : isoSeconds(policy.nbf),
				ip: policy.cidr === undefined ? null : [...policy.cidr],
				rate: policy.rate ?? null,
			}
		},
	}
}
