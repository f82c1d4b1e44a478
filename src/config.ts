import { randomBytes } from 'node:crypto'
import { closeSync, openSync, statSync } from 'node:fs'
import { KindGuard, type StaticDecode, type TSchema, Type } from '@sinclair/typebox'
import { TransformDecodeError, Value } from '@sinclair/typebox/value'

// ---- public types -----------------------------------------------------------

const ISSUE_AUTH_MODES = ['api-key', 'user-jwt', 'any', 'none'] as const
const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const

/** How callers of the token route authenticate (SPEC §2, `ISSUE_AUTH`). */
export type IssueAuthMode = (typeof ISSUE_AUTH_MODES)[number]

/** A pino log level, or `silent`. */
export type LogLevel = (typeof LOG_LEVELS)[number]

/** A rate limit: `limit` events per `windowS` seconds. */
export interface RateLimit {
	readonly limit: number
	readonly windowS: number
}

/** `REDIS_NAT_MAP`: the address to dial for each node address Redis announces, keyed `host:port` (IPv6 unbracketed, as ioredis looks it up). */
export interface RedisNatMap {
	readonly [announced: string]: { readonly host: string; readonly port: number }
}

/** How to reach Redis; `memory` is the embedded development store. Optional fields are absent when not configured. */
export type StoreConfig =
	| { readonly kind: 'memory' }
	| {
			readonly kind: 'redis'
			readonly url: string
			readonly username?: string
			readonly password?: string
			readonly caFile?: string
	  }
	| {
			readonly kind: 'cluster'
			readonly nodes: readonly { host: string; port: number }[]
			readonly username?: string
			readonly password?: string
			readonly tls?: true
			readonly caFile?: string
			readonly natMap?: RedisNatMap
	  }
	| {
			readonly kind: 'sentinel'
			readonly sentinels: readonly { host: string; port: number }[]
			readonly name: string
			readonly username?: string
			readonly password?: string
			readonly sentinelPassword?: string
			readonly tls?: true
			readonly caFile?: string
			readonly natMap?: RedisNatMap
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
	/** Replicas that must acknowledge each write (`WAIT`); 0 = do not wait. */
	readonly redisMinReplicasAck: number
	readonly storageDir: string
	readonly publicBaseUrl: string | null
	readonly trustProxy: boolean
	readonly defaultTtlS: number
	readonly maxTtlS: number
	readonly issueAuth: IssueAuthMode
	/** True when `ISSUE_AUTH` was set explicitly rather than resolved from `auto`. */
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
	/** Bearer token `/metrics` requires; null = open. */
	readonly metricsToken: string | null
	/** Serve Swagger UI and the OpenAPI document (off for locked-down deployments). */
	readonly swaggerEnabled: boolean
}

/** A configuration value is wrong; `message` is the one line printed before exit 1, `variable` the one to fix. */
export class ConfigError extends Error {
	constructor(
		readonly variable: EnvVar,
		problem: string,
	) {
		super(`${variable}: ${problem}`)
		this.name = 'ConfigError'
	}
}

// ---- the value parsers TypeBox cannot express ---------------------------------

/** Thrown by a parser inside the schema; `loadConfig` turns it into a ConfigError naming the variable. */
class Invalid extends Error {}

const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8')

/** A value quoted for the one-line error: escapes quotes, and is kept short. */
const quote = (raw: string): string => JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}…` : raw)

const commaList = (raw: string): string[] =>
	raw
		.split(',')
		.map((s) => s.trim())
		.filter((s) => s !== '')

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

/** Parses `8MiB`, `500kb`, `1048576` into bytes; null when it is not a size. */
export function parseBytes(raw: string): number | null {
	const m = /^(\d+)\s*([a-z]*)$/i.exec(raw.trim())
	if (!m) return null
	const unit = BYTE_UNITS[(m[2] ?? '').toLowerCase()]
	if (unit === undefined) return null
	const n = Number(m[1]) * unit
	return Number.isSafeInteger(n) ? n : null
}

const WINDOW_UNITS: Record<string, number> = { s: 1, sec: 1, m: 60, min: 60, h: 3600, hour: 3600 }

/** Parses `60/min`, `30/10s`, `1000/hour`; null when it is not a rate limit. */
export function parseRateLimit(raw: string): RateLimit | null {
	const m = /^(\d+)\s*\/\s*(\d*)\s*([a-z]+)$/i.exec(raw.trim())
	if (!m) return null
	const unit = WINDOW_UNITS[(m[3] ?? '').toLowerCase()]
	const count = m[2] === '' ? 1 : Number(m[2])
	const limit = Number(m[1])
	if (unit === undefined || limit < 1 || count < 1) return null
	return { limit, windowS: count * unit }
}

const rateLimit = (raw: string): RateLimit => {
	const parsed = parseRateLimit(raw)
	if (!parsed) throw new Invalid(`must look like 60/min, 30/10s or 1000/hour; got ${quote(raw)}`)
	return parsed
}

const byteSize = (raw: string): number => {
	const parsed = parseBytes(raw)
	if (parsed === null) throw new Invalid(`must be a size like 8MiB or 1048576; got ${quote(raw)}`)
	return parsed
}

/** `host:port`, `[v6]:port`; an unbracketed IPv6 address is ambiguous, so it is not one. */
function hostPort(raw: string): { host: string; port: number } | null {
	const m = /^(?:\[([0-9a-f:.]+)\]|([^\s:[\]=,/@]+)):(\d{1,5})$/i.exec(raw)
	const host = m?.[1] ?? m?.[2]
	const port = Number(m?.[3])
	if (!host || !Number.isInteger(port) || port < 1 || port > 65_535) return null
	return { host, port }
}

const hostPortList = (raw: string): { host: string; port: number }[] => {
	const entries = commaList(raw)
	if (entries.length === 0) throw new Invalid('must list at least one host:port')
	return entries.map((entry) => {
		const parsed = hostPort(entry)
		if (!parsed) throw new Invalid(`${quote(entry)} is not host:port`)
		return parsed
	})
}

const natMap = (raw: string): RedisNatMap => {
	const map: Record<string, { host: string; port: number }> = {}
	const entries = commaList(raw)
	if (entries.length === 0) throw new Invalid('must list at least one announced-host:port=reachable-host:port')
	for (const entry of entries) {
		const [announcedRaw, reachableRaw, ...extra] = entry.split('=')
		const announced = hostPort(announcedRaw?.trim() ?? '')
		const reachable = hostPort(reachableRaw?.trim() ?? '')
		if (!announced || !reachable || extra.length > 0)
			throw new Invalid(`${quote(entry)} is not announced-host:port=reachable-host:port`)
		const key = `${announced.host}:${announced.port}`
		if (key in map) throw new Invalid(`${quote(announcedRaw ?? key)} is mapped twice`)
		map[key] = reachable
	}
	return map
}

/** A secret is measured in bytes, because that is what HMAC keys and compared tokens are made of. */
const secret =
	(minBytes: number) =>
	(raw: string): string => {
		// Never echo the value: only its length is safe to print.
		if (byteLength(raw) < minBytes) throw new Invalid(`must be at least ${minBytes} bytes, got ${byteLength(raw)}`)
		return raw
	}

const secretList =
	(minBytes: number) =>
	(raw: string): string[] => {
		const items = commaList(raw)
		if (items.some((item) => byteLength(item) < minBytes))
			throw new Invalid(`each entry must be at least ${minBytes} bytes`)
		return items
	}

const httpUrl = (raw: string): string => {
	if (!URL.canParse(raw)) throw new Invalid(`${quote(raw)} is not a URL`)
	if (!['http:', 'https:'].includes(new URL(raw).protocol)) throw new Invalid('must start with http:// or https://')
	return raw
}

// The URL may carry a password, so these messages never quote it.
const redisUrl = (raw: string): string => {
	if (!URL.canParse(raw)) throw new Invalid('is not a URL (expected redis://host:port or rediss://host:port)')
	const parsed = new URL(raw)
	if (!['redis:', 'rediss:'].includes(parsed.protocol)) throw new Invalid('must start with redis:// or rediss://')
	if (parsed.hostname === '') throw new Invalid('names no host')
	return raw
}

const corsOrigins = (raw: string): readonly string[] | '*' => {
	const origins = commaList(raw)
	if (origins.length === 0 || origins.includes('*')) return '*'
	for (const origin of origins) {
		const parsed = URL.canParse(origin) ? new URL(origin) : null
		if (!parsed || parsed.origin !== origin.replace(/\/$/, ''))
			throw new Invalid(`${quote(origin)} is not an origin like https://app.example.com`)
	}
	return origins.map((o) => o.replace(/\/$/, ''))
}

// Checked at start-up so a typo fails now, not at the first TLS handshake after a failover.
const readableFile = (raw: string): string => {
	let isFile: boolean
	try {
		isFile = statSync(raw).isFile()
		if (isFile) closeSync(openSync(raw, 'r'))
	} catch (err) {
		const code = err instanceof Error && 'code' in err ? String(err.code) : 'error'
		throw new Invalid(`cannot read ${quote(raw)} (${code})`)
	}
	if (!isFile) throw new Invalid(`${quote(raw)} is not a file`)
	return raw
}

// ---- the schema -------------------------------------------------------------

/** Options every variable carries: `description` is its README table row. */
interface Doc {
	readonly description: string
	/** Never echo the value in an error message (`redactedConfig` masks the same values in the log). */
	readonly secret?: true
	/** What a value that fails the schema check is told (the value is appended). */
	readonly error?: string
}

const BOOLEAN_WORDS = new Map([
	['1', true],
	['true', true],
	['yes', true],
	['on', true],
	['0', false],
	['false', false],
	['no', false],
	['off', false],
])

const integer = (options: Doc & { default: number; minimum: number; maximum: number }) => Type.Integer(options)
const flag = (options: Doc & { default: boolean }) => Type.Boolean(options)
const text = (options: Doc & { default?: string; pattern?: string }) => Type.String(options)
const oneOf = <const V extends readonly string[]>(values: V, options: Doc & { default: V[number] }) =>
	Type.Union(
		values.map((v) => Type.Literal(v)),
		options,
	)

// Configuration is only ever decoded; nothing writes an environment back.
const neverEncoded = (): never => {
	throw new Error('configuration values are not encoded back into variables')
}

/** A string variable decoded by `parse`, which throws `Invalid` to refuse it. */
const parsed = <T>(parse: (raw: string) => T, options: Doc & { default?: string }) =>
	Type.Transform(Type.String(options)).Decode(parse).Encode(neverEncoded)

const { Optional } = Type

/**
 * Every environment variable the service reads, in README order. Strings are
 * trimmed and empty counts as unset before the schema sees them; integers,
 * booleans and choices are coerced by their kind (strictly: `1e3` is not a
 * number here), everything else by the named parser in its Transform.
 */
const EnvSchema = Type.Object({
	PORT: integer({ default: 3000, minimum: 0, maximum: 65_535, description: 'TCP port the server listens on' }),
	HOST: text({ default: '0.0.0.0', description: 'address the server listens on' }),
	WORKERS: integer({
		default: 1,
		minimum: 1,
		maximum: 256,
		description: 'processes sharing the port (`SO_REUSEPORT`), e.g. one per core; more than one needs Redis',
	}),
	NODE_ENV: text({
		default: 'development',
		description: '`production` requires `JWT_SECRET`, Redis and a way to authenticate callers',
	}),
	JWT_SECRET: Optional(
		parsed(secret(32), {
			secret: true,
			description:
				'HMAC key for download tokens, ≥ 32 bytes; required in production, random per process in development (with a warning)',
		}),
	),
	JWT_PREVIOUS_SECRETS: parsed(secretList(32), {
		default: '',
		secret: true,
		description:
			'comma-separated older keys (≥ 32 bytes each) still accepted for verification; tokens carry a `kid` naming their key',
	}),
	REDIS_URL: Optional(
		parsed(redisUrl, {
			description:
				'`redis://` or `rediss://` (TLS) URL of a single Redis. Unset in development: embedded in-memory store (warning); unset in production without Cluster or Sentinel: refuses to start',
		}),
	),
	REDIS_CLUSTER_NODES: Optional(
		parsed(hostPortList, { description: 'comma-separated `host:port` seeds: use Redis Cluster' }),
	),
	REDIS_SENTINELS: Optional(
		parsed(hostPortList, {
			description: 'comma-separated `host:port` sentinels: use Redis Sentinel (with `REDIS_SENTINEL_NAME`)',
		}),
	),
	REDIS_SENTINEL_NAME: Optional(
		text({ description: 'name of the master the sentinels watch; required with `REDIS_SENTINELS`' }),
	),
	REDIS_USERNAME: Optional(
		text({ description: 'ACL user for every topology (with `REDIS_URL` it may be in the URL instead)' }),
	),
	REDIS_PASSWORD: Optional(
		text({ secret: true, description: 'password for every topology (with `REDIS_URL` it may be in the URL instead)' }),
	),
	REDIS_TLS: flag({
		default: false,
		description: 'TLS to Cluster and Sentinel nodes (a single Redis uses TLS when `REDIS_URL` is `rediss://`)',
	}),
	REDIS_CA_FILE: Optional(
		parsed(readableFile, {
			description: 'PEM CA bundle that signs the Redis TLS certificates; with `rediss://` or `REDIS_TLS=true` only',
		}),
	),
	REDIS_SENTINEL_PASSWORD: Optional(
		text({
			secret: true,
			description: "the sentinels' own password, when it differs from the nodes'; with `REDIS_SENTINELS` only",
		}),
	),
	REDIS_NAT_MAP: Optional(
		parsed(natMap, {
			description:
				'`announced-host:port=reachable-host:port,…` for Cluster or Sentinel nodes behind NAT (Docker, Kubernetes)',
		}),
	),
	REDIS_MIN_REPLICAS_ACK: integer({
		default: 0,
		minimum: 0,
		maximum: 16,
		description:
			'writes (issue, revoke, budget take) return only after this many replicas acknowledged them (`WAIT`); a timeout is 503 and costs nothing; needs Redis',
	}),
	REDIS_KEY_PREFIX: text({
		default: 'dlg:',
		// A brace would become the cluster hash tag and break the one-slot-per-user layout.
		pattern: '^[^{}\\s]+$',
		error: 'must not contain braces or spaces',
		description: 'prefix of every key the service writes (no braces or spaces)',
	}),
	STORAGE_DIR: text({
		default: './storage',
		description:
			'a file is `<STORAGE_DIR>/<user_id>/<filename>`; created if missing. Each download opens the file once and serves that descriptor (Linux `/proc/self/fd`); lookups are synchronous for speed: meant for local disks, not slow network filesystems',
	}),
	PUBLIC_BASE_URL: Optional(
		parsed(httpUrl, {
			description: 'absolute base of `download_url`, e.g. `https://files.example.com`; unset: derived from the request',
		}),
	),
	TRUST_PROXY: flag({
		default: false,
		description: 'honour `X-Forwarded-For` (client IP) and `X-Forwarded-Proto`/`-Host` (`download_url`)',
	}),
	DEFAULT_TTL: integer({
		default: 900,
		minimum: 1,
		maximum: 31_536_000,
		description: 'token lifetime in seconds when the request gives none (`MAX_TTL` when that is lower)',
	}),
	MAX_TTL: integer({
		default: 86_400,
		minimum: 1,
		maximum: 31_536_000,
		description: 'longest token lifetime in seconds a request may ask for',
	}),
	ISSUE_AUTH: oneOf(['auto', ...ISSUE_AUTH_MODES], {
		default: 'auto',
		description:
			'who may ask for tokens: `api-key`, `user-jwt`, `any`, `none`. `auto` = `any` when keys or a user-JWT verifier are configured, else `none` in development; production refuses to start',
	}),
	API_KEYS: parsed(secretList(16), {
		default: '',
		secret: true,
		description: 'comma-separated service keys (≥ 16 bytes each), sent as `X-API-Key`; a key may act for any user',
	}),
	AUTH_JWT_SECRET: Optional(
		parsed(secret(32), {
			secret: true,
			description: "HS256 secret (≥ 32 bytes) verifying your app's own user access tokens; or `AUTH_JWKS_URL`",
		}),
	),
	AUTH_JWKS_URL: Optional(
		parsed(httpUrl, {
			description: "JWKS URL verifying your app's user access tokens (RS256/ES256); or `AUTH_JWT_SECRET`",
		}),
	),
	AUTH_JWT_ISSUER: Optional(text({ description: 'required `iss` of user access tokens' })),
	AUTH_JWT_AUDIENCE: Optional(text({ description: 'required `aud` of user access tokens' })),
	AUTH_USER_CLAIM: text({ default: 'sub', description: 'claim of a user access token that holds the user id' }),
	CORS_ORIGINS: parsed(corsOrigins, { default: '*', description: 'allowed origins, comma-separated, or `*`' }),
	ALLOW_QUERY_TOKEN: flag({
		default: false,
		description: 'also accept `?token=` on downloads (for `<video src>` and plain links)',
	}),
	RATE_LIMIT_ISSUE: parsed(rateLimit, {
		default: '60/min',
		description: 'token requests per user (`N/s`, `N/min`, `N/hour`, `N/10s` …)',
	}),
	RATE_LIMIT_DENIED: parsed(rateLimit, {
		default: '30/min',
		description:
			'denied download attempts per client IP (socket address, or `X-Forwarded-For` with `TRUST_PROXY`); past it, refusals become 429 while valid downloads still pass',
	}),
	RESUME_ALLOWANCE: parsed(byteSize, {
		default: '8MiB',
		description: 'per budgeted token, written bytes a broken connection may give back (`8MiB`, `512KiB`, bytes)',
	}),
	SHUTDOWN_GRACE_S: integer({
		default: 30,
		minimum: 0,
		maximum: 3600,
		description: 'how long in-flight downloads may finish after SIGTERM, in seconds',
	}),
	LOG_LEVEL: oneOf(LOG_LEVELS, {
		default: 'info',
		description: '`debug`, `info`, `warn`, `error`, `silent` (JSON lines on stdout)',
	}),
	METRICS_TOKEN: Optional(
		parsed(secret(16), {
			secret: true,
			description: 'when set (≥ 16 bytes), `/metrics` requires `Authorization: Bearer <it>`',
		}),
	),
	SWAGGER_ENABLED: flag({
		default: true,
		description:
			'serve Swagger UI (`/swagger`) and the OpenAPI document (`/swagger/json`); `false` for locked-down deployments',
	}),
})

type EnvValues = StaticDecode<typeof EnvSchema>

/** The name of an environment variable the service reads. */
export type EnvVar = Extract<keyof typeof EnvSchema.properties, string>

/** The raw environment `loadConfig` reads; unknown variables are allowed and ignored. */
export type Env = Partial<Record<EnvVar, string | undefined>>

/** Every environment variable the service reads (the schema's keys, in README order); anything else is ignored. */
export const KNOWN_ENV_VARS: readonly EnvVar[] = Object.freeze(Object.keys(EnvSchema.properties) as EnvVar[])

/** Each variable's README meaning, from the schema, so docs can be checked against it. */
export const CONFIG_DESCRIPTIONS: Readonly<Record<EnvVar, string>> = Object.freeze(
	Object.fromEntries(KNOWN_ENV_VARS.map((name) => [name, EnvSchema.properties[name].description ?? ''])) as Record<
		EnvVar,
		string
	>,
)

// ---- reading the environment through the schema -----------------------------

const isEnvVar = (name: string | undefined): name is EnvVar =>
	name !== undefined && Object.hasOwn(EnvSchema.properties, name)

/** `/PORT` or `/REDIS_SENTINELS/0` → the variable it is about. */
function variableAt(path: string): EnvVar {
	const name = path.split('/')[1]
	if (!isEnvVar(name)) throw new Error(`config schema error at ${path}`)
	return name
}

/** Turns a raw string into what the schema kind expects; what cannot be coerced stays a string and fails the check. */
function coerce(schema: TSchema, raw: string): unknown {
	if (KindGuard.IsTransform(schema)) return raw
	if (KindGuard.IsInteger(schema)) return /^\d+$/.test(raw) ? Number(raw) : raw
	if (KindGuard.IsBoolean(schema)) return BOOLEAN_WORDS.get(raw.toLowerCase()) ?? raw
	if (KindGuard.IsUnion(schema)) return raw.toLowerCase()
	return raw
}

/** The one-line problem for a value that failed the schema check. */
function problem(name: EnvVar, raw: string): string {
	const schema: TSchema = EnvSchema.properties[name]
	const got = schema.secret === true ? '' : `, got ${quote(raw)}`
	if (typeof schema.error === 'string') return `${schema.error}${got}`
	if (KindGuard.IsInteger(schema)) return `must be a whole number from ${schema.minimum} to ${schema.maximum}${got}`
	if (KindGuard.IsBoolean(schema)) return `must be true or false${got}`
	if (KindGuard.IsUnion(schema))
		return `must be one of ${schema.anyOf.map((s) => (KindGuard.IsLiteral(s) ? s.const : '?')).join(', ')}${got}`
	return `is not valid${got}`
}

/** Validates each variable on its own; the rules that span variables come after, in `loadConfig`. */
function readEnv(env: Env): { values: EnvValues; given: ReadonlySet<EnvVar> } {
	const raw: Partial<Record<EnvVar, string>> = {}
	const input: Record<string, unknown> = {}
	for (const name of KNOWN_ENV_VARS) {
		const value = env[name]?.trim()
		if (value === undefined || value === '') continue
		// A newline or other control character is always a pasting mistake, and would split log lines.
		if (/\p{Cc}/u.test(value)) throw new ConfigError(name, 'must not contain control characters such as newlines')
		raw[name] = value
		input[name] = coerce(EnvSchema.properties[name], value)
	}
	const given = new Set(Object.keys(input).filter(isEnvVar))
	const withDefaults = Value.Default(EnvSchema, input)
	const failed = Value.Errors(EnvSchema, withDefaults).First()
	if (failed) {
		const name = variableAt(failed.path)
		throw new ConfigError(name, problem(name, raw[name] ?? ''))
	}
	try {
		return { values: Value.Decode(EnvSchema, withDefaults), given }
	} catch (err) {
		if (err instanceof TransformDecodeError && err.error instanceof Invalid)
			throw new ConfigError(variableAt(err.path), err.error.message)
		throw err
	}
}

// ---- the rules that span variables -------------------------------------------

function issueAuth(
	values: EnvValues,
	production: boolean,
	canAuthenticate: boolean,
): { mode: IssueAuthMode; explicit: boolean } {
	const mode = values.ISSUE_AUTH
	if (mode !== 'auto') return { mode, explicit: true }
	if (canAuthenticate) return { mode: 'any', explicit: false }
	if (production)
		throw new ConfigError(
			'ISSUE_AUTH',
			'no way to authenticate callers in production: set API_KEYS or AUTH_JWT_SECRET/AUTH_JWKS_URL, or ISSUE_AUTH=none explicitly',
		)
	return { mode: 'none', explicit: false }
}

const ONE_REDIS = 'configure one Redis: REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS'

type HostPort = { host: string; port: number }
type Topology =
	| { kind: 'memory' }
	| { kind: 'redis'; url: string; parsed: URL }
	| { kind: 'cluster'; nodes: HostPort[] }
	| { kind: 'sentinel'; sentinels: HostPort[]; name: string }

/** Which Redis to use; two of them at once is refused rather than one silently winning (it used to be the cluster). */
function topology(v: EnvValues, production: boolean): Topology {
	const url = v.REDIS_URL
	const nodes = v.REDIS_CLUSTER_NODES
	const sentinels = v.REDIS_SENTINELS
	const name = v.REDIS_SENTINEL_NAME
	if (url && nodes) throw new ConfigError('REDIS_CLUSTER_NODES', `conflicts with REDIS_URL; ${ONE_REDIS}`)
	if (url && sentinels) throw new ConfigError('REDIS_SENTINELS', `conflicts with REDIS_URL; ${ONE_REDIS}`)
	if (nodes && sentinels) throw new ConfigError('REDIS_SENTINELS', `conflicts with REDIS_CLUSTER_NODES; ${ONE_REDIS}`)
	if (name && !sentinels)
		throw new ConfigError('REDIS_SENTINEL_NAME', 'only applies with REDIS_SENTINELS, which is not set')
	if (v.REDIS_SENTINEL_PASSWORD !== undefined && !sentinels)
		throw new ConfigError('REDIS_SENTINEL_PASSWORD', 'only applies with REDIS_SENTINELS, which is not set')
	if (url) return { kind: 'redis', url, parsed: new URL(url) }
	if (nodes) return { kind: 'cluster', nodes }
	if (sentinels) {
		if (!name) throw new ConfigError('REDIS_SENTINEL_NAME', 'is required with REDIS_SENTINELS')
		return { kind: 'sentinel', sentinels, name }
	}
	if (production)
		throw new ConfigError('REDIS_URL', 'is required in production (or REDIS_CLUSTER_NODES / REDIS_SENTINELS)')
	// Each of these means the operator expected Redis; the in-memory store would quietly ignore it.
	const redisOnly: [EnvVar, boolean][] = [
		['REDIS_USERNAME', v.REDIS_USERNAME !== undefined],
		['REDIS_PASSWORD', v.REDIS_PASSWORD !== undefined],
		['REDIS_TLS', v.REDIS_TLS],
		['REDIS_CA_FILE', v.REDIS_CA_FILE !== undefined],
		['REDIS_NAT_MAP', v.REDIS_NAT_MAP !== undefined],
		['REDIS_MIN_REPLICAS_ACK', v.REDIS_MIN_REPLICAS_ACK > 0],
	]
	for (const [variable, set] of redisOnly)
		if (set) throw new ConfigError(variable, `needs Redis, but none is configured (in-memory store); ${ONE_REDIS}`)
	return { kind: 'memory' }
}

/** The chosen topology with its credentials, TLS and NAT settings, each checked against it. */
function storeConfig(v: EnvValues, production: boolean): StoreConfig {
	const chosen = topology(v, production)
	if (chosen.kind === 'memory') return chosen
	const url = chosen.kind === 'redis' ? chosen.parsed : null
	if (url?.password && v.REDIS_PASSWORD !== undefined)
		throw new ConfigError('REDIS_PASSWORD', 'REDIS_URL carries a password too; give it in one place')
	if (url?.username && v.REDIS_USERNAME !== undefined)
		throw new ConfigError('REDIS_USERNAME', 'REDIS_URL carries a username too; give it in one place')
	// Redis authenticates an ACL user with AUTH <user> <password>; a user alone would never be used.
	if (v.REDIS_USERNAME !== undefined && v.REDIS_PASSWORD === undefined && !url?.password)
		throw new ConfigError('REDIS_USERNAME', 'needs a password too: REDIS_PASSWORD, or one in REDIS_URL')
	if (url?.protocol === 'redis:' && v.REDIS_TLS)
		throw new ConfigError('REDIS_TLS', 'with REDIS_URL, TLS is chosen by the URL: use rediss:// instead of redis://')
	const tls = url ? url.protocol === 'rediss:' : v.REDIS_TLS
	if (v.REDIS_CA_FILE !== undefined && !tls)
		throw new ConfigError('REDIS_CA_FILE', 'only applies with TLS: use a rediss:// REDIS_URL or REDIS_TLS=true')
	if (url && v.REDIS_NAT_MAP)
		throw new ConfigError('REDIS_NAT_MAP', 'only applies to REDIS_CLUSTER_NODES or REDIS_SENTINELS, not to REDIS_URL')

	// Optional fields are left out, not set to undefined, so the shape says exactly what was configured.
	const common = {
		...(v.REDIS_USERNAME !== undefined ? { username: v.REDIS_USERNAME } : {}),
		...(v.REDIS_PASSWORD !== undefined ? { password: v.REDIS_PASSWORD } : {}),
	}
	const caFile = v.REDIS_CA_FILE !== undefined ? { caFile: v.REDIS_CA_FILE } : {}
	// The URL is kept exactly as given; the credentials above are only those of the variables.
	if (chosen.kind === 'redis') return { kind: 'redis', url: chosen.url, ...common, ...caFile }
	const nodeOptions = {
		...common,
		...(tls ? { tls: true as const } : {}),
		...caFile,
		...(v.REDIS_NAT_MAP ? { natMap: v.REDIS_NAT_MAP } : {}),
	}
	if (chosen.kind === 'cluster') return { kind: 'cluster', nodes: chosen.nodes, ...nodeOptions }
	return {
		kind: 'sentinel',
		sentinels: chosen.sentinels,
		name: chosen.name,
		...nodeOptions,
		...(v.REDIS_SENTINEL_PASSWORD !== undefined ? { sentinelPassword: v.REDIS_SENTINEL_PASSWORD } : {}),
	}
}

function deepFreeze<T>(value: T): T {
	if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
		Object.freeze(value)
		for (const inner of Object.values(value)) deepFreeze(inner)
	}
	return value
}

/**
 * Parses and validates the environment once; never reads the process
 * environment itself (only `REDIS_CA_FILE`, to check it is readable).
 * Throws `ConfigError` naming the first bad variable.
 */
export function loadConfig(env: Env): Config {
	const { values: v, given } = readEnv(env)
	const production = v.NODE_ENV.toLowerCase() === 'production'

	if (v.JWT_SECRET === undefined && production)
		throw new ConfigError('JWT_SECRET', 'is required in production (at least 32 bytes)')
	const jwtSecret = v.JWT_SECRET ?? randomBytes(48).toString('base64url')

	const authJwtSecret = v.AUTH_JWT_SECRET ?? null
	const authJwksUrl = v.AUTH_JWKS_URL ?? null
	if (authJwtSecret && authJwksUrl)
		throw new ConfigError('AUTH_JWKS_URL', 'set AUTH_JWT_SECRET or AUTH_JWKS_URL, not both')
	const userJwt = authJwtSecret !== null || authJwksUrl !== null
	const auth = issueAuth(v, production, v.API_KEYS.length > 0 || userJwt)
	if (auth.mode === 'api-key' && v.API_KEYS.length === 0)
		throw new ConfigError('API_KEYS', 'ISSUE_AUTH=api-key needs at least one key')
	if (auth.mode === 'any' && v.API_KEYS.length === 0 && !userJwt)
		throw new ConfigError('API_KEYS', 'ISSUE_AUTH=any needs API_KEYS or AUTH_JWT_SECRET/AUTH_JWKS_URL')
	if (auth.mode === 'user-jwt' && !userJwt)
		throw new ConfigError('AUTH_JWT_SECRET', 'ISSUE_AUTH=user-jwt needs AUTH_JWT_SECRET or AUTH_JWKS_URL')

	// Lowering MAX_TTL alone must not make the default lifetime invalid.
	const defaultTtlS = given.has('DEFAULT_TTL') ? v.DEFAULT_TTL : Math.min(v.DEFAULT_TTL, v.MAX_TTL)
	if (defaultTtlS > v.MAX_TTL) throw new ConfigError('DEFAULT_TTL', `must not exceed MAX_TTL (${v.MAX_TTL})`)

	const store = storeConfig(v, production)
	if (v.WORKERS > 1 && store.kind === 'memory')
		throw new ConfigError('WORKERS', 'more than one worker needs Redis: the in-memory store lives in one process')

	return deepFreeze({
		port: v.PORT,
		host: v.HOST,
		workers: v.WORKERS,
		production,
		jwtSecret,
		jwtSecretGenerated: v.JWT_SECRET === undefined,
		jwtPreviousSecrets: v.JWT_PREVIOUS_SECRETS,
		store,
		redisKeyPrefix: v.REDIS_KEY_PREFIX,
		redisMinReplicasAck: v.REDIS_MIN_REPLICAS_ACK,
		storageDir: v.STORAGE_DIR,
		publicBaseUrl: v.PUBLIC_BASE_URL?.replace(/\/+$/, '') ?? null,
		trustProxy: v.TRUST_PROXY,
		defaultTtlS,
		maxTtlS: v.MAX_TTL,
		issueAuth: auth.mode,
		issueAuthExplicit: auth.explicit,
		apiKeys: v.API_KEYS,
		authJwtSecret,
		authJwksUrl,
		authJwtIssuer: v.AUTH_JWT_ISSUER ?? null,
		authJwtAudience: v.AUTH_JWT_AUDIENCE ?? null,
		authUserClaim: v.AUTH_USER_CLAIM,
		corsOrigins: v.CORS_ORIGINS,
		allowQueryToken: v.ALLOW_QUERY_TOKEN,
		rateLimitIssue: v.RATE_LIMIT_ISSUE,
		rateLimitDenied: v.RATE_LIMIT_DENIED,
		resumeAllowanceBytes: v.RESUME_ALLOWANCE,
		shutdownGraceS: v.SHUTDOWN_GRACE_S,
		logLevel: v.LOG_LEVEL,
		metricsToken: v.METRICS_TOKEN ?? null,
		swaggerEnabled: v.SWAGGER_ENABLED,
	})
}

// ---- logging the configuration -------------------------------------------------

const MASK = '***'

const maskUrlPassword = (url: string): string => {
	const parsed = new URL(url)
	if (parsed.password === '') return url
	parsed.password = MASK
	return parsed.href
}

function redactedStore(store: StoreConfig): Record<string, unknown> {
	switch (store.kind) {
		case 'memory':
			return { ...store }
		case 'redis':
			return { ...store, url: maskUrlPassword(store.url), ...(store.password !== undefined ? { password: MASK } : {}) }
		case 'cluster':
			return { ...store, ...(store.password !== undefined ? { password: MASK } : {}) }
		case 'sentinel':
			return {
				...store,
				...(store.password !== undefined ? { password: MASK } : {}),
				...(store.sentinelPassword !== undefined ? { sentinelPassword: MASK } : {}),
			}
	}
}

/** The effective configuration for the start-up log: every secret is `***` (or null when unset) and key lists are counts. */
export function redactedConfig(config: Config): Record<string, unknown> {
	return {
		...config,
		jwtSecret: MASK,
		jwtPreviousSecrets: config.jwtPreviousSecrets.length,
		apiKeys: config.apiKeys.length,
		authJwtSecret: config.authJwtSecret === null ? null : MASK,
		metricsToken: config.metricsToken === null ? null : MASK,
		store: redactedStore(config.store),
	}
}

/** Reads this process's environment (the one place that does). */
export function processEnv(): Env {
	return Bun.env as Env
}
