import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { loadConfig } from '../../src/config'
import { StoreUnavailableError } from '../../src/errors'
import { createLogger } from '../../src/log'
import { createRedisClient, waitReady } from '../../src/store/connect'
import { createMemoryTokenStore } from '../../src/store/memory'
import { createRedisTokenStore } from '../../src/store/redis'
import { createTrackedCache } from '../../src/store/tracking'
import type { NewTokenRecord, TokenStore } from '../../src/store/types'
import { fakeClock, TEST_SECRET, uniquePrefix } from '../support/helpers'
import { pollUntil } from '../support/poll'
import { type RedisServer, startRedisServer } from '../support/redis-server'
import { createIn, record as recordAt, storeContract } from './contract'

const clock = fakeClock()
const nowS = () => Math.floor(clock.now() / 1000)

const record = (overrides: Partial<NewTokenRecord> = {}) => recordAt(clock, overrides)
const budgeted = (size: number, uses: number, allowance: number, o: Partial<NewTokenRecord> = {}) =>
	record({ maxUses: uses, budgetBytes: size * uses, allowanceBytes: allowance, ...o })

/** A Redis store as deps.ts builds one: a client, a second connection for tracked reads, and the cache over it. */
interface CachedInstance {
	readonly store: TokenStore
	close(): Promise<void>
}

async function cachedInstance(cachePrefix: string): Promise<CachedInstance> {
	const config = loadConfig({ JWT_SECRET: TEST_SECRET, REDIS_URL: process.env.TEST_REDIS_URL })
	const client = createRedisClient(config)
	const reads = createRedisClient(config)
	if (!(client instanceof Redis) || !(reads instanceof Redis)) throw new Error('expected single-Redis clients')
	await Promise.all([waitReady(client, 5000), waitReady(reads, 5000)])
	const cache = createTrackedCache(reads, createLogger('silent'), 1024 * 1024, cachePrefix)
	const store = createRedisTokenStore(client, { prefix: cachePrefix, clock: clock.now, cache })
	// Caching is on once a take of an unlimited token is remembered.
	const probe = record({ filename: 'probe.mp4' })
	await createIn(store, probe)
	const on = await pollUntil(
		async () => {
			await store.take(probe.userId, probe.jti, 0, { filename: 'probe.mp4' })
			return store.peek(probe.userId, probe.jti, 'probe.mp4')
		},
		Boolean,
		3000,
		20,
	)
	if (!on) throw new Error('the token cache did not switch on within 3 s')
	return {
		store,
		async close() {
			await cache.close()
			reads.disconnect()
			client.disconnect()
		},
	}
}

let redis: Redis
const prefix = uniquePrefix()
const cachedPrefix = uniquePrefix()
let cached: CachedInstance
let cachedPeer: CachedInstance
beforeAll(async () => {
	redis = new Redis(process.env.TEST_REDIS_URL ?? '', { lazyConnect: false })
	cached = await cachedInstance(cachedPrefix)
	cachedPeer = await cachedInstance(cachedPrefix)
})
afterAll(async () => {
	await redis.quit()
	await cached.close()
	await cachedPeer.close()
})

storeContract('memory', () => createMemoryTokenStore({ clock: clock.now }), clock)
// A RESP3 client (ioredis' default) without the cache…
storeContract('redis', () => createRedisTokenStore(redis, { prefix, clock: clock.now }), clock)
// …and RESP2 clients built as the service builds them, the cache on, beside a second instance.
storeContract(
	'redis, per-process token cache on',
	() => cached.store,
	clock,
	() => cachedPeer.store,
)

describe('the per-process token cache', () => {
	test('a record another client changes straight in Redis is never answered from memory after the invalidation arrives', async () => {
		const { store } = cached
		for (const [field, value, expected] of [
			['f', 'other.mp4', { status: 'mismatch' }],
			['r', '1', { status: 'revoked' }],
		] as const) {
			const r = record({ filename: 'a.mp4' })
			await createIn(store, r)
			for (let i = 0; i < 2; i++)
				expect(await store.take(r.userId, r.jti, 0, { filename: 'a.mp4' })).toEqual({ status: 'ok', budgeted: false })
			expect(store.peek(r.userId, r.jti, 'a.mp4')).toBe(true)
			// No barrier here (not through the store): refused once the invalidation is delivered.
			await redis.hset(`${cachedPrefix}t:{${r.userId}}:${r.jti}`, field, value)
			const answer = await pollUntil(
				() => store.take(r.userId, r.jti, 0, { filename: 'a.mp4' }),
				(a) => a.status !== 'ok',
				250,
				5,
			)
			expect(answer).toEqual(expected)
			expect(store.peek(r.userId, r.jti, 'a.mp4')).toBe(false)
			for (let i = 0; i < 3; i++) expect(await store.take(r.userId, r.jti, 0, { filename: 'a.mp4' })).toEqual(expected)
		}
	})
})

/** The part of a key Redis Cluster hashes: the first non-empty {...} (CLUSTER KEYSLOT rules). */
function hashTag(key: string): string {
	const open = key.indexOf('{')
	const close = key.indexOf('}', open + 1)
	return open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key
}

describe('Redis layout', () => {
	test('every key of a user shares the {user_id} hash tag and expires with the token', async () => {
		const liveStore = createRedisTokenStore(redis, { prefix, clock: clock.now })
		const r = budgeted(50, 1, 10, { userId: 'alice@example.com', expiresAtS: nowS() + 120 })
		await createIn(liveStore, r)
		// A download slot held for a body lives under the same tag.
		await liveStore.take(r.userId, r.jti, 50, {
			lease: { id: 's', limit: 1, ttlMs: 30_000 },
			reservation: 'v',
			start: 0,
		})
		const keys = (await redis.keys(`${prefix}*{alice@example.com}*`)).sort()
		const user = '{alice@example.com}'
		expect(keys).toEqual(
			[`${prefix}t:${user}:${r.jti}`, `${prefix}ue:${user}`, `${prefix}ul:${user}`, `${prefix}dl:${user}`].sort(),
		)
		expect(keys.map(hashTag)).toEqual(keys.map(() => 'alice@example.com'))
		for (const key of keys) {
			const ttl = await redis.pttl(key)
			expect(ttl).toBeGreaterThan(key.includes(':dl:') ? 25_000 : 115_000)
			expect(ttl).toBeLessThanOrEqual(120_000)
		}
	})

	test('with an expiry grace, the record outlives the token by the grace (the listing does not)', async () => {
		const liveStore = createRedisTokenStore(redis, { prefix, clock: clock.now })
		const r = record({ expiresAtS: nowS() + 120, graceS: 60 })
		await createIn(liveStore, r)
		const ttl = await redis.pttl(`${prefix}t:{${r.userId}}:${r.jti}`)
		expect(ttl).toBeGreaterThan(175_000)
		expect(ttl).toBeLessThanOrEqual(180_000)
		expect(await redis.zscore(`${prefix}ue:{${r.userId}}`, `${String(r.issuedAtS).padStart(12, '0')}:${r.jti}`)).toBe(
			String(r.expiresAtS),
		)
	})

	test('the per-user index is pruned of expired entries when a token is created', async () => {
		const liveStore = createRedisTokenStore(redis, { prefix, clock: clock.now })
		const user = `p${crypto.randomUUID().slice(0, 6)}`
		const old = record({ userId: user, expiresAtS: nowS() + 5 })
		await createIn(liveStore, old)
		clock.advance(10_000)
		const fresh = record({ userId: user })
		await createIn(liveStore, fresh)
		const position = `${String(fresh.issuedAtS).padStart(12, '0')}:${fresh.jti}`
		expect(await redis.zrange(`${prefix}ue:{${user}}`, '0', '-1')).toEqual([position])
		expect(await redis.zrange(`${prefix}ul:{${user}}`, '0', '-1')).toEqual([position])
	})

	test('a script answering a status this code does not know is StoreUnavailableError, never a verdict', async () => {
		const own = new Redis(process.env.TEST_REDIS_URL ?? '')
		try {
			const liveStore = createRedisTokenStore(own, { prefix, clock: clock.now })
			const r = record()
			// The store calls its scripts by name: these replace them on this client.
			own.defineCommand('dlg_create', { lua: "return {'maybe'}" })
			own.defineCommand('dlg_take', { lua: "return {'ok_perhaps'}" })
			await expect(createIn(liveStore, r)).rejects.toBeInstanceOf(StoreUnavailableError)
			await expect(liveStore.take(r.userId, r.jti, 0)).rejects.toBeInstanceOf(StoreUnavailableError)
			own.defineCommand('dlg_take', { lua: 'return 4' })
			await expect(liveStore.take(r.userId, r.jti, 0)).rejects.toBeInstanceOf(StoreUnavailableError)
		} finally {
			own.disconnect()
		}
	})

	test('byte counts beyond 10^14 survive the scripts exactly', async () => {
		const liveStore = createRedisTokenStore(redis, { prefix, clock: clock.now })
		const huge = 3 * 10 ** 15 + 7
		const r = budgeted(huge, 1, 0)
		await createIn(liveStore, r)
		expect(await liveStore.take(r.userId, r.jti, 10 ** 15 + 3, { reservation: 'big' })).toEqual({
			status: 'ok',
			budgeted: true,
			bytesLeft: 2 * 10 ** 15 + 4,
		})
		expect(await liveStore.settle(r.userId, r.jti, 'big', 1, true)).toBe(10 ** 15 + 2)
		expect(await liveStore.take(r.userId, r.jti, huge, { reservation: 'too-much' })).toEqual({
			status: 'used_up',
			bytesLeft: huge - 1,
		})
	})

	test('scripts survive SCRIPT FLUSH (EVALSHA falls back to EVAL)', async () => {
		const liveStore = createRedisTokenStore(redis, { prefix, clock: clock.now })
		const r = record()
		await createIn(liveStore, r)
		await redis.script('FLUSH')
		expect(await liveStore.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: false })
	})
})

describe('REDIS_MIN_REPLICAS_ACK: writes and charges wait for the replicas (WAIT)', () => {
	let primary: RedisServer
	let replica: RedisServer
	let dataDir: string
	let client: Redis
	beforeAll(async () => {
		primary = await startRedisServer()
		// A replica writes what it receives to dump.rdb in its directory: a temporary one.
		dataDir = await mkdtemp(join(tmpdir(), 'dlg-replica-'))
		replica = await startRedisServer({ dataDir })
		client = new Redis(primary.url)
		// The first sync starts at once rather than after the default 5 s wait for more replicas.
		await client.config('SET', 'repl-diskless-sync-delay', '0')
		const toPrimary = new Redis(replica.url)
		try {
			await toPrimary.replicaof('127.0.0.1', primary.port)
		} finally {
			toPrimary.disconnect()
		}
		// Synced and acknowledging: the replica has a write made after REPLICAOF (a WAIT with no
		// write before it counts a replica still in its first sync).
		const acked = await pollUntil(
			async () => {
				await client.set('synced', '1')
				return client.wait(1, 100)
			},
			(n) => n === 1,
			5000,
		)
		expect(acked).toBe(1)
	}, 15_000)
	afterAll(async () => {
		client?.disconnect()
		await replica?.stop()
		await primary?.stop()
		if (dataDir) await rm(dataDir, { recursive: true, force: true })
	})

	const ackPrefix = uniquePrefix()
	// A WAIT that cannot be met waits its timeout out; one that can answers as soon as the replica has the write.
	const storeWaitingFor = (replicas: number, timeoutMs: number) =>
		createRedisTokenStore(client, {
			prefix: ackPrefix,
			clock: clock.now,
			minReplicasAck: replicas,
			replicaAckTimeoutMs: timeoutMs,
		})

	test('acknowledged by the replica: issue, charge, settle and revoke answer as without WAIT', async () => {
		// Generous: a replica starved of CPU by a loaded machine still answers.
		const store = storeWaitingFor(1, 2000)
		const r = budgeted(100, 1, 0)
		expect(await createIn(store, r)).toEqual({ status: 'created' })
		expect(await store.take(r.userId, r.jti, 60, { reservation: 'a' })).toEqual({
			status: 'ok',
			budgeted: true,
			bytesLeft: 40,
		})
		expect(await store.settle(r.userId, r.jti, 'a', 10, true)).toBe(50)
		expect(await store.revoke(r.userId, r.jti)).toBe(true)
	})

	test('more replicas asked for than acknowledge: the write and the charge fail with StoreUnavailableError', async () => {
		const r = budgeted(100, 1, 0)
		await createIn(storeWaitingFor(1, 2000), r)
		const store = storeWaitingFor(2, 200)
		await expect(createIn(store, budgeted(100, 1, 0))).rejects.toBeInstanceOf(StoreUnavailableError)
		// A check writes nothing and waits for nothing; a charge waits, and is refused.
		expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 100 })
		await expect(store.take(r.userId, r.jti, 10)).rejects.toBeInstanceOf(StoreUnavailableError)
		await expect(store.revoke(r.userId, r.jti)).rejects.toBeInstanceOf(StoreUnavailableError)
	})
})
