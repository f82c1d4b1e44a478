import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { NewTokenRecord, TokenStore } from '../src/store/types'
import type { FakeClock } from './helpers'

/** A token record with fresh ids, expiring 10 minutes after `clock`. */
export function record(clock: FakeClock, overrides: Partial<NewTokenRecord> = {}): NewTokenRecord {
	const iat = Math.floor(clock.now() / 1000)
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

/**
 * The contract every TokenStore meets (SPEC §4), run against memory, a single
 * Redis and a Redis Cluster alike.
 */
export function storeContract(name: string, makeStore: () => TokenStore, clock: FakeClock): void {
	describe(`TokenStore contract (${name})`, () => {
		const nowS = () => Math.floor(clock.now() / 1000)
		const budgeted = (size: number, uses: number, allowance: number, o: Partial<NewTokenRecord> = {}) =>
			record(clock, { maxUses: uses, budgetBytes: size * uses, allowanceBytes: allowance, ...o })

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
			const r = record(clock)
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
			const r = record(clock)
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
			const other = record(clock, { userId: `o${crypto.randomUUID().slice(0, 6)}` })
			const a = record(clock, { userId: user, filename: 'a.mp4' })
			const b = budgeted(100, 3, 100, { userId: user, filename: 'b.mp4' })
			const c = record(clock, { userId: user, filename: 'b.mp4' })
			const short = record(clock, { userId: user, expiresAtS: nowS() + 1 })
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
}
