import type { Clock } from './clock'
import { systemClock } from './clock'
import type { Config } from './config'
import { createLogger, errorFields, type Logger } from './log'
import { createDiskStorage, type Storage } from './storage/disk'
import { createRedisClient, waitReady } from './store/connect'
import { createMemoryTokenStore } from './store/memory'
import { createMemoryRateLimiter, createRedisRateLimiter, type RateLimiter } from './store/rate-limit'
import { createRedisTokenStore } from './store/redis'
import type { TokenStore } from './store/types'

/** Everything the app needs from the outside world; built once per process. */
export interface Deps {
	readonly config: Config
	readonly clock: Clock
	readonly log: Logger
	readonly store: TokenStore
	readonly rateLimiter: RateLimiter
	readonly storage: Storage
	readonly draining: () => boolean
	/** Closes what `createDeps` built (the Redis client, store timers). */
	close(): Promise<void>
}

export interface DepsOverrides {
	readonly clock?: Clock
	readonly log?: Logger
	readonly draining?: () => boolean
}

/**
 * The only place that builds the Redis client and storage. Waits for Redis to
 * be ready (failing within a few seconds if it is not).
 */
export async function createDeps(config: Config, overrides: DepsOverrides = {}): Promise<Deps> {
	const clock = overrides.clock ?? systemClock
	const log = overrides.log ?? createLogger(config.logLevel)
	const client = createRedisClient(config)
	if (client) {
		client.on('error', (err: unknown) => log.warn('redis error', errorFields(err)))
		await waitReady(client, 5000).catch((err: unknown) => {
			client.disconnect()
			throw err
		})
	}
	const store = client
		? createRedisTokenStore(client, { prefix: config.redisKeyPrefix, clock })
		: createMemoryTokenStore({ clock })
	return {
		config,
		clock,
		log,
		store,
		rateLimiter: client ? createRedisRateLimiter(client, config.redisKeyPrefix) : createMemoryRateLimiter(clock),
		storage: createDiskStorage(config.storageDir),
		draining: overrides.draining ?? (() => false),
		async close() {
			await store.close()
			if (client) await client.quit().catch(() => client.disconnect())
		},
	}
}
