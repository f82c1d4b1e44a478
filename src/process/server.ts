import { mkdir } from 'node:fs/promises'
import { createApp } from '../app'
import type { Config } from '../config'
import { createDeps } from '../deps'
import { errorFields } from '../log'
import { aggregateMetrics, createMetrics } from '../modules/ops/metrics'
import { BucketCheckError } from '../storage/s3'
import { workerMetrics } from './ipc'
import { announceStart, processLogger } from './startup'

/** How often a worker checks that its supervisor is still there. */
const SUPERVISOR_CHECK_MS = 500

/**
 * One serving process: builds the dependencies (waiting for Redis), listens,
 * and on SIGTERM/SIGINT drains in-flight downloads for up to
 * `SHUTDOWN_GRACE_S` before closing what it built. A `worker` shares the port
 * with its siblings (`reusePort`), answers metrics scrapes with the whole
 * instance's figures through its supervisor, and stops when the supervisor is gone.
 */
export async function serve(config: Config, opts: { worker: boolean; workerIndex: number }): Promise<void> {
	const log = await processLogger(config)
	if (!opts.worker) announceStart(config, log)

	// A fresh checkout has no ./storage yet; creating it beats a service that 404s everything.
	const storage = config.storage
	if (storage.kind === 'disk')
		await mkdir(storage.dir, { recursive: true }).catch((err: unknown) =>
			log.warn('cannot create STORAGE_DIR', { dir: storage.dir, ...errorFields(err) }),
		)

	const metrics = createMetrics()
	const metricsText = opts.worker
		? workerMetrics(
				() => metrics.registry.getMetricsAsJSON(),
				() => metrics.registry.metrics(),
				aggregateMetrics,
				log,
			)
		: undefined

	let draining = false
	const deps = await createDeps(config, {
		log,
		metrics,
		draining: () => draining,
		workerIndex: opts.workerIndex,
		...(metricsText ? { metricsText } : {}),
	}).catch((err: unknown) => {
		// One line a person reads first (the bucket's own reason, or Redis's), then the log line.
		const what = err instanceof BucketCheckError ? 'the file storage' : 'the token store'
		console.error(`download-gate: cannot start: ${what}: ${err instanceof Error ? err.message : String(err)}`)
		log.error(`cannot start: ${what} is unreachable`, errorFields(err))
		log.flush()
		process.exit(1)
	})
	const app = createApp(deps).listen({ port: config.port, hostname: config.host, reusePort: opts.worker })
	const server = app.server
	if (!server) throw new Error('server did not start')
	// Pending requests include bodies still being sent; the scrape asking is one of them.
	metrics.setInFlightSource(() => server.pendingRequests - 1)
	log.info('listening', { url: server.url.href, pid: process.pid, store: config.store.kind, worker: opts.worker })
	deps.start()

	let stopping = false
	const shutdown = async (signal: string) => {
		if (stopping) return
		stopping = true
		draining = true
		log.info('shutting down', { signal, grace_s: config.shutdownGraceS })
		const graceful = server.stop(false)
		const deadline = new Promise<'timeout'>((resolve) =>
			setTimeout(() => resolve('timeout'), config.shutdownGraceS * 1000).unref(),
		)
		if ((await Promise.race([graceful, deadline])) === 'timeout') {
			log.warn('grace period over; closing remaining connections')
			await server.stop(true)
		}
		await deps.close()
		log.info('stopped')
		log.flush()
		process.exit(0)
	}
	process.on('SIGTERM', () => void shutdown('SIGTERM'))
	process.on('SIGINT', () => void shutdown('SIGINT'))
	if (opts.worker) {
		// A supervisor killed outright (SIGKILL, the OOM killer) cannot stop its workers: each
		// notices it was re-parented and stops too, so no orphan keeps serving the shared port.
		const supervisorPid = process.ppid
		setInterval(() => {
			if (process.ppid === supervisorPid) return
			log.error('the supervisor process is gone; stopping', { supervisor_pid: supervisorPid })
			void shutdown('supervisor gone')
		}, SUPERVISOR_CHECK_MS).unref()
	}
}
