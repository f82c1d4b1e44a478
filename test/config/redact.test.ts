import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import {
	CONFIG_DESCRIPTIONS,
	type Env,
	type EnvVar,
	KNOWN_ENV_VARS,
	loadConfig,
	redactedConfig,
	SECRET_ENV_VARS,
} from '../../src/config'

// Proves the start-up log line never holds a secret: what is masked follows
// from the schema's `secret` flags, not from a list of Config fields.

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

/** Every string the log line would carry (the values; field names are the code's own). */
const loggedStrings = (value: unknown): string[] => {
	if (typeof value === 'string') return [value]
	if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(loggedStrings)
	return []
}

describe('SECRET_ENV_VARS', () => {
	test('holds at least the secrets of docs/contract.md §2, in README order', () => {
		const today: EnvVar[] = [
			'JWT_SECRET',
			'JWT_PREVIOUS_SECRETS',
			'REDIS_PASSWORD',
			'REDIS_SENTINEL_PASSWORD',
			'API_KEYS',
			'AUTH_JWT_SECRET',
			'METRICS_TOKEN',
		]
		expect(SECRET_ENV_VARS).toEqual(expect.arrayContaining(today))
		expect(SECRET_ENV_VARS).toEqual(KNOWN_ENV_VARS.filter((name) => SECRET_ENV_VARS.includes(name)))
		expect(Object.isFrozen(SECRET_ENV_VARS)).toBe(true)
	})

	test('does not flag the variables that are not secret', () => {
		expect(SECRET_ENV_VARS).not.toContain('REDIS_URL')
		expect(SECRET_ENV_VARS).not.toContain('REDIS_USERNAME')
		expect(SECRET_ENV_VARS.length).toBeLessThan(Object.keys(CONFIG_DESCRIPTIONS).length)
	})
})

// Driven by the schema's own flags: a variable flagged `secret` tomorrow is
// covered here without editing this file, unless it needs others to load.
describe('every variable flagged secret stays out of the start-up line', () => {
	/** What a secret variable needs beside it to load at all. */
	const SENTINEL: Env = { REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'mymaster' }
	const S3_KEY = { S3_BUCKET: 'b', S3_ACCESS_KEY_ID: 'key-id' }
	const AWS_KEY = { S3_BUCKET: 'b', AWS_ACCESS_KEY_ID: 'key-id' }
	const NEEDS: Partial<Record<EnvVar, Env>> = {
		REDIS_PASSWORD: SENTINEL,
		REDIS_SENTINEL_PASSWORD: SENTINEL,
		S3_SECRET_ACCESS_KEY: S3_KEY,
		S3_SESSION_TOKEN: { ...S3_KEY, S3_SECRET_ACCESS_KEY: 'secret' },
		AWS_SECRET_ACCESS_KEY: AWS_KEY,
		AWS_SESSION_TOKEN: { ...AWS_KEY, AWS_SECRET_ACCESS_KEY: 'secret' },
		// Webhooks need Redis: the sentinels here, as the Redis secrets need them (two topologies would be refused).
		WEBHOOK_URLS: { ...SENTINEL, WEBHOOK_SECRET: `whsec_${'A'.repeat(32)}` },
		WEBHOOK_SECRET: { ...SENTINEL, WEBHOOK_URLS: 'https://hooks.example.com/in' },
	}
	// The AWS_ spellings name the same secrets as the S3_ ones, and two different values for one are refused.
	const AWS_SPELLINGS: readonly EnvVar[] = ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']
	// Two entries, each long enough for any secret's minimum; a single-value secret takes the comma as part of it.
	// Secrets with a form of their own (URLs, a whsec_ key) carry the same markers in that form.
	const distinctive = (name: EnvVar) => {
		if (name === 'WEBHOOK_URLS')
			return `https://hooks.example.com/LEAK-${name}-one-,https://hooks.example.com/LEAK-${name}-two-`
		// base64 has no dash: the markers are spelled without them, and found by that spelling below.
		if (name === 'WEBHOOK_SECRET')
			return `whsec_LEAK${name.replace('_', '')}one0123456789abcdeLEAK${name.replace('_', '')}two0123456789abcd`
		return `LEAK-${name}-one-0123456789abcdefghijklmnopqrstuvwxyz,LEAK-${name}-two-0123456789abcdefghijklmnopqrstuvwxyz`
	}
	const markers = (name: EnvVar) =>
		name === 'WEBHOOK_SECRET'
			? [`LEAK${name.replace('_', '')}one`, `LEAK${name.replace('_', '')}two`]
			: [`LEAK-${name}-one-`, `LEAK-${name}-two-`]

	test.each([...SECRET_ENV_VARS])('%s', (name) => {
		const config = loadConfig({ ...NEEDS[name], [name]: distinctive(name) })
		// The value did reach the configuration, so its absence below is the redaction's doing.
		for (const marker of markers(name)) expect(JSON.stringify(config)).toContain(marker)
		expect(JSON.stringify(redactedConfig(config))).not.toContain('LEAK')
	})

	test.each([
		['S3_', (name: EnvVar) => !AWS_SPELLINGS.includes(name)],
		['AWS_', (name: EnvVar) => !name.startsWith('S3_')],
	] as const)('all of them at once, in production (%s spellings of the bucket secrets)', (_, chosen) => {
		const env: Env = { NODE_ENV: 'production' }
		const names = SECRET_ENV_VARS.filter(chosen)
		for (const name of names) Object.assign(env, NEEDS[name])
		for (const name of names) Object.assign(env, { [name]: distinctive(name) })
		const config = loadConfig(env)
		expect(config.production).toBe(true)
		for (const name of names) for (const marker of markers(name)) expect(JSON.stringify(config)).toContain(marker)
		expect(JSON.stringify(redactedConfig(config))).not.toContain('LEAK')
	})

	test('any list of API keys, whatever its characters', () => {
		const key = fc
			.string({ unit: 'grapheme', minLength: 16, maxLength: 40 })
			.filter((k) => k === k.trim() && !k.includes(',') && !/\p{Cc}/u.test(k) && Buffer.byteLength(k) >= 16)
		fc.assert(
			fc.property(fc.uniqueArray(key, { minLength: 1, maxLength: 3 }), (keys) => {
				const config = loadConfig({ API_KEYS: keys.join(',') })
				expect(config.apiKeys).toEqual(keys)
				const logged = loggedStrings(redactedConfig(config))
				for (const k of keys) expect(logged.filter((s) => s.includes(k))).toEqual([])
			}),
		)
	})
})

describe('secrets inside other values', () => {
	test('REDIS_PASSWORD with a single Redis is masked', () => {
		const logged = redactedConfig(loadConfig({ REDIS_URL: 'redis://h:6379', REDIS_PASSWORD: 'LEAK-redis-pw' }))
		expect(JSON.stringify(logged)).not.toContain('LEAK-')
		expect(logged.store).toEqual({ kind: 'redis', url: 'redis://h:6379', password: '***' })
	})

	test.each([
		['redis://app:LEAK-p@ss-word@h:6379/0', 'redis://app:***@h:6379/0'],
		['redis://app:LEAK-p%40ss-word@h:6379/0', 'redis://app:***@h:6379/0'],
		['rediss://:LEAK-pw@h:6380', 'rediss://:***@h:6380'],
	])('the password of REDIS_URL %p is masked however it is written', (url, masked) => {
		const logged = redactedConfig(loadConfig({ REDIS_URL: url }))
		expect(JSON.stringify(logged)).not.toContain('LEAK-')
		expect(logged.store).toEqual({ kind: 'redis', url: masked })
	})

	test('the password of a URL in any variable is masked', () => {
		const logged = redactedConfig(loadConfig({ PUBLIC_BASE_URL: 'https://user:LEAK-base-pw@files.example.com/' }))
		expect(logged.publicBaseUrl).toBe('https://user:***@files.example.com')
	})

	test('a secret is masked where it appears inside another value', () => {
		const token = 'LEAK-metrics-token-0123'
		const logged = redactedConfig(loadConfig({ METRICS_TOKEN: token, STORAGE_DIR: `/srv/${token}/files` }))
		expect(logged.storage).toEqual({ kind: 'disk', dir: '/srv/***/files' })
		expect(logged.metricsToken).toBe('***')
	})

	test('a secret that contains another is masked whole, not around the shorter one', () => {
		const logged = redactedConfig(
			loadConfig({ METRICS_TOKEN: 'LEAK-shared-0123456', API_KEYS: 'LEAK-shared-0123456-and-more' }),
		)
		expect(logged.apiKeys).toEqual(['***'])
		expect(JSON.stringify(logged)).not.toContain('and-more')
	})
})

describe('the secrets are kept beside the configuration, not on it', () => {
	test('the configuration carries no property beyond its fields, and the log line the same fields', () => {
		const config = loadConfig({ API_KEYS: 'LEAK-api-key-0123456', METRICS_TOKEN: 'LEAK-metrics-0123456' })
		expect(Reflect.ownKeys(config)).toEqual(Object.keys(config))
		expect(Object.keys(redactedConfig(config))).toEqual(Object.keys(config))
	})

	test('a copy of a configuration is refused rather than logged unmasked', () => {
		const config = loadConfig({ API_KEYS: 'LEAK-api-key-0123456' })
		expect(() => redactedConfig({ ...config })).toThrow('redactedConfig needs a config returned by loadConfig')
	})
})
