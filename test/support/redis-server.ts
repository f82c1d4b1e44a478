import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import { tracked } from './child-processes'
import { pollUntil } from './poll'
import { type Access, query, type Reply } from './resp'

// The one way the suite runs a real redis-server (the shared one of
// test/setup.ts, fault tests' own, topology nodes and sentinels, the deployment
// files' configurations): started on a loopback port, proved up by PING, and
// stopped, killed, paused or resumed on demand. Every process is tracked, so
// none outlives the test run, however it ends.

const HOST = '127.0.0.1'

/** A redis-server (data node or sentinel) child process on a loopback port, for tests. */
export interface RedisServer {
	readonly port: number
	/** `127.0.0.1:<port>`, as Redis announces it. */
	readonly address: string
	/** `redis://` (`rediss://` with TLS) and the credentials of `access`, for REDIS_URL. */
	readonly url: string
	/** How to reach it (TLS CA, AUTH), as PING and `query` do. */
	readonly access: Access
	readonly running: boolean
	readonly paused: boolean
	/** The process id while running, else null. */
	readonly pid: number | null
	/**
	 * (Re)starts it and waits until it answers PING; `extraArgs` are appended for
	 * this start only. Throws when it is running already, exits, or does not
	 * answer in time (it is killed then).
	 */
	start(extraArgs?: readonly string[]): Promise<void>
	/** SIGCONT + SIGTERM, then SIGKILL if it has not exited within 3 s. */
	stop(): Promise<void>
	/** SIGKILL: a crash, sockets reset by the kernel. */
	kill(): Promise<void>
	/** SIGSTOP: a hung VM or a partition, sockets stay open and nothing answers. Throws when not running. */
	pause(): void
	/** SIGCONT. Throws when not running. */
	resume(): void
	/** One command on a fresh connection (see `query`). */
	query(args: readonly (string | number)[], timeoutMs?: number): Promise<Reply>
	/** The last lines of its log (kept when started with a `dataDir`), for loud failures. */
	logTail(lines?: number): Promise<string>
}

/** Options of `startRedisServer`; with none, a plain server on a free port that persists nothing. */
export interface RedisServerOptions {
	/** Default: a port that was free a moment ago. */
	readonly port?: number
	/** A configuration file, read before every argument (a sentinel needs one it may rewrite). */
	readonly configFile?: string
	/** Runs it as a Sentinel (`--sentinel`), which takes no persistence settings. */
	readonly sentinel?: boolean
	/**
	 * Its directory (`--dir`): its log is kept there (`<port>.log`) and, unless
	 * `persist` is false, an append-only file (fsync always) that keeps its data
	 * across stop, kill and start. Without it, nothing is saved or logged.
	 */
	readonly dataDir?: string
	/** False: nothing is saved in `dataDir` (topology nodes, which resync from their primary). */
	readonly persist?: boolean
	/**
	 * How it is reached: a `ca` makes it listen on TLS only (the certificate
	 * options go in `args` or the configuration file), `auth` is sent before
	 * each command (the user goes in `args` or the file).
	 */
	readonly access?: Omit<Access, 'host' | 'port'>
	/** More `--option value` arguments, after those the options above make (a later one wins). */
	readonly args?: readonly string[]
	/** How long `start` waits for PONG (default 5 s). */
	readonly startTimeoutMs?: number
}

/** A port that was free a moment ago (bound to 0, then released). */
export function freePort(): number {
	const probe = Bun.listen({ hostname: HOST, port: 0, socket: { data() {} } })
	const port = probe.port
	probe.stop(true)
	return port
}

/** The URL a Redis client connects to `access` with. */
function urlOf(access: Access): string {
	const [first, second] = access.auth ?? []
	const [user, password] = second === undefined ? ['', first] : [first, second]
	const credentials = password === undefined ? '' : `${encodeURIComponent(user ?? '')}:${encodeURIComponent(password)}@`
	return `${access.ca ? 'rediss' : 'redis'}://${credentials}${access.host}:${access.port}`
}

/**
 * Starts `redis-server` as `options` say and waits until it answers PING.
 * Throws when it exits or does not answer within `startTimeoutMs`.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
	const port = options.port ?? freePort()
	const access: Access = { host: HOST, port, ...options.access }
	const dir = options.dataDir
	const log = dir ? join(dir, `${port}.log`) : null
	const persist = dir !== undefined && options.persist !== false
	const argv = [
		'redis-server',
		...(options.configFile ? [options.configFile] : []),
		...(options.sentinel ? ['--sentinel'] : []),
		...(access.ca ? ['--port', '0', '--tls-port', String(port)] : ['--port', String(port)]),
		'--bind',
		HOST,
		...(dir ? ['--dir', dir] : []),
		...(options.sentinel
			? []
			: persist
				? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
				: ['--save', '', '--appendonly', 'no']),
		...(options.args ?? []),
		...(log ? ['--logfile', log] : []),
	]
	const startTimeoutMs = options.startTimeoutMs ?? 5000
	let child: Subprocess | null = null
	let paused = false
	const server: RedisServer = {
		port,
		address: `${HOST}:${port}`,
		url: urlOf(access),
		access,
		get running() {
			return child !== null
		},
		get paused() {
			return paused
		},
		get pid() {
			return child?.pid ?? null
		},
		async start(extraArgs = []) {
			if (child) throw new Error(`redis ${port} is already running`)
			const proc = tracked(Bun.spawn([...argv, ...extraArgs], { stdout: 'ignore', stderr: 'inherit' }))
			child = proc
			paused = false
			const answered = await pollUntil(
				async () => (await query(access, ['PING'], 300).catch(() => null)) === 'PONG',
				(pong) => pong || proc.exitCode !== null,
				startTimeoutMs,
			)
			if (answered) return
			const why =
				proc.exitCode !== null ? `exited with ${proc.exitCode}` : `did not answer PING within ${startTimeoutMs} ms`
			await server.kill()
			throw new Error(`redis ${port} ${why}:\n${await server.logTail()}`)
		},
		async stop() {
			const proc = child
			child = null
			paused = false
			if (!proc) return
			// A paused server never handles SIGTERM: thaw it first.
			proc.kill('SIGCONT')
			proc.kill('SIGTERM')
			const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(3000).then(() => false)])
			if (!exited) {
				proc.kill('SIGKILL')
				await proc.exited
			}
		},
		async kill() {
			const proc = child
			child = null
			paused = false
			if (!proc) return
			proc.kill('SIGKILL')
			await proc.exited
		},
		pause() {
			if (!child) throw new Error(`redis ${port} is not running`)
			child.kill('SIGSTOP')
			paused = true
		},
		resume() {
			if (!child) throw new Error(`redis ${port} is not running`)
			child.kill('SIGCONT')
			paused = false
		},
		query: (args, timeoutMs) => query(access, args, timeoutMs),
		async logTail(lines = 30) {
			const text = log ? await readFile(log, 'utf8').catch(() => '(no log)') : '(no log: started without a dataDir)'
			return text.trimEnd().split('\n').slice(-lines).join('\n')
		},
	}
	await server.start()
	return server
}
