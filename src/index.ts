import { type Config, ConfigError, loadConfig, processEnv } from './config'
import { workerIndexOf } from './process/ipc'

// `bun src/index.ts`: one serving process, or with WORKERS=N a supervisor that
// starts N workers (this same script with --worker) sharing the port through
// SO_REUSEPORT. The supervisor loads only what supervising needs: the server
// (Elysia, the app, the Redis client) is imported by serving processes alone.

function configOrExit(): Config {
	try {
		return loadConfig(processEnv())
	} catch (err) {
		if (!(err instanceof ConfigError)) throw err
		console.error(`download-gate: configuration error: ${err.message}`)
		process.exit(1)
	}
}

const config = configOrExit()
const workerIndex = workerIndexOf(process.argv)
if (config.workers > 1 && workerIndex === null) {
	const { supervise } = await import('./process/supervisor')
	await supervise(config)
} else {
	const { serve } = await import('./process/server')
	await serve(config, { worker: workerIndex !== null, workerIndex: workerIndex ?? 0 })
}
