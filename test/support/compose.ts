import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Dict, dict, list, str, strings } from './parsed'
import { type RunResult, repoPath, run } from './tools'

// docker-compose.yml as `docker-compose config` resolves it (Debian's v1,
// which validates a compose file without a Docker engine), and accessors for
// what it prints, in either of the forms it prints them.

/** The profiles of docker-compose.yml. */
export const PROFILES = ['monitoring', 'cluster', 'sentinel', 's3'] as const
export type Profile = (typeof PROFILES)[number]

/** The outcome of `docker-compose config`, with its services parsed when it succeeded (else none). */
export interface ComposeRun extends RunResult {
	readonly services: Readonly<Record<string, Dict>>
}

/** `docker-compose config`, run once per input. */
export interface ComposeConfig {
	/**
	 * `docker-compose --profile <p> config` with `envText` as the only source of
	 * variables, parsed; every profile when none is named. (Debian 12's v1 prints
	 * every service whatever the profiles; v2 only the enabled ones, hence
	 * "every profile" for the whole file.)
	 */
	run(envText: string, profile?: Profile): Promise<ComposeRun>
	/** The services `run` printed; throws with docker-compose's error when it failed. */
	services(envText: string, profile?: Profile): Promise<Readonly<Record<string, Dict>>>
}

/** Runs `docker-compose config` with env files written into `scratch` (a directory the caller removes). */
export function createComposeConfig(scratch: () => string): ComposeConfig {
	const runs = new Map<string, Promise<ComposeRun>>()
	const runOnce = async (envText: string, profile?: Profile): Promise<ComposeRun> => {
		const envFile = join(scratch(), `env-${Bun.hash(envText).toString(16)}`)
		await writeFile(envFile, envText)
		const profileArgs = (profile === undefined ? PROFILES : [profile]).flatMap((p) => ['--profile', p])
		const argv = [
			'docker-compose',
			'-f',
			repoPath('docker-compose.yml'),
			'--env-file',
			envFile,
			...profileArgs,
			'config',
		]
		const result = await run(argv)
		if (result.exitCode !== 0) return { ...result, services: {} }
		const services = dict(dict(Bun.YAML.parse(result.stdout), 'config').services, 'services')
		return { ...result, services: Object.fromEntries(Object.entries(services).map(([k, v]) => [k, dict(v, k)])) }
	}
	const compose: ComposeConfig = {
		run(envText, profile) {
			const key = `${profile ?? ''}\n${envText}`
			let pending = runs.get(key)
			if (pending === undefined) {
				pending = runOnce(envText, profile)
				runs.set(key, pending)
			}
			return pending
		},
		async services(envText, profile) {
			const result = await compose.run(envText, profile)
			if (result.exitCode !== 0) throw new Error(`docker-compose config failed:\n${result.stderr}`)
			return result.services
		},
	}
	return compose
}

/** The service `name`; throws listing the services there are. */
export function service(services: Readonly<Record<string, Dict>>, name: string): Dict {
	const found = services[name]
	if (found === undefined) throw new Error(`no service "${name}" in ${Object.keys(services).join(', ')}`)
	return found
}

/** A service's environment as docker-compose resolved it; null = not set in the container. */
export function environment(svc: Dict): Map<string, string | null> {
	const env = new Map<string, string | null>()
	if (svc.environment === undefined) return env
	for (const [key, value] of Object.entries(dict(svc.environment, 'environment'))) {
		env.set(key, value === null ? null : str(value, `environment.${key}`))
	}
	return env
}

/** One volume of a service. */
export interface Mount {
	readonly source: string
	readonly target: string
	readonly readOnly: boolean
}

/** Volumes in either form docker-compose prints: `source:target[:mode]` or `{ source, target, read_only }`. */
export function mounts(svc: Dict): Mount[] {
	if (svc.volumes === undefined) return []
	return list(svc.volumes, 'volumes').map((entry, i) => {
		if (typeof entry === 'string') {
			const [source = '', target = '', mode = 'rw'] = entry.split(':')
			return { source, target, readOnly: mode.split(',').includes('ro') }
		}
		const long = dict(entry, `volumes[${i}]`)
		return {
			source: str(long.source, 'source'),
			target: str(long.target, 'target'),
			readOnly: long.read_only === true,
		}
	})
}

/** The volume mounted at `target`; throws when there is none. */
export function mountAt(svc: Dict, target: string): Mount {
	const found = mounts(svc).find((m) => m.target === target)
	if (found === undefined) throw new Error(`nothing is mounted at ${target}`)
	return found
}

/** Published ports as `[host_ip:]published:target`, in either form docker-compose prints. */
export function ports(svc: Dict): string[] {
	if (svc.ports === undefined) return []
	return list(svc.ports, 'ports').map((entry, i) => {
		if (typeof entry === 'string') return entry.replace(/\/tcp$/, '')
		const long = dict(entry, `ports[${i}]`)
		const host = long.host_ip === undefined ? '' : `${str(long.host_ip, 'host_ip')}:`
		return `${host}${str(long.published, 'published')}:${str(long.target, 'target')}`
	})
}

/** The profiles a service belongs to (none: always enabled). */
export function profilesOf(svc: Dict): string[] {
	return svc.profiles === undefined ? [] : strings(svc.profiles, 'profiles')
}

/** The services a service depends on, with the condition it waits for. */
export function dependsOn(svc: Dict): Map<string, string> {
	const deps = new Map<string, string>()
	if (svc.depends_on === undefined) return deps
	if (Array.isArray(svc.depends_on)) {
		for (const name of strings(svc.depends_on, 'depends_on')) deps.set(name, 'service_started')
		return deps
	}
	for (const [name, spec] of Object.entries(dict(svc.depends_on, 'depends_on'))) {
		deps.set(name, str(dict(spec, `depends_on.${name}`).condition, 'condition'))
	}
	return deps
}

/** The healthcheck's `test` command. */
export const healthcheckTest = (svc: Dict): string[] =>
	strings(dict(svc.healthcheck, 'healthcheck').test, 'healthcheck.test')

/** The service's `command`. */
export const command = (svc: Dict): string[] => strings(svc.command, 'command')

/** Whether the service is built from this repository (rather than pulled). */
export const isBuiltHere = (svc: Dict): boolean => svc.build !== undefined
