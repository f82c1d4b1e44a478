import { describe, expect, test } from 'bun:test'
import { type Env, loadConfig, redactedConfig } from '../../src/config'

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
