import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { Config } from '../config'
import type { RedisClient } from './scripts'

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

/** Builds the Redis client the config asks for (null for the in-memory store); the caller owns and closes it. */
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

/** Connects `client`, rejecting when it is not ready within `timeoutMs`. */
export async function waitReady(client: RedisClient, timeoutMs: number): Promise<void> {
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
