import { createHash } from 'node:crypto'
import { errors, type JWTPayload, jwtVerify, SignJWT } from 'jose'
import type { Clock } from '../../clock'
import { TokenError } from '../../errors'

/** The claims of a download token (SPEC §3.1). */
export interface DownloadClaims {
	readonly user_id: string
	readonly filename: string
	readonly action: string
	readonly jti: string
	readonly iat: number
	readonly exp: number
}

/** Signs and verifies download tokens: HS256 only, `kid` names the key. */
export interface DownloadTokenCodec {
	/** The `kid` new tokens carry. */
	readonly currentKid: string
	/** Signs with the current secret. */
	sign(claims: DownloadClaims): Promise<string>
	/**
	 * Verifies signature (current or previous secret, by `kid`), algorithm and
	 * shape, then expiry. Throws `TokenError` with `invalid_token` or
	 * `token_expired`; the jose error is kept as `cause`.
	 */
	verify(token: string): Promise<DownloadClaims>
}

const encoder = new TextEncoder()

/** A short public key id derived from the secret, so rotation needs no extra setting. */
export function keyIdFor(secret: string): string {
	return createHash('sha256').update('download-gate/kid\0').update(secret).digest('base64url').slice(0, 16)
}

function wellFormed(payload: JWTPayload): payload is JWTPayload & DownloadClaims {
	return (
		typeof payload.user_id === 'string' &&
		typeof payload.filename === 'string' &&
		typeof payload.action === 'string' &&
		typeof payload.jti === 'string' &&
		payload.jti !== '' &&
		typeof payload.iat === 'number' &&
		typeof payload.exp === 'number'
	)
}

/** Builds the codec; keys are encoded once here, never per request. */
export function createDownloadTokenCodec(opts: {
	secret: string
	previousSecrets: readonly string[]
	clock: Clock
	/** Verdicts kept (oldest dropped first); 0 disables the cache. */
	cacheSize?: number
}): DownloadTokenCodec {
	const currentKid = keyIdFor(opts.secret)
	const currentKey = encoder.encode(opts.secret)
	// Imported once as CryptoKeys: jose would otherwise import the raw key on every verification.
	const hmacKey = (secret: string) =>
		crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
	const keys = new Map<string, Promise<CryptoKey>>([[currentKid, hmacKey(opts.secret)]])
	for (const previous of opts.previousSecrets) {
		const kid = keyIdFor(previous)
		if (!keys.has(kid)) keys.set(kid, hmacKey(previous))
	}
	const invalid = (message: string, cause?: unknown) => new TokenError('invalid_token', message, { cause })
	const cacheSize = opts.cacheSize ?? 4096
	// Verdicts by token string: a player's Range requests and a download
	// manager's connections present the same token many times. A signature's
	// validity never changes, so each token is verified by jose once; expiry is
	// still checked on every request, revocation and budget in the store.
	const verdicts = new Map<string, DownloadClaims | TokenError>()
	const remember = (token: string, verdict: DownloadClaims | TokenError) => {
		if (cacheSize === 0) return
		if (verdicts.size >= cacheSize) verdicts.delete(verdicts.keys().next().value as string)
		verdicts.set(token, verdict)
	}
	const nowS = () => Math.floor(opts.clock() / 1000)
	const unexpired = (claims: DownloadClaims): DownloadClaims => {
		// The same rule as jose: expired once exp <= now.
		if (claims.exp <= nowS())
			throw new TokenError('token_expired', 'The download token has expired; ask for a new one.')
		return claims
	}

	return {
		currentKid,

		sign(claims) {
			const { iat, exp, ...rest } = claims
			return new SignJWT({ ...rest })
				.setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: currentKid })
				.setIssuedAt(iat)
				.setExpirationTime(exp)
				.sign(currentKey)
		},

		async verify(token) {
			const known = verdicts.get(token)
			if (known !== undefined) {
				if (known instanceof TokenError) throw known
				return unexpired(known)
			}
			let payload: JWTPayload
			try {
				;({ payload } = await jwtVerify(
					token,
					(header) => {
						const key = keys.get(header.kid ?? currentKid)
						if (!key) throw invalid('The token was signed with a key this service does not accept.')
						return key
					},
					{ algorithms: ['HS256'], currentDate: new Date(opts.clock()), requiredClaims: ['exp', 'iat', 'jti'] },
				))
			} catch (err) {
				if (err instanceof TokenError) {
					remember(token, err)
					throw err
				}
				// jose checks the signature before the claims, so an expired token here is an authentic one.
				if (err instanceof errors.JWTExpired) {
					if (!wellFormed(err.payload)) throw invalid('The token is not a download token.', err)
					throw new TokenError('token_expired', 'The download token has expired; ask for a new one.', { cause: err })
				}
				const refusal = invalid('The token is malformed or its signature is not valid.', err)
				remember(token, refusal)
				throw refusal
			}
			if (!wellFormed(payload)) {
				const refusal = invalid('The token is not a download token.')
				remember(token, refusal)
				throw refusal
			}
			remember(token, payload)
			return payload
		},
	}
}
