import { type EventsConfig, eventsConfig, type WebhooksConfig } from './events'
import { readEnv } from './read-env'
import { rememberSecrets, secretValues } from './redact'
import { checkWorkers, defaultTtlS, issueAuth, jwtSecret } from './rules'
import type { Env, EnvValues, EnvVar, IssueAuthMode } from './schema'
import { type StorageConfig, storageConfig } from './storage'
import { type StoreConfig, storeConfig } from './store'

// The configuration: environment → schema (each variable alone) → the rules
// between variables → one frozen Config. To add a variable:
//   1. `schema.ts`: an entry in README order, with its description (the README
//      row), default, and `secret: true` if its value must never be printed
//      (that flag alone keeps it out of errors and the start-up log line);
//      a parser in `parsers.ts` if TypeBox cannot express its values.
//   2. Here: a line in `PLAIN_FIELDS` when the Config field is the decoded
//      value as it is; otherwise a field in `Config` and its value in `loadConfig`.
//   3. A rule that involves other variables goes in `rules.ts` (or `store.ts`
//      for Redis), called from `loadConfig` where its error should come first.
//   4. The README table row (`test/readme.test.ts` checks it) and `.env.example`.

export { ConfigError } from './error'
export type { EventsConfig, WebhooksConfig } from './events'
export type { EventType, RateLimit, RedisNatMap } from './parsers'
export { EVENT_TYPES, parseBytes, parseRateLimit } from './parsers'
export { redactedConfig } from './redact'
export type { Env, EnvVar, IssueAuthMode, LogLevel } from './schema'
export { CONFIG_DESCRIPTIONS, KNOWN_ENV_VARS, SECRET_ENV_VARS } from './schema'
export type { StorageConfig } from './storage'
export type { StoreConfig } from './store'

/** Config fields that are one variable's decoded value as it is (null when an optional variable is unset). */
const PLAIN_FIELDS = {
	port: 'PORT',
	host: 'HOST',
	workers: 'WORKERS',
	jwtPreviousSecrets: 'JWT_PREVIOUS_SECRETS',
	redisKeyPrefix: 'REDIS_KEY_PREFIX',
	/** Replicas that must acknowledge each write (`WAIT`); 0 = do not wait. */
	redisMinReplicasAck: 'REDIS_MIN_REPLICAS_ACK',
	publicBaseUrl: 'PUBLIC_BASE_URL',
	trustProxy: 'TRUST_PROXY',
	maxTtlS: 'MAX_TTL',
	/** Seconds a checked descriptor is reused before its path is looked at again; 0 = no open-file cache. */
	openFileCacheValidS: 'OPEN_FILE_CACHE_VALID',
	openFileCacheMax: 'OPEN_FILE_CACHE_MAX',
	/** Seconds a token whose first body started before `exp` stays usable after it; 0 = none. */
	expiryGraceS: 'EXPIRY_GRACE_S',
	maxLiveTokensPerUser: 'MAX_LIVE_TOKENS_PER_USER',
	/** Bodies in flight per user across all instances; 0 = no limit. */
	maxConcurrentDownloadsPerUser: 'MAX_CONCURRENT_DOWNLOADS_PER_USER',
	apiKeys: 'API_KEYS',
	authJwtSecret: 'AUTH_JWT_SECRET',
	authJwksUrl: 'AUTH_JWKS_URL',
	authJwtIssuer: 'AUTH_JWT_ISSUER',
	authJwtAudience: 'AUTH_JWT_AUDIENCE',
	authUserClaim: 'AUTH_USER_CLAIM',
	corsOrigins: 'CORS_ORIGINS',
	allowQueryToken: 'ALLOW_QUERY_TOKEN',
	rateLimitIssue: 'RATE_LIMIT_ISSUE',
	rateLimitDenied: 'RATE_LIMIT_DENIED',
	resumeAllowanceBytes: 'RESUME_ALLOWANCE',
	shutdownGraceS: 'SHUTDOWN_GRACE_S',
	logLevel: 'LOG_LEVEL',
	/** Bearer token `/metrics` requires; null = open. */
	metricsToken: 'METRICS_TOKEN',
	/** Serve Swagger UI and the OpenAPI document (off for locked-down deployments). */
	swaggerEnabled: 'SWAGGER_ENABLED',
} as const satisfies Record<string, EnvVar>

/** A variable's decoded type, with null standing for an unset optional variable. */
type Decoded<V extends EnvVar> = undefined extends EnvValues[V] ? Exclude<EnvValues[V], undefined> | null : EnvValues[V]

type PlainFields = { readonly [F in keyof typeof PLAIN_FIELDS]: Decoded<(typeof PLAIN_FIELDS)[F]> }

/** The validated, frozen configuration of one process. */
export interface Config extends PlainFields {
	readonly production: boolean
	readonly jwtSecret: string
	/** True when `jwtSecret` was generated for this run (development only). */
	readonly jwtSecretGenerated: boolean
	readonly issueAuth: IssueAuthMode
	/** True when `ISSUE_AUTH` was set explicitly rather than resolved from `auto`. */
	readonly issueAuthExplicit: boolean
	/** Token lifetime when a request gives none; within `maxTtlS`. */
	readonly defaultTtlS: number
	readonly store: StoreConfig
	/** Where files live: `STORAGE_DIR`, or the bucket of `S3_BUCKET`. */
	readonly storage: StorageConfig
	/** Lifecycle events in the Redis Stream. */
	readonly events: EventsConfig
	/** Webhooks delivering them; null when none are configured. */
	readonly webhooks: WebhooksConfig | null
}

function plainFields(v: EnvValues): PlainFields {
	// Each field's type is Decoded<its variable> by construction; fromEntries cannot carry that through.
	return Object.fromEntries(
		Object.entries(PLAIN_FIELDS).map(([field, name]) => [field, v[name] ?? null]),
	) as PlainFields
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
	const secret = jwtSecret(v, production)
	const auth = issueAuth(v, production)
	const ttl = defaultTtlS(v, given)
	const store = storeConfig(v, production)
	checkWorkers(v, store)
	const storage = storageConfig(v, given)
	const { events, webhooks } = eventsConfig(v, given, store)

	const config: Config = deepFreeze({
		production,
		...secret,
		...auth,
		defaultTtlS: ttl,
		store,
		storage,
		events,
		webhooks,
		...plainFields(v),
	})
	// A generated JWT_SECRET is that variable's value for this run, and as secret as a given one.
	return rememberSecrets(config, secretValues({ ...v, JWT_SECRET: secret.jwtSecret }))
}

/** Reads this process's environment (the one place that does). */
export function processEnv(): Env {
	return Bun.env as Env
}
