import { afterAll } from 'bun:test'
import { Redis } from 'ioredis'
import { serviceEnv } from '../support/helpers'
import { pollUntil } from '../support/poll'
import { type BucketTarget, type S3Server, startS3Server } from '../support/s3-server'
import { type BucketProxy, startBucketProxy } from './bucket-proxy'

// What the bucket suites share: s3rver behind the proxy that records what the
// service asks of it, and what they read besides the service's answers: an
// object's own headers straight from the bucket, and a token's record in Redis.

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
	/** The budget once no body holds a reservation (a body ends for the store a moment after the client has it). */
	settledBudget(userId: string, jti: string, timeoutMs?: number): Promise<Budget>
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
		settledBudget(userId, jti, timeoutMs = 5000) {
			return pollUntil(
				() => this.budget(userId, jti),
				(b) => b.inFlight === 0,
				timeoutMs,
			)
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

/** s3rver behind the recording proxy, started for one test file. */
export interface BucketFixture {
	readonly server: S3Server
	readonly proxy: BucketProxy
	/** The environment of a service process (`serviceEnv`) on this bucket at `endpoint` (the proxy's unless given). */
	serviceEnv(extra?: Record<string, string>, endpoint?: string): Record<string, string>
	/**
	 * Runs `steps` after the file's last test, in order, each whatever the ones
	 * before said (a test app's close fails on a logged internal error); the
	 * servers stop after them. The first failure fails the file.
	 */
	afterTests(...steps: (() => unknown)[]): void
}

/** Starts s3rver and its proxy for this test file; they stop after its last test. */
export async function bucketForFile(): Promise<BucketFixture> {
	const server = await startS3Server()
	const proxy = await startBucketProxy(server.port)
	const steps: (() => unknown)[] = []
	afterAll(async () => {
		let failure: unknown = null
		for (const step of [...steps, () => proxy.close(), () => server.destroy()]) {
			try {
				await step()
			} catch (err) {
				failure ??= err
			}
		}
		if (failure !== null) throw failure
	})
	return {
		server,
		proxy,
		serviceEnv: (extra = {}, endpoint = proxy.endpoint) =>
			serviceEnv('', {
				STORAGE_DIR: '',
				S3_BUCKET: server.bucket,
				S3_ENDPOINT: endpoint,
				S3_ACCESS_KEY_ID: server.accessKeyId,
				S3_SECRET_ACCESS_KEY: server.secretAccessKey,
				NODE_ENV: 'production',
				ISSUE_AUTH: 'none',
				...QUIET_LIMITS,
				...extra,
			}),
		afterTests: (...more) => {
			steps.push(...more)
		},
	}
}
