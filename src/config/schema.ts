import { type StaticDecode, type TSchema, Type } from '@sinclair/typebox'
import { flag, integer, oneOf, parsed, text } from './kinds'
import { baseUrl, byteSize, corsOrigins, httpUrl, rateLimit, secret, secretList } from './parsers'
import { EVENT_VARS } from './schema-events'
import { REDIS_VARS } from './schema-redis'
import { STORAGE_VARS } from './schema-storage'

const ISSUE_AUTH_MODES = ['api-key', 'user-jwt', 'any', 'none'] as const
const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const

/** How callers of the token route authenticate (docs/contract.md §2, `ISSUE_AUTH`). */
export type IssueAuthMode = (typeof ISSUE_AUTH_MODES)[number]

/** A pino log level, or `silent`. */
export type LogLevel = (typeof LOG_LEVELS)[number]

const { Optional } = Type

/**
 * Every environment variable the service reads, in README order, each with
 * its description (the README row), default and `secret` flag. Strings are
 * trimmed and empty counts as unset before the schema sees them; integers,
 * booleans and choices are coerced by their kind (strictly: `1e3` is not a
 * number here), everything else by the named parser in its Transform.
 */
export const EnvSchema = Type.Object({
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
	...REDIS_VARS,
	...STORAGE_VARS,
	...EVENT_VARS,
	PUBLIC_BASE_URL: Optional(
		parsed(baseUrl, {
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
	EXPIRY_GRACE_S: integer({
		default: 0,
		minimum: 0,
		maximum: 86_400,
		description:
			'a token whose first body started before its expiry may go on being used (ranges, resumes, within its budget) until expiry + this many seconds; 0 = cut at expiry',
	}),
	MAX_LIVE_TOKENS_PER_USER: integer({
		default: 10_000,
		minimum: 1,
		maximum: 1_000_000,
		description:
			'live tokens one user may hold (expired, revoked and used-up ones do not count); issuing past it answers 429 `too_many_live_tokens`',
	}),
	MAX_CONCURRENT_DOWNLOADS_PER_USER: integer({
		default: 0,
		minimum: 0,
		maximum: 100_000,
		description:
			'bodies in flight per user, counted across every instance (429 `too_many_downloads` past it); 0 = no limit. Bodies are then counted streams, not zero-copy',
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

/** Each variable's decoded value (before the rules that span variables). */
export type EnvValues = StaticDecode<typeof EnvSchema>

/** The name of an environment variable the service reads. */
export type EnvVar = Extract<keyof typeof EnvSchema.properties, string>

/** The raw environment `loadConfig` reads; unknown variables are allowed and ignored. */
export type Env = Partial<Record<EnvVar, string | undefined>>

/** The schema of one variable. */
export const schemaOf = (name: EnvVar): TSchema => EnvSchema.properties[name]

/** Every environment variable the service reads (the schema's keys, in README order); anything else is ignored. */
export const KNOWN_ENV_VARS: readonly EnvVar[] = Object.freeze(Object.keys(EnvSchema.properties) as EnvVar[])

/** Each variable's README meaning, from the schema, so docs can be checked against it. */
export const CONFIG_DESCRIPTIONS: Readonly<Record<EnvVar, string>> = Object.freeze(
	Object.fromEntries(KNOWN_ENV_VARS.map((name) => [name, schemaOf(name).description ?? ''])) as Record<EnvVar, string>,
)

/** The variables flagged `secret` in the schema, in README order: never echoed, masked in the start-up log. */
export const SECRET_ENV_VARS: readonly EnvVar[] = Object.freeze(
	KNOWN_ENV_VARS.filter((name) => schemaOf(name).secret === true),
)
