import { createHash } from 'node:crypto'
import { type JWTPayload, jwtVerify } from 'jose'
import { BoundedCache, stringBytes } from '../../bounded-cache'
import type { Clock } from '../../clock'
import { TokenError } from '../../errors'

/** The claims of a download token (docs/contract.md §3.1). */
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
	 * Verifies length, signature (current or previous secret, by `kid`),
	 * algorithm and shape, then expiry and issue time. Throws `TokenError`
	 * with `invalid_token` or `token_expired`; the jose error is kept as `cause`.
	 */
	verify(token: string): Promise<DownloadClaims>
	/** The claims when `token`'s verdict is already known and they are currently valid; else null (verify instead). Never throws. */
	verifiedSync(token: string): DownloadClaims | null
}

/** Longer tokens are refused before any parsing: real ones are a few hundred bytes. */
export const MAX_TOKEN_LENGTH = 4096
/** How far in the future an `iat` may lie (clock skew between issuers). */
export const IAT_SKEW_S = 60
// Three base64url segments, nothing else: jose (on Bun's decoder) would also
// accept padding and whitespace, so one token could be spelled many ways.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
/** Bytes of verdicts each process remembers. */
const VERDICT_CACHE_BYTES = 4 * 1024 * 1024

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

const claimsBytes = (c: DownloadClaims) =>
	stringBytes(c.user_id) + stringBytes(c.filename) + stringBytes(c.action) + stringBytes(c.jti) + 32

/**
 * Builds the codec. Not on `@elysiajs/jwt`: its `sign` stamps `iat` from the
 * wall clock, not the injected one, and its `verify` answers `false` for
 * every failure, where the download route must tell expired from forged.
 * Verification is jose's (the library that plugin wraps), with HS256 pinned;
 * signing is a synchronous HMAC (see below). Keys are set up once here.
 */
export function createDownloadTokenCodec(opts: {
	secret: string
	previousSecrets: readonly string[]
	clock: Clock
	/** Bytes of remembered verdicts; 0 disables the cache. */
	cacheBytes?: number
}): DownloadTokenCodec {
	const currentKid = keyIdFor(opts.secret)
	// HS256 compact JWS, signed here synchronously: jose signs through
	// WebCrypto's asynchronous HMAC, 80 µs of waiting per token (measured
	// against 2 µs), and issuing is one of the two hot routes. Only tokens this
	// service makes pass through it; verification stays with jose.
	const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: currentKid })).toString('base64url')
	const signingInput = (claims: DownloadClaims) =>
		`${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
	// Imported once as CryptoKeys: jose would otherwise import the raw key on every verification.
	const hmacKey = (secret: string) =>
		crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
	const keys = new Map<string, Promise<CryptoKey>>([[currentKid, hmacKey(opts.secret)]])
	for (const previous of opts.previousSecrets) {
		const kid = keyIdFor(previous)
		if (!keys.has(kid)) keys.set(kid, hmacKey(previous))
	}
	const invalid = (message: string, cause?: unknown) => new TokenError('invalid_token', message, { cause })

	// Verdicts by a digest of the token: a player's Range requests and a
	// download manager's connections present the same token many times. A
	// signature's validity never changes, so each token is verified by jose
	// once; the time checks still run on every request, revocation and budget
	// in the store. Bounded in bytes, so junk tokens cannot grow it.
	const cacheBytes = opts.cacheBytes ?? VERDICT_CACHE_BYTES
	const verdicts = new BoundedCache<DownloadClaims | TokenError>(
		cacheBytes,
		(key, v) => stringBytes(key) + (v instanceof TokenError ? 64 : claimsBytes(v)),
	)
	const digest = (token: string) => Bun.SHA256.hash(token, 'base64') as unknown as string
	const remember = (key: string, verdict: DownloadClaims | TokenError) => {
		if (cacheBytes > 0) verdicts.set(key, verdict)
	}
	const nowS = () => Math.floor(opts.clock() / 1000)
	// Throws when the claims are not valid at this moment; never cached, since time moves.
	const current = (claims: DownloadClaims): DownloadClaims => {
		const now = nowS()
		// The same rule as jose: expired once exp <= now.
		if (claims.exp <= now) throw new TokenError('token_expired', 'The download token has expired; ask for a new one.')
		if (claims.iat > now + IAT_SKEW_S) throw invalid('The token claims to be issued in the future.')
		return claims
	}

	async function verifyOnce(token: string): Promise<DownloadClaims> {
		let payload: JWTPayload
		try {
			;({ payload } = await jwtVerify(
				token,
				(header) => {
					const key =
						typeof header.kid === 'string' || header.kid === undefined ? keys.get(header.kid ?? currentKid) : undefined
					if (!key) throw invalid('The token was signed with a key this service does not accept.')
					return key
				},
				{ algorithms: ['HS256'], currentDate: new Date(opts.clock()), requiredClaims: ['exp', 'iat', 'jti'] },
			))
		} catch (err) {
			if (err instanceof TokenError) throw err
			// jose checks the signature before the claims, so an expired token here is an authentic one.
			if ((err as { code?: unknown }).code === 'ERR_JWT_EXPIRED') {
				const expired = (err as { payload?: JWTPayload }).payload
				if (!expired || !wellFormed(expired)) throw invalid('The token is not a download token.', err)
				throw new TokenError('token_expired', 'The download token has expired; ask for a new one.', { cause: err })
			}
			throw invalid('The token is malformed or its signature is not valid.', err)
		}
		if (!wellFormed(payload)) throw invalid('The token is not a download token.')
		return {
			user_id: payload.user_id,
			filename: payload.filename,
			action: payload.action,
			jti: payload.jti,
			iat: payload.iat,
			exp: payload.exp,
		}
	}

	return {
		currentKid,

		async sign(claims) {
			const input = signingInput({
				user_id: claims.user_id,
				filename: claims.filename,
				action: claims.action,
				jti: claims.jti,
				iat: claims.iat,
				exp: claims.exp,
			})
			return `${input}.${new Bun.CryptoHasher('sha256', opts.secret).update(input).digest('base64url')}`
		},

		async verify(token) {
			if (token.length > MAX_TOKEN_LENGTH) throw invalid(`The token is longer than ${MAX_TOKEN_LENGTH} characters.`)
			if (!COMPACT_JWS.test(token)) throw invalid('The token is not a compact JWS of three base64url parts.')
			const key = digest(token)
			const known = verdicts.get(key)
			if (known !== undefined) {
				if (known instanceof TokenError) throw known
				return current(known)
			}
			let claims: DownloadClaims
			try {
				claims = await verifyOnce(token)
			} catch (err) {
				// An expired token stays expired, but its refusal says so; anything else is final.
				if (err instanceof TokenError && err.code === 'invalid_token') remember(key, err)
				throw err
			}
			remember(key, claims)
			return current(claims)
		},

		verifiedSync(token) {
			if (token.length > MAX_TOKEN_LENGTH) return null
			const known = verdicts.get(digest(token))
			if (known === undefined || known instanceof TokenError) return null
			const now = nowS()
			return known.exp > now && known.iat <= now + IAT_SKEW_S ? known : null
		},
	}
}
