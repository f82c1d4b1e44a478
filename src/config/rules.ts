import { randomBytes } from 'node:crypto'
import { ConfigError } from './error'
import type { EnvValues, EnvVar, IssueAuthMode } from './schema'
import type { StoreConfig } from './store'

// The rules that span variables, other than Redis's own (`store.ts`). Each
// throws `ConfigError` naming the variable to fix; `loadConfig` calls them in
// the order the first error is reported.

/** `JWT_SECRET`, required in production and generated for this run in development. */
export function jwtSecret(v: EnvValues, production: boolean): { jwtSecret: string; jwtSecretGenerated: boolean } {
	if (v.JWT_SECRET === undefined && production)
		throw new ConfigError('JWT_SECRET', 'is required in production (at least 32 bytes)')
	return {
		jwtSecret: v.JWT_SECRET ?? randomBytes(48).toString('base64url'),
		jwtSecretGenerated: v.JWT_SECRET === undefined,
	}
}

/** `ISSUE_AUTH` resolved (`auto` by what can authenticate callers), and checked against the keys and verifiers it needs. */
export function issueAuth(v: EnvValues, production: boolean): { issueAuth: IssueAuthMode; issueAuthExplicit: boolean } {
	if (v.AUTH_JWT_SECRET && v.AUTH_JWKS_URL)
		throw new ConfigError('AUTH_JWKS_URL', 'set AUTH_JWT_SECRET or AUTH_JWKS_URL, not both')
	const keys = v.API_KEYS.length > 0
	const userJwt = v.AUTH_JWT_SECRET !== undefined || v.AUTH_JWKS_URL !== undefined
	const mode = resolveAuto(v.ISSUE_AUTH, production, keys || userJwt)
	if (mode === 'api-key' && !keys) throw new ConfigError('API_KEYS', 'ISSUE_AUTH=api-key needs at least one key')
	if (mode === 'any' && !keys && !userJwt)
		throw new ConfigError('API_KEYS', 'ISSUE_AUTH=any needs API_KEYS or AUTH_JWT_SECRET/AUTH_JWKS_URL')
	if (mode === 'user-jwt' && !userJwt)
		throw new ConfigError('AUTH_JWT_SECRET', 'ISSUE_AUTH=user-jwt needs AUTH_JWT_SECRET or AUTH_JWKS_URL')
	return { issueAuth: mode, issueAuthExplicit: v.ISSUE_AUTH !== 'auto' }
}

function resolveAuto(mode: EnvValues['ISSUE_AUTH'], production: boolean, canAuthenticate: boolean): IssueAuthMode {
	if (mode !== 'auto') return mode
	if (canAuthenticate) return 'any'
	if (production)
		throw new ConfigError(
			'ISSUE_AUTH',
			'no way to authenticate callers in production: set API_KEYS or AUTH_JWT_SECRET/AUTH_JWKS_URL, or ISSUE_AUTH=none explicitly',
		)
	return 'none'
}

/** `DEFAULT_TTL` in seconds, within `MAX_TTL`. */
export function defaultTtlS(v: EnvValues, given: ReadonlySet<EnvVar>): number {
	// Lowering MAX_TTL alone must not make the default lifetime invalid.
	const ttl = given.has('DEFAULT_TTL') ? v.DEFAULT_TTL : Math.min(v.DEFAULT_TTL, v.MAX_TTL)
	if (ttl > v.MAX_TTL) throw new ConfigError('DEFAULT_TTL', `must not exceed MAX_TTL (${v.MAX_TTL})`)
	return ttl
}

/** `WORKERS` above one shares tokens between processes, so it needs Redis. */
export function checkWorkers(v: EnvValues, store: StoreConfig): void {
	if (v.WORKERS > 1 && store.kind === 'memory')
		throw new ConfigError('WORKERS', 'more than one worker needs Redis: the in-memory store lives in one process')
}
