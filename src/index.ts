import { mkdir } from 'node:fs/promises'
import type { Subprocess } from 'bun'
import { createApp } from './app'
import { type Config, ConfigError, loadConfig, processEnv, redactedConfig } from './config'
import { createDeps } from './deps'
import { createLogger, errorFields, type Logger } from './log'
import { aggregateMetrics, createMetrics, type Metrics, type MetricsSnapshot } from './modules/ops/metrics'

// Worker processes (WORKERS > 1) are this same script started with --worker;
// they share the port through SO_REUSEPORT, and talk to the primary over IPC
// so that one scrape of /metrics, on whichever process takes it, covers all.
const isWorker = process.argv.includes('--worker')

/** Messages between the primary and its workers. */
type IpcMessage =
	| { readonly t: 'scrape'; readonly id: number } // worker → primary: a scrape arrived here
	| { readonly t: 'collect'; readonly id: number } // primary → worker: send your snapshot
	| { readonly t: 'snapshot'; readonly id: number; readonly data: MetricsSnapshot } // worker → primary
	| { readonly t: 'scraped'; readonly id: number; readonly text: string } // primary → worker: the aggregate

const COLLECT_TIMEOUT_MS = 1500

function configOrExit(): Config {
	try {
		return loadConfig(processEnv())
	} catch (err) {
		if (!(err instanceof ConfigError)) throw err
		console.error(`download-gate: configuration error: ${err.message}`)
		process.exit(1)
	}
}

let stopping = false

/** The primary: collects every worker's snapshot (bounded wait) and aggregates them with its own. */
function primaryMetrics(metrics: Metrics, log: Logger) {
	let children: Subprocess[] = []
	let nextId = 0
	const waiting = new Map<number, { snapshots: MetricsSnapshot[]; expected: number; done: () => void }>()

	async function aggregate(): Promise<string> {
		const id = nextId++
		const snapshots: MetricsSnapshot[] = [await metrics.registry.getMetricsAsJSON()]
		const live = children.filter((c) => c.exitCode === null)
		await new Promise<void>((resolve) => {
			const timer = setTimeout(() => {
				log.warn('metrics: some workers did not answer in time', { expected: live.length, got: snapshots.length - 1 })
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
		return aggregateMetrics(snapshots)
	}

	return {
		aggregate,
		setChildren(list: Subprocess[]) {
			children = list
		},
		onMessage(message: IpcMessage, child: Subprocess) {
			if (message.t === 'snapshot') {
				const pending = waiting.get(message.id)
				if (!pending) return
				pending.snapshots.push(message.data)
				if (pending.snapshots.length - 1 >= pending.expected) pending.done()
			} else if (message.t === 'scrape') {
				void aggregate().then((text) => child.send({ t: 'scraped', id: message.id, text } satisfies IpcMessage))
			}
		},
	}
}

/** A worker: answers collects with its snapshot, and asks the primary for the aggregate on a scrape. */
function workerMetrics(metrics: Metrics, log: Logger) {
	let nextId = 0
	const waiting = new Map<number, (text: string) => void>()
	process.on('message', (message: IpcMessage) => {
		if (message.t === 'collect')
			void metrics.registry
				.getMetricsAsJSON()
				.then((data) => process.send?.({ t: 'snapshot', id: message.id, data } satisfies IpcMessage))
		else if (message.t === 'scraped') waiting.get(message.id)?.(message.text)
	})
	return (): Promise<string> =>
		new Promise((resolve) => {
			const id = nextId++
			const timer = setTimeout(() => {
				// The primary is gone or stuck: this worker's own figures beat no answer.
				waiting.delete(id)
				log.warn('metrics: the primary did not answer; serving this worker’s metrics only')
				resolve(metrics.registry.metrics())
			}, COLLECT_TIMEOUT_MS * 2)
			waiting.set(id, (text) => {
				clearTimeout(timer)
				waiting.delete(id)
				resolve(text)
			})
			process.send?.({ t: 'scrape', id } satisfies IpcMessage)
		})
}

async function main() {
	const config = configOrExit()
	const log = createLogger(config.logLevel)
	if (!isWorker) {
		log.info('starting', { config: redactedConfig(config) })
		if (config.jwtSecretGenerated)
			log.warn('JWT_SECRET not set: using a random secret, so tokens die with this process (development only)')
		if (config.store.kind === 'memory')
			log.warn('REDIS_URL not set: using the in-memory token store (development only)')
		if (config.issueAuth === 'none')
			log.warn(
				config.issueAuthExplicit
					? 'ISSUE_AUTH=none: anyone may ask for a token for any user and file'
					: 'no API_KEYS or user-token verifier configured: anyone may ask for a token (development default)',
			)
	}

	// A fresh checkout has no ./storage yet; creating it beats a service that 404s everything.
	await mkdir(config.storageDir, { recursive: true }).catch((err: unknown) =>
		log.warn('cannot create STORAGE_DIR', { dir: config.storageDir, ...errorFields(err) }),
	)

	const metrics = createMetrics()
	const multi = config.workers > 1
	const primary = !isWorker && multi ? primaryMetrics(metrics, log) : null
	const metricsText = isWorker ? workerMetrics(metrics, log) : (primary?.aggregate ?? undefined)

	let draining = false
	const deps = await createDeps(config, {
		log,
		metrics,
		draining: () => draining,
		...(metricsText ? { metricsText } : {}),
	}).catch((err: unknown) => {
		log.error('cannot start: the token store is unreachable', errorFields(err))
		log.flush()
		process.exit(1)
	})
	const app = createApp(deps).listen({
		port: config.port,
		hostname: config.host,
		reusePort: multi,
	})
	const server = app.server
	if (!server) throw new Error('server did not start')
	// Pending requests include bodies still being sent; the scrape asking is one of them.
	metrics.setInFlightSource(() => server.pendingRequests - 1)
	log.info('listening', { url: server.url.href, pid: process.pid, store: config.store.kind, worker: isWorker })

	const children =
		primary === null
			? []
			: Array.from({ length: config.workers - 1 }, () =>
					Bun.spawn([process.execPath, ...process.argv.slice(1), '--worker'], {
						// A generated development secret must be the same in every worker.
						env: { ...processEnv(), JWT_SECRET: config.jwtSecret },
						stdio: ['ignore', 'inherit', 'inherit'],
						ipc: (message: IpcMessage, child) => primary.onMessage(message, child),
					}),
				)
	primary?.setChildren(children)
	for (const child of children)
		child.exited.then((code) => {
			if (stopping) return
			log.error('worker exited; stopping so the supervisor restarts us', { worker_pid: child.pid, code })
			process.kill(process.pid, 'SIGTERM')
		})

	const shutdown = async (signal: string) => {
		if (stopping) return
		stopping = true
		draining = true
		log.info('shutting down', { signal, grace_s: config.shutdownGraceS })
		for (const child of children) child.kill('SIGTERM')
		const graceful = server.stop(false)
		const deadline = new Promise<'timeout'>((resolve) =>
			setTimeout(() => resolve('timeout'), config.shutdownGraceS * 1000).unref(),
		)
		if ((await Promise.race([graceful, deadline])) === 'timeout') {
			log.warn('grace period over; closing remaining connections')
			await server.stop(true)
		}
		await Promise.all(children.map((c) => c.exited))
		await deps.close()
		log.info('stopped')
		log.flush()
		process.exit(0)
	}
	process.on('SIGTERM', () => void shutdown('SIGTERM'))
	process.on('SIGINT', () => void shutdown('SIGINT'))
	if (isWorker) {
		// A primary killed outright (SIGKILL, the OOM killer) cannot stop its workers: each
		// notices it was re-parented and stops too, so no orphan keeps serving the shared port.
		const primaryPid = process.ppid
		setInterval(() => {
			if (process.ppid === primaryPid) return
			log.error('the primary process is gone; stopping', { primary_pid: primaryPid })
			void shutdown('primary gone')
		}, 500).unref()
	}
}

await main()
