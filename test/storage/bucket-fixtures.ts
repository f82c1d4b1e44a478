import { Redis } from 'ioredis'
import type { BucketTarget } from '../support/s3-server'

// What the bucket suites read besides the service's answers: an object's own
// headers straight from the bucket, and a token's record in Redis.

export const MiB = 1024 * 1024

/** Settings every bucket suite's service gets: refusals are on purpose here, the limits are tested elsewhere. */
export const QUIET_LIMITS = { RATE_LIMIT_DENIED: '100000/min', RATE_LIMIT_ISSUE: '100000/min' } as const

/** An object's ETag, Last-Modified and length, as the bucket itself answers a HEAD for it. */
export async function objectHead(
	target: BucketTarget,
	key: string,
): Promise<{ etag: string; lastModified: string; length: number }> {
	const response = await fetch(target.client.presign(key, { method: 'HEAD' }), { method: 'HEAD' })
	if (response.status !== 200) throw new Error(`HEAD ${key}: ${response.status}`)
	return {
		etag: response.headers.get('etag') ?? '',
		lastModified: response.headers.get('last-modified') ?? '',
		length: Number(response.headers.get('content-length')),
	}
}

/** A token's budget as its record holds it. */
export interface Budget {
	/** Field b: bytes left (null for an unlimited token). */
	readonly left: number | null
	/** Field a: resume allowance left. */
	readonly allowance: number | null
	/** Reservations (`v:<id>` fields) still open. */
	readonly inFlight: number
}

/** Reads token records and events on the test redis-server (TEST_REDIS_URL) under one key prefix. */
export interface RecordReader {
	budget(userId: string, jti: string): Promise<Budget>
	/** Events of `type` about `jti`, their data parsed, oldest first. */
	events(type: string, jti: string): Promise<Record<string, unknown>[]>
	close(): Promise<void>
}

export function recordReader(prefix: string, redisUrl = process.env.TEST_REDIS_URL): RecordReader {
	if (!redisUrl) throw new Error('TEST_REDIS_URL is not set: is test/setup.ts preloaded?')
	const redis = new Redis(redisUrl, { lazyConnect: true })
	const number = (value: string | undefined) => (value === undefined ? null : Number(value))
	return {
		async budget(userId, jti) {
			const record = await redis.hgetall(`${prefix}t:{${userId}}:${jti}`)
			if (Object.keys(record).length === 0) throw new Error(`no record for ${userId}/${jti}`)
			const open = Object.entries(record).filter(([field, value]) => field.startsWith('v:') && value !== 'x')
			return { left: number(record.b), allowance: number(record.a), inFlight: open.length }
		},
		async events(type, jti) {
			const entries = await redis.xrange(`${prefix}events`, '-', '+')
			return entries
				.map(([, fields]) => {
					const at = (name: string) => fields[fields.indexOf(name) + 1] ?? ''
					return { type: at('type'), data: JSON.parse(at('data') || '{}') as Record<string, unknown> }
				})
				.filter((e) => e.type === type && e.data.jti === jti)
				.map((e) => e.data)
		},
		async close() {
			redis.disconnect()
		},
	}
}
