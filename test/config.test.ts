import { describe, expect, test } from 'bun:test'
import { type ConfigError, type Env, type EnvVar, loadConfig, parseBytes, parseRateLimit } from '../src/config'
import { configError } from './config/refused'

// Proves SPEC §2: defaults, the production checks, and that every bad value
// stops start-up with a ConfigError naming the variable in one line.

const SECRET = 's'.repeat(32)
const API_KEY = 'k'.repeat(16)

/** A production environment that loads; tests break one variable at a time. */
const PRODUCTION: Env = {
	NODE_ENV: 'production',
	JWT_SECRET: SECRET,
	REDIS_URL: 'redis://127.0.0.1:6379',
	API_KEYS: API_KEY,
}

/** Asserts `env` is refused because of `variable`, in one line that names it. */
function expectRefused(env: Env, variable: EnvVar): ConfigError {
	const err = configError(env)
	expect(err.variable).toBe(variable)
	expect(err.message).toContain(variable)
	expect(err.message).not.toMatch(/[\r\n]/)
	expect(err.message.trim()).not.toBe('')
	return err
}

describe('loadConfig defaults (development, nothing set)', () => {
	const config = loadConfig({})

	test('listens on 0.0.0.0:3000 with one worker', () => {
		expect(config.port).toBe(3000)
		expect(config.host).toBe('0.0.0.0')
		expect(config.workers).toBe(1)
		expect(config.production).toBe(false)
	})

	test('token lifetimes are 900 s by default and 86400 s at most', () => {
		expect(config.defaultTtlS).toBe(900)
		expect(config.maxTtlS).toBe(86_400)
	})

	test('keys are prefixed dlg:, files live in ./storage, the store is in memory', () => {
		expect(config.redisKeyPrefix).toBe('dlg:')
		expect(config.storageDir).toBe('./storage')
		expect(config.store).toEqual({ kind: 'memory' })
	})

	test('anyone may issue tokens, and that was not chosen explicitly', () => {
		expect(config.issueAuth).toBe('none')
		expect(config.issueAuthExplicit).toBe(false)
		expect(config.apiKeys).toEqual([])
		expect(config.authJwtSecret).toBeNull()
		expect(config.authJwksUrl).toBeNull()
		expect(config.authUserClaim).toBe('sub')
	})

	test('the JWT secret is generated, flagged, and long enough', () => {
		expect(config.jwtSecretGenerated).toBe(true)
		expect(Buffer.byteLength(config.jwtSecret)).toBeGreaterThanOrEqual(32)
		expect(config.jwtPreviousSecrets).toEqual([])
	})

	test('each load generates a different secret', () => {
		expect(loadConfig({}).jwtSecret).not.toBe(loadConfig({}).jwtSecret)
	})

	test('rate limits are 60/min for issuing and 30/min for denials', () => {
		expect(config.rateLimitIssue).toEqual({ limit: 60, windowS: 60 })
		expect(config.rateLimitDenied).toEqual({ limit: 30, windowS: 60 })
	})

	test('the resume allowance is 8 MiB', () => {
		expect(config.resumeAllowanceBytes).toBe(8_388_608)
	})

	test('the remaining defaults', () => {
		expect(config.publicBaseUrl).toBeNull()
		expect(config.trustProxy).toBe(false)
		expect(config.corsOrigins).toBe('*')
		expect(config.allowQueryToken).toBe(false)
		expect(config.shutdownGraceS).toBe(30)
		expect(config.logLevel).toBe('info')
	})

	test('empty values count as unset', () => {
		const blank = loadConfig({ PORT: '', HOST: '', WORKERS: '  ', JWT_SECRET: '', REDIS_URL: '', LOG_LEVEL: '' })
		expect(blank.port).toBe(3000)
		expect(blank.host).toBe('0.0.0.0')
		expect(blank.workers).toBe(1)
		expect(blank.jwtSecretGenerated).toBe(true)
		expect(blank.store).toEqual({ kind: 'memory' })
		expect(blank.logLevel).toBe('info')
	})
})

describe('loadConfig in production', () => {
	test('a complete production environment loads', () => {
		const config = loadConfig(PRODUCTION)
		expect(config.production).toBe(true)
		expect(config.jwtSecret).toBe(SECRET)
		expect(config.jwtSecretGenerated).toBe(false)
		expect(config.store).toEqual({ kind: 'redis', url: 'redis://127.0.0.1:6379' })
		expect(config.issueAuth).toBe('any')
		expect(config.apiKeys).toEqual([API_KEY])
	})

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

	test('without REDIS_URL it refuses to start', () => {
		expectRefused({ ...PRODUCTION, REDIS_URL: undefined }, 'REDIS_URL')
		expectRefused({ NODE_ENV: 'production', JWT_SECRET: SECRET, ISSUE_AUTH: 'none' }, 'REDIS_URL')
	})

	test('Redis Cluster seeds stand in for REDIS_URL', () => {
		const config = loadConfig({ ...PRODUCTION, REDIS_URL: undefined, REDIS_CLUSTER_NODES: 'n1:7000, n2:7001' })
		expect(config.store).toEqual({
			kind: 'cluster',
			nodes: [
				{ host: 'n1', port: 7000 },
				{ host: 'n2', port: 7001 },
			],
		})
	})

	test('Redis Sentinel stands in for REDIS_URL', () => {
		const config = loadConfig({
			...PRODUCTION,
			REDIS_URL: undefined,
			REDIS_SENTINELS: 's1:26379,s2:26380',
			REDIS_SENTINEL_NAME: 'mymaster',
		})
		expect(config.store).toEqual({
			kind: 'sentinel',
			sentinels: [
				{ host: 's1', port: 26379 },
				{ host: 's2', port: 26380 },
			],
			name: 'mymaster',
		})
	})

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

describe('loadConfig: numbers', () => {
	test.each(['abc', '70000', '65536', '-1', '3000.5', '1e3', '0x50', '+80', '80 80'])('PORT %p is refused', (port) => {
		expectRefused({ PORT: port }, 'PORT')
	})

	test('PORT 65535 and a padded value load', () => {
		expect(loadConfig({ PORT: '65535' }).port).toBe(65_535)
		expect(loadConfig({ PORT: ' 8080 ' }).port).toBe(8080)
	})

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

describe('loadConfig: Redis', () => {
	test.each(['http://x', 'https://redis.example.com', 'not a url', 'localhost:6379'])(
		'REDIS_URL %p is refused',
		(redisUrl) => {
			expectRefused({ REDIS_URL: redisUrl }, 'REDIS_URL')
		},
	)

	test('rediss:// is accepted', () => {
		expect(loadConfig({ REDIS_URL: 'rediss://user:pw@redis.example.com:6380/2' }).store).toEqual({
			kind: 'redis',
			url: 'rediss://user:pw@redis.example.com:6380/2',
		})
	})

	test.each(['{dlg}:', 'dlg{', 'dlg}', 'my app:'])('REDIS_KEY_PREFIX %p is refused', (prefix) => {
		expectRefused({ REDIS_KEY_PREFIX: prefix }, 'REDIS_KEY_PREFIX')
	})

	test('a plain REDIS_KEY_PREFIX is used', () => {
		expect(loadConfig({ REDIS_KEY_PREFIX: 'myapp:dl:' }).redisKeyPrefix).toBe('myapp:dl:')
	})

	test('REDIS_SENTINELS without REDIS_SENTINEL_NAME is refused', () => {
		expectRefused({ REDIS_SENTINELS: 's1:26379' }, 'REDIS_SENTINEL_NAME')
	})

	test.each(['a:b', 'a', ':6379', 'a:0', 'a:65536', 'a:123456', 'n1:7000,bad'])(
		'REDIS_CLUSTER_NODES %p is refused',
		(nodes) => {
			expectRefused({ REDIS_CLUSTER_NODES: nodes }, 'REDIS_CLUSTER_NODES')
		},
	)

	test('a bad sentinel address is refused', () => {
		expectRefused({ REDIS_SENTINELS: 's1:x', REDIS_SENTINEL_NAME: 'mymaster' }, 'REDIS_SENTINELS')
	})

	test('an IPv6 cluster seed in brackets is unwrapped', () => {
		expect(loadConfig({ REDIS_CLUSTER_NODES: '[::1]:7000' }).store).toEqual({
			kind: 'cluster',
			nodes: [{ host: '::1', port: 7000 }],
		})
	})

	test('REDIS_PASSWORD goes with a cluster', () => {
		expect(loadConfig({ REDIS_CLUSTER_NODES: 'n1:7000', REDIS_PASSWORD: 'pw' }).store).toEqual({
			kind: 'cluster',
			nodes: [{ host: 'n1', port: 7000 }],
			password: 'pw',
		})
	})
})

describe('loadConfig: other variables', () => {
	test('RATE_LIMIT_ISSUE "fast" is refused', () => {
		expectRefused({ RATE_LIMIT_ISSUE: 'fast' }, 'RATE_LIMIT_ISSUE')
	})

	test('RATE_LIMIT_DENIED "0/min" is refused', () => {
		expectRefused({ RATE_LIMIT_DENIED: '0/min' }, 'RATE_LIMIT_DENIED')
	})

	test('custom rate limits are parsed', () => {
		const config = loadConfig({ RATE_LIMIT_ISSUE: '100/10s', RATE_LIMIT_DENIED: '1000/hour' })
		expect(config.rateLimitIssue).toEqual({ limit: 100, windowS: 10 })
		expect(config.rateLimitDenied).toEqual({ limit: 1000, windowS: 3600 })
	})

	test('RESUME_ALLOWANCE "8 parsecs" is refused', () => {
		expectRefused({ RESUME_ALLOWANCE: '8 parsecs' }, 'RESUME_ALLOWANCE')
	})

	test('RESUME_ALLOWANCE accepts units and plain bytes', () => {
		expect(loadConfig({ RESUME_ALLOWANCE: '512KiB' }).resumeAllowanceBytes).toBe(524_288)
		expect(loadConfig({ RESUME_ALLOWANCE: '1048576' }).resumeAllowanceBytes).toBe(1_048_576)
		expect(loadConfig({ RESUME_ALLOWANCE: '0' }).resumeAllowanceBytes).toBe(0)
	})

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

	test.each(['not a url', 'https://app.example.com/path', 'app.example.com', 'https://a.example.com,nope'])(
		'CORS_ORIGINS %p is refused',
		(origins) => {
			expectRefused({ CORS_ORIGINS: origins }, 'CORS_ORIGINS')
		},
	)

	test('CORS_ORIGINS is a list of origins, trailing slashes dropped', () => {
		expect(loadConfig({ CORS_ORIGINS: 'https://a.example.com, http://localhost:5173/' }).corsOrigins).toEqual([
			'https://a.example.com',
			'http://localhost:5173',
		])
		expect(loadConfig({ CORS_ORIGINS: '*' }).corsOrigins).toBe('*')
	})

	test('PUBLIC_BASE_URL loses its trailing slash', () => {
		expect(loadConfig({ PUBLIC_BASE_URL: 'https://files.example.com/' }).publicBaseUrl).toBe(
			'https://files.example.com',
		)
		expect(loadConfig({ PUBLIC_BASE_URL: 'https://example.com/dl//' }).publicBaseUrl).toBe('https://example.com/dl')
		expect(loadConfig({ PUBLIC_BASE_URL: 'http://localhost:3000' }).publicBaseUrl).toBe('http://localhost:3000')
	})

	test.each(['files.example.com', 'ftp://files.example.com', 'not a url'])('PUBLIC_BASE_URL %p is refused', (base) => {
		expectRefused({ PUBLIC_BASE_URL: base }, 'PUBLIC_BASE_URL')
	})

	test('variables the service does not know are ignored', () => {
		const env: Record<string, string> = { PATH: '/usr/bin', SOMETHING_ELSE: 'x' }
		expect(loadConfig(env).port).toBe(3000)
	})
})

describe('loadConfig: the error line', () => {
	test('ConfigError is an Error named ConfigError', () => {
		const err = configError({ PORT: 'abc' })
		expect(err).toBeInstanceOf(Error)
		expect(err.name).toBe('ConfigError')
		expect(err.message.startsWith('PORT')).toBe(true)
	})

	// A value read from a .env file may hold a newline; echoing it raw would
	// split the "one clear line" into two (and let a value forge a log line).
	test.each([
		['PORT', '80\n80'],
		['LOG_LEVEL', 'loud\nERROR fake'],
		['TRUST_PROXY', 'maybe\r\nno'],
		['RATE_LIMIT_ISSUE', 'fast\nx'],
		['RESUME_ALLOWANCE', '8 parsecs\nx'],
		['ISSUE_AUTH', 'some\nthing'],
		['CORS_ORIGINS', 'https://a.example.com\nx'],
		['REDIS_CLUSTER_NODES', 'a:b\nc'],
		['PUBLIC_BASE_URL', 'not a url\nx'],
	] as const)('%s with a newline in its value still fails in one line', (variable, value) => {
		expectRefused({ [variable]: value }, variable)
	})
})

describe('loadConfig: the result is frozen', () => {
	const config = loadConfig({
		API_KEYS: API_KEY,
		CORS_ORIGINS: 'https://a.example.com',
		JWT_PREVIOUS_SECRETS: SECRET,
		REDIS_CLUSTER_NODES: 'n1:7000',
	})

	test('the top level cannot be changed', () => {
		expect(Object.isFrozen(config)).toBe(true)
		expect(() => {
			;(config as { port: number }).port = 1
		}).toThrow(TypeError)
		expect(config.port).toBe(3000)
	})

	test('nested lists and records cannot be changed either', () => {
		expect(Object.isFrozen(config.apiKeys)).toBe(true)
		expect(Object.isFrozen(config.jwtPreviousSecrets)).toBe(true)
		expect(Object.isFrozen(config.corsOrigins)).toBe(true)
		expect(Object.isFrozen(config.store)).toBe(true)
		expect(Object.isFrozen(config.rateLimitIssue)).toBe(true)
		expect(Object.isFrozen(config.rateLimitDenied)).toBe(true)
		expect(() => {
			;(config.apiKeys as string[]).push('attacker-key-0000')
		}).toThrow(TypeError)
		expect(config.apiKeys).toEqual([API_KEY])
	})
})

describe('parseBytes', () => {
	test.each([
		['8MiB', 8_388_608],
		['8mib', 8_388_608],
		['8 MiB', 8_388_608],
		[' 8MiB ', 8_388_608],
		['500kb', 500_000],
		['500KB', 500_000],
		['1KiB', 1024],
		['1kib', 1024],
		['2mb', 2_000_000],
		['1GiB', 1_073_741_824],
		['1gb', 1_000_000_000],
		['12b', 12],
		['12B', 12],
		['1048576', 1_048_576],
		['0', 0],
		['007', 7],
		['9007199254740991', 9_007_199_254_740_991],
		['8388607GiB', 8_388_607 * 1024 ** 3],
	])('%p is %p bytes', (raw, bytes) => {
		expect(parseBytes(raw)).toBe(bytes)
	})

	test.each([
		'',
		'   ',
		'MiB',
		'8 parsecs',
		'8MiBs',
		'1.5MiB',
		'-1',
		'-1MiB',
		'+1',
		'0x10',
		'1e6',
		'8 MiB extra',
		'8MiB8',
		'MiB8',
		'\uff18MiB',
		'9007199254740992',
		'99999999999999999999',
		'8388608GiB',
	])('%p is not a size', (raw) => {
		expect(parseBytes(raw)).toBeNull()
	})
})

describe('parseRateLimit', () => {
	test.each([
		['60/min', { limit: 60, windowS: 60 }],
		['30/min', { limit: 30, windowS: 60 }],
		['30/10s', { limit: 30, windowS: 10 }],
		['1000/hour', { limit: 1000, windowS: 3600 }],
		['5/s', { limit: 5, windowS: 1 }],
		['5/sec', { limit: 5, windowS: 1 }],
		['2/h', { limit: 2, windowS: 3600 }],
		['2/m', { limit: 2, windowS: 60 }],
		['10/5min', { limit: 10, windowS: 300 }],
		['60 / min', { limit: 60, windowS: 60 }],
		[' 60/min ', { limit: 60, windowS: 60 }],
		['60/MIN', { limit: 60, windowS: 60 }],
	])('%p is parsed', (raw, expected) => {
		expect(parseRateLimit(raw)).toEqual(expected)
	})

	test.each([
		'',
		'fast',
		'60',
		'60/',
		'/min',
		'60/10',
		'0/min',
		'60/0s',
		'-1/min',
		'1.5/min',
		'60/parsec',
		'60/min/extra',
		'60 per min',
		'60/-1s',
	])('%p is not a rate limit', (raw) => {
		expect(parseRateLimit(raw)).toBeNull()
	})
})

describe('the process', () => {
	/** Runs `bun src/index.ts` with exactly `env`; kills it if it has not exited in 10 s. */
	async function start(env: Record<string, string>) {
		const proc = Bun.spawn([process.execPath, '--no-env-file', 'src/index.ts'], {
			cwd: new URL('../', import.meta.url).pathname,
			env,
			stdin: 'ignore',
			stdout: 'pipe',
			stderr: 'pipe',
			timeout: 10_000,
			killSignal: 'SIGKILL',
		})
		const [stdout, stderr, exitCode] = await Promise.all([
			new Response(proc.stdout).text(),
			new Response(proc.stderr).text(),
			proc.exited,
		])
		return { stdout, stderr, exitCode, signalCode: proc.signalCode }
	}

	/** Asserts the process exited 1 by itself with exactly one non-empty stderr line; returns the lines. */
	function expectOneLineExit(run: Awaited<ReturnType<typeof start>>): string[] {
		expect(run.signalCode).toBeNull()
		expect(run.exitCode).toBe(1)
		const lines = run.stderr.split('\n').filter((line) => line.trim() !== '')
		expect(lines).toHaveLength(1)
		return lines
	}

	const baseEnv = () => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' })

	test('production without JWT_SECRET exits 1 with one line naming JWT_SECRET', async () => {
		const run = await start({ ...baseEnv(), NODE_ENV: 'production' })
		const lines = expectOneLineExit(run)
		expect(lines[0]).toContain('JWT_SECRET')
		expect(run.stderr.trim()).not.toMatch(/[\r\n]/)
	})

	test('a bad PORT exits 1 with one line naming PORT, before reaching Redis', async () => {
		const run = await start({
			...baseEnv(),
			NODE_ENV: 'production',
			JWT_SECRET: SECRET,
			ISSUE_AUTH: 'none',
			// Nothing listens here; the config error must come first.
			REDIS_URL: 'redis://127.0.0.1:1',
			PORT: 'abc',
		})
		const lines = expectOneLineExit(run)
		expect(lines[0]).toContain('PORT')
		expect(lines[0]).not.toContain(SECRET)
	})

	test('two Redis topologies exit 1 with one line naming both, before reaching Redis', async () => {
		const run = await start({
			...baseEnv(),
			JWT_SECRET: SECRET,
			// Nothing listens on either; the conflict must be reported first.
			REDIS_URL: 'redis://127.0.0.1:1',
			REDIS_CLUSTER_NODES: '127.0.0.1:2',
		})
		const lines = expectOneLineExit(run)
		expect(lines[0]).toContain('REDIS_URL')
		expect(lines[0]).toContain('REDIS_CLUSTER_NODES')
		expect(lines[0]).not.toContain(SECRET)
	})
})
