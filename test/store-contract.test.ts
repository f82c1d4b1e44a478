import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Redis } from 'ioredis'
import { createMemoryTokenStore } from '../src/store/memory'
import { createRedisTokenStore } from '../src/store/redis'
import type { NewTokenRecord, TokenStore } from '../src/store/types'
import { fakeClock, uniquePrefix } from './helpers'

const clock = fakeClock()
const nowS = () => Math.floor(clock.now() / 1000)

function record(overrides: Partial<NewTokenRecord> = {}): NewTokenRecord {
	const iat = nowS()
	return {
		jti: crypto.randomUUID(),
		userId: `u${crypto.randomUUID().slice(0, 6)}`,
		filename: 'movie.mp4',
		issuedAtS: iat,
		expiresAtS: iat + 600,
		maxUses: null,
		budgetBytes: null,
		allowanceBytes: 0,
		...overrides,
	}
}

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

const stores: [string, () => TokenStore][] = [
	['memory', () => createMemoryTokenStore({ clock: clock.now })],
	['redis', () => createRedisTokenStore(redis, { prefix, clock: clock.now })],
]

describe.each(stores)('TokenStore contract (%s)', (_name, makeStore) => {
	let store: TokenStore
	beforeAll(() => {
		store = makeStore()
	})
	afterAll(async () => {
		await store.close()
	})

	test('an unknown jti is missing, not ok', async () => {
		expect(await store.take('nobody', 'nope', 0)).toEqual({ status: 'missing' })
	})

	test('an unlimited token passes checks and any size of take', async () => {
		const r = record()
		await store.create(r)
		expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: false })
		expect(await store.take(r.userId, r.jti, 10 ** 12)).toEqual({ status: 'ok', budgeted: false })
	})

	test('a budget is reserved exactly and refused when it cannot cover the body', async () => {
		const r = budgeted(1000, 2, 100)
		await store.create(r)
		expect(await store.take(r.userId, r.jti, 1000)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 1000 })
		expect(await store.take(r.userId, r.jti, 600)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 400 })
		expect(await store.take(r.userId, r.jti, 401)).toEqual({ status: 'used_up', bytesLeft: 400 })
		expect(await store.take(r.userId, r.jti, 400)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 0 })
		// A check (HEAD, 304) on an exhausted token still passes: it costs nothing.
		expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 0 })
		expect(await store.take(r.userId, r.jti, 1)).toEqual({ status: 'used_up', bytesLeft: 0 })
	})

	test('giveBack returns unwritten bytes and at most the allowance of written ones, once', async () => {
		const r = budgeted(1000, 1, 100)
		await store.create(r)
		await store.take(r.userId, r.jti, 1000)
		await store.giveBack(r.userId, r.jti, 700, 300) // 700 unwritten + 100 of allowance
		expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 800 })
		await store.take(r.userId, r.jti, 800)
		await store.giveBack(r.userId, r.jti, 500, 300) // allowance spent: only the 500
		expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 500 })
		expect((await store.list(r.userId))[0]?.bytesLeft).toBe(500)
	})

	test('giveBack on an unlimited or unknown token changes nothing', async () => {
		const r = record()
		await store.create(r)
		await store.giveBack(r.userId, r.jti, 10, 10)
		await store.giveBack(r.userId, 'unknown', 10, 10)
		expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: false })
		expect(await store.take(r.userId, 'unknown', 0)).toEqual({ status: 'missing' })
	})

	test('revoke is distinct from missing and from used up, and idempotent', async () => {
		const r = budgeted(10, 1, 0)
		await store.create(r)
		expect(await store.revoke(r.userId, r.jti)).toBe(true)
		expect(await store.revoke(r.userId, r.jti)).toBe(true)
		expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'revoked' })
		expect(await store.take(r.userId, r.jti, 5)).toEqual({ status: 'revoked' })
		expect(await store.revoke(r.userId, 'unknown')).toBe(false)
	})

	test('100 concurrent takes of a one-use budget: exactly one wins', async () => {
		const r = budgeted(4096, 1, 0)
		await store.create(r)
		const results = await Promise.all(Array.from({ length: 100 }, () => store.take(r.userId, r.jti, 4096)))
		expect(results.filter((x) => x.status === 'ok')).toHaveLength(1)
		expect(results.filter((x) => x.status === 'used_up')).toHaveLength(99)
	})

	test('list shows exactly the live tokens; revokeAll touches one user (and one file when asked)', async () => {
		const user = `u${crypto.randomUUID().slice(0, 6)}`
		const other = record({ userId: `o${crypto.randomUUID().slice(0, 6)}` })
		const a = record({ userId: user, filename: 'a.mp4' })
		const b = budgeted(100, 3, 100, { userId: user, filename: 'b.mp4' })
		const c = record({ userId: user, filename: 'b.mp4' })
		const short = record({ userId: user, expiresAtS: nowS() + 1 })
		for (const r of [other, a, b, c, short]) await store.create(r)
		const listed = await store.list(user)
		expect(listed.map((t) => t.jti).sort()).toEqual([a.jti, b.jti, c.jti, short.jti].sort())
		expect(listed.find((t) => t.jti === b.jti)).toEqual({
			jti: b.jti,
			filename: 'b.mp4',
			issuedAtS: b.issuedAtS,
			expiresAtS: b.expiresAtS,
			maxUses: 3,
			bytesLeft: 300,
		})

		expect(await store.revokeAll(user, 'b.mp4')).toBe(2)
		expect((await store.list(user)).map((t) => t.jti).sort()).toEqual([a.jti, short.jti].sort())
		expect(await store.revokeAll(user)).toBe(2)
		expect(await store.list(user)).toEqual([])
		expect(await store.revokeAll(user)).toBe(0)
		expect(await store.take(other.userId, other.jti, 0)).toEqual({ status: 'ok', budgeted: false })
	})

	test('ping answers', async () => {
		await store.ping()
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
