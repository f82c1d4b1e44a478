import { mkdir } from 'node:fs/promises'
import { createApp } from './app'
import { type Config, ConfigError, loadConfig, processEnv } from './config'
import { createDeps } from './deps'
import { createLogger, errorFields } from './log'

// Worker processes (WORKERS > 1) are this same script started with --worker;
// they share the port through SO_REUSEPORT.
const isWorker = process.argv.includes('--worker')

function configOrExit(): Config {
	try {
		return loadConfig(processEnv())
	} catch (err) {
		if (!(err instanceof ConfigError)) throw err
		console.error(`download-gate: configuration error: ${err.message}`)
		process.exit(1)
	}
}

function spawnWorkers(config: Config, log: ReturnType<typeof createLogger>) {
	const children = Array.from({ length: config.workers - 1 }, () =>
		Bun.spawn([process.execPath, ...process.argv.slice(1), '--worker'], {
			// A generated development secret must be the same in every worker.
			env: { ...processEnv(), JWT_SECRET: config.jwtSecret },
			stdio: ['ignore', 'inherit', 'inherit'],
		}),
	)
	for (const child of children)
		child.exited.then((code) => {
			if (stopping) return
			log.error('worker exited; stopping so the supervisor restarts us', { pid: child.pid, code })
			process.kill(process.pid, 'SIGTERM')
		})
	return children
}

let stopping = false

async function main() {
	const config = configOrExit()
	const log = createLogger(config.logLevel)
	if (!isWorker) {
		if (config.jwtSecretGenerated)
			log.warn('JWT_SECRET not set: using a random secret, so tokens die with this process (development only)')
		if (config.store.kind === 'memory')
			log.warn('REDIS_URL not set: using the in-memory token store (development only)')
		if (config.issueAuth === 'none') log.warn('ISSUE_AUTH=none: anyone may ask for a token for any user and file')
	}

	// A fresh checkout has no ./storage yet; creating it beats a service that 404s everything.
	await mkdir(config.storageDir, { recursive: true }).catch((err: unknown) =>
		log.warn('cannot create STORAGE_DIR', { dir: config.storageDir, ...errorFields(err) }),
	)

	let draining = false
	const deps = await createDeps(config, { log, draining: () => draining }).catch((err: unknown) => {
		log.error('cannot start: the token store is unreachable', errorFields(err))
		log.flush()
		process.exit(1)
	})
	const app = createApp(deps).listen({
		port: config.port,
		hostname: config.host,
		reusePort: config.workers > 1,
	})
	const server = app.server
	if (!server) throw new Error('server did not start')
	log.info('listening', { url: server.url.href, pid: process.pid, store: config.store.kind, worker: isWorker })
	const children = !isWorker && config.workers > 1 ? spawnWorkers(config, log) : []

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
		log.flush()
		process.exit(0)
	}
	process.on('SIGTERM', () => void shutdown('SIGTERM'))
	process.on('SIGINT', () => void shutdown('SIGINT'))
}

await main()
