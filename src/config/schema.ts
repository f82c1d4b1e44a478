import { type StaticDecode, type TSchema, Type } from '@sinclair/typebox'
import { flag, integer, oneOf, parsed, text } from './kinds'
import {
	baseUrl,
	byteSize,
	corsOrigins,
	duration,
	EVENT_TYPES,
	eventTypes,
	fractionalSeconds,
	hostPortList,
	httpUrl,
	natMap,
	rateLimit,
	readableFile,
	redisUrl,
	secret,
	secretList,
	urlList,
	webhookSecret,
} from './parsers'

const ISSUE_AUTH_MODES = ['api-key', 'user-jwt', 'any', 'none'] as const
const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const
const S3_REDIRECT_MODES = ['off', 'unlimited'] as const

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
	OPEN_FILE_CACHE_VALID: parsed(fractionalSeconds, {
		default: '1',
		description:
			'seconds a checked file serves later requests for it before it is looked at again: on disk its descriptor, until one `stat` of its path shows it unchanged (device, inode, size, times); in a bucket its version (size, ETag), every read still pinned to that ETag. `0` checks on every request',
	}),
	OPEN_FILE_CACHE_MAX: integer({
		default: 1024,
		minimum: 1,
		maximum: 100_000,
		description:
			'checked files kept per process (on disk two open descriptors each); the least recently used is let go past it',
	}),
	S3_BUCKET: Optional(
		text({
			description:
				'serve files from this S3-compatible bucket instead of `STORAGE_DIR` (setting both refuses to start); a file is the object `<S3_PREFIX><user_id>/<filename>`',
		}),
	),
	S3_ENDPOINT: Optional(
		parsed(httpUrl, {
			description:
				'endpoint of any S3-compatible service (MinIO, Ceph RGW, SeaweedFS, Garage, R2, …), e.g. `http://minio:9000`; unset: AWS',
		}),
	),
	S3_REGION: text({ default: 'us-east-1', description: 'region the requests are signed for' }),
	S3_ACCESS_KEY_ID: Optional(text({ description: 'access key (`AWS_ACCESS_KEY_ID` is read too)' })),
	S3_SECRET_ACCESS_KEY: Optional(
		text({ secret: true, description: 'secret key (`AWS_SECRET_ACCESS_KEY` is read too)' }),
	),
	S3_SESSION_TOKEN: Optional(
		text({ secret: true, description: 'session token of temporary credentials (`AWS_SESSION_TOKEN` is read too)' }),
	),
	AWS_ACCESS_KEY_ID: Optional(text({ description: 'the AWS name of `S3_ACCESS_KEY_ID` (give one of the two)' })),
	AWS_SECRET_ACCESS_KEY: Optional(
		text({ secret: true, description: 'the AWS name of `S3_SECRET_ACCESS_KEY` (give one of the two)' }),
	),
	AWS_SESSION_TOKEN: Optional(
		text({ secret: true, description: 'the AWS name of `S3_SESSION_TOKEN` (give one of the two)' }),
	),
	S3_PREFIX: text({
		default: '',
		description: 'key prefix of every file in the bucket, e.g. `originals/`',
	}),
	S3_VIRTUAL_HOSTED_STYLE: flag({
		default: false,
		description: 'address the bucket in the host name (`bucket.host`) instead of the path (`host/bucket`)',
	}),
	S3_REDIRECT: oneOf(S3_REDIRECT_MODES, {
		default: 'off',
		description:
			'`unlimited`: GETs with tokens without `max_uses` answer 302 to a presigned URL instead of proxying the bytes (a presigned URL cannot be revoked; budgeted tokens are always proxied)',
	}),
	S3_REDIRECT_TTL: integer({
		default: 60,
		minimum: 1,
		maximum: 300,
		description: 'seconds a redirect’s presigned URL stays valid',
	}),
	EVENTS: oneOf(['auto', 'on', 'off'], {
		default: 'auto',
		description:
			'write lifecycle events (token.issued, download.completed, …) to the Redis Stream `<REDIS_KEY_PREFIX>events`; `auto` = `on` with Redis, `off` with the in-memory store',
	}),
	EVENTS_MAX_LEN: integer({
		default: 1_000_000,
		minimum: 1000,
		maximum: 1_000_000_000,
		description: 'the events stream is trimmed to about this many entries (`XADD … MAXLEN ~`)',
	}),
	WEBHOOK_URLS: Optional(
		parsed(urlList, {
			secret: true,
			description:
				'comma-separated endpoints every event of `WEBHOOK_EVENTS` is POSTed to, signed per Standard Webhooks',
		}),
	),
	WEBHOOK_SECRET: Optional(
		parsed(webhookSecret, {
			secret: true,
			description: '`whsec_<base64>` signing secret of the webhooks (Standard Webhooks); required with `WEBHOOK_URLS`',
		}),
	),
	WEBHOOK_EVENTS: parsed(eventTypes, {
		default: EVENT_TYPES.filter((t) => t !== 'download.denied').join(','),
		description: 'comma-separated event types delivered to `WEBHOOK_URLS`; by default every type but `download.denied`',
	}),
	WEBHOOK_TIMEOUT_S: integer({
		default: 10,
		minimum: 1,
		maximum: 60,
		description: 'seconds one delivery attempt may take before it counts as failed and is retried',
	}),
	WEBHOOK_MAX_AGE: parsed(duration, {
		default: '24h',
		description:
			'undelivered events are retried with exponential backoff until this old (`24h`, `90m`, seconds), then dead-lettered to `<REDIS_KEY_PREFIX>events:dead`',
	}),
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
