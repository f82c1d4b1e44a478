import { createHash } from 'node:crypto'
import { compactVerify } from 'jose'
import { BoundedCache, stringBytes } from '../../bounded-cache'
import type { Clock } from '../../clock'
import { TokenError, TokenNotYetValidError } from '../../errors'

/** The claims of a download token (docs/contract.md §3.1); the policy claims only when the token has them. */
export interface DownloadClaims {
	readonly user_id: string
	readonly filename: string
	readonly action: string
	readonly jti: string
	readonly iat: number
	readonly exp: number
	/** Not valid before (epoch seconds). */
	readonly nbf?: number
	/** Canonical CIDR ranges the client address must lie in. */
	readonly cidr?: readonly string[]
	/** Bytes per second every body of the token is paced to. */
	readonly rate?: number
}

/** Signs and verifies download tokens: HS256 only, `kid` names the key. */
export interface DownloadTokenCodec {
	/** The `kid` new tokens carry. */
	readonly currentKid: string
	/** Signs with the current secret. */
	sign(claims: DownloadClaims): Promise<string>
	/**
	 * Verifies length, signature (current or previous secret, by `kid`),
	 * algorithm and shape, then the times: expiry (a token expired less than
	 * `graceS` ago is returned, and the caller asks the store whether its
	 * first body started in time), start (`nbf`) and issue time. Throws
	 * `TokenError` (`invalid_token`, `token_expired`; the jose error kept as
	 * `cause`) or `TokenNotYetValidError`.
	 */
	verify(token: string): Promise<DownloadClaims>
	/**
	 * The claims when `token`'s verdict is already known and they are valid
	 * right now without any grace; else null (verify instead). Never throws.
	 */
	verifiedSync(token: string): DownloadClaims | null
	/**
	 * The claims of an authentic download token that is or may become usable
	 * (not yet valid, or expired within its grace), or null for anything
	 * forged, malformed or expired for good: what its holder may revoke. Never throws.
	 */
	revocable(token: string): Promise<DownloadClaims | null>
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
const decoder = new TextDecoder('utf-8', { fatal: true })

/** A short public key id derived from the secret, so rotation needs no extra setting. */
export function keyIdFor(secret: string): string {
	return createHash('sha256').update('download-gate/kid\0').update(secret).digest('base64url').slice(0, 16)
}

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

/** The claims of a signed payload that is a download token, or null. */
function downloadClaims(payload: unknown): DownloadClaims | null {
	if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return null
	const p = payload as Record<string, unknown>
	if (
		typeof p.user_id !== 'string' ||
		typeof p.filename !== 'string' ||
		typeof p.action !== 'string' ||
		typeof p.jti !== 'string' ||
		p.jti === '' ||
		!isTime(p.iat) ||
		!isTime(p.exp)
	)
		return null
	if (p.nbf !== undefined && !isTime(p.nbf)) return null
	if (p.rate !== undefined && !isTime(p.rate)) return null
	if (p.cidr !== undefined && !(Array.isArray(p.cidr) && p.cidr.every((c) => typeof c === 'string'))) return null
	return {
		user_id: p.user_id,
		filename: p.filename,
		action: p.action,
		jti: p.jti,
		iat: p.iat,
		exp: p.exp,
		...(p.nbf !== undefined ? { nbf: p.nbf } : {}),
		...(p.cidr !== undefined ? { cidr: p.cidr as string[] } : {}),
		...(p.rate !== undefined ? { rate: p.rate } : {}),
	}
}

const claimsBytes = (c: DownloadClaims) =>
	stringBytes(c.user_id) +
	stringBytes(c.filename) +
	stringBytes(c.action) +
	stringBytes(c.jti) +
	(c.cidr ?? []).reduce((n, r) => n + stringBytes(r), 0) +
	48

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
	/** `EXPIRY_GRACE_S`: an expired token younger than this past `exp` is still returned by `verify`. */
	graceS?: number
	/** Bytes of remembered verdicts; 0 disables the cache. */
	cacheBytes?: number
}): DownloadTokenCodec {
	const graceS = opts.graceS ?? 0
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
	const expired = () => new TokenError('token_expired', 'The download token has expired; ask for a new one.')
	// Throws when the claims are not valid at this moment (in the order of docs/contract.md
	// §3.2 check 3); never cached, since time moves. A token within its expiry grace passes.
	const current = (claims: DownloadClaims): DownloadClaims => {
		const now = nowS()
		// The same rule as jose: expired once exp <= now.
		if (claims.exp + graceS <= now) throw expired()
		if (claims.nbf !== undefined && claims.nbf > now) throw new TokenNotYetValidError(claims.nbf - now)
		if (claims.iat > now + IAT_SKEW_S) throw invalid('The token claims to be issued in the future.')
		return claims
	}

	// The signature, algorithm and shape only: what never changes for a token, so it is
	// verified once; the times are checked by `current` on every request.
	async function verifyOnce(token: string): Promise<DownloadClaims> {
		let payload: Uint8Array
		try {
			;({ payload } = await compactVerify(
				token,
				(header) => {
					const key =
						typeof header.kid === 'string' || header.kid === undefined ? keys.get(header.kid ?? currentKid) : undefined
					if (!key) throw invalid('The token was signed with a key this service does not accept.')
					return key
				},
				{ algorithms: ['HS256'] },
			))
		} catch (err) {
			if (err instanceof TokenError) throw err
			throw invalid('The token is malformed or its signature is not valid.', err)
		}
		let parsed: unknown
		try {
			parsed = JSON.parse(decoder.decode(payload))
		} catch (err) {
			throw invalid('The token is not a download token.', err)
		}
		const claims = downloadClaims(parsed)
		if (claims === null) throw invalid('The token is not a download token.')
		return claims
	}

	// The claims of an authentic token, whatever the time; throws `invalid_token`.
	async function signedClaims(token: string): Promise<DownloadClaims> {
		if (token.length > MAX_TOKEN_LENGTH) throw invalid(`The token is longer than ${MAX_TOKEN_LENGTH} characters.`)
		if (!COMPACT_JWS.test(token)) throw invalid('The token is not a compact JWS of three base64url parts.')
		const key = digest(token)
		const known = verdicts.get(key)
		if (known !== undefined) {
			if (known instanceof TokenError) throw known
			return known
		}
		let claims: DownloadClaims
		try {
			claims = await verifyOnce(token)
		} catch (err) {
			// An invalid signature or shape is final; it is remembered as such.
			if (err instanceof TokenError && err.code === 'invalid_token') remember(key, err)
			throw err
		}
		remember(key, claims)
		return claims
	}

	return {
		currentKid,

		async sign(claims) {
			// The claims in a fixed order, policy claims only when set: tokens without them stay as short as before.
			const input = signingInput({
				user_id: claims.user_id,
				filename: claims.filename,
				action: claims.action,
				jti: claims.jti,
				iat: claims.iat,
				exp: claims.exp,
				...(claims.nbf !== undefined ? { nbf: claims.nbf } : {}),
				...(claims.cidr !== undefined ? { cidr: claims.cidr } : {}),
				...(claims.rate !== undefined ? { rate: claims.rate } : {}),
			})
			return `${input}.${new Bun.CryptoHasher('sha256', opts.secret).update(input).digest('base64url')}`
		},

		verify: async (token) => current(await signedClaims(token)),

		async revocable(token) {
			try {
				const claims = await signedClaims(token)
				return claims.exp + graceS > nowS() ? claims : null
			} catch {
				return null
			}
		},

		verifiedSync(token) {
			if (token.length > MAX_TOKEN_LENGTH) return null
			const known = verdicts.get(digest(token))
			if (known === undefined || known instanceof TokenError) return null
			const now = nowS()
			const started = known.nbf === undefined || known.nbf <= now
			return known.exp > now && started && known.iat <= now + IAT_SKEW_S ? known : null
		},
	}
}
