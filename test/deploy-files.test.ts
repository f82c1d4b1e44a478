import { describe, expect, test } from 'bun:test'
import { KNOWN_ENV_VARS } from '../src/config'

// Proves the deployment files (Dockerfile, docker-compose.yml, .env.example)
// agree with each other and only set variables the config accepts.

const root = new URL('../', import.meta.url)

async function readRepoFile(path: string): Promise<string> {
	return Bun.file(new URL(path, root)).text()
}

// Variables set in our Dockerfile that the service itself does not read.
// None today: the base image's own ENV (PATH, BUN_*) is not in our file.
const DOCKERFILE_IMAGE_INTERNALS: readonly string[] = []

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

function isObject(value: unknown): value is JsonObject {
	return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function objectAt(value: unknown, key: string): JsonObject {
	if (!isObject(value)) throw new Error(`expected a mapping holding "${key}"`)
	const child = value[key]
	if (!isObject(child)) throw new Error(`"${key}" is not a mapping`)
	return child
}

function stringList(value: Json | undefined): string[] {
	if (value === undefined || value === null) return []
	if (typeof value === 'string') return value.split(/\s+/).filter(Boolean)
	if (Array.isArray(value)) return value.map((item) => String(item))
	throw new Error('expected a string or a list')
}

// ---- Dockerfile -------------------------------------------------------------

interface Instruction {
	readonly keyword: string
	readonly args: string
	readonly stage: number
}

/** Splits a Dockerfile into instructions: comments dropped, `\` continuations joined, stages numbered by FROM. */
function parseDockerfile(text: string): Instruction[] {
	const instructions: Instruction[] = []
	let stage = -1
	let pending = ''
	for (const raw of text.split('\n')) {
		const line = raw.trim()
		if (pending === '' && (line === '' || line.startsWith('#'))) continue
		if (line.startsWith('#')) continue
		if (line.endsWith('\\')) {
			pending += `${line.slice(0, -1).trim()} `
			continue
		}
		const full = (pending + line).trim()
		pending = ''
		if (full === '') continue
		const match = /^(\S+)\s*(.*)$/.exec(full)
		if (match === null) continue
		const keyword = (match[1] ?? '').toUpperCase()
		if (keyword === 'FROM') stage += 1
		instructions.push({ keyword, args: match[2] ?? '', stage })
	}
	return instructions
}

/** ENV keys of `ENV A=1 B=2` and of the legacy `ENV A 1` form. */
function dockerfileEnvKeys(args: string): string[] {
	const trimmed = args.trim()
	const first = /^([A-Za-z_][A-Za-z0-9_]*)(=|\s)/.exec(trimmed)
	if (first === null) return []
	if (first[2] !== '=') return [first[1] ?? '']
	const keys: string[] = []
	const pair = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g
	for (const m of trimmed.matchAll(pair)) keys.push(m[1] ?? '')
	return keys
}

function envValue(instructions: Instruction[], key: string): string | undefined {
	let value: string | undefined
	for (const { keyword, args } of instructions) {
		if (keyword !== 'ENV') continue
		const m = new RegExp(`(?:^|\\s)${key}=("[^"]*"|\\S*)`).exec(args)
		if (m?.[1] !== undefined) value = m[1].replace(/^"|"$/g, '')
	}
	return value
}

// ---- docker-compose ---------------------------------------------------------

/** A service's `environment`, given as a map (`KEY: value`) or a list (`- KEY=value`); a bare `KEY` passes the host value through (undefined). */
function composeEnvironment(environment: Json | undefined): Map<string, string | undefined> {
	const env = new Map<string, string | undefined>()
	if (environment === undefined || environment === null) return env
	if (Array.isArray(environment)) {
		for (const item of environment) {
			if (typeof item !== 'string') throw new Error(`environment entry is not a string: ${JSON.stringify(item)}`)
			const eq = item.indexOf('=')
			if (eq === -1) env.set(item.trim(), undefined)
			else env.set(item.slice(0, eq).trim(), item.slice(eq + 1))
		}
		return env
	}
	if (isObject(environment)) {
		for (const [key, value] of Object.entries(environment)) {
			if (value === null) env.set(key, undefined)
			else if (typeof value === 'object') throw new Error(`environment ${key} is not a scalar`)
			else env.set(key, String(value))
		}
		return env
	}
	throw new Error('environment must be a map or a list')
}

/** Names read from the host by `${NAME}`, `${NAME:-x}`, `${NAME:?msg}` … anywhere in the compose text. */
function interpolatedNames(text: string): Set<string> {
	return new Set([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1] ?? ''))
}

function isServiceHealthyDependency(dependsOn: Json | undefined, service: string): boolean {
	if (!isObject(dependsOn)) return false
	const entry = dependsOn[service]
	return isObject(entry) && entry.condition === 'service_healthy'
}

function portTargets(ports: Json | undefined): string[] {
	if (!Array.isArray(ports)) return []
	return ports.map((port) => {
		if (isObject(port)) return `${String(port.published ?? '')}:${String(port.target ?? '')}`
		return String(port)
	})
}

// ---- tests ------------------------------------------------------------------

const known = new Set<string>(KNOWN_ENV_VARS)

const dockerfileText = await readRepoFile('Dockerfile')
const composeText = await readRepoFile('docker-compose.yml')
const envExampleText = await readRepoFile('.env.example')
const dockerignoreText = await readRepoFile('.dockerignore')

describe('composeEnvironment', () => {
	test('reads the list form', () => {
		const env = composeEnvironment(['A=1', 'B=x=y', 'C=', 'D'])
		expect([...env]).toEqual([
			['A', '1'],
			['B', 'x=y'],
			['C', ''],
			['D', undefined],
		])
	})

	test('reads the map form', () => {
		const parsed = Bun.YAML.parse('environment:\n  A: 1\n  B: "x=y"\n  C: ""\n  D:\n  E: true\n')
		if (!isObject(parsed)) throw new Error('fixture did not parse to a mapping')
		const env = composeEnvironment(parsed.environment)
		expect([...env]).toEqual([
			['A', '1'],
			['B', 'x=y'],
			['C', ''],
			['D', undefined],
			['E', 'true'],
		])
	})

	test('treats a missing environment as empty and rejects other shapes', () => {
		expect(composeEnvironment(undefined).size).toBe(0)
		expect(composeEnvironment(null).size).toBe(0)
		expect(() => composeEnvironment('A=1')).toThrow()
		expect(() => composeEnvironment([{ A: 1 }])).toThrow()
	})
})

describe('dockerfileEnvKeys', () => {
	test('reads KEY=value pairs, quoted values and the legacy form', () => {
		expect(dockerfileEnvKeys('A=1 B="two words" C=\'x y\'')).toEqual(['A', 'B', 'C'])
		expect(dockerfileEnvKeys('LEGACY some value')).toEqual(['LEGACY'])
	})
})

describe('Dockerfile', () => {
	const instructions = parseDockerfile(dockerfileText)
	const lastStage = Math.max(...instructions.map((i) => i.stage))
	const final = instructions.filter((i) => i.stage === lastStage)
	const of = (keyword: string) => final.filter((i) => i.keyword === keyword)

	test('every stage is built FROM an oven/bun image', () => {
		const froms = instructions.filter((i) => i.keyword === 'FROM')
		expect(froms.length).toBeGreaterThanOrEqual(2)
		for (const from of froms) expect(from.args).toMatch(/^(--platform=\S+\s+)?oven\/bun:1\.4\S*(\s+AS\s+\S+)?$/i)
	})

	test('installs with the frozen lockfile, production only', () => {
		const runs = instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args)
		expect(runs.some((r) => /bun install\b.*--frozen-lockfile/.test(r) && /--production\b/.test(r))).toBe(true)
	})

	test('runs as a non-root user', () => {
		const users = of('USER')
		expect(users.length).toBeGreaterThan(0)
		const user = users.at(-1)?.args.split(':')[0]?.trim()
		expect(user).toBeDefined()
		expect(['root', '0', '']).not.toContain(user ?? '')
	})

	test('sets production env, port 3000 and the storage dir', () => {
		expect(envValue(final, 'NODE_ENV')).toBe('production')
		expect(envValue(final, 'PORT')).toBe('3000')
		expect(envValue(final, 'STORAGE_DIR')).toBe('/app/storage')
		expect(of('EXPOSE').map((i) => i.args)).toContain('3000')
	})

	test('has a HEALTHCHECK on /health, SIGTERM stop signal and a CMD', () => {
		const health = of('HEALTHCHECK')
		expect(health).toHaveLength(1)
		expect(health[0]?.args).toContain('/health')
		expect(health[0]?.args).toMatch(/\bCMD\b/)
		expect(of('STOPSIGNAL').map((i) => i.args)).toEqual(['SIGTERM'])
		const cmd = of('CMD')
		expect(cmd.length).toBeGreaterThan(0)
		expect(JSON.parse(cmd.at(-1)?.args ?? '')).toEqual(['bun', 'src/index.ts'])
	})

	test('every ENV is a variable the config accepts', () => {
		const keys = instructions.filter((i) => i.keyword === 'ENV').flatMap((i) => dockerfileEnvKeys(i.args))
		expect(keys.length).toBeGreaterThan(0)
		const unknown = keys.filter((k) => !known.has(k) && !DOCKERFILE_IMAGE_INTERNALS.includes(k))
		expect(unknown).toEqual([])
	})
})

describe('docker-compose.yml', () => {
	const compose = Bun.YAML.parse(composeText)
	const services = objectAt(compose, 'services')
	const gate = objectAt(services, 'download-gate')
	const redis = objectAt(services, 'redis')
	const gateEnv = composeEnvironment(gate.environment)

	test('has the download-gate and redis services', () => {
		expect(Object.keys(services).sort()).toEqual(['download-gate', 'redis'])
	})

	test('redis persists with appendonly and has a healthcheck', () => {
		const command = stringList(redis.command)
		const appendonly = command.indexOf('--appendonly')
		expect(appendonly).toBeGreaterThanOrEqual(0)
		expect(command[appendonly + 1]).toBe('yes')
		const healthcheck = objectAt(redis, 'healthcheck')
		expect(stringList(healthcheck.test).join(' ')).toContain('redis-cli ping')
		expect(stringList(redis.volumes).some((v) => v.endsWith(':/data'))).toBe(true)
	})

	test('download-gate waits for a healthy redis, maps 3000 and mounts ./storage', () => {
		expect(isServiceHealthyDependency(gate.depends_on, 'redis')).toBe(true)
		expect(portTargets(gate.ports)).toContain('3000:3000')
		expect(stringList(gate.volumes)).toContain(`./storage:${gateEnv.get('STORAGE_DIR')}`)
		expect(gateEnv.get('REDIS_URL')).toBe('redis://redis:6379')
		expect(gateEnv.get('PORT')).toBe('3000')
		expect(gateEnv.get('NODE_ENV')).toBe('production')
	})

	test('JWT_SECRET must come from the host (compose fails when it is unset)', () => {
		expect(gateEnv.get('JWT_SECRET')).toMatch(/^\$\{JWT_SECRET:\?.+\}$/)
	})

	test('every environment variable of every service built from this repo is one the config accepts', () => {
		const ours = Object.entries(services).filter(([, service]) => isObject(service) && service.build !== undefined)
		expect(ours.map(([name]) => name)).toEqual(['download-gate'])
		const unknown = ours.flatMap(([name, service]) =>
			[...composeEnvironment(isObject(service) ? service.environment : undefined).keys()]
				.filter((key) => !known.has(key))
				.map((key) => `${name}: ${key}`),
		)
		expect(gateEnv.size).toBeGreaterThan(0)
		expect(unknown).toEqual([])
	})

	test('.env.example documents exactly the variables compose reads from the host', () => {
		const documented = new Set(
			envExampleText
				.split('\n')
				.map((line) => /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(line.trim())?.[1])
				.filter((key): key is string => key !== undefined),
		)
		expect([...documented].sort()).toEqual([...interpolatedNames(composeText)].sort())
		expect(envExampleText).toContain('openssl rand -base64 48')
	})
})

describe('.dockerignore', () => {
	const ignored = dockerignoreText.split('\n').map((line) => line.trim())

	test('keeps dependencies, git history, secrets and local data out of the build context', () => {
		for (const entry of ['node_modules', '.git', '.env', 'storage', 'bench/results', '*.log']) {
			expect(ignored).toContain(entry)
		}
	})
})
