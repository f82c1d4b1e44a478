import { randomBytes } from 'node:crypto'

/** How callers of the token route authenticate (SPEC §2, `ISSUE_AUTH`). */
export type IssueAuthMode = 'api-key' | 'user-jwt' | 'any' | 'none'

/** A rate limit: `limit` events per `windowS` seconds. */
export interface RateLimit {
	readonly limit: number
	readonly windowS: number
}

/** How to reach Redis; `memory` is the embedded development store. */
export type StoreConfig =
	| { readonly kind: 'memory' }
	| { readonly kind: 'redis'; readonly url: string }
	| {
			readonly kind: 'cluster'
			readonly nodes: readonly { host: string; port: number }[]
			readonly password?: string
	  }
	| {
			readonly kind: 'sentinel'
			readonly sentinels: readonly { host: string; port: number }[]
			readonly name: string
			readonly password?: string
	  }

/** The validated, frozen configuration of one process. */
export interface Config {
	readonly port: number
	readonly host: string
	readonly workers: number
	readonly production: boolean
	readonly jwtSecret: string
	/** True when `jwtSecret` was generated for this run (development only). */
	readonly jwtSecretGenerated: boolean
	readonly jwtPreviousSecrets: readonly string[]
	readonly store: StoreConfig
	readonly redisKeyPrefix: string
	readonly storageDir: string
	readonly publicBaseUrl: string | null
	readonly trustProxy: boolean
	readonly defaultTtlS: number
	readonly maxTtlS: number
	readonly issueAuth: IssueAuthMode
	/** True when `ISSUE_AUTH=none` was chosen explicitly rather than by `auto`. */
	readonly issueAuthExplicit: boolean
	readonly apiKeys: readonly string[]
	readonly authJwtSecret: string | null
	readonly authJwksUrl: string | null
	readonly authJwtIssuer: string | null
	readonly authJwtAudience: string | null
	readonly authUserClaim: string
	readonly corsOrigins: readonly string[] | '*'
	readonly allowQueryToken: boolean
	readonly rateLimitIssue: RateLimit
	readonly rateLimitDenied: RateLimit
	readonly resumeAllowanceBytes: number
	readonly shutdownGraceS: number
	readonly logLevel: LogLevel
	/** Serve Swagger UI and the OpenAPI document (off for locked-down deployments). */
	readonly swaggerEnabled: boolean
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

/** Every environment variable the service reads; anything else is ignored. */
export const KNOWN_ENV_VARS = [
	'PORT',
	'HOST',
	'WORKERS',
	'NODE_ENV',
	'JWT_SECRET',
	'JWT_PREVIOUS_SECRETS',
	'REDIS_URL',
	'REDIS_CLUSTER_NODES',
	'REDIS_SENTINELS',
	'REDIS_SENTINEL_NAME',
	'REDIS_PASSWORD',
	'REDIS_KEY_PREFIX',
	'STORAGE_DIR',
	'PUBLIC_BASE_URL',
	'TRUST_PROXY',
	'DEFAULT_TTL',
	'MAX_TTL',
	'ISSUE_AUTH',
	'API_KEYS',
	'AUTH_JWT_SECRET',
	'AUTH_JWKS_URL',
	'AUTH_JWT_ISSUER',
	'AUTH_JWT_AUDIENCE',
	'AUTH_USER_CLAIM',
	'CORS_ORIGINS',
	'ALLOW_QUERY_TOKEN',
	'RATE_LIMIT_ISSUE',
	'RATE_LIMIT_DENIED',
	'RESUME_ALLOWANCE',
	'SHUTDOWN_GRACE_S',
	'LOG_LEVEL',
	'SWAGGER_ENABLED',
] as const

export type EnvVar = (typeof KNOWN_ENV_VARS)[number]
export type Env = Partial<Record<EnvVar, string | undefined>>

/** A configuration value is wrong; `message` is the one line printed before exit 1. */
export class ConfigError extends Error {
	constructor(
		readonly variable: EnvVar,
		problem: string,
	) {
		super(`${variable}: ${problem}`)
		this.name = 'ConfigError'
	}
}

const MIN_SECRET_BYTES = 32

const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8')

/** A value quoted for the one-line error: escapes newlines and quotes, and is kept short. */
const quote = (raw: string): string => JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}…` : raw)

function read(env: Env, name: EnvVar): string | undefined {
	const value = env[name]?.trim()
	if (value === undefined || value === '') return undefined
	// A newline or other control character is always a pasting mistake, and would split log lines.
	if (/\p{Cc}/u.test(value)) throw new ConfigError(name, 'must not contain control characters such as newlines')
	return value
}

function int(env: Env, name: EnvVar, fallback: number, min: number, max: number): number {
	const raw = read(env, name)
	if (raw === undefined) return fallback
	if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got ${quote(raw)}`)
	const n = Number(raw)
	if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`)
	return n
}

function bool(env: Env, name: EnvVar, fallback: boolean): boolean {
	const raw = read(env, name)?.toLowerCase()
	if (raw === undefined) return fallback
	if (['1', 'true', 'yes', 'on'].includes(raw)) return true
	if (['0', 'false', 'no', 'off'].includes(raw)) return false
	throw new ConfigError(name, `must be true or false, got ${quote(raw)}`)
}

function list(env: Env, name: EnvVar): string[] {
	const raw = read(env, name)
	if (raw === undefined) return []
	return raw
		.split(',')
		.map((s) => s.trim())
		.filter((s) => s !== '')
}

function secret(name: EnvVar, value: string): string {
	if (byteLength(value) < MIN_SECRET_BYTES)
		throw new ConfigError(name, `must be at least ${MIN_SECRET_BYTES} bytes, got ${byteLength(value)}`)
	return value
}

const BYTE_UNITS: Record<string, number> = {
	'': 1,
	b: 1,
	kb: 1000,
	mb: 1000 ** 2,
	gb: 1000 ** 3,
	kib: 1024,
	mib: 1024 ** 2,
	gib: 1024 ** 3,
}

/** Parses `8MiB`, `500kb`, `1048576` into bytes. */
export function parseBytes(raw: string): number | null {
	const m = /^(\d+)\s*([a-z]*)$/i.exec(raw.trim())
	if (!m) return null
	const unit = BYTE_UNITS[(m[2] ?? '').toLowerCase()]
	if (unit === undefined) return null
	const n = Number(m[1]) * unit
	return Number.isSafeInteger(n) ? n : null
}

const WINDOW_UNITS: Record<string, number> = { s: 1, sec: 1, m: 60, min: 60, h: 3600, hour: 3600 }

/** Parses `60/min`, `30/10s`, `1000/hour`. */
export function parseRateLimit(raw: string): RateLimit | null {
	const m = /^(\d+)\s*\/\s*(\d*)\s*([a-z]+)$/i.exec(raw.trim())
	if (!m) return null
	const unit = WINDOW_UNITS[(m[3] ?? '').toLowerCase()]
	const count = m[2] === '' ? 1 : Number(m[2])
	const limit = Number(m[1])
	if (unit === undefined || limit < 1 || count < 1) return null
	return { limit, windowS: count * unit }
}

function hostPorts(name: EnvVar, raw: string[]): { host: string; port: number }[] {
	return raw.map((entry) => {
		const m = /^(.+):(\d{1,5})$/.exec(entry)
		const port = Number(m?.[2])
		if (!m?.[1] || port < 1 || port > 65535) throw new ConfigError(name, `${quote(entry)} is not host:port`)
		return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port }
	})
}

function url(name: EnvVar, raw: string, protocols: readonly string[]): string {
	let parsed: URL
	try {
		parsed = new URL(raw)
	} catch {
		throw new ConfigError(name, `${quote(raw)} is not a URL`)
	}
	if (!protocols.includes(parsed.protocol))
		throw new ConfigError(name, `must start with ${protocols.map((p) => `${p}//`).join(' or ')}`)
	return raw
}

function storeConfig(env: Env, production: boolean): StoreConfig {
	const password = read(env, 'REDIS_PASSWORD')
	const cluster = list(env, 'REDIS_CLUSTER_NODES')
	if (cluster.length > 0)
		return { kind: 'cluster', nodes: hostPorts('REDIS_CLUSTER_NODES', cluster), ...(password ? { password } : {}) }
	const sentinels = list(env, 'REDIS_SENTINELS')
	if (sentinels.length > 0) {
		const name = read(env, 'REDIS_SENTINEL_NAME')
		if (!name) throw new ConfigError('REDIS_SENTINEL_NAME', 'is required with REDIS_SENTINELS')
		return {
			kind: 'sentinel',
			sentinels: hostPorts('REDIS_SENTINELS', sentinels),
			name,
			...(password ? { password } : {}),
		}
	}
	const redisUrl = read(env, 'REDIS_URL')
	if (redisUrl) return { kind: 'redis', url: url('REDIS_URL', redisUrl, ['redis:', 'rediss:']) }
	if (production)
		throw new ConfigError('REDIS_URL', 'is required in production (or REDIS_CLUSTER_NODES / REDIS_SENTINELS)')
	return { kind: 'memory' }
}

function corsOrigins(env: Env): readonly string[] | '*' {
	const origins = list(env, 'CORS_ORIGINS')
	if (origins.length === 0 || origins.includes('*')) return '*'
	for (const origin of origins) {
		const parsed = URL.canParse(origin) ? new URL(origin) : null
		if (!parsed || parsed.origin !== origin.replace(/\/$/, ''))
			throw new ConfigError('CORS_ORIGINS', `${quote(origin)} is not an origin like https://app.example.com`)
	}
	return origins.map((o) => o.replace(/\/$/, ''))
}

function issueAuth(
	env: Env,
	production: boolean,
	canAuthenticate: boolean,
): { mode: IssueAuthMode; explicit: boolean } {
	const raw = read(env, 'ISSUE_AUTH')?.toLowerCase() ?? 'auto'
	if (raw === 'auto') {
		if (canAuthenticate) return { mode: 'any', explicit: false }
		if (production)
			throw new ConfigError(
				'ISSUE_AUTH',
				'no way to authenticate callers in production: set API_KEYS or AUTH_JWT_SECRET/AUTH_JWKS_URL, or ISSUE_AUTH=none explicitly',
			)
		return { mode: 'none', explicit: false }
	}
	if (raw !== 'api-key' && raw !== 'user-jwt' && raw !== 'any' && raw !== 'none')
		throw new ConfigError('ISSUE_AUTH', `must be one of auto, api-key, user-jwt, any, none; got ${quote(raw)}`)
	return { mode: raw, explicit: true }
}

function deepFreeze<T>(value: T): T {
	if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
		Object.freeze(value)
		for (const inner of Object.values(value)) deepFreeze(inner)
	}
	return value
}

/**
 * Parses and validates the environment once. Throws `ConfigError` naming the
 * first bad variable; never reads the environment itself.
 */
export function loadConfig(env: Env): Config {
	const nodeEnv = (read(env, 'NODE_ENV') ?? 'development').toLowerCase()
	const production = nodeEnv === 'production'

	const rawSecret = read(env, 'JWT_SECRET')
	if (!rawSecret && production) throw new ConfigError('JWT_SECRET', 'is required in production (at least 32 bytes)')
	const jwtSecret = rawSecret ? secret('JWT_SECRET', rawSecret) : randomBytes(48).toString('base64url')
	const jwtPreviousSecrets = list(env, 'JWT_PREVIOUS_SECRETS').map((s) => secret('JWT_PREVIOUS_SECRETS', s))

	const apiKeys = list(env, 'API_KEYS')
	for (const key of apiKeys)
		if (byteLength(key) < 16) throw new ConfigError('API_KEYS', 'each key must be at least 16 bytes')

	const authJwtSecret = read(env, 'AUTH_JWT_SECRET') ?? null
	if (authJwtSecret) secret('AUTH_JWT_SECRET', authJwtSecret)
	const jwksRaw = read(env, 'AUTH_JWKS_URL')
	const authJwksUrl = jwksRaw ? url('AUTH_JWKS_URL', jwksRaw, ['https:', 'http:']) : null
	if (authJwtSecret && authJwksUrl)
		throw new ConfigError('AUTH_JWKS_URL', 'set AUTH_JWT_SECRET or AUTH_JWKS_URL, not both')

	const auth = issueAuth(env, production, apiKeys.length > 0 || authJwtSecret !== null || authJwksUrl !== null)
	const userJwt = authJwtSecret !== null || authJwksUrl !== null
	if (auth.mode === 'api-key' && apiKeys.length === 0)
		throw new ConfigError('API_KEYS', 'ISSUE_AUTH=api-key needs at least one key')
	if (auth.mode === 'any' && apiKeys.length === 0 && !userJwt)
		throw new ConfigError('API_KEYS', 'ISSUE_AUTH=any needs API_KEYS or AUTH_JWT_SECRET/AUTH_JWKS_URL')
	if (auth.mode === 'user-jwt' && !userJwt)
		throw new ConfigError('AUTH_JWT_SECRET', 'ISSUE_AUTH=user-jwt needs AUTH_JWT_SECRET or AUTH_JWKS_URL')

	const maxTtlS = int(env, 'MAX_TTL', 86_400, 1, 31_536_000)
	const defaultTtlS = int(env, 'DEFAULT_TTL', Math.min(900, maxTtlS), 1, 31_536_000)
	if (defaultTtlS > maxTtlS) throw new ConfigError('DEFAULT_TTL', `must not exceed MAX_TTL (${maxTtlS})`)

	const publicBase = read(env, 'PUBLIC_BASE_URL')
	const prefix = read(env, 'REDIS_KEY_PREFIX') ?? 'dlg:'
	// A brace in the prefix would become the cluster hash tag and break the per-user slot.
	if (/[{}\s]/.test(prefix)) throw new ConfigError('REDIS_KEY_PREFIX', 'must not contain braces or spaces')

	const rate = (name: EnvVar, fallback: string): RateLimit => {
		const raw = read(env, name) ?? fallback
		const parsed = parseRateLimit(raw)
		if (!parsed) throw new ConfigError(name, `must look like 60/min, 30/10s or 1000/hour; got ${quote(raw)}`)
		return parsed
	}
	const allowanceRaw = read(env, 'RESUME_ALLOWANCE') ?? '8MiB'
	const resumeAllowanceBytes = parseBytes(allowanceRaw)
	if (resumeAllowanceBytes === null)
		throw new ConfigError('RESUME_ALLOWANCE', `must be a size like 8MiB or 1048576; got ${quote(allowanceRaw)}`)

	const logLevel = (read(env, 'LOG_LEVEL') ?? 'info').toLowerCase()
	if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel))
		throw new ConfigError('LOG_LEVEL', `must be debug, info, warn, error or silent; got ${quote(logLevel)}`)

	const store = storeConfig(env, production)
	const workers = int(env, 'WORKERS', 1, 1, 256)
	if (workers > 1 && store.kind === 'memory')
		throw new ConfigError('WORKERS', 'more than one worker needs REDIS_URL: the in-memory store lives in one process')

	return deepFreeze({
		port: int(env, 'PORT', 3000, 0, 65_535),
		host: read(env, 'HOST') ?? '0.0.0.0',
		workers,
		production,
		jwtSecret,
		jwtSecretGenerated: !rawSecret,
		jwtPreviousSecrets,
		store,
		redisKeyPrefix: prefix,
		storageDir: read(env, 'STORAGE_DIR') ?? './storage',
		publicBaseUrl: publicBase ? url('PUBLIC_BASE_URL', publicBase, ['http:', 'https:']).replace(/\/+$/, '') : null,
		trustProxy: bool(env, 'TRUST_PROXY', false),
		defaultTtlS,
		maxTtlS,
		issueAuth: auth.mode,
		issueAuthExplicit: auth.explicit,
		apiKeys,
		authJwtSecret,
		authJwksUrl,
		authJwtIssuer: read(env, 'AUTH_JWT_ISSUER') ?? null,
		authJwtAudience: read(env, 'AUTH_JWT_AUDIENCE') ?? null,
		authUserClaim: read(env, 'AUTH_USER_CLAIM') ?? 'sub',
		corsOrigins: corsOrigins(env),
		allowQueryToken: bool(env, 'ALLOW_QUERY_TOKEN', false),
		rateLimitIssue: rate('RATE_LIMIT_ISSUE', '60/min'),
		rateLimitDenied: rate('RATE_LIMIT_DENIED', '30/min'),
		resumeAllowanceBytes,
		shutdownGraceS: int(env, 'SHUTDOWN_GRACE_S', 30, 0, 3600),
		logLevel: logLevel as LogLevel,
		swaggerEnabled: bool(env, 'SWAGGER_ENABLED', true),
	})
}

/** Reads this process's environment (the one place that does). */
export function processEnv(): Env {
	return Bun.env as Env
}
