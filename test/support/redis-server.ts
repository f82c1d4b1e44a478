import type { Subprocess } from 'bun'
import { tracked } from './child-processes'

/** A real redis-server child process on a free loopback port, for tests. */
export interface RedisServer {
	readonly port: number
	readonly url: string
	/** Stops the server (SIGTERM) and waits for it to exit. */
	stop(): Promise<void>
	/** Starts it again on the same port (empty unless started with `dataDir`). */
	start(): Promise<void>
	/** Freezes the process (SIGSTOP): sockets stay open, nothing answers, as a hung VM. */
	pause(): void
	/** Thaws a paused process (SIGCONT). */
	resume(): void
	/** Kills the process (SIGKILL) and waits for it to exit. */
	kill(): Promise<void>
	/** The process id while running, else null. */
	readonly pid: number | null
}

/** A port that was free a moment ago (bound to 0, then released). */
export function freePort(): number {
	const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
	const port = probe.port
	probe.stop(true)
	return port
}

async function answersPing(port: number): Promise<boolean> {
	try {
		const reply = await new Promise<string>((resolve, reject) => {
			Bun.connect({
				hostname: '127.0.0.1',
				port,
				socket: {
					open(socket) {
						socket.write('PING\r\n')
					},
					data(socket, data) {
						resolve(data.toString())
						socket.end()
					},
					error(_socket, err) {
						reject(err)
					},
					connectError(_socket, err) {
						reject(err)
					},
				},
			}).catch(reject)
		})
		return reply.startsWith('+PONG')
	} catch {
		return false
	}
}

/**
 * Starts `redis-server` and waits until it answers PING. Without `dataDir`
 * nothing is persisted; with it, AOF (fsync always) keeps data across restarts.
 */
export async function startRedisServer(options: { port?: number; dataDir?: string } = {}): Promise<RedisServer> {
	const port = options.port ?? freePort()
	const persistence = options.dataDir
		? ['--dir', options.dataDir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
		: ['--save', '', '--appendonly', 'no']
	let child: Subprocess | null = null
	const start = async () => {
		child = tracked(
			Bun.spawn(['redis-server', '--port', String(port), '--bind', '127.0.0.1', ...persistence], {
				stdout: 'ignore',
				stderr: 'inherit',
			}),
		)
		for (let i = 0; i < 200; i++) {
			if (await answersPing(port)) return
			if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode} (port ${port})`)
			await Bun.sleep(25)
		}
		throw new Error(`redis-server did not answer on port ${port}`)
	}
	await start()
	return {
		port,
		url: `redis://127.0.0.1:${port}`,
		async stop() {
			const running = child
			child = null
			if (!running) return
			// A paused server never handles SIGTERM: thaw it first.
			running.kill('SIGCONT')
			running.kill('SIGTERM')
			await running.exited
		},
		start,
		pause() {
			child?.kill('SIGSTOP')
		},
		resume() {
			child?.kill('SIGCONT')
		},
		async kill() {
			const running = child
			child = null
			if (!running) return
			running.kill('SIGKILL')
			await running.exited
		},
		get pid() {
			return child?.pid ?? null
		},
	}
}
