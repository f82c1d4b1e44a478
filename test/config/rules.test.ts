import { describe, expect, test } from 'bun:test'
import { loadConfig } from '../../src/config'
import { API_KEY, expectRefused, PRODUCTION, SECRET } from './refused'

// Proves the rules of docs/contract.md §2 that span variables (other than
// Redis's): JWT_SECRET in production and development, who may issue tokens,
// WORKERS, and the token lifetimes.

describe('loadConfig in production: JWT_SECRET', () => {
	test('without JWT_SECRET it refuses to start', () => {
		expectRefused({ ...PRODUCTION, JWT_SECRET: undefined }, 'JWT_SECRET')
	})

	test('with only NODE_ENV=production it names JWT_SECRET', () => {
		expectRefused({ NODE_ENV: 'production' }, 'JWT_SECRET')
	})

	test('a 31-byte secret is refused, a 32-byte one accepted', () => {
		expectRefused({ ...PRODUCTION, JWT_SECRET: 'x'.repeat(31) }, 'JWT_SECRET')
		expect(loadConfig({ ...PRODUCTION, JWT_SECRET: 'x'.repeat(32) }).jwtSecret).toBe('x'.repeat(32))
	})

	test('the secret length is counted in bytes, not characters', () => {
		expectRefused({ ...PRODUCTION, JWT_SECRET: `${'é'.repeat(15)}x` }, 'JWT_SECRET')
		expect(loadConfig({ ...PRODUCTION, JWT_SECRET: 'é'.repeat(16) }).jwtSecret).toBe('é'.repeat(16))
	})

	test('padding a short secret with spaces does not make it long enough', () => {
		expectRefused({ ...PRODUCTION, JWT_SECRET: `  ${'x'.repeat(31)}  ` }, 'JWT_SECRET')
	})

	test('the error for a short secret does not print the secret', () => {
		const secret = 'hunter2-but-longer-0123456789ab'
		const err = expectRefused({ ...PRODUCTION, JWT_SECRET: secret }, 'JWT_SECRET')
		expect(err.message).not.toContain(secret)
	})
})

describe('loadConfig: secrets in development', () => {
	test('a JWT_SECRET that is set must be long enough even in development', () => {
		expectRefused({ JWT_SECRET: 'short' }, 'JWT_SECRET')
	})

	test('a set JWT_SECRET is used and not flagged as generated', () => {
		const config = loadConfig({ JWT_SECRET: SECRET })
		expect(config.jwtSecret).toBe(SECRET)
		expect(config.jwtSecretGenerated).toBe(false)
	})

	test('previous secrets are a comma-separated list, each long enough', () => {
		const older = 'o'.repeat(40)
		expect(loadConfig({ JWT_PREVIOUS_SECRETS: `${SECRET}, ${older}` }).jwtPreviousSecrets).toEqual([SECRET, older])
		expectRefused({ JWT_PREVIOUS_SECRETS: `${SECRET},tooshort` }, 'JWT_PREVIOUS_SECRETS')
	})
})

describe('loadConfig in production: issuing auth', () => {
	test('no API_KEYS, no AUTH_* and ISSUE_AUTH unset: it names ISSUE_AUTH', () => {
		expectRefused({ ...PRODUCTION, API_KEYS: undefined }, 'ISSUE_AUTH')
	})

	test('ISSUE_AUTH=auto spelled out behaves like unset', () => {
		expectRefused({ ...PRODUCTION, API_KEYS: undefined, ISSUE_AUTH: 'auto' }, 'ISSUE_AUTH')
	})

	test('ISSUE_AUTH=none chosen explicitly is allowed and flagged', () => {
		const config = loadConfig({ ...PRODUCTION, API_KEYS: undefined, ISSUE_AUTH: 'none' })
		expect(config.issueAuth).toBe('none')
		expect(config.issueAuthExplicit).toBe(true)
	})

	test('AUTH_JWT_SECRET alone makes auto resolve to any', () => {
		const config = loadConfig({ ...PRODUCTION, API_KEYS: undefined, AUTH_JWT_SECRET: 'a'.repeat(32) })
		expect(config.issueAuth).toBe('any')
		expect(config.issueAuthExplicit).toBe(false)
		expect(config.authJwtSecret).toBe('a'.repeat(32))
	})

	test('AUTH_JWKS_URL alone makes auto resolve to any', () => {
		const jwks = 'https://id.example.com/.well-known/jwks.json'
		const config = loadConfig({ ...PRODUCTION, API_KEYS: undefined, AUTH_JWKS_URL: jwks })
		expect(config.issueAuth).toBe('any')
		expect(config.authJwksUrl).toBe(jwks)
	})
})

describe('loadConfig: issuing auth', () => {
	test('API_KEYS set: auto resolves to any', () => {
		const config = loadConfig({ API_KEYS: `${API_KEY}, ${'j'.repeat(20)}` })
		expect(config.issueAuth).toBe('any')
		expect(config.issueAuthExplicit).toBe(false)
		expect(config.apiKeys).toEqual([API_KEY, 'j'.repeat(20)])
	})

	test('ISSUE_AUTH=api-key without keys names API_KEYS', () => {
		expectRefused({ ISSUE_AUTH: 'api-key' }, 'API_KEYS')
	})

	test('ISSUE_AUTH=any without any way to authenticate names API_KEYS', () => {
		expectRefused({ ISSUE_AUTH: 'any' }, 'API_KEYS')
	})

	test('ISSUE_AUTH=user-jwt without a verifier names AUTH_JWT_SECRET', () => {
		expectRefused({ ISSUE_AUTH: 'user-jwt' }, 'AUTH_JWT_SECRET')
	})

	test('ISSUE_AUTH=api-key with keys loads', () => {
		const config = loadConfig({ ISSUE_AUTH: 'api-key', API_KEYS: API_KEY })
		expect(config.issueAuth).toBe('api-key')
		expect(config.issueAuthExplicit).toBe(true)
	})

	test('ISSUE_AUTH=none in development is explicit', () => {
		expect(loadConfig({ ISSUE_AUTH: 'none' }).issueAuthExplicit).toBe(true)
	})

	test('an unknown ISSUE_AUTH is refused', () => {
		expectRefused({ ISSUE_AUTH: 'sometimes' }, 'ISSUE_AUTH')
	})

	test('a key shorter than 16 bytes is refused without printing it', () => {
		const err = expectRefused({ API_KEYS: `${API_KEY},short-key` }, 'API_KEYS')
		expect(err.message).not.toContain('short-key')
	})

	test('AUTH_JWT_SECRET and AUTH_JWKS_URL together are refused', () => {
		expectRefused(
			{ AUTH_JWT_SECRET: 'a'.repeat(32), AUTH_JWKS_URL: 'https://id.example.com/jwks.json' },
			'AUTH_JWKS_URL',
		)
	})

	test('a short AUTH_JWT_SECRET is refused', () => {
		expectRefused({ AUTH_JWT_SECRET: 'a'.repeat(31) }, 'AUTH_JWT_SECRET')
	})

	test('AUTH_JWKS_URL must be a URL', () => {
		expectRefused({ AUTH_JWKS_URL: 'jwks.json' }, 'AUTH_JWKS_URL')
	})
})

describe('loadConfig: workers and token lifetimes', () => {
	test('WORKERS=2 with the in-memory store is refused', () => {
		expectRefused({ WORKERS: '2' }, 'WORKERS')
	})

	test('WORKERS=2 with Redis loads', () => {
		expect(loadConfig({ WORKERS: '2', REDIS_URL: 'redis://127.0.0.1:6379' }).workers).toBe(2)
	})

	test.each(['0', 'many', '-2', '1.5'])('WORKERS %p is refused', (workers) => {
		expectRefused({ WORKERS: workers, REDIS_URL: 'redis://127.0.0.1:6379' }, 'WORKERS')
	})

	test('DEFAULT_TTL greater than MAX_TTL names DEFAULT_TTL', () => {
		expectRefused({ DEFAULT_TTL: '1000', MAX_TTL: '999' }, 'DEFAULT_TTL')
		expectRefused({ DEFAULT_TTL: '86401' }, 'DEFAULT_TTL')
	})

	test('DEFAULT_TTL equal to MAX_TTL loads', () => {
		const config = loadConfig({ DEFAULT_TTL: '600', MAX_TTL: '600' })
		expect(config.defaultTtlS).toBe(600)
		expect(config.maxTtlS).toBe(600)
	})

	test('lowering MAX_TTL below 900 alone still loads, with a default within it', () => {
		const config = loadConfig({ MAX_TTL: '300' })
		expect(config.maxTtlS).toBe(300)
		expect(config.defaultTtlS).toBeLessThanOrEqual(300)
		expect(config.defaultTtlS).toBeGreaterThanOrEqual(1)
	})

	test.each([
		['DEFAULT_TTL', '0'],
		['DEFAULT_TTL', 'ten'],
		['MAX_TTL', '0'],
		['MAX_TTL', '-5'],
		['SHUTDOWN_GRACE_S', 'soon'],
	] as const)('%s=%p is refused', (variable, value) => {
		expectRefused({ [variable]: value }, variable)
	})
})
