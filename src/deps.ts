import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { Clock } from './clock'
import { systemClock } from './clock'
import type { Config } from './config'
import { createLogger, errorFields, type Logger } from './log'
import { createDiskStorage, type Storage } from './storage/disk'
import { createMemoryTokenStore } from './store/memory'
import { createMemoryRateLimiter, createRedisRateLimiter, type RateLimiter } from './store/rate-limit'
import { createRedisTokenStore, type RedisClient } from './store/redis'
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

// Fail fast: a command while Redis is down errors at once (no offline queue)
// or within a second (commandTimeout), and the client keeps reconnecting in
// the background so the service recovers by itself.
const FAIL_FAST: RedisOptions = {
	enableOfflineQueue: false,
	maxRetriesPerRequest: 1,
	commandTimeout: 1000,
	connectTimeout: 2000,
	enableAutoPipelining: true,
	retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
	lazyConnect: true,
}

/** Builds the Redis client the config asks for; the caller owns and closes it. */
export function createRedisClient(config: Config): RedisClient | null {
	const store = config.store
	switch (store.kind) {
		case 'memory':
			return null
		case 'redis':
			return new Redis(store.url, FAIL_FAST)
		case 'sentinel':
			return new Redis({
				...FAIL_FAST,
				sentinels: store.sentinels.map((s) => ({ host: s.host, port: s.port })),
				name: store.name,
				...(store.password ? { password: store.password } : {}),
			})
		case 'cluster':
			return new Cluster(
				store.nodes.map((n) => ({ host: n.host, port: n.port })),
				{
					enableOfflineQueue: false,
					enableAutoPipelining: true,
					lazyConnect: true,
					clusterRetryStrategy: FAIL_FAST.retryStrategy,
					redisOptions: {
						...FAIL_FAST,
						...(store.password ? { password: store.password } : {}),
					},
				},
			)
	}
}

async function waitReady(client: RedisClient, timeoutMs: number): Promise<void> {
	let timer: ReturnType<typeof setTimeout> | undefined
	const timeout = new Promise<never>((_, reject) => {
		timer = setTimeout(() => reject(new Error(`Redis not ready after ${timeoutMs} ms`)), timeoutMs)
	})
	try {
		await Promise.race([client.connect(), timeout])
	} finally {
		clearTimeout(timer)
	}
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
