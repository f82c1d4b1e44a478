import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { KNOWN_ENV_VARS, loadConfig } from '../src/config'
import { createMetrics } from '../src/modules/ops/metrics'
import {
	command,
	createComposeConfig,
	dependsOn,
	environment,
	healthcheckTest,
	isBuiltHere,
	mountAt,
	mounts,
	PROFILES,
	type Profile,
	ports,
	profilesOf,
	service,
} from './support/compose'
import { envFileEntries } from './support/env-file'
import { type Dict, dict, isDict, list, readYaml, str, strings } from './support/parsed'
import { alertRules, dashboardQueries, metricNames } from './support/promql'
import { freePort, type RedisServer, startRedisServer } from './support/redis-server'
import { ROOT, repoPath, requireTool, run, runOk } from './support/tools'

// The deployment files, checked by the tools that read them: docker-compose
// (Debian's v1, which validates a compose file without a Docker engine),
// promtool, docker-py's .dockerignore matcher, redis-server and redis-cli.
// A missing tool fails these tests: .ci/run installs every one of them.

/** A test that spawns real tools: bun's default 5 s is short on a busy 2-core machine. */
const toolTest = (name: string, fn: () => Promise<void>) => test(name, fn, 90_000)

let scratch = ''
beforeAll(async () => {
	scratch = await mkdtemp(join(tmpdir(), 'deploy-files-'))
})
afterAll(async () => {
	if (scratch !== '') await rm(scratch, { recursive: true, force: true })
})

const compose = createComposeConfig(() => scratch)

// ---- .env.example -------------------------------------------------------------------

/** Variables the compose file reads that are not the service's own. */
const COMPOSE_ONLY_VARS = ['GRAFANA_ADMIN_PASSWORD'] as const

const envExampleText = await Bun.file(repoPath('.env.example')).text()
const JWT = 'a-local-test-secret-of-at-least-32-bytes-0123456789'
/** .env.example with the one value compose requires filled in, as a user would. */
const filledEnvExample = envExampleText.replace(/^JWT_SECRET=$/m, `JWT_SECRET=${JWT}`)

/** An env file setting every variable of the service and of compose to a value that names it. */
const everyVarEnv = [...KNOWN_ENV_VARS, ...COMPOSE_ONLY_VARS].map((name) => `${name}=value-of-${name}`).join('\n')
const passedValue = (name: string) => `value-of-${name}`

describe('.env.example', () => {
	const entries = envFileEntries(envExampleText)
	const names = entries.map((e) => e.name)

	test('lists every variable the service reads (commented lines count) and the compose-only ones, once each', () => {
		expect(KNOWN_ENV_VARS.length).toBeGreaterThan(30)
		expect([...names].sort()).toEqual([...KNOWN_ENV_VARS, ...COMPOSE_ONLY_VARS].sort())
		expect(names.filter((name, i) => names.indexOf(name) !== i)).toEqual([])
	})

	test('puts a one-line comment above each variable', () => {
		expect(entries.filter((e) => e.comment === null).map((e) => e.name)).toEqual([])
	})

	test('leaves secrets empty, to be generated', () => {
		for (const name of ['JWT_SECRET', 'API_KEYS', 'METRICS_TOKEN']) {
			expect(entries.find((e) => e.name === name)).toMatchObject({ commented: false, value: '' })
		}
		expect(envExampleText).toContain('openssl rand -base64 48')
	})

	toolTest('compose refuses it as shipped, naming JWT_SECRET, and accepts it once JWT_SECRET is set', async () => {
		const shipped = await compose.run(envExampleText)
		expect(shipped.exitCode).not.toBe(0)
		expect(shipped.stderr).toContain('set JWT_SECRET')
		const filled = await compose.run(filledEnvExample)
		expect(filled.stderr).not.toContain('ERROR')
		expect(filled.exitCode).toBe(0)
		const env = environment(service(filled.services, 'download-gate'))
		expect(env.get('JWT_SECRET')).toBe(JWT)
		expect(env.get('ISSUE_AUTH')).toBe('api-key')
	})

	toolTest('each compose-only variable is read by docker-compose.yml', async () => {
		for (const name of COMPOSE_ONLY_VARS) {
			const services = await compose.services(`${filledEnvExample}\n${name}=marker-${name}\n`, 'monitoring')
			expect(JSON.stringify(services)).toContain(`marker-${name}`)
		}
	})
})

// ---- docker-compose.yml ---------------------------------------------------------------

/** The settings of the s3 profile's variant that put its files in the MinIO bucket (and nothing else's). */
const BUCKET_STORAGE: Readonly<Record<string, string>> = {
	STORAGE_DIR: '',
	S3_BUCKET: 'download-gate',
	S3_ENDPOINT: 'http://minio:9000',
	S3_REGION: 'us-east-1',
	S3_ACCESS_KEY_ID: 'download-gate',
	S3_SECRET_ACCESS_KEY: 'download-gate-local-only',
	S3_SESSION_TOKEN: '',
	S3_VIRTUAL_HOSTED_STYLE: 'false',
	AWS_ACCESS_KEY_ID: '',
	AWS_SECRET_ACCESS_KEY: '',
	AWS_SESSION_TOKEN: '',
}

/**
 * The service variants built from this repository, the Redis topology each is
 * given, and for the bucket variant the storage settings it fixes.
 */
const GATE_VARIANTS: Readonly<
	Record<string, { profile: Profile | null; topology: Record<string, string>; storage?: Record<string, string> }>
> = {
	'download-gate': { profile: null, topology: { REDIS_URL: 'redis://redis:6379' } },
	'download-gate-cluster': {
		profile: 'cluster',
		topology: {
			REDIS_CLUSTER_NODES: [1, 2, 3, 4, 5, 6].map((n) => `redis-node-${n}:6379`).join(','),
		},
	},
	'download-gate-sentinel': {
		profile: 'sentinel',
		topology: {
			REDIS_SENTINELS: 'sentinel-1:26379,sentinel-2:26379,sentinel-3:26379',
			REDIS_SENTINEL_NAME: 'download-gate',
		},
	},
	'download-gate-s3': { profile: 's3', topology: { REDIS_URL: 'redis://redis:6379' }, storage: BUCKET_STORAGE },
}
const TOPOLOGY_VARS = ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS', 'REDIS_SENTINEL_NAME']
/** Set by the compose file whatever .env says: the container's own layout. */
const FIXED_BY_STACK: Readonly<Record<string, string>> = {
	NODE_ENV: 'production',
	HOST: '0.0.0.0',
	PORT: '3000',
	STORAGE_DIR: '/app/storage',
}
/** Never passed to a container: inside the compose network, nodes are reached at the address they announce. */
const NOT_PASSED = ['REDIS_NAT_MAP']

describe('docker-compose.yml, as docker-compose config resolves it', () => {
	toolTest('the default stack is download-gate and redis; each profile adds its services', async () => {
		const expected: Record<Profile, string[]> = {
			monitoring: ['prometheus', 'grafana'],
			cluster: [1, 2, 3, 4, 5, 6].map((n) => `redis-node-${n}`).concat('redis-cluster-init', 'download-gate-cluster'),
			sentinel: ['redis-primary', 'redis-replica', 'sentinel-1', 'sentinel-2', 'sentinel-3', 'download-gate-sentinel'],
			s3: ['minio', 'minio-create-bucket', 'download-gate-s3'],
		}
		const all = await compose.services(filledEnvExample)
		const unprofiled = Object.keys(all).filter((name) => profilesOf(service(all, name)).length === 0)
		expect(unprofiled.sort()).toEqual(['download-gate', 'redis'])
		for (const profile of PROFILES) {
			const services = await compose.services(filledEnvExample, profile)
			for (const name of expected[profile]) expect(profilesOf(service(services, name))).toEqual([profile])
		}
		expect(Object.keys(all).sort()).toEqual([...unprofiled, ...Object.values(expected).flat()].sort())
	})

	toolTest('with any profile (or none) enabled, every dependency is enabled too', async () => {
		const services = await compose.services(filledEnvExample)
		for (const profile of [null, ...PROFILES]) {
			const enabled = new Set(
				Object.keys(services).filter((name) => {
					const p = profilesOf(service(services, name))
					return p.length === 0 || (profile !== null && p.includes(profile))
				}),
			)
			const missing = [...enabled].flatMap((name) =>
				[...dependsOn(service(services, name)).keys()].filter((d) => !enabled.has(d)).map((d) => `${name} -> ${d}`),
			)
			expect({ profile, missing }).toEqual({ profile, missing: [] })
		}
	})

	toolTest(
		'download-gate: built from this Dockerfile, production, storage read-only, healthy on /health, after a healthy redis',
		async () => {
			const services = await compose.services(filledEnvExample)
			const gate = service(services, 'download-gate')
			const build = dict(gate.build, 'build')
			expect(build.context).toBe(ROOT)
			expect(build.dockerfile).toBe('Dockerfile')
			expect(await Bun.file(join(ROOT, str(build.dockerfile, 'dockerfile'))).exists()).toBe(true)
			const env = environment(gate)
			expect(env.get('NODE_ENV')).toBe('production')
			expect(mountAt(gate, env.get('STORAGE_DIR') ?? '')).toEqual({
				source: repoPath('storage'),
				target: '/app/storage',
				readOnly: true,
			})
			const probe = healthcheckTest(gate)
			expect(probe[0]).toBe('CMD')
			expect(probe.join(' ')).toContain(`http://127.0.0.1:${env.get('PORT')}/health`)
			expect(ports(gate)).toEqual(['3000:3000'])
			expect(dependsOn(gate)).toEqual(new Map([['redis', 'service_healthy']]))
		},
	)

	toolTest('redis: AOF on, a redis-cli ping healthcheck, data in a named volume', async () => {
		const redis = service(await compose.services(filledEnvExample), 'redis')
		const argv = command(redis)
		expect(argv[argv.indexOf('--appendonly') + 1]).toBe('yes')
		expect(argv.indexOf('--appendonly')).toBeGreaterThan(0)
		expect(healthcheckTest(redis)).toEqual(['CMD', 'redis-cli', 'ping'])
		expect(mountAt(redis, '/data').source).toBe('redis-data')
	})

	toolTest('every variable of .env reaches each download-gate variant, except what the stack fixes', async () => {
		const services = await compose.services(everyVarEnv)
		const built = Object.keys(services).filter((name) => isBuiltHere(service(services, name)))
		expect(built.sort()).toEqual(Object.keys(GATE_VARIANTS).sort())
		for (const [name, { topology, storage = {} }] of Object.entries(GATE_VARIANTS)) {
			const env = environment(service(services, name))
			const unknown = [...env.keys()].filter((key) => !(KNOWN_ENV_VARS as readonly string[]).includes(key))
			expect({ name, unknown }).toEqual({ name, unknown: [] })
			for (const key of KNOWN_ENV_VARS) {
				const expected =
					storage[key] ??
					FIXED_BY_STACK[key] ??
					topology[key] ??
					(TOPOLOGY_VARS.includes(key) || NOT_PASSED.includes(key) ? undefined : passedValue(key))
				expect({ name, key, value: env.get(key) ?? undefined }).toEqual({ name, key, value: expected })
			}
		}
	})

	toolTest('the cluster and sentinel variants wait for replicas to acknowledge writes by default', async () => {
		const services = await compose.services(filledEnvExample)
		expect(environment(service(services, 'download-gate')).get('REDIS_MIN_REPLICAS_ACK') ?? null).toBeNull()
		expect(environment(service(services, 'download-gate-cluster')).get('REDIS_MIN_REPLICAS_ACK')).toBe('1')
		expect(environment(service(services, 'download-gate-sentinel')).get('REDIS_MIN_REPLICAS_ACK')).toBe('1')
	})

	toolTest(
		'every variant serves on its own host port, with the same image and probe, and read-only storage unless its files are in a bucket',
		async () => {
			const services = await compose.services(filledEnvExample)
			const base = service(services, 'download-gate')
			const published = Object.keys(GATE_VARIANTS).map((name) => ports(service(services, name)))
			expect(published).toEqual([['3000:3000'], ['3001:3000'], ['3002:3000'], ['3003:3000']])
			for (const [name, { profile, storage }] of Object.entries(GATE_VARIANTS)) {
				const variant = service(services, name)
				expect({ name, profiles: profilesOf(variant) }).toEqual({ name, profiles: profile === null ? [] : [profile] })
				expect(variant.build).toEqual(base.build)
				expect(variant.healthcheck).toEqual(base.healthcheck)
				expect({ name, mounts: mounts(variant) }).toEqual({ name, mounts: storage ? [] : mounts(base) })
			}
		},
	)

	toolTest(
		'cluster profile: 3 primaries + 3 replicas, an init container running redis-cli --cluster create, and the service on them',
		async () => {
			const services = await compose.services(filledEnvExample, 'cluster')
			const nodes = Object.keys(services).filter((name) => /^redis-node-\d+$/.test(name))
			expect(nodes).toHaveLength(6)
			for (const name of nodes) {
				const node = service(services, name)
				const conf = mountAt(node, '/usr/local/etc/redis/redis.conf')
				expect(conf).toEqual({
					source: repoPath('deploy/redis/cluster-node.conf'),
					target: conf.target,
					readOnly: true,
				})
				expect(command(node)).toEqual([
					'redis-server',
					'/usr/local/etc/redis/redis.conf',
					'--cluster-announce-hostname',
					name,
				])
				expect(mountAt(node, '/data').source).toBe(name)
				expect(healthcheckTest(node)).toEqual(['CMD', 'redis-cli', 'ping'])
			}
			// Published on loopback only, one port per node, for REDIS_NAT_MAP.
			expect(nodes.flatMap((name) => ports(service(services, name)))).toEqual(
				nodes.map((_, i) => `127.0.0.1:${7001 + i}:6379`),
			)
			const nodeAddresses = nodes.map((name) => `${name}:6379`)

			const init = service(services, 'redis-cluster-init')
			const script = mountAt(init, '/usr/local/bin/cluster-init.sh')
			expect(script.source).toBe(repoPath('deploy/redis/cluster-init.sh'))
			expect(command(init)).toEqual(['sh', script.target])
			const initEnv = environment(init)
			expect(initEnv.get('CLUSTER_NODES')?.split(',')).toEqual(nodeAddresses)
			expect(initEnv.get('CLUSTER_REPLICAS')).toBe('1')
			expect(dependsOn(init)).toEqual(new Map(nodes.map((name) => [name, 'service_healthy'])))
			expect(await Bun.file(script.source).text()).toContain('redis-cli --cluster create')

			const gate = service(services, 'download-gate-cluster')
			expect(environment(gate).get('REDIS_CLUSTER_NODES')?.split(',')).toEqual(nodeAddresses)
			expect(dependsOn(gate)).toEqual(new Map([['redis-cluster-init', 'service_completed_successfully']]))
		},
	)

	toolTest(
		'sentinel profile: primary + replica + 3 sentinels watching it under REDIS_SENTINEL_NAME, and the service on them',
		async () => {
			const services = await compose.services(filledEnvExample, 'sentinel')
			const primary = service(services, 'redis-primary')
			const replica = service(services, 'redis-replica')
			expect(command(primary)).toContain('--appendonly')
			const replicaArgv = command(replica)
			expect(replicaArgv.slice(replicaArgv.indexOf('--replicaof'), replicaArgv.indexOf('--replicaof') + 3)).toEqual([
				'--replicaof',
				'redis-primary',
				'6379',
			])
			expect(dependsOn(replica).get('redis-primary')).toBe('service_healthy')

			const sentinels = ['sentinel-1', 'sentinel-2', 'sentinel-3']
			const sentinelConf = await Bun.file(repoPath('deploy/redis/sentinel.conf')).text()
			const monitor = /^sentinel monitor (\S+) (\S+) (\d+) (\d+)$/m.exec(sentinelConf)
			expect(monitor?.slice(2)).toEqual(['redis-primary', '6379', '2'])
			for (const name of sentinels) {
				const sentinel = service(services, name)
				const template = mounts(sentinel).find((m) => m.source === repoPath('deploy/redis/sentinel.conf'))
				expect(template?.readOnly).toBe(true)
				expect(command(sentinel).join(' ')).toContain(`cp ${template?.target} /data/sentinel.conf`)
				expect(command(sentinel).join(' ')).toContain('redis-server /data/sentinel.conf --sentinel')
				expect(mountAt(sentinel, '/data').source).toBe(name)
				expect(healthcheckTest(sentinel)).toEqual(['CMD', 'redis-cli', '-p', '26379', 'ping'])
			}

			const gate = service(services, 'download-gate-sentinel')
			const env = environment(gate)
			expect(env.get('REDIS_SENTINELS')?.split(',')).toEqual(sentinels.map((name) => `${name}:26379`))
			expect(env.get('REDIS_SENTINEL_NAME')).toBe(monitor?.[1] ?? 'no sentinel monitor line')
			expect(env.has('REDIS_URL')).toBe(false)
			expect([...dependsOn(gate).keys()].sort()).toEqual(['redis-replica', ...sentinels])
		},
	)

	toolTest(
		's3 profile: MinIO with a health check, a one-shot creator of the bucket and of a user that may only read it, and the service on that bucket',
		async () => {
			const env = `${filledEnvExample}\nAPI_KEYS=a-local-api-key-0123456789abcdef\n`
			const services = await compose.services(env, 's3')
			const minio = service(services, 'minio')
			expect(str(minio.image, 'image')).toMatch(/^minio\/minio:RELEASE\.\S+$/)
			expect(command(minio)).toEqual(['server', '/data', '--console-address', ':9001'])
			expect(healthcheckTest(minio)).toEqual(['CMD', 'mc', 'ready', 'local'])
			expect(mountAt(minio, '/data').source).toBe('minio-data')
			// The API and console on loopback only: the root login is MinIO's built-in one.
			expect(ports(minio)).toEqual(['127.0.0.1:9000:9000', '127.0.0.1:9001:9001'])
			const root = environment(minio)

			const creator = service(services, 'minio-create-bucket')
			expect(str(creator.image, 'image')).toMatch(/^minio\/mc:RELEASE\.\S+$/)
			expect(dependsOn(creator)).toEqual(new Map([['minio', 'service_healthy']]))
			expect(creator.restart).toBe('no')
			const script = mountAt(creator, '/usr/local/bin/create-bucket.sh')
			expect(script).toEqual({
				source: repoPath('deploy/minio/create-bucket.sh'),
				target: script.target,
				readOnly: true,
			})
			expect(strings(creator.entrypoint, 'entrypoint')).toEqual(['sh', script.target])
			const policyMount = mountAt(creator, '/etc/minio/read-policy.json')
			expect(policyMount.source).toBe(repoPath('deploy/minio/read-policy.json'))
			const creatorEnv = environment(creator)
			expect(creatorEnv.get('MINIO_ROOT_USER')).toBe(root.get('MINIO_ROOT_USER') ?? 'no root user')
			expect(creatorEnv.get('MINIO_ROOT_PASSWORD')).toBe(root.get('MINIO_ROOT_PASSWORD') ?? 'no root password')
			const text = await Bun.file(script.source).text()
			expect(text).toContain('mc mb --ignore-existing "local/$S3_BUCKET"')
			expect(text).toContain(`mc admin policy create local download-gate-read ${policyMount.target}`)
			expect(text).toContain('mc admin policy attach local download-gate-read --user "$S3_ACCESS_KEY_ID"')
			const sh = await run(['sh', '-n', script.source])
			expect(sh).toMatchObject({ exitCode: 0, stderr: '' })

			const gate = service(services, 'download-gate-s3')
			const gateEnv = environment(gate)
			// The creator makes the bucket and the user the service reads with.
			for (const name of ['S3_BUCKET', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY'])
				expect({ name, value: creatorEnv.get(name) }).toEqual({ name, value: gateEnv.get(name) ?? 'unset' })
			expect(creatorEnv.get('MINIO_URL')).toBe(gateEnv.get('S3_ENDPOINT') ?? 'unset')
			expect(dependsOn(gate)).toEqual(
				new Map([
					['minio-create-bucket', 'service_completed_successfully'],
					['redis', 'service_healthy'],
				]),
			)
			// The user may read the bucket's objects and list the bucket (a missing file is then
			// a 404, not a 403), and nothing else.
			const bucket = gateEnv.get('S3_BUCKET') ?? ''
			const policy = dict(await Bun.file(policyMount.source).json(), 'read-policy.json')
			const statements = list(policy.Statement, 'Statement').map((st, i) => dict(st, `Statement[${i}]`))
			expect(
				statements.map((st) => ({
					effect: st.Effect,
					actions: strings(st.Action, 'Action'),
					resources: strings(st.Resource, 'Resource'),
				})),
			).toEqual([
				{ effect: 'Allow', actions: ['s3:GetObject'], resources: [`arn:aws:s3:::${bucket}/*`] },
				{ effect: 'Allow', actions: ['s3:ListBucket'], resources: [`arn:aws:s3:::${bucket}`] },
			])

			// The service's own configuration reads that environment as files in the bucket: the
			// empty STORAGE_DIR counts as unset, so it does not conflict with S3_BUCKET.
			const config = loadConfig(
				Object.fromEntries([...gateEnv].flatMap(([key, value]) => (value === null ? [] : [[key, value]]))),
			)
			expect(config.storage).toEqual({
				kind: 'bucket',
				bucket: 'download-gate',
				endpoint: 'http://minio:9000',
				region: 'us-east-1',
				accessKeyId: 'download-gate',
				secretAccessKey: 'download-gate-local-only',
				prefix: '',
				virtualHostedStyle: false,
				redirectTtlS: null,
			})
		},
	)

	toolTest(
		'monitoring profile: Prometheus with the rules and a tmpfs for the token, Grafana with provisioning and the dashboards',
		async () => {
			const services = await compose.services(
				`${filledEnvExample}\nMETRICS_TOKEN=the-metrics-token-0123\n`,
				'monitoring',
			)
			const prometheus = service(services, 'prometheus')
			expect(environment(prometheus).get('METRICS_TOKEN')).toBe('the-metrics-token-0123')
			expect(mountAt(prometheus, '/etc/prometheus/prometheus.yml').source).toBe(
				repoPath('deploy/prometheus/prometheus.yml'),
			)
			expect(mountAt(prometheus, '/etc/prometheus/alerts.yml').source).toBe(repoPath('deploy/prometheus/alerts.yml'))
			expect(strings(prometheus.tmpfs, 'tmpfs')).toEqual(['/etc/prometheus/secrets'])
			expect(command(prometheus)).toContain('--config.file=/etc/prometheus/prometheus.yml')
			expect(ports(prometheus)).toEqual(['127.0.0.1:9090:9090'])

			const grafana = service(services, 'grafana')
			expect(mountAt(grafana, '/etc/grafana/provisioning')).toMatchObject({
				source: repoPath('deploy/grafana/provisioning'),
				readOnly: true,
			})
			expect(mountAt(grafana, '/etc/grafana/dashboards')).toMatchObject({
				source: repoPath('deploy/grafana/dashboards'),
				readOnly: true,
			})
			expect(ports(grafana)).toEqual(['127.0.0.1:3030:3000'])
		},
	)

	toolTest('every file mounted from the repository exists (./storage is created by Docker)', async () => {
		const services = await compose.services(filledEnvExample)
		const sources = Object.values(services).flatMap((svc) =>
			mounts(svc)
				.map((m) => m.source)
				.filter((source) => source.startsWith('/') && source !== repoPath('storage')),
		)
		expect(sources.length).toBeGreaterThan(5)
		const missing = []
		for (const source of new Set(sources)) {
			if (!(await Bun.file(source).exists()) && !(await readdir(source).catch(() => null))) missing.push(source)
		}
		expect(missing).toEqual([])
	})
})

// ---- Dockerfile and build context -----------------------------------------------------

describe('Dockerfile and .dockerignore', () => {
	// docker-py's own matcher (the one docker-compose v1 builds with), reading
	// .dockerignore the way docker-py's build() does.
	const CONTEXT_FILES = [
		'import json, sys',
		'from docker.utils.build import exclude_paths',
		'root = sys.argv[1]',
		"lines = open(root + '/.dockerignore').read().splitlines()",
		"patterns = [l.strip() for l in lines if l.strip() != '' and l.strip()[0] != '#']",
		"print(json.dumps(sorted(exclude_paths(root, patterns, dockerfile='Dockerfile'))))",
	].join('\n')

	async function contextFiles(root: string): Promise<string[]> {
		const result = await run(['/usr/bin/python3', '-c', CONTEXT_FILES, root])
		if (result.exitCode !== 0) {
			throw new Error(`docker-py's matcher failed (python3-docker is missing? .ci/run installs it):\n${result.stderr}`)
		}
		return strings(JSON.parse(result.stdout), 'context')
	}

	toolTest('the build context holds package.json, bun.lock and src/ only', async () => {
		const files = await contextFiles(ROOT)
		expect(files).toContain('package.json')
		expect(files).toContain('bun.lock')
		expect(files).toContain('src/index.ts')
		const others = files.filter((f) => !f.startsWith('src/') && !['src', 'package.json', 'bun.lock'].includes(f))
		expect(others.sort()).toEqual(['.dockerignore', 'Dockerfile'])
	})

	toolTest('secrets, git history, dependencies, tests and local data stay out of the build context', async () => {
		const decoys = [
			'.env',
			'.env.production',
			'.git/config',
			'node_modules/x/index.js',
			'storage/u1/video.mp4',
			'test/a.test.ts',
			'bench/.data/1g.bin',
			'deploy/prometheus/prometheus.yml',
			'server.log',
		]
		const root = join(scratch, 'context')
		for (const path of [...decoys, 'package.json', 'bun.lock', 'src/index.ts', 'Dockerfile']) {
			await mkdir(dirname(join(root, path)), { recursive: true })
			await writeFile(join(root, path), 'x')
		}
		await cp(repoPath('.dockerignore'), join(root, '.dockerignore'))
		const files = await contextFiles(root)
		expect(files.filter((f) => decoys.some((d) => f === d || d.startsWith(`${f}/`)))).toEqual([])
		expect(files).toContain('src/index.ts')
	})

	toolTest(
		'the image runs `bun src/index.ts` in production as the unprivileged bun user, with a HEALTHCHECK on /health',
		async () => {
			// No Docker engine or BuildKit here to lint the Dockerfile: check the
			// lines that matter; docker-compose config above proves context and path.
			const lines = (await Bun.file(repoPath('Dockerfile')).text()).split('\n').map((l) => l.trim())
			expect(lines.filter((l) => l.startsWith('FROM ')).every((l) => /^FROM oven\/bun:\S+-slim AS \w+$/.test(l))).toBe(
				true,
			)
			expect(lines.filter((l) => l.startsWith('USER '))).toEqual(['USER bun'])
			expect(lines).toContain('ENV NODE_ENV=production \\')
			expect(lines.some((l) => l.startsWith('RUN bun install --frozen-lockfile --production'))).toBe(true)
			const health = lines.findIndex((l) => l.startsWith('HEALTHCHECK '))
			expect(lines[health + 1]).toMatch(/^CMD \["bun", "-e", ".*\/health'/)
			expect(lines.filter((l) => l.startsWith('CMD ')).at(-1)).toBe('CMD ["bun", "src/index.ts"]')
		},
	)
})

// ---- Redis configuration of the profiles, run for real ---------------------------------

async function redisCli(port: number, ...args: string[]): Promise<string> {
	return (await runOk(['redis-cli', '-h', '127.0.0.1', '-p', String(port), ...args])).stdout
}

describe('deploy/redis, run by a real redis-server', () => {
	toolTest(
		'cluster-init.sh forms a 3 + 3 cluster of cluster-node.conf nodes by host name, and leaves it alone after',
		async () => {
			requireTool('redis-cli')
			requireTool('redis-server')
			const servers: RedisServer[] = []
			try {
				for (let n = 1; n <= 6; n++) {
					const dir = join(scratch, `node-${n}`)
					await mkdir(dir, { recursive: true })
					const node = await startRedisServer({
						configFile: repoPath('deploy/redis/cluster-node.conf'),
						dataDir: dir,
						persist: false,
						args: ['--cluster-port', String(freePort()), '--cluster-announce-hostname', 'localhost'],
					})
					servers.push(node)
				}
				const env = {
					CLUSTER_NODES: servers.map((s) => `localhost:${s.port}`).join(','),
					CLUSTER_REPLICAS: '1',
				}
				const first = await run(['sh', repoPath('deploy/redis/cluster-init.sh')], { env })
				expect(first.stderr).toBe('')
				expect(first.exitCode).toBe(0)
				expect(first.stdout).toContain('cluster-init: cluster formed')
				const port = servers[0]?.port ?? 0
				const info = await redisCli(port, 'cluster', 'info')
				expect(info).toContain('cluster_state:ok')
				expect(info).toContain('cluster_known_nodes:6')
				expect(info).toContain('cluster_size:3')
				// Slots name the announced host, not an IP: what the compose nodes' service names rely on.
				expect(await redisCli(port, 'cluster', 'slots')).toContain('localhost')
				const again = await run(['sh', repoPath('deploy/redis/cluster-init.sh')], { env })
				expect(again).toMatchObject({ exitCode: 0, stdout: 'cluster-init: the cluster is already formed\n' })
			} finally {
				await Promise.all(servers.map((s) => s.kill()))
			}
		},
	)

	toolTest(
		'a sentinel started from sentinel.conf monitors the primary under the name the service is given',
		async () => {
			requireTool('redis-server')
			const servers: RedisServer[] = []
			try {
				const primary = await startRedisServer()
				servers.push(primary)
				const primaryPort = primary.port
				const sentinelPort = freePort()
				const dir = join(scratch, 'sentinel')
				await mkdir(dir, { recursive: true })
				// The template as the container copies it, with the compose host names swapped for this machine's.
				const template = await Bun.file(repoPath('deploy/redis/sentinel.conf')).text()
				const local = template
					.replace(/^port 26379$/m, `port ${sentinelPort}`)
					.replace(/^(sentinel monitor \S+) redis-primary 6379/m, `$1 localhost ${primaryPort}`)
				expect(local).not.toBe(template)
				await writeFile(join(dir, 'sentinel.conf'), local)
				servers.push(
					await startRedisServer({
						port: sentinelPort,
						configFile: join(dir, 'sentinel.conf'),
						sentinel: true,
						dataDir: dir,
					}),
				)
				const name = GATE_VARIANTS['download-gate-sentinel']?.topology.REDIS_SENTINEL_NAME ?? ''
				const address = await redisCli(sentinelPort, 'sentinel', 'get-master-addr-by-name', name)
				expect(address.trim().split('\n')).toEqual(['localhost', String(primaryPort)])
				const master = (await redisCli(sentinelPort, 'sentinel', 'master', name)).trim().split('\n')
				expect(master[master.indexOf('quorum') + 1]).toBe('2')
			} finally {
				await Promise.all(servers.map((s) => s.kill()))
			}
		},
	)
})

// ---- Prometheus -------------------------------------------------------------------------

const ALERTS = [
	'DownloadGateDown',
	'DownloadGateStoreDown',
	'DownloadGateDenialSpike',
	'DownloadGateHigh5xxRatio',
	'DownloadGateHighP99Latency',
	'DownloadGateWebhookBacklog',
]

/** The metrics README "Monitoring" lists (histograms also as _bucket, _count and _sum). */
const DOCUMENTED_METRICS = [
	'download_gate_tokens_issued_total',
	'download_gate_downloads_total',
	'download_gate_bytes_sent_total',
	'download_gate_denials_total',
	'download_gate_budget_bytes_returned_total',
	'download_gate_downloads_in_flight',
	'download_gate_http_request_duration_seconds',
	'download_gate_store_up',
	'download_gate_store_command_duration_seconds',
	'download_gate_process_resident_memory_bytes',
	'download_gate_process_cpu_seconds_total',
]

/** Every series name a scrape of the service can hold, from the service's own registry. */
async function exposedSeriesNames(): Promise<Set<string>> {
	const metrics = await createMetrics().registry.getMetricsAsJSON()
	return new Set(
		metrics.flatMap((m) =>
			String(m.type) === 'histogram' ? [m.name, `${m.name}_bucket`, `${m.name}_count`, `${m.name}_sum`] : [m.name],
		),
	)
}

const ALERTS_FILE = 'deploy/prometheus/alerts.yml'

describe('deploy/prometheus, checked by promtool', () => {
	toolTest('the service exposes every metric the README documents', async () => {
		const exposed = await exposedSeriesNames()
		expect(DOCUMENTED_METRICS.filter((name) => !exposed.has(name))).toEqual([])
	})

	toolTest('alerts.yml: promtool check rules accepts the alert rules the README lists', async () => {
		const result = await runOk(['promtool', 'check', 'rules', repoPath('deploy/prometheus/alerts.yml')])
		expect(result.stdout).toContain(`SUCCESS: ${ALERTS.length} rules found`)
		expect((await alertRules(ALERTS_FILE)).map((r) => r.alert)).toEqual(ALERTS)
	})

	toolTest('alerts.yml: every expression selects only metrics the service exposes (and `up`)', async () => {
		const exposed = await exposedSeriesNames()
		exposed.add('up')
		for (const { alert, expr } of await alertRules(ALERTS_FILE)) {
			const names = metricNames(expr)
			expect({ alert, found: names.length > 0 }).toEqual({ alert, found: true })
			expect({ alert, unknown: names.filter((n) => !exposed.has(n)) }).toEqual({ alert, unknown: [] })
		}
	})

	toolTest('alerts.test.yml: promtool test rules passes, with a firing and a quiet case for every alert', async () => {
		const tests = list(dict(await readYaml('deploy/prometheus/alerts.test.yml'), 'alerts.test.yml').tests, 'tests')
		const cases = tests.flatMap((t, i) =>
			list(dict(t, `tests[${i}]`).alert_rule_test, 'alert_rule_test').map((c) => {
				const d = dict(c, 'alert_rule_test')
				return { alert: str(d.alertname, 'alertname'), fires: list(d.exp_alerts, 'exp_alerts').length > 0 }
			}),
		)
		for (const alert of ALERTS) {
			expect({ alert, fires: cases.some((c) => c.alert === alert && c.fires) }).toEqual({ alert, fires: true })
			expect({ alert, quiet: cases.some((c) => c.alert === alert && !c.fires) }).toEqual({ alert, quiet: true })
		}
		const result = await run(['promtool', 'test', 'rules', repoPath('deploy/prometheus/alerts.test.yml')])
		expect(result.stdout + result.stderr).toContain('SUCCESS')
		expect(result.exitCode).toBe(0)
	})

	toolTest(
		'prometheus.yml: promtool check config passes in the layout compose mounts, token file on the tmpfs',
		async () => {
			const services = await compose.services(filledEnvExample, 'monitoring')
			const prometheus = service(services, 'prometheus')
			const etc = join(scratch, 'etc-prometheus')
			const inside = (target: string) => join(etc, relative('/etc/prometheus', target))
			for (const mount of mounts(prometheus).filter((m) => m.target.startsWith('/etc/prometheus/'))) {
				await mkdir(dirname(inside(mount.target)), { recursive: true })
				await cp(mount.source, inside(mount.target), { recursive: true })
			}
			const tmpfs = strings(prometheus.tmpfs, 'tmpfs')
			for (const dir of tmpfs) await mkdir(inside(dir), { recursive: true })

			const config = dict(await readYaml('deploy/prometheus/prometheus.yml'), 'prometheus.yml')
			const jobs = list(config.scrape_configs, 'scrape_configs').map((j, i) => dict(j, `scrape_configs[${i}]`))
			const job = jobs.find((j) => j.job_name === 'download-gate')
			if (job === undefined) throw new Error('no download-gate scrape job')
			const auth = dict(job.authorization, 'authorization')
			expect(auth.type).toBe('Bearer')
			const tokenFile = join('/etc/prometheus', str(auth.credentials_file, 'credentials_file'))
			expect(tmpfs.some((dir) => tokenFile.startsWith(`${dir}/`))).toBe(true)
			expect(await Bun.file(repoPath('deploy/prometheus/entrypoint.sh')).text()).toContain(`>${tokenFile}`)
			await writeFile(inside(tokenFile), 'the-metrics-token-0123')

			const result = await run(['promtool', 'check', 'config', inside('/etc/prometheus/prometheus.yml')])
			expect(result.stdout + result.stderr).toContain(`SUCCESS: ${ALERTS.length} rules found`)
			expect(result.exitCode).toBe(0)
		},
	)

	toolTest('prometheus.yml: scrapes /metrics of every download-gate variant on its container port', async () => {
		const config = dict(await readYaml('deploy/prometheus/prometheus.yml'), 'prometheus.yml')
		const job = list(config.scrape_configs, 'scrape_configs')
			.map((j, i) => dict(j, `scrape_configs[${i}]`))
			.find((j) => j.job_name === 'download-gate')
		if (job === undefined) throw new Error('no download-gate scrape job')
		expect(job.metrics_path).toBe('/metrics')
		const sd = list(job.dns_sd_configs, 'dns_sd_configs').map((c, i) => dict(c, `dns_sd_configs[${i}]`))
		expect(sd.flatMap((c) => strings(c.names, 'names')).sort()).toEqual(Object.keys(GATE_VARIANTS).sort())
		expect(sd.map((c) => [c.type, c.port])).toEqual([['A', Number(FIXED_BY_STACK.PORT)]])
	})

	toolTest('entrypoint.sh refuses to start Prometheus without METRICS_TOKEN', async () => {
		const result = await run(['sh', repoPath('deploy/prometheus/entrypoint.sh')], { env: { METRICS_TOKEN: '' } })
		expect(result.exitCode).toBe(1)
		expect(result.stderr).toContain('METRICS_TOKEN is empty')
	})
})

// ---- Grafana ----------------------------------------------------------------------------

async function dashboard(): Promise<Dict> {
	return dict(await Bun.file(repoPath('deploy/grafana/dashboards/download-gate.json')).json(), 'dashboard')
}

/** A dashboard query as Prometheus would receive it once Grafana filled in its variables. */
const asSent = (expr: string) => expr.replaceAll('$__rate_interval', '1m').replaceAll('$service', '.*')

describe('deploy/grafana', () => {
	toolTest('the dashboard queries only metrics the service exposes', async () => {
		const exposed = await exposedSeriesNames()
		const queries = dashboardQueries(await dashboard())
		expect(queries.length).toBeGreaterThanOrEqual(10)
		for (const { panel, expr } of queries) {
			const names = metricNames(asSent(expr))
			expect({ panel, found: names.length > 0 }).toEqual({ panel, found: true })
			expect({ panel, unknown: names.filter((n) => !exposed.has(n)) }).toEqual({ panel, unknown: [] })
		}
	})

	toolTest('every dashboard query is valid PromQL (promtool check rules)', async () => {
		const queries = dashboardQueries(await dashboard())
		const rules = {
			groups: [
				{ name: 'dashboard', rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: asSent(q.expr) })) },
			],
		}
		const file = join(scratch, 'dashboard-rules.yml')
		await writeFile(file, JSON.stringify(rules))
		const result = await run(['promtool', 'check', 'rules', file])
		expect(result.stdout + result.stderr).toContain(`SUCCESS: ${queries.length} rules found`)
		expect(result.exitCode).toBe(0)
	})

	toolTest('the dashboard shows what the operations issue asks for', async () => {
		const exprs = dashboardQueries(await dashboard()).map((q) => q.expr.replace(/\s+/g, ' '))
		const has = (pattern: RegExp) => exprs.some((e) => pattern.test(e))
		expect({
			requestsByRouteAndStatus: has(
				/sum by \(route, status_class\) \(rate\(download_gate_http_request_duration_seconds_count/,
			),
			denialsByReason: has(/sum by \(reason\) \(rate\(download_gate_denials_total/),
			bytesPerSecond: has(/rate\(download_gate_bytes_sent_total/),
			inFlight: has(/download_gate_downloads_in_flight/),
			storeUp: has(/download_gate_store_up/),
			p99Latency: has(
				/histogram_quantile\(0\.99, sum by \(route, le\) \(rate\(download_gate_http_request_duration_seconds_bucket/,
			),
		}).toEqual({
			requestsByRouteAndStatus: true,
			denialsByReason: true,
			bytesPerSecond: true,
			inFlight: true,
			storeUp: true,
			p99Latency: true,
		})
	})

	toolTest('the dashboard shows lifecycle events and webhook deliveries (group-wide gauges by max)', async () => {
		const exprs = dashboardQueries(await dashboard()).map((q) => q.expr.replace(/\s+/g, ' '))
		const has = (pattern: RegExp) => exprs.some((e) => pattern.test(e))
		expect({
			eventsByType: has(/sum by \(type\) \(rate\(download_gate_events_written_total/),
			attemptsByOutcome: has(/sum by \(endpoint, outcome\) \(rate\(download_gate_webhook_attempts_total/),
			backlog: has(/max by \(endpoint\) \(download_gate_webhook_backlog\{/),
			oldestAge: has(/max by \(endpoint\) \(download_gate_webhook_oldest_event_age_seconds\{/),
			deadLetters: has(/download_gate_webhook_dead_letters_total/),
			summedBacklog: has(/sum[^(]*\(download_gate_webhook_(backlog|oldest_event_age_seconds)/),
		}).toEqual({
			eventsByType: true,
			attemptsByOutcome: true,
			backlog: true,
			oldestAge: true,
			deadLetters: true,
			summedBacklog: false,
		})
	})

	toolTest(
		'provisioning: the datasource is the compose Prometheus, the dashboards path is the mounted folder',
		async () => {
			const datasources = list(
				dict(await readYaml('deploy/grafana/provisioning/datasources/prometheus.yml'), 'datasources').datasources,
				'datasources',
			).map((d) => dict(d, 'datasource'))
			expect(datasources).toHaveLength(1)
			const [datasource] = datasources
			expect(datasource).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090', uid: 'prometheus' })

			const services = await compose.services(filledEnvExample, 'monitoring')
			expect(ports(service(services, 'prometheus')).some((p) => p.endsWith(':9090'))).toBe(true)
			const grafana = service(services, 'grafana')
			const providers = list(
				dict(await readYaml('deploy/grafana/provisioning/dashboards/download-gate.yml'), 'dashboards').providers,
				'providers',
			).map((p) => dict(p, 'provider'))
			const paths = providers.map((p) => str(dict(p.options, 'options').path, 'path'))
			expect(paths).toEqual([mountAt(grafana, '/etc/grafana/dashboards').target])
			expect(environment(grafana).get('GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH')).toBe(
				`${paths[0]}/download-gate.json`,
			)

			// Every panel and variable of the dashboard uses that datasource.
			const board = await dashboard()
			const used = new Set<string>()
			const visit = (value: unknown): void => {
				if (Array.isArray(value)) value.forEach(visit)
				else if (isDict(value)) {
					if (isDict(value.datasource)) used.add(str(value.datasource.uid, 'datasource.uid'))
					Object.values(value).forEach(visit)
				}
			}
			visit(board)
			expect([...used]).toEqual([str(datasource?.uid, 'uid')])
		},
	)
})
