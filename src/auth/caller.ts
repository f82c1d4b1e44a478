import { createRemoteJWKSet, type JWTVerifyGetKey, jwtVerify } from 'jose'
import type { Clock } from '../clock'
import type { Config } from '../config'
import { BEARER_REALM, ForbiddenError, UnauthorizedError } from '../errors'
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

/**
 * What a route asks of its caller: `issuer` may ask for tokens for
 * `:user_id` (per `ISSUE_AUTH`); `owner` may list and revoke `:user_id`'s
 * tokens. Both accept an API key (any user) or that user's own access token.
 * They differ under `ISSUE_AUTH=none`: anyone may then issue, as the original
 * service allowed, but listing and revoking still need a credential whenever
 * one is configured (with none configured, the development default, both are open).
 */
export type AuthRequirement = 'issuer' | 'owner'

/** Which credentials a requirement accepts under this configuration. */
export interface Accepted {
	readonly apiKey: boolean
	readonly userToken: boolean
}

/** Authenticates callers per `ISSUE_AUTH` and checks they may act for a user. */
export interface CallerAuth {
	/** Which credentials `requirement` accepts (for the OpenAPI document); none = open to anyone. */
	accepts(requirement: AuthRequirement): Accepted
	/**
	 * Resolves the caller allowed to act for `userId` under `requirement`.
	 * Throws `UnauthorizedError` (401) for missing or bad credentials and
	 * `ForbiddenError` (403) for a user acting for someone else.
	 */
	authorize(credentials: Credentials, userId: string, requirement: AuthRequirement): Promise<Caller>
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
	const configured: Accepted = { apiKey: apiKeys.length > 0, userToken: userKey !== null }
	const byRequirement: Record<AuthRequirement, Accepted> = {
		issuer: {
			apiKey: (mode === 'api-key' || mode === 'any') && configured.apiKey,
			userToken: (mode === 'user-jwt' || mode === 'any') && configured.userToken,
		},
		// ISSUE_AUTH=none opens issuing only: management takes whatever credentials exist.
		owner:
			mode === 'none'
				? configured
				: {
						apiKey: (mode === 'api-key' || mode === 'any') && configured.apiKey,
						userToken: (mode === 'user-jwt' || mode === 'any') && configured.userToken,
					},
	}

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
			throw new UnauthorizedError('The access token is invalid or expired.', `${BEARER_REALM}, error="invalid_token"`)
		}
	}

	return {
		accepts: (requirement) => byRequirement[requirement],

		async authorize(credentials, userId, requirement) {
			const { apiKey: acceptsKeys, userToken: acceptsUsers } = byRequirement[requirement]
			if (!acceptsKeys && !acceptsUsers) return { kind: 'anonymous' }
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
