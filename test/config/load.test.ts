import { describe, expect, test } from 'bun:test'
import { loadConfig } from '../../src/config'
import { API_KEY, configError, expectRefused, PRODUCTION, SECRET } from './refused'

// Proves docs/contract.md §2 for loadConfig as a whole: the defaults, a
// production environment that loads, the one-line error, the frozen result,
// and the process that exits 1 with that line.

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
		expect(config.storage).toEqual({ kind: 'disk', dir: './storage' })
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
})

describe('loadConfig: unknown variables', () => {
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

describe('the process', () => {
	/** Runs `bun src/index.ts` with exactly `env`; kills it if it has not exited in 10 s. */
	async function start(env: Record<string, string>) {
		const proc = Bun.spawn([process.execPath, '--no-env-file', 'src/index.ts'], {
			cwd: new URL('../../', import.meta.url).pathname,
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
