import { Redis } from 'ioredis'
import type { Clock } from './clock'
import { systemClock } from './clock'
import type { Config } from './config'
import { createLogger, errorFields, type Logger } from './log'
import { instrumentStore } from './modules/ops/instrumented-store'
import { createMetrics, type Metrics } from './modules/ops/metrics'
import { createDiskStorage } from './storage/disk'
import type { Storage } from './storage/types'
import { type CancellationQueue, createCancellationQueue } from './store/cancellations'
import { createRedisClient, waitReady } from './store/connect'
import { createMemoryTokenStore } from './store/memory'
import { createMemoryRateLimiter, createRedisRateLimiter, type RateLimiter } from './store/rate-limit'
import { createRedisTokenStore, type RedisClient } from './store/redis'
import { createTrackedCache } from './store/tracking'
import type { TokenStore } from './store/types'

/** Everything the app needs from the outside world; built once per process. */
export interface Deps {
	readonly config: Config
	readonly clock: Clock
	readonly log: Logger
	readonly store: TokenStore
	readonly rateLimiter: RateLimiter
	readonly storage: Storage
	readonly cancellations: CancellationQueue
	readonly metrics: Metrics
	/** The Prometheus text of the whole instance; this process's alone unless `DepsOverrides.metricsText` says otherwise. */
	readonly metricsText: () => Promise<string>
	readonly draining: () => boolean
	/** Closes what `createDeps` built (the Redis client, store timers). */
	close(): Promise<void>
}

export interface DepsOverrides {
	readonly clock?: Clock
	readonly log?: Logger
	readonly draining?: () => boolean
	readonly metrics?: Metrics
	/** With several workers, the aggregation of every worker through the supervisor (see process/ipc.ts). */
	readonly metricsText?: () => Promise<string>
}

/** How long a write may wait for replicas (`WAIT`), inside the ~1 s a store command may take. */
const REPLICA_ACK_TIMEOUT_MS = 500
/** Bytes of unlimited tokens' state each process may remember (a few hundred bytes each). */
const TOKEN_CACHE_BYTES = 8 * 1024 * 1024

/**
 * A Redis client for `config` (null for the in-memory store) whose errors are
 * logged as `what`, once it is ready; closed again when it is not within 5 s.
 */
async function readyClient(config: Config, log: Logger, what: string): Promise<RedisClient | null> {
	const client = createRedisClient(config)
	if (!client) return null
	client.on('error', (err: unknown) => log.warn(what, errorFields(err)))
	await waitReady(client, 5000).catch((err: unknown) => {
		client.disconnect()
		throw err
	})
	return client
}

/** The storage `config` names. */
function createStorage(config: Config): Storage {
	if (config.storage.kind === 'disk') return createDiskStorage(config.storage.dir)
	throw new Error('bucket storage is not wired yet')
}

/**
 * The only place that builds the Redis client and storage. Waits for Redis to
 * be ready (failing within a few seconds if it is not).
 */
export async function createDeps(config: Config, overrides: DepsOverrides = {}): Promise<Deps> {
	const clock = overrides.clock ?? systemClock
	const log = overrides.log ?? createLogger(config.logLevel)
	const metrics = overrides.metrics ?? createMetrics()
	const client = await readyClient(config, log, 'redis error')
	// Client-side caching (single Redis, Sentinel; a Cluster asks Redis every
	// time) on a second connection of its own, built like the first so it
	// follows failovers the same way.
	const reads =
		client instanceof Redis
			? ((await readyClient(config, log, 'redis error (tracked reads)').catch((err: unknown) => {
					client.disconnect()
					throw err
				})) as Redis)
			: null
	const cache = reads ? createTrackedCache(reads, log, TOKEN_CACHE_BYTES, config.redisKeyPrefix) : undefined
	const store = instrumentStore(
		client
			? createRedisTokenStore(client, {
					prefix: config.redisKeyPrefix,
					clock,
					minReplicasAck: config.redisMinReplicasAck,
					replicaAckTimeoutMs: REPLICA_ACK_TIMEOUT_MS,
					...(cache ? { cache } : {}),
				})
			: createMemoryTokenStore({ clock }),
		metrics,
	)
	const cancellations = createCancellationQueue(store, log)
	return {
		config,
		clock,
		log,
		store,
		rateLimiter: client ? createRedisRateLimiter(client, config.redisKeyPrefix) : createMemoryRateLimiter(clock),
		storage: createStorage(config),
		cancellations,
		metrics,
		metricsText: overrides.metricsText ?? (() => metrics.registry.metrics()),
		draining: overrides.draining ?? (() => false),
		async close() {
			cancellations.stop()
			await store.close()
			await cache?.close()
			if (reads) await reads.quit().catch(() => reads.disconnect())
			if (client) await client.quit().catch(() => client.disconnect())
		},
	}
}
