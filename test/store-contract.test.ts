import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Redis } from 'ioredis'
import { createMemoryTokenStore } from '../src/store/memory'
import { createRedisTokenStore } from '../src/store/redis'
import type { NewTokenRecord } from '../src/store/types'
import { fakeClock, uniquePrefix } from './helpers'
import { record as recordAt, storeContract } from './store-contract'

const clock = fakeClock()
const nowS = () => Math.floor(clock.now() / 1000)

const record = (overrides: Partial<NewTokenRecord> = {}) => recordAt(clock, overrides)
const budgeted = (size: number, uses: number, allowance: number, o: Partial<NewTokenRecord> = {}) =>
	record({ maxUses: uses, budgetBytes: size * uses, allowanceBytes: allowance, ...o })

let redis: Redis
const prefix = uniquePrefix()
beforeAll(() => {
	redis = new Redis(process.env.TEST_REDIS_URL ?? '', { lazyConnect: false })
})
afterAll(async () => {
	await redis.quit()
})

storeContract('memory', () => createMemoryTokenStore({ clock: clock.now }), clock)
storeContract('redis', () => createRedisTokenStore(redis, { prefix, clock: clock.now }), clock)

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
		await liveStore.create(r)
		const keys = (await redis.keys(`${prefix}*{alice@example.com}*`)).sort()
		expect(keys).toEqual([`${prefix}t:{alice@example.com}:${r.jti}`, `${prefix}u:{alice@example.com}`].sort())
		expect(keys.map(hashTag)).toEqual(['alice@example.com', 'alice@example.com'])
		for (const key of keys) {
			const ttl = await redis.pttl(key)
			expect(ttl).toBeGreaterThan(115_000)
			expect(ttl).toBeLessThanOrEqual(120_000)
		}
	})

	test('the per-user index is pruned of expired entries when a token is created', async () => {
		const liveStore = createRedisTokenStore(redis, { prefix, clock: clock.now })
		const user = `p${crypto.randomUUID().slice(0, 6)}`
		const old = record({ userId: user, expiresAtS: nowS() + 5 })
		await liveStore.create(old)
		clock.advance(10_000)
		const fresh = record({ userId: user })
		await liveStore.create(fresh)
		expect(await redis.zrange(`${prefix}u:{${user}}`, '0', '-1')).toEqual([fresh.jti])
	})

	test('scripts survive SCRIPT FLUSH (EVALSHA falls back to EVAL)', async () => {
		const liveStore = createRedisTokenStore(redis, { prefix, clock: clock.now })
		const r = record()
		await liveStore.create(r)
		await redis.script('FLUSH')
		expect(await liveStore.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: false })
	})
})
