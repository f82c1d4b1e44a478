import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { type AddressInfo, createServer, connect as netConnect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Socket as BunSocket } from 'bun'
import type { Cluster, Redis } from 'ioredis'
import { type Env, loadConfig } from '../../src/config'
import { createRedisClient, waitReady } from '../../src/store/connect'
import { TEST_SECRET } from '../support/helpers'
import { waitFor } from '../support/poll'
import { freePort, type RedisServer, startRedisServer } from '../support/redis-server'
import { type Access, infoFields, pairs, parse, type Reply } from '../support/resp'

// Fault fixtures for the topology suites: a real Redis Cluster (3 primaries +
// 3 replicas) and a real Sentinel group (primary + replica + 3 sentinels), all
// `redis-server` children on free loopback ports (../support/redis-server).
// Every wait is bounded and throws with what it last saw; every process is
// stopped by `stop()`, and SIGKILLed when the test process exits without it.

const HOST = '127.0.0.1'

// How long a topology node may take to answer its first PING (a loaded 2-core machine, TLS).
const NODE_START_MS = 10_000

/** `count` distinct free loopback ports, none of them in `taken`. */
function freePorts(count: number, taken: readonly number[] = []): number[] {
	const out = new Set<number>()
	while (out.size < count) {
		const port = freePort()
		if (!taken.includes(port)) out.add(port)
	}
	return [...out]
}

/** TLS and ACL settings shared by every process of a topology (all optional). */
export interface Security {
	/** Server certificate, key and CA (PEM file paths); the CA's PEM text goes to clients. */
	readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string; readonly ca: string }
	/** An ACL user every data node knows (also used for replication). */
	readonly user?: { readonly name: string; readonly password: string }
}

/** TLS certificates and the ACL user of a data node (a primary or replica, in a cluster or under sentinels). */
function dataNodeArgs(port: number, security: Security): string[] {
	// Immediate full syncs (no 5 s diskless delay); the dump a replica may write stays in its own file.
	const args = ['--repl-diskless-sync-delay', '0', '--dbfilename', `dump-${port}.rdb`]
	const { tls, user } = security
	if (tls)
		args.push(
			'--tls-cert-file',
			tls.certFile,
			'--tls-key-file',
			tls.keyFile,
			'--tls-ca-cert-file',
			tls.caFile,
			'--tls-auth-clients',
			'no',
			'--tls-replication',
			'yes',
			// Cluster bus over TLS too, and CLUSTER SLOTS announcing the TLS port (else the plain one: 0).
			'--tls-cluster',
			'yes',
		)
	if (user)
		args.push(
			'--user',
			'default',
			'off',
			'--user',
			user.name,
			'on',
			`>${user.password}`,
			'~*',
			'&*',
			'+@all',
			'--masteruser',
			user.name,
			'--masterauth',
			user.password,
		)
	return args
}

/**
 * Starts a data node in `dir` (nothing persisted), reached with the TLS CA and
 * ACL user of `security`; `args` follow the data node's own.
 */
function startDataNode(port: number, dir: string, security: Security, args: readonly string[]): Promise<RedisServer> {
	return startRedisServer({
		port,
		dataDir: dir,
		persist: false,
		access: {
			...(security.tls ? { ca: security.tls.ca } : {}),
			...(security.user ? { auth: [security.user.name, security.user.password] as const } : {}),
		},
		args: [...dataNodeArgs(port, security), ...args],
		startTimeoutMs: NODE_START_MS,
	})
}

/** Role of a node as it reports it itself (ROLE). */
export async function roleOf(node: RedisServer, timeoutMs = 300): Promise<string> {
	const reply = await node.query(['ROLE'], timeoutMs)
	return Array.isArray(reply) ? String(reply[0]) : String(reply)
}

// ---- Redis Cluster -----------------------------------------------------------

/** One line of CLUSTER NODES. */
export interface ClusterNodeView {
	readonly id: string
	readonly address: string
	readonly flags: readonly string[]
	readonly primaryId: string | null
	readonly slots: number
}

/** A running Redis Cluster the test owns. */
export interface RedisCluster {
	readonly nodes: readonly RedisServer[]
	/** `REDIS_CLUSTER_NODES` for the service. */
	readonly seeds: string
	/** The node announced at `address`. */
	node(address: string): RedisServer
	/** CLUSTER NODES as seen by `from` (default: the first node that is running and not paused). */
	view(from?: RedisServer): Promise<ClusterNodeView[]>
	/** The hash slot of `key`. */
	slotOf(key: string): Promise<number>
	/** The primary serving `slot`, as a healthy node sees it. */
	primaryOf(slot: number): Promise<RedisServer>
	/** A replica of `primary`. */
	replicaOf(primary: RedisServer): Promise<RedisServer>
	/** `cluster-require-full-coverage` on every running node. */
	setFullCoverage(on: boolean): Promise<void>
	/** Waits until every node runs, agrees the cluster is ok, and every primary has its replicas in sync. */
	waitHealthy(timeoutMs?: number): Promise<void>
	/** Stops every node and removes the data dir. */
	stop(): Promise<void>
}

/** Options of `startCluster`. */
export interface ClusterOptions {
	readonly primaries?: number
	readonly replicasPerPrimary?: number
	/** `cluster-node-timeout`: how long a node may be silent before failover starts. */
	readonly nodeTimeoutMs?: number
	readonly security?: Security
	/** Extra `--option value` arguments for node `i`. */
	readonly nodeArgs?: (i: number, port: number) => readonly string[]
}

async function run(cmd: readonly string[], timeoutMs: number): Promise<string> {
	const proc = Bun.spawn([...cmd], { stdout: 'pipe', stderr: 'pipe' })
	const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
	const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()])
	const code = await proc.exited
	clearTimeout(timer)
	if (code !== 0) throw new Error(`${cmd.join(' ')} exited with ${code}:\n${out}\n${err}`)
	return out
}

function parseClusterNodes(reply: Reply): ClusterNodeView[] {
	return String(reply)
		.trim()
		.split('\n')
		.map((line) => {
			const [id = '', addr = '', flags = '', primary = '-', , , , , ...slots] = line.trim().split(' ')
			const count = slots
				.filter((s) => !s.startsWith('['))
				.reduce((n, s) => {
					const [a, b] = s.split('-').map(Number)
					return n + (b === undefined ? 1 : b - (a ?? 0) + 1)
				}, 0)
			return {
				id,
				address: addr.split('@')[0] ?? addr,
				flags: flags.split(','),
				primaryId: primary === '-' ? null : primary,
				slots: count,
			}
		})
}

/**
 * Starts a Redis Cluster (default 3 primaries + 1 replica each,
 * `cluster-node-timeout` 1000 ms) with `redis-cli --cluster create`, and waits
 * until it is healthy. Throws, with the nodes' logs, when it does not come up.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<RedisCluster> {
	const primaries = options.primaries ?? 3
	const replicas = options.replicasPerPrimary ?? 1
	const security = options.security ?? {}
	const dir = await mkdtemp(join(tmpdir(), 'dlg-cluster-'))
	const ports = freePorts(primaries * (1 + replicas))
	// The bus port defaults to port + 10000: past 65535 for high ephemeral ports, and 10000 for all with TLS (port 0).
	const busPorts = freePorts(ports.length, ports)
	const nodes: RedisServer[] = []
	const cluster: RedisCluster = {
		nodes,
		seeds: ports.map((p) => `${HOST}:${p}`).join(','),
		node(address) {
			const found = nodes.find((n) => n.address === address)
			if (!found) throw new Error(`no cluster node at ${address}`)
			return found
		},
		async view(from) {
			const source = from ?? nodes.find((n) => n.running && !n.paused)
			if (!source) throw new Error('no cluster node is up')
			return parseClusterNodes(await source.query(['CLUSTER', 'NODES']))
		},
		async slotOf(key) {
			const source = nodes.find((n) => n.running && !n.paused)
			if (!source) throw new Error('no cluster node is up')
			return Number(await source.query(['CLUSTER', 'KEYSLOT', key]))
		},
		async primaryOf(slot) {
			const source = nodes.find((n) => n.running && !n.paused)
			if (!source) throw new Error('no cluster node is up')
			const ranges = (await source.query(['CLUSTER', 'SLOTS'])) as Reply[][]
			for (const [start, end, primary] of ranges)
				if (Number(start) <= slot && slot <= Number(end) && Array.isArray(primary))
					return cluster.node(`${primary[0]}:${primary[1]}`)
			throw new Error(`slot ${slot} is not served`)
		},
		async replicaOf(primary) {
			const view = await cluster.view()
			const self = view.find((v) => v.address === primary.address)
			const replica = view.find((v) => self && v.primaryId === self.id && !v.flags.some((f) => f.startsWith('fail')))
			if (!replica) throw new Error(`${primary.address} has no healthy replica`)
			return cluster.node(replica.address)
		},
		async setFullCoverage(on) {
			await Promise.all(
				nodes
					.filter((n) => n.running)
					.map((n) => n.query(['CONFIG', 'SET', 'cluster-require-full-coverage', on ? 'yes' : 'no'])),
			)
		},
		async waitHealthy(timeoutMs = 20_000) {
			await waitFor('cluster healthy', timeoutMs, async () => {
				for (const n of nodes) if (!n.running || n.paused) return `${n.address} is down`
				for (const n of nodes) {
					const info = infoFields(await n.query(['CLUSTER', 'INFO']))
					if (info.get('cluster_state') !== 'ok') return `${n.address} cluster_state ${info.get('cluster_state')}`
					if (info.get('cluster_known_nodes') !== String(nodes.length))
						return `${n.address} knows ${info.get('cluster_known_nodes')} nodes`
					const view = parseClusterNodes(await n.query(['CLUSTER', 'NODES']))
					const bad = view.find((v) => v.flags.some((f) => ['fail', 'fail?', 'handshake', 'noaddr'].includes(f)))
					if (bad) return `${n.address} sees ${bad.address} as ${bad.flags.join(',')}`
					const serving = view.filter((v) => v.flags.includes('master') && v.slots > 0)
					if (serving.length !== primaries) return `${n.address} sees ${serving.length} primaries with slots`
					for (const p of serving) {
						const count = view.filter((v) => v.primaryId === p.id).length
						if (count !== replicas) return `${n.address} sees ${count} replicas of ${p.address}`
					}
					if ((await roleOf(n)) === 'slave') {
						const repl = infoFields(await n.query(['INFO', 'replication']))
						if (repl.get('master_link_status') !== 'up' || repl.get('master_sync_in_progress') !== '0')
							return `${n.address} replication link ${repl.get('master_link_status')}`
					}
				}
				return true
			})
		},
		async stop() {
			await Promise.all(nodes.map((n) => n.stop()))
			await rm(dir, { recursive: true, force: true })
		},
	}
	try {
		for (const [i, port] of ports.entries())
			nodes.push(
				await startDataNode(port, dir, security, [
					'--cluster-enabled',
					'yes',
					'--cluster-config-file',
					join(dir, `nodes-${port}.conf`),
					'--cluster-port',
					String(busPorts[i]),
					'--cluster-node-timeout',
					String(options.nodeTimeoutMs ?? 1000),
					// A replica may always take over, however long its primary was silent.
					'--cluster-replica-validity-factor',
					'0',
					...(options.nodeArgs?.(i, port) ?? []),
				]),
			)
		const cli = ['redis-cli']
		if (security.tls) cli.push('--tls', '--cacert', security.tls.caFile)
		if (security.user) cli.push('--user', security.user.name, '--pass', security.user.password, '--no-auth-warning')
		await run(
			[
				...cli,
				'--cluster',
				'create',
				...nodes.map((n) => n.address),
				'--cluster-replicas',
				String(replicas),
				'--cluster-yes',
			],
			30_000,
		)
		await cluster.waitHealthy(30_000)
		return cluster
	} catch (err) {
		const logs = await Promise.all(nodes.map(async (n) => `--- ${n.address}\n${await n.logTail(15)}`))
		await cluster.stop()
		throw new Error(
			`Redis Cluster did not come up: ${err instanceof Error ? err.message : String(err)}\n${logs.join('\n')}`,
		)
	}
}

/** Waits until `node` reports itself primary (ROLE master); returns when it did (ms epoch). */
export async function waitPrimary(node: RedisServer, timeoutMs: number): Promise<number> {
	return waitFor(
		`${node.address} promoted to primary`,
		timeoutMs,
		async () => ((await roleOf(node, 200)) === 'master' ? Date.now() : 'still a replica'),
		20,
	)
}

// ---- Sentinel ------------------------------------------------------------------

/** A primary + replica watched by sentinels, that the test owns. */
export interface SentinelGroup {
	readonly name: string
	/** The two data nodes (the first starts as primary). */
	readonly data: readonly RedisServer[]
	readonly sentinels: readonly RedisServer[]
	/** `REDIS_SENTINELS` and `REDIS_SENTINEL_NAME` for the service. */
	readonly env: { readonly REDIS_SENTINELS: string; readonly REDIS_SENTINEL_NAME: string }
	/** The primary as the sentinels report it (they must agree). */
	primary(): Promise<RedisServer>
	/** The data node that is not `primary`. */
	other(primary: RedisServer): RedisServer
	/** Waits until the first sentinel reports a primary other than `from`; returns when (ms epoch) and which. */
	waitSwitch(from: RedisServer, timeoutMs: number): Promise<{ at: number; to: RedisServer }>
	/** Restarts a stopped data node as a replica of `primary` (as an operator would after a crash). */
	restartAsReplica(node: RedisServer, primary: RedisServer): Promise<void>
	/** Waits until both data nodes run, replicate, and every sentinel agrees and sees the others and the replica. */
	waitHealthy(timeoutMs?: number): Promise<void>
	/**
	 * After a failover at `since`: waits out the 2 × failover-timeout during which
	 * sentinels that took part refuse to start another, and until every sentinel
	 * names the same primary with the same config epoch. Without it, a fault
	 * injected soon after a failover met sentinels that would not fail over for
	 * seconds ("Next failover delay"), or a late second failover by a sentinel
	 * that had not yet heard of the first.
	 */
	waitQuiet(since: number, timeoutMs?: number): Promise<void>
	/** What every sentinel says of the primary (address, config epoch, flags), for failure messages. */
	describe(): Promise<string>
	stop(): Promise<void>
}

/** Options of `startSentinels`. */
export interface SentinelOptions {
	readonly sentinels?: number
	readonly downAfterMs?: number
	readonly failoverTimeoutMs?: number
	readonly security?: Security
	/** The sentinels' own password (`requirepass`), when it differs from the data nodes'. */
	readonly sentinelPassword?: string
}

/**
 * Starts a primary, a replica and (default 3) sentinels with
 * `down-after-milliseconds` 1000, and waits until the group is healthy.
 * Throws, with the logs, when it does not come up.
 */
export async function startSentinels(options: SentinelOptions = {}): Promise<SentinelGroup> {
	const name = 'dlg'
	const failoverTimeoutMs = options.failoverTimeoutMs ?? 2000
	const security = options.security ?? {}
	const dir = await mkdtemp(join(tmpdir(), 'dlg-sentinel-'))
	const [dataPorts, sentinelPorts] = ((all) => [all.slice(0, 2), all.slice(2)])(freePorts(2 + (options.sentinels ?? 3)))
	const data: RedisServer[] = []
	const sentinels: RedisServer[] = []
	const [firstPort = 0] = dataPorts
	const sentinelAccess: Omit<Access, 'host' | 'port'> = {
		...(security.tls ? { ca: security.tls.ca } : {}),
		...(options.sentinelPassword ? { auth: [options.sentinelPassword] as const } : {}),
	}

	/** Each sentinel's primary: `ip:port epoch N flags`. */
	const sentinelViews = () =>
		Promise.all(
			sentinels.map(async (s) => {
				const m = pairs(await s.query(['SENTINEL', 'MASTER', name]))
				return `${m.get('ip')}:${m.get('port')} epoch ${m.get('config-epoch')} ${m.get('flags')}`
			}),
		)
	const masterAddr = async (s: RedisServer): Promise<string> => {
		const reply = await s.query(['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name], 300)
		return Array.isArray(reply) ? `${reply[0]}:${reply[1]}` : 'none'
	}
	const byAddress = (address: string) => {
		const found = data.find((n) => n.address === address)
		if (!found) throw new Error(`sentinels report an unknown primary ${address}`)
		return found
	}
	const group: SentinelGroup = {
		name,
		data,
		sentinels,
		env: { REDIS_SENTINELS: sentinelPorts.map((p) => `${HOST}:${p}`).join(','), REDIS_SENTINEL_NAME: name },
		async primary() {
			const seen = new Set(await Promise.all(sentinels.filter((s) => s.running).map(masterAddr)))
			if (seen.size !== 1) throw new Error(`sentinels disagree on the primary: ${[...seen].join(' ')}`)
			return byAddress([...seen][0] ?? '')
		},
		other(primary) {
			const found = data.find((n) => n !== primary)
			if (!found) throw new Error('no other data node')
			return found
		},
		async waitSwitch(from, timeoutMs) {
			return waitFor(
				`sentinels switching away from ${from.address}`,
				timeoutMs,
				async () => {
					for (const s of sentinels) {
						const addr = await masterAddr(s).catch(() => from.address)
						if (addr !== from.address) return { at: Date.now(), to: byAddress(addr) }
					}
					return `still ${from.address}`
				},
				20,
			)
		},
		async restartAsReplica(node, primary) {
			await node.start(['--replicaof', HOST, String(primary.port)])
		},
		async waitHealthy(timeoutMs = 20_000) {
			await waitFor('sentinel group healthy', timeoutMs, async () => {
				for (const n of [...data, ...sentinels]) if (!n.running || n.paused) return `${n.address} is down`
				const primary = await group.primary()
				if ((await roleOf(primary)) !== 'master') return `${primary.address} does not report master yet`
				const replica = group.other(primary)
				const repl = infoFields(await replica.query(['INFO', 'replication']))
				if (repl.get('role') !== 'slave' || repl.get('master_port') !== String(primary.port))
					return `${replica.address} is not replicating ${primary.address}`
				if (repl.get('master_link_status') !== 'up') return `${replica.address} link ${repl.get('master_link_status')}`
				for (const s of sentinels) {
					const m = pairs(await s.query(['SENTINEL', 'MASTER', name]))
					if (m.get('flags') !== 'master') return `${s.address} flags the primary ${m.get('flags')}`
					if (m.get('num-other-sentinels') !== String(sentinels.length - 1))
						return `${s.address} knows ${m.get('num-other-sentinels')} other sentinels`
					const replicas = (await s.query(['SENTINEL', 'REPLICAS', name])) as Reply[]
					const ok = replicas.map(pairs).some(
						(r) =>
							// Its link status comes from INFO, which sentinels refresh only every 10 s
							// (every second once a failover starts): the replica's own INFO was checked above.
							`${r.get('ip')}:${r.get('port')}` === replica.address && r.get('flags') === 'slave',
					)
					if (!ok) return `${s.address} does not see ${replica.address} as a healthy replica`
				}
				return true
			})
		},
		async waitQuiet(since, timeoutMs = 20_000) {
			const until = since + 2 * failoverTimeoutMs + 250
			if (Date.now() < until) await Bun.sleep(until - Date.now())
			await waitFor('sentinels agreeing on the primary and its epoch', timeoutMs, async () => {
				const views = await sentinelViews()
				const distinct = new Set(views)
				return distinct.size === 1 && views[0]?.endsWith(' master')
					? true
					: `sentinels say ${[...distinct].join(' | ')}`
			})
		},
		async describe() {
			const views = await sentinelViews()
			return sentinels.map((s, i) => `${s.address} names ${views[i]}`).join('; ')
		},
		async stop() {
			await Promise.all([...sentinels, ...data].map((n) => n.stop()))
			await rm(dir, { recursive: true, force: true })
		},
	}
	try {
		for (const [i, port] of dataPorts.entries())
			data.push(await startDataNode(port, dir, security, i > 0 ? ['--replicaof', HOST, String(firstPort)] : []))
		for (const port of sentinelPorts) {
			const conf = join(dir, `sentinel-${port}.conf`)
			// Port, TLS port, bind address and dir come from startRedisServer.
			const lines = [
				`sentinel monitor ${name} ${HOST} ${firstPort} 2`,
				`sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1000}`,
				`sentinel failover-timeout ${name} ${failoverTimeoutMs}`,
				`sentinel parallel-syncs ${name} 1`,
			]
			if (security.tls)
				lines.push(
					`tls-cert-file ${security.tls.certFile}`,
					`tls-key-file ${security.tls.keyFile}`,
					`tls-ca-cert-file ${security.tls.caFile}`,
					'tls-auth-clients no',
					'tls-replication yes',
				)
			if (security.user)
				lines.push(
					`sentinel auth-user ${name} ${security.user.name}`,
					`sentinel auth-pass ${name} ${security.user.password}`,
				)
			if (options.sentinelPassword)
				lines.push(`requirepass ${options.sentinelPassword}`, `sentinel sentinel-pass ${options.sentinelPassword}`)
			await writeFile(conf, `${lines.join('\n')}\n`)
			sentinels.push(
				await startRedisServer({
					port,
					configFile: conf,
					sentinel: true,
					dataDir: dir,
					access: sentinelAccess,
					startTimeoutMs: NODE_START_MS,
				}),
			)
		}
		await group.waitHealthy(30_000)
		return group
	} catch (err) {
		const logs = await Promise.all([...data, ...sentinels].map(async (n) => `--- ${n.address}\n${await n.logTail(15)}`))
		await group.stop()
		throw new Error(
			`Sentinel group did not come up: ${err instanceof Error ? err.message : String(err)}\n${logs.join('\n')}`,
		)
	}
}

// ---- a sentinel the test scripts ---------------------------------------------

/** A fake Sentinel that names whichever node the test says is primary, and never publishes +switch-master. */
export interface ScriptedSentinel {
	/** `host:port`, for REDIS_SENTINELS. */
	readonly address: string
	/** From now on, name `node` as primary, at config epoch `epoch`. */
	name(node: RedisServer, epoch: number): void
	/** Leaves GET-MASTER-ADDR-BY-NAME requests unanswered until `release` (a sentinel slow to answer). */
	hold(): void
	/** How many GET-MASTER-ADDR-BY-NAME requests are waiting for an answer. */
	held(): number
	/** Answers the held requests with the primary named now, and stops holding. */
	release(): void
	/** Sends `+switch-master` to every subscriber, as a sentinel does when a failover completes. */
	announceSwitch(): void
	stop(): void
}

/**
 * Starts a scripted sentinel for master group `group` on a free port: it
 * answers the few commands clients send (SENTINEL GET-MASTER-ADDR-BY-NAME,
 * MASTER, SENTINELS, SUBSCRIBE) with what the test chose. It lets a test show
 * what the client does when the sentinels' answer is wrong or changes silently.
 */
export function startScriptedSentinel(group: string, primary: RedisServer): ScriptedSentinel {
	let named = primary
	let epoch = 0
	let holding = false
	const held: BunSocket<{ buf: Buffer }>[] = []
	const subscribers = new Set<BunSocket<{ buf: Buffer }>>()
	const bulk = (s: string) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`
	const addressReply = () => {
		const [host = '', port = ''] = named.address.split(':')
		return `*2\r\n${bulk(host)}${bulk(port)}`
	}
	const answer = (args: string[]): string => {
		const [cmd = '', sub = '', name = ''] = args.map((a, i) => (i < 2 ? a.toUpperCase() : a))
		if (cmd === 'PING') return '+PONG\r\n'
		if (cmd === 'SUBSCRIBE') return `*3\r\n${bulk('subscribe')}${bulk(args[1] ?? '')}:1\r\n`
		if (cmd !== 'SENTINEL') return cmd === 'HELLO' ? "-ERR unknown command 'HELLO'\r\n" : '+OK\r\n'
		if (name !== group) return '*-1\r\n'
		const [host = '', port = ''] = named.address.split(':')
		if (sub === 'GET-MASTER-ADDR-BY-NAME') return addressReply()
		if (sub === 'MASTER') {
			const fields = ['name', group, 'ip', host, 'port', port, 'flags', 'master', 'config-epoch', String(epoch)]
			return `*${fields.length}\r\n${fields.map(bulk).join('')}`
		}
		return '*0\r\n'
	}
	const server = Bun.listen<{ buf: Buffer }>({
		hostname: HOST,
		port: 0,
		socket: {
			open(socket) {
				socket.data = { buf: Buffer.alloc(0) }
			},
			close(socket) {
				subscribers.delete(socket)
			},
			data(socket, chunk) {
				socket.data.buf = Buffer.concat([socket.data.buf, chunk])
				for (;;) {
					const parsed = parse(socket.data.buf, 0)
					if (!parsed) return
					socket.data.buf = socket.data.buf.subarray(parsed.end)
					const args = Array.isArray(parsed.value) ? parsed.value.map(String) : []
					const command = args.map((a) => a.toUpperCase())
					if (command[0] === 'SUBSCRIBE') subscribers.add(socket)
					if (holding && command[0] === 'SENTINEL' && command[1] === 'GET-MASTER-ADDR-BY-NAME') held.push(socket)
					else socket.write(answer(args))
				}
			},
		},
	})
	return {
		address: `${HOST}:${server.port}`,
		name(node, newEpoch) {
			named = node
			epoch = newEpoch
		},
		hold() {
			holding = true
		},
		held: () => held.length,
		release() {
			holding = false
			for (const socket of held.splice(0)) socket.write(addressReply())
		},
		announceSwitch() {
			const payload = `${group} ${primary.address.replace(':', ' ')} ${named.address.replace(':', ' ')}`
			for (const socket of subscribers)
				socket.write(`*3\r\n${bulk('message')}${bulk('+switch-master')}${bulk(payload)}`)
		},
		stop() {
			server.stop(true)
		},
	}
}

/** A standalone `redis-server` (optionally a replica of `primaryOf`), with its own data dir. */
export async function startRedis(
	primaryOf?: RedisServer,
	security: Security = {},
): Promise<RedisServer & { dispose(): Promise<void> }> {
	const dir = await mkdtemp(join(tmpdir(), 'dlg-redis-'))
	const port = freePort()
	const node = await startDataNode(port, dir, security, primaryOf ? ['--replicaof', HOST, String(primaryOf.port)] : [])
	return Object.assign(node, {
		async dispose() {
			await node.stop()
			await rm(dir, { recursive: true, force: true })
		},
	})
}

// ---- TLS and NAT ---------------------------------------------------------------

/**
 * A throwaway CA and a server certificate for 127.0.0.1 / localhost (openssl,
 * EC keys, valid one day) in a new directory; `dispose` removes it.
 */
export async function makeCertificates(): Promise<NonNullable<Security['tls']> & { dispose(): Promise<void> }> {
	const dir = await mkdtemp(join(tmpdir(), 'dlg-tls-'))
	const at = (f: string) => join(dir, f)
	const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
	await writeFile(at('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
	await run(
		[
			'openssl',
			'req',
			'-x509',
			...ec,
			'-keyout',
			at('ca.key'),
			'-out',
			at('ca.crt'),
			'-days',
			'1',
			'-subj',
			'/CN=dlg-test-ca',
		],
		10_000,
	)
	await run(
		['openssl', 'req', ...ec, '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=localhost'],
		10_000,
	)
	await run(
		[
			'openssl',
			'x509',
			'-req',
			'-in',
			at('server.csr'),
			'-CA',
			at('ca.crt'),
			'-CAkey',
			at('ca.key'),
			'-CAcreateserial',
			'-out',
			at('server.crt'),
			'-days',
			'1',
			'-extfile',
			at('san.ext'),
		],
		10_000,
	)
	return {
		certFile: at('server.crt'),
		keyFile: at('server.key'),
		caFile: at('ca.crt'),
		ca: await readFile(at('ca.crt'), 'utf8'),
		dispose: () => rm(dir, { recursive: true, force: true }),
	}
}

/** A TCP forwarder standing for NAT: the only address a client can use to reach `target`. */
export interface Forwarder {
	readonly address: string
	/** Connections it has carried so far. */
	readonly connections: number
	stop(): void
}

/** Forwards every connection on a free loopback port to `target` (bytes as they are, TLS included). */
export async function startForwarder(target: RedisServer): Promise<Forwarder> {
	let connections = 0
	const sockets = new Set<Socket>()
	const server = createServer((inbound) => {
		connections++
		const outbound = netConnect({ host: HOST, port: target.port })
		for (const s of [inbound, outbound]) {
			sockets.add(s)
			s.on('error', () => {
				inbound.destroy()
				outbound.destroy()
			})
			s.on('close', () => sockets.delete(s))
		}
		inbound.pipe(outbound)
		outbound.pipe(inbound)
	})
	await new Promise<void>((resolve) => server.listen(0, HOST, resolve))
	const { port } = server.address() as AddressInfo
	return {
		address: `${HOST}:${port}`,
		get connections() {
			return connections
		},
		stop() {
			server.close()
			for (const s of sockets) s.destroy()
		},
	}
}

/**
 * The service's own Redis client, built from `env` exactly as in production
 * (REDIS_CLUSTER_NODES or REDIS_SENTINELS), of the expected class, and
 * connected. Failovers make it reconnect: its errors are expected (the
 * service logs them), so they are swallowed here.
 */
export async function productionClient<T extends Redis | Cluster>(
	env: Env,
	kind: abstract new (...args: never[]) => T,
): Promise<T> {
	const built = createRedisClient(loadConfig({ JWT_SECRET: TEST_SECRET, ...env }))
	if (!(built instanceof kind)) throw new Error(`${Object.keys(env).join(', ')} did not build a ${kind.name} client`)
	built.on('error', () => {})
	await waitReady(built, 5000)
	return built
}
