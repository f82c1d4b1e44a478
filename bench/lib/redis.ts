// The bench's own redis-server (no persistence, loopback, free port), and a
// fast way to fill it with live token records in the service's format.

import { Redis } from 'ioredis'
import { freePort, type Managed, spawnServer, waitFor } from './proc'

/** A redis-server started for the bench. */
export interface BenchRedis {
	readonly url: string
	readonly pid: number
	stop(): Promise<void>
}

async function ping(url: string): Promise<boolean> {
	const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
	// Refused connections while the server starts are expected: connect() rejects, the event is noise.
	client.on('error', () => {})
	try {
		await client.connect()
		return (await client.ping()) === 'PONG'
	} finally {
		client.disconnect()
	}
}

/** Starts redis-server on a free loopback port and waits for PING. */
export async function startRedis(): Promise<BenchRedis> {
	const port = freePort()
	const managed: Managed = spawnServer([
		'redis-server',
		'--port',
		String(port),
		'--bind',
		'127.0.0.1',
		'--save',
		'',
		'--appendonly',
		'no',
	])
	const url = `redis://127.0.0.1:${port}`
	try {
		await waitFor('redis-server', () => ping(url), { managed })
	} catch (err) {
		await managed.stop()
		throw err
	}
	return { url, pid: managed.pid, stop: () => managed.stop() }
}

/**
 * Writes live token records `from`…`to - 1` the way download-gate's store
 * does (hash `dlg:t:{user}:jti` with f/i/e/m/b/a, index `dlg:u:{user}`),
 * spread over 10,000 users, pipelined. Returns the number of keys.
 */
export async function preloadTokens(url: string, from: number, to: number): Promise<number> {
	const redis = new Redis(url)
	try {
		const now = Math.floor(Date.now() / 1000)
		for (let start = from; start < to; start += 5000) {
			const pipeline = redis.pipeline()
			for (let i = start; i < Math.min(to, start + 5000); i++) {
				const user = `p${i % 10_000}`
				const key = `dlg:t:{${user}}:preload${i}`
				pipeline.hset(key, 'f', 'small.mp4', 'i', now, 'e', now + 3600, 'm', 1, 'b', 65536, 'a', 65536)
				pipeline.pexpire(key, 3_600_000)
				pipeline.zadd(`dlg:u:{${user}}`, now + 3600, `preload${i}`)
			}
			await pipeline.exec()
		}
		return await redis.dbsize()
	} finally {
		redis.disconnect()
	}
}
