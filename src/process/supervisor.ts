import type { Subprocess } from 'bun'
import { type Config, processEnv } from '../config'
import type { Logger } from '../log'
import type { MetricsSnapshot } from '../modules/ops/metrics'
import { COLLECT_TIMEOUT_MS, type IpcMessage, WORKER_FLAG } from './ipc'
import { announceStart, processLogger } from './startup'

/**
 * Collects every live worker's metrics snapshot (bounded wait) for the worker
 * a scrape arrived at, which aggregates them: a scrape on any worker covers
 * the whole instance, and the supervisor needs no metrics library.
 */
function metricsRelay(log: Logger) {
	let children: readonly Subprocess[] = []
	let nextId = 0
	const waiting = new Map<number, { snapshots: MetricsSnapshot[]; expected: number; done: () => void }>()

	async function collect(): Promise<MetricsSnapshot[]> {
		const id = nextId++
		const snapshots: MetricsSnapshot[] = []
		const live = children.filter((c) => c.exitCode === null)
		await new Promise<void>((resolve) => {
			const timer = setTimeout(() => {
				log.warn('metrics: some workers did not answer in time', { expected: live.length, got: snapshots.length })
				resolve()
			}, COLLECT_TIMEOUT_MS)
			const done = () => {
				clearTimeout(timer)
				resolve()
			}
			waiting.set(id, { snapshots, expected: live.length, done })
			if (live.length === 0) done()
			for (const child of live) child.send({ t: 'collect', id } satisfies IpcMessage)
		})
		waiting.delete(id)
		return snapshots
	}

	return {
		setChildren(list: readonly Subprocess[]) {
			children = list
		},
		onMessage(message: IpcMessage, child: Subprocess) {
			if (message.t === 'snapshot') {
				const pending = waiting.get(message.id)
				if (!pending) return
				pending.snapshots.push(message.data)
				if (pending.snapshots.length >= pending.expected) pending.done()
			} else if (message.t === 'scrape') {
				void collect().then((snapshots) => child.send({ t: 'scraped', id: message.id, snapshots } satisfies IpcMessage))
			}
		},
	}
}

/**
 * With `WORKERS=N`: starts N workers (this same script with `--worker`) that
 * share the port, relays metrics between them, forwards SIGTERM/SIGINT and
 * exits once they have. A worker that dies stops the others and the
 * supervisor exits 1, so whatever runs it (Docker, systemd) restarts the
 * whole instance. Loads no server code itself: no Elysia, no app, no Redis client.
 */
export async function supervise(config: Config): Promise<void> {
	const log = await processLogger(config)
	announceStart(config, log)
	const aggregator = metricsRelay(log)
	let stopping = false
	const children = Array.from({ length: config.workers }, (_, i) =>
		Bun.spawn([process.execPath, ...process.argv.slice(1), `${WORKER_FLAG}=${i}`], {
			// A generated development secret must be the same in every worker.
			env: { ...processEnv(), JWT_SECRET: config.jwtSecret },
			stdio: ['ignore', 'inherit', 'inherit'],
			ipc: (message: IpcMessage, child) => aggregator.onMessage(message, child),
		}),
	)
	aggregator.setChildren(children)
	log.info('supervising', { pid: process.pid, workers: children.map((c) => c.pid) })

	const stop = async (why: string, code: number) => {
		if (stopping) return
		stopping = true
		log.info('shutting down', { signal: why, grace_s: config.shutdownGraceS })
		for (const child of children) if (child.exitCode === null) child.kill('SIGTERM')
		await Promise.all(children.map((c) => c.exited))
		log.info('stopped')
		log.flush()
		process.exit(code)
	}
	for (const child of children)
		void child.exited.then((code) => {
			if (stopping) return
			log.error('a worker exited; stopping the others so the instance is restarted whole', {
				worker_pid: child.pid,
				code,
			})
			void stop('worker exited', 1)
		})
	process.on('SIGTERM', () => void stop('SIGTERM', 0))
	process.on('SIGINT', () => void stop('SIGINT', 0))
}
