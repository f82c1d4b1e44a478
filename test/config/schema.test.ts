import { describe, expect, test } from 'bun:test'
import { CONFIG_DESCRIPTIONS, type EnvVar, KNOWN_ENV_VARS, loadConfig } from '../../src/config'
import { expectRefused } from './refused'

// Proves the configuration is one schema: the list of variables and their
// descriptions come from it, and every variable goes through the same reading
// rules: integers, booleans, choices and patterns are checked by their kind.

/** The variables of docs/contract.md §2, in README order. */
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
	'OPEN_FILE_CACHE_VALID',
	'OPEN_FILE_CACHE_MAX',
	'S3_BUCKET',
	'S3_ENDPOINT',
	'S3_REGION',
	'S3_ACCESS_KEY_ID',
	'S3_SECRET_ACCESS_KEY',
	'S3_SESSION_TOKEN',
	'AWS_ACCESS_KEY_ID',
	'AWS_SECRET_ACCESS_KEY',
	'AWS_SESSION_TOKEN',
	'S3_PREFIX',
	'S3_VIRTUAL_HOSTED_STYLE',
	'S3_REDIRECT',
	'S3_REDIRECT_TTL',
	'EVENTS',
	'EVENTS_MAX_LEN',
	'WEBHOOK_URLS',
	'WEBHOOK_SECRET',
	'WEBHOOK_EVENTS',
	'WEBHOOK_TIMEOUT_S',
	'WEBHOOK_MAX_AGE',
	'PUBLIC_BASE_URL',
	'TRUST_PROXY',
	'DEFAULT_TTL',
	'MAX_TTL',
	'EXPIRY_GRACE_S',
	'MAX_LIVE_TOKENS_PER_USER',
	'MAX_CONCURRENT_DOWNLOADS_PER_USER',
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
	test('list every variable of docs/contract.md §2 once, in README order', () => {
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

describe('PORT', () => {
	test.each(['abc', '70000', '65536', '-1', '3000.5', '1e3', '0x50', '+80', '80 80'])('PORT %p is refused', (port) => {
		expectRefused({ PORT: port }, 'PORT')
	})

	test('PORT 65535 and a padded value load', () => {
		expect(loadConfig({ PORT: '65535' }).port).toBe(65_535)
		expect(loadConfig({ PORT: ' 8080 ' }).port).toBe(8080)
	})
})

describe('booleans, choices and patterns', () => {
	test('LOG_LEVEL "loud" is refused; levels are case-insensitive', () => {
		expectRefused({ LOG_LEVEL: 'loud' }, 'LOG_LEVEL')
		expect(loadConfig({ LOG_LEVEL: 'DEBUG' }).logLevel).toBe('debug')
		expect(loadConfig({ LOG_LEVEL: 'silent' }).logLevel).toBe('silent')
	})

	test('TRUST_PROXY "maybe" is refused', () => {
		expectRefused({ TRUST_PROXY: 'maybe' }, 'TRUST_PROXY')
	})

	test.each([
		['true', true],
		['TRUE', true],
		['1', true],
		['yes', true],
		['on', true],
		['false', false],
		['0', false],
		['no', false],
		['off', false],
	] as const)('TRUST_PROXY %p is %p', (raw, expected) => {
		expect(loadConfig({ TRUST_PROXY: raw }).trustProxy).toBe(expected)
	})

	test('ALLOW_QUERY_TOKEN "sometimes" is refused', () => {
		expectRefused({ ALLOW_QUERY_TOKEN: 'sometimes' }, 'ALLOW_QUERY_TOKEN')
	})

	test.each(['{dlg}:', 'dlg{', 'dlg}', 'my app:'])('REDIS_KEY_PREFIX %p is refused', (prefix) => {
		expectRefused({ REDIS_KEY_PREFIX: prefix }, 'REDIS_KEY_PREFIX')
	})

	test('a plain REDIS_KEY_PREFIX is used', () => {
		expect(loadConfig({ REDIS_KEY_PREFIX: 'myapp:dl:' }).redisKeyPrefix).toBe('myapp:dl:')
	})
})
