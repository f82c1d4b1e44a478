import { BoundedCache, stringBytes } from '../../bounded-cache'
import { type AppError, ForbiddenError, TokenError } from '../../errors'
import { rangeMatcher } from '../../http/cidr'
import { assertValidNames } from '../../storage/names'
import type { DownloadClaims } from '../tokens/download-token'
import { revokedToken } from './store-answers'

/** What the binding checks need of a request. */
export interface PresentedRequest {
	readonly token: string | null
	readonly userId: string
	readonly filename: string
	/** The client's address, asked only for a token bound to address ranges. */
	readonly clientAddress: () => string
}

/** Checks 1 and 4 of docs/contract.md §3.2 and a remembered revocation: the same whether the rest is known or asked. */
export interface BindingChecks {
	/** The request's token; throws `InvalidRequestError` for bad names, `TokenError` missing_token. */
	presented(request: PresentedRequest): string
	/**
	 * The claims when the token was issued for this user, file and action, the
	 * client's address is in its ranges, and it is not known to be revoked;
	 * else throws `ForbiddenError` or `TokenError` naming the token's jti.
	 */
	bound(claims: DownloadClaims, request: PresentedRequest): DownloadClaims
	/** The store said this token is revoked: refused here from now on without asking. */
	rememberRevoked(claims: DownloadClaims): void
}

/** The binding checks, with at most `revokedCacheBytes` of revoked jtis remembered (0: none). */
export function createBindingChecks(revokedCacheBytes: number): BindingChecks {
	// Revocation is final until the token expires (and expiry is checked before
	// this), so a jti the store once reported revoked is refused here without
	// asking again: a leaked link scraped after revocation costs no round trip.
	// Missing and used-up are not final (a restored store, bytes given back).
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

	return {
		presented(request) {
			assertValidNames(request.userId, request.filename)
			if (request.token === null) throw new TokenError('missing_token', 'A download token is required.')
			return request.token
		},
		bound(claims, request) {
			let refusal: AppError | null = null
			if (claims.action !== 'download' || claims.user_id !== request.userId || claims.filename !== request.filename)
				refusal = new ForbiddenError('token_mismatch', 'This token was not issued for this user and file.')
			else if (claims.cidr !== undefined && !matcherOf(claims.cidr)(request.clientAddress()))
				refusal = new ForbiddenError('ip_not_allowed', 'This token may not be used from this address.')
			// The size test spares the happy path a key string while nothing is remembered.
			else if (knownRevoked.size > 0 && knownRevoked.has(revokedKey(claims))) refusal = revokedToken()
			if (refusal === null) return claims
			// These tokens are authentic: the download.denied event names the one refused (a link used elsewhere).
			refusal.jti = claims.jti
			throw refusal
		},
		rememberRevoked(claims) {
			if (revokedCacheBytes > 0) knownRevoked.set(revokedKey(claims), true)
		},
	}
}
