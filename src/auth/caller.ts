import { createRemoteJWKSet, type JWTVerifyGetKey, jwtVerify } from 'jose'
import type { Clock } from '../clock'
import type { Config } from '../config'
import { ForbiddenError, UnauthorizedError } from '../errors'
import { hashSecrets, matchesOneOf } from './constant-time'

/** Who is calling a management route. */
export type Caller =
	| { readonly kind: 'anonymous' }
	| { readonly kind: 'service' }
	| { readonly kind: 'user'; readonly userId: string }

/** The credentials a request carried, taken from its headers by the HTTP layer. */
export interface Credentials {
	readonly apiKey: string | null
	readonly authorization: string | null
}

/** Authenticates callers per `ISSUE_AUTH` and checks they may act for a user. */
export interface CallerAuth {
	/** Which credentials this configuration accepts (for the OpenAPI document). */
	readonly accepts: { readonly apiKey: boolean; readonly userToken: boolean }
	/**
	 * Resolves the caller allowed to act for `userId`. Throws
	 * `UnauthorizedError` (401) for missing or bad credentials and
	 * `ForbiddenError` (403) for a user acting for someone else.
	 */
	authorize(credentials: Credentials, userId: string): Promise<Caller>
}

/** Extracts the token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(authorization: string | null): string | null {
	if (authorization === null) return null
	const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(authorization)
	return m?.[1] ?? null
}

const USER_JWT_ALGORITHMS = ['RS256', 'ES256']

/** Builds the authenticator; keys are hashed and the JWKS client created once. */
export function createCallerAuth(config: Config, clock: Clock): CallerAuth {
	const mode = config.issueAuth
	const apiKeys = hashSecrets(config.apiKeys)
	const userKey: Uint8Array | JWTVerifyGetKey | null = config.authJwtSecret
		? new TextEncoder().encode(config.authJwtSecret)
		: config.authJwksUrl
			? createRemoteJWKSet(new URL(config.authJwksUrl))
			: null
	const algorithms = config.authJwtSecret ? ['HS256'] : USER_JWT_ALGORITHMS
	const acceptsKeys = mode === 'api-key' || mode === 'any'
	const acceptsUsers = (mode === 'user-jwt' || mode === 'any') && userKey !== null

	async function verifyUser(token: string): Promise<string> {
		if (!userKey) throw new UnauthorizedError('User access tokens are not accepted here.')
		try {
			const options = {
				algorithms,
				currentDate: new Date(clock()),
				...(config.authJwtIssuer ? { issuer: config.authJwtIssuer } : {}),
				...(config.authJwtAudience ? { audience: config.authJwtAudience } : {}),
			}
			const { payload } =
				userKey instanceof Uint8Array
					? await jwtVerify(token, userKey, options)
					: await jwtVerify(token, userKey, options)
			const user = payload[config.authUserClaim]
			if (typeof user !== 'string' && typeof user !== 'number')
				throw new UnauthorizedError(`The access token has no "${config.authUserClaim}" claim.`)
			return String(user)
		} catch (err) {
			if (err instanceof UnauthorizedError) throw err
			throw new UnauthorizedError(
				'The access token is invalid or expired.',
				'Bearer realm="download-gate", error="invalid_token"',
			)
		}
	}

	return {
		accepts: { apiKey: acceptsKeys && apiKeys.length > 0, userToken: acceptsUsers },

		async authorize(credentials, userId) {
			if (mode === 'none') return { kind: 'anonymous' }
			if (credentials.apiKey !== null && acceptsKeys) {
				if (!matchesOneOf(credentials.apiKey, apiKeys)) throw new UnauthorizedError('The API key is not valid.')
				return { kind: 'service' }
			}
			const token = bearerToken(credentials.authorization)
			if (token !== null && acceptsUsers) {
				const user = await verifyUser(token)
				if (user !== userId) throw new ForbiddenError('forbidden', 'This access token may not act for that user.')
				return { kind: 'user', userId: user }
			}
			const wanted = [acceptsKeys && 'an X-API-Key header', acceptsUsers && 'a Bearer access token'].filter(Boolean)
			throw new UnauthorizedError(`Authentication required: send ${wanted.join(' or ')}.`)
		},
	}
}
