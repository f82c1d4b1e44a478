import { describe, expect, test } from 'bun:test'
import {
	CONFIG_DESCRIPTIONS,
	type Env,
	type EnvVar,
	KNOWN_ENV_VARS,
	loadConfig,
	redactedConfig,
} from '../../src/config'
import { expectRefused } from './refused'

// Proves the configuration is one schema: the list of variables and their
// descriptions come from it, every variable goes through the same reading
// rules, and what is logged of it never holds a secret.

/** The variables of SPEC §2, in README order. */
const EXPECTED: EnvVar[] = [
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
	'REDIS_USERNAME',
	'REDIS_PASSWORD',
	'REDIS_TLS',
	'REDIS_CA_FILE',
	'REDIS_SENTINEL_PASSWORD',
	'REDIS_NAT_MAP',
	'REDIS_MIN_REPLICAS_ACK',
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
	'METRICS_TOKEN',
	'SWAGGER_ENABLED',
]

describe('KNOWN_ENV_VARS and CONFIG_DESCRIPTIONS', () => {
	test('list every variable of SPEC §2 once, in README order', () => {
		expect(KNOWN_ENV_VARS).toEqual(EXPECTED)
	})

	test('describe exactly the known variables', () => {
		expect(Object.keys(CONFIG_DESCRIPTIONS).sort()).toEqual([...KNOWN_ENV_VARS].sort())
	})

	// Each description is a README table cell: one line, and no pipe that would split the row.
	test.each([...KNOWN_ENV_VARS])('%s has a one-line description fit for the README table', (name) => {
		const description = CONFIG_DESCRIPTIONS[name]
		expect(description.length).toBeGreaterThan(10)
		expect(description).not.toMatch(/[\r\n|]/)
	})

	test('cannot be changed at run time', () => {
		expect(Object.isFrozen(KNOWN_ENV_VARS)).toBe(true)
		expect(Object.isFrozen(CONFIG_DESCRIPTIONS)).toBe(true)
	})
})

describe('every variable is read the same way', () => {
	test.each([...KNOWN_ENV_VARS])('%s: blank counts as unset', (name) => {
		const blank = loadConfig({ [name]: '  ' })
		expect(blank.port).toBe(3000)
		expect(blank.store).toEqual({ kind: 'memory' })
	})

	test.each([...KNOWN_ENV_VARS])('%s: a newline inside the value is refused naming it, in one line', (name) => {
		expectRefused({ [name]: 'a\nb' }, name)
	})
})

describe('METRICS_TOKEN', () => {
	test('is null when unset and kept when at least 16 bytes', () => {
		expect(loadConfig({}).metricsToken).toBeNull()
		expect(loadConfig({ METRICS_TOKEN: 'm'.repeat(16) }).metricsToken).toBe('m'.repeat(16))
	})

	test('a shorter token is refused without printing it', () => {
		const err = expectRefused({ METRICS_TOKEN: 'short-token-15b' }, 'METRICS_TOKEN')
		expect(err.message).not.toContain('short-token-15b')
	})
})

describe('numbers are strict', () => {
	test.each([
		['SHUTDOWN_GRACE_S', '1e1'],
		['SHUTDOWN_GRACE_S', '3601'],
		['WORKERS', '0x2'],
		['MAX_TTL', '31536001'],
		['PORT', 'true'],
		['PORT', '99999999999999999999'],
	] as const)('%s=%p is refused, quoting the value and the range', (name, value) => {
		const err = expectRefused({ [name]: value, REDIS_URL: 'redis://h:6379' }, name)
		expect(err.message).toContain(JSON.stringify(value))
	})
})

describe('redactedConfig', () => {
	const secrets = {
		JWT_SECRET: 'SECRET-jwt-current-0123456789abcdefghij',
		JWT_PREVIOUS_SECRETS: 'SECRET-jwt-older-one-0123456789abcdefghij,SECRET-jwt-older-two-0123456789abcdefghij',
		API_KEYS: 'SECRET-api-key-one-0123,SECRET-api-key-two-4567',
		AUTH_JWT_SECRET: 'SECRET-auth-jwt-0123456789abcdefghijklmn',
		METRICS_TOKEN: 'SECRET-metrics-token-0123',
		REDIS_PASSWORD: 'SECRET-redis-password',
		REDIS_SENTINEL_PASSWORD: 'SECRET-sentinel-password',
	} satisfies Env
	const leaks = (logged: unknown) => JSON.stringify(logged).match(/SECRET-[a-z-]*/g) ?? []

	test('no secret of a sentinel deployment appears, and the rest of the configuration does', () => {
		const config = loadConfig({
			...secrets,
			NODE_ENV: 'production',
			REDIS_SENTINELS: 's1:26379',
			REDIS_SENTINEL_NAME: 'mymaster',
			REDIS_USERNAME: 'app',
		})
		const logged = redactedConfig(config)
		expect(leaks(logged)).toEqual([])
		expect(logged).toMatchObject({
			production: true,
			port: 3000,
			jwtSecret: '***',
			jwtPreviousSecrets: ['***', '***'],
			apiKeys: ['***', '***'],
			authJwtSecret: '***',
			metricsToken: '***',
			issueAuth: 'any',
			store: {
				kind: 'sentinel',
				sentinels: [{ host: 's1', port: 26379 }],
				name: 'mymaster',
				username: 'app',
				password: '***',
				sentinelPassword: '***',
			},
		})
	})

	test('a password inside REDIS_URL is masked, the rest of the URL kept', () => {
		const config = loadConfig({
			...secrets,
			REDIS_PASSWORD: undefined,
			REDIS_SENTINEL_PASSWORD: undefined,
			REDIS_URL: 'rediss://app:SECRET-url-password@redis.example.com:6380/2',
		})
		const logged = redactedConfig(config)
		expect(leaks(logged)).toEqual([])
		expect(logged.store).toEqual({ kind: 'redis', url: 'rediss://app:***@redis.example.com:6380/2' })
	})

	test('REDIS_PASSWORD of a cluster is masked', () => {
		const logged = redactedConfig(loadConfig({ REDIS_CLUSTER_NODES: 'n1:7000', REDIS_PASSWORD: 'SECRET-cluster-pw' }))
		expect(leaks(logged)).toEqual([])
		expect(logged.store).toEqual({ kind: 'cluster', nodes: [{ host: 'n1', port: 7000 }], password: '***' })
	})

	test('a generated development secret is masked too, and unset secrets stay null', () => {
		const config = loadConfig({})
		const logged = redactedConfig(config)
		expect(JSON.stringify(logged)).not.toContain(config.jwtSecret)
		expect(logged).toMatchObject({
			jwtSecret: '***',
			jwtSecretGenerated: true,
			jwtPreviousSecrets: [],
			apiKeys: [],
			authJwtSecret: null,
			metricsToken: null,
			store: { kind: 'memory' },
		})
	})

	test('leaves the configuration itself untouched', () => {
		const config = loadConfig({ API_KEYS: 'SECRET-api-key-one-0123' })
		redactedConfig(config)
		expect(config.apiKeys).toEqual(['SECRET-api-key-one-0123'])
	})
})
