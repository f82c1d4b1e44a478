import { hostname } from 'node:os'
import { Cluster, Redis } from 'ioredis'
import type { Clock } from './clock'
import { systemClock } from './clock'
import type { Config } from './config'
import { createLogger, errorFields, type Logger } from './log'
import { createWebhookDelivery, type WebhookDelivery } from './modules/events/webhooks'
import { createEventWriter, type EventWriter } from './modules/events/writer'
import { instrumentStore } from './modules/ops/instrumented-store'
import { createMetrics, type Metrics, webhookMetricsOf } from './modules/ops/metrics'
import { createDiskStorage, nodeFileSystem } from './storage/disk'
import { createBucketStorage } from './storage/s3'
import type { Storage } from './storage/types'
import { type CancellationQueue, createCancellationQueue } from './store/cancellations'
import { createRedisClient, waitReady } from './store/connect'
import type { StoreEvents } from './store/events'
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
	/** Lifecycle events this instance writes itself (null when events are off). */
	readonly events: EventWriter | null
	/** The Prometheus text of the whole instance; this process's alone unless `DepsOverrides.metricsText` says otherwise. */
	readonly metricsText: () => Promise<string>
	readonly draining: () => boolean
	/** Starts what runs in the background (webhook deliveries); once the server listens. */
	start(): void
	/** Stops and closes what `createDeps` built (deliveries, Redis clients, store timers, storage). */
	close(): Promise<void>
}

export interface DepsOverrides {
	readonly clock?: Clock
	readonly log?: Logger
	readonly draining?: () => boolean
	readonly metrics?: Metrics
	/** With several workers, the aggregation of every worker through the supervisor (see process/ipc.ts). */
	readonly metricsText?: () => Promise<string>
	/** Which worker this process is (0 alone): the webhook consumer name, stable across restarts. */
	readonly workerIndex?: number
	/** Per-attempt settings of the webhook worker (tests shorten its backoff). */
	readonly webhookTuning?: Parameters<typeof createWebhookDelivery>[0]['tuning']
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

/** The storage `config` names; a bucket reports each request to the metrics. */
function createStorage(config: Config, metrics: Metrics): Storage {
	const storage = config.storage
	if (storage.kind === 'disk')
		return createDiskStorage(storage.dir, nodeFileSystem(), {
			validMs: config.openFileCacheValidS * 1000,
			maxEntries: config.openFileCacheMax,
		})
	return createBucketStorage({
		bucket: storage.bucket,
		...(storage.endpoint !== undefined ? { endpoint: storage.endpoint } : {}),
		region: storage.region,
		accessKeyId: storage.accessKeyId,
		secretAccessKey: storage.secretAccessKey,
		...(storage.sessionToken !== undefined ? { sessionToken: storage.sessionToken } : {}),
		prefix: storage.prefix,
		virtualHostedStyle: storage.virtualHostedStyle,
		observe: (operation, outcome, seconds) => metrics.storageRequestDuration.observe({ operation, outcome }, seconds),
		metadataValidMs: config.openFileCacheValidS * 1000,
		metadataMaxEntries: config.openFileCacheMax,
	})
}

/**
 * The only place that builds the Redis clients and the storage. Waits for
 * Redis to be ready and for the bucket to answer (failing within a few
 * seconds, with the reason, when either is not).
 */
export async function createDeps(config: Config, overrides: DepsOverrides = {}): Promise<Deps> {
	const clock = overrides.clock ?? systemClock
	const log = overrides.log ?? createLogger(config.logLevel)
	const metrics = overrides.metrics ?? createMetrics()
	const storage = createStorage(config, metrics)
	// A bucket that is missing or refuses the credentials stops the start, with one line saying
	// why; a directory that is not there is reported by /ready, as it may be mounted later.
	if (storage.kind === 'bucket') await storage.check()
	const opened: RedisClient[] = []
	const closeOpened = () => {
		for (const c of opened) c.disconnect()
	}
	const open = async (what: string) => {
		const c = await readyClient(config, log, what).catch((err: unknown) => {
			closeOpened()
			throw err
		})
		if (c) opened.push(c)
		return c
	}
	const client = await open('redis error')
	// Client-side caching (single Redis, Sentinel; a Cluster asks Redis every
	// time) on a second connection of its own, built like the first so it
	// follows failovers the same way.
	const reads = client instanceof Redis ? ((await open('redis error (tracked reads)')) as Redis) : null
	const cache = reads ? createTrackedCache(reads, log, TOKEN_CACHE_BYTES, config.redisKeyPrefix) : undefined

	const streamKey = `${config.redisKeyPrefix}events`
	const events =
		client && config.events.enabled
			? createEventWriter({
					client,
					streamKey,
					maxLen: config.events.maxLen,
					clock,
					log,
					written: (type) => metrics.eventsWritten.inc({ type }),
					dropped: (type) => metrics.eventsDropped.inc({ type }),
				})
			: null
	// The scripts append their events in the same step as the state change; on Cluster the
	// stream lives in another slot than a user's keys, so they hand them to the writer instead.
	const storeEvents: StoreEvents =
		events === null
			? { mode: 'off' }
			: client instanceof Cluster
				? { mode: 'return', maxLen: config.events.maxLen, write: (entries) => events.write(entries) }
				: {
						mode: 'inline',
						key: streamKey,
						maxLen: config.events.maxLen,
						written: (types) => {
							for (const type of types) metrics.eventsWritten.inc({ type })
						},
					}

	const store = instrumentStore(
		client
			? createRedisTokenStore(client, {
					prefix: config.redisKeyPrefix,
					clock,
					minReplicasAck: config.redisMinReplicasAck,
					replicaAckTimeoutMs: REPLICA_ACK_TIMEOUT_MS,
					events: storeEvents,
					...(cache ? { cache } : {}),
				})
			: createMemoryTokenStore({ clock }),
		metrics,
	)

	// Settings refused after clients were opened (the webhook worker's): nothing built is left running.
	const abandonOnThrow = <T>(build: () => T): T => {
		try {
			return build()
		} catch (err) {
			void cache?.close()
			closeOpened()
			throw err
		}
	}
	let delivery: WebhookDelivery | null = null
	const webhooks = config.webhooks
	if (webhooks && events) {
		// Deliveries read with a connection of their own: they never queue behind the download path.
		const deliveries = await open('redis error (webhooks)')
		if (deliveries)
			delivery = abandonOnThrow(() =>
				createWebhookDelivery({
					redis: deliveries,
					streamKey,
					deadLetterKey: `${streamKey}:dead`,
					endpoints: webhooks.urls,
					secret: webhooks.secret,
					eventTypes: new Set(webhooks.events),
					consumerName: `${hostname()}:${overrides.workerIndex ?? 0}`,
					log,
					clock,
					timeoutMs: webhooks.timeoutS * 1000,
					maxAgeMs: webhooks.maxAgeS * 1000,
					metrics: webhookMetricsOf(metrics),
					...(overrides.webhookTuning ? { tuning: overrides.webhookTuning } : {}),
				}),
			)
	}

	const cancellations = createCancellationQueue(store, log)
	return {
		config,
		clock,
		log,
		store,
		rateLimiter: client ? createRedisRateLimiter(client, config.redisKeyPrefix) : createMemoryRateLimiter(clock),
		storage,
		cancellations,
		metrics,
		events,
		metricsText: overrides.metricsText ?? (() => metrics.registry.metrics()),
		draining: overrides.draining ?? (() => false),
		start() {
			delivery?.start()
		},
		async close() {
			await delivery?.stop()
			cancellations.stop()
			await events?.flush().catch(() => {})
			await store.close()
			await cache?.close()
			await storage.close()
			for (const c of opened.reverse()) await c.quit().catch(() => c.disconnect())
		},
	}
}
