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
 * The contract every TokenStore meets (docs/contract.md §4), run against memory, a single
 * Redis (with and without the per-process token cache) and a Redis Cluster alike.
 * `makePeer` builds a second instance on the same data, as another process has
 * (with a cache of its own); without it the store is its own peer.
 */
export function storeContract(
	name: string,
	makeStore: () => TokenStore,
	clock: FakeClock,
	makePeer?: () => TokenStore,
): void {
	describe(`TokenStore contract (${name})`, () => {
		const nowS = () => Math.floor(clock.now() / 1000)
		const budgeted = (size: number, uses: number, allowance: number, o: Partial<NewTokenRecord> = {}) =>
			record(clock, { maxUses: uses, budgetBytes: size * uses, allowanceBytes: allowance, ...o })
		const UNLIMITED_OK = { status: 'ok', budgeted: false } as const

		let store: TokenStore
		let peer: TokenStore
		beforeAll(() => {
			store = makeStore()
			peer = makePeer?.() ?? store
		})
		afterAll(async () => {
			await store.close()
			if (peer !== store) await peer.close()
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

		test('settling a broken body returns unwritten bytes and at most the allowance of written ones, once', async () => {
			const r = budgeted(1000, 1, 100)
			await store.create(r)
			await store.take(r.userId, r.jti, 1000, { reservation: 'r1' })
			await store.settle(r.userId, r.jti, 'r1', 300, true) // 700 unwritten + 100 of allowance
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 800 })
			await store.settle(r.userId, r.jti, 'r1', 0, true) // settled already: nothing more
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 800 })
			await store.take(r.userId, r.jti, 800, { reservation: 'r2' })
			await store.settle(r.userId, r.jti, 'r2', 300, true) // allowance spent: only the 500
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 500 })
			expect((await store.list(r.userId))[0]?.bytesLeft).toBe(500)
		})

		test('settling a complete body returns nothing; written never counts above what was reserved', async () => {
			const r = budgeted(1000, 1, 100)
			await store.create(r)
			await store.take(r.userId, r.jti, 600, { reservation: 'a' })
			await store.settle(r.userId, r.jti, 'a', 600, false)
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 400 })
			await store.take(r.userId, r.jti, 400, { reservation: 'b' })
			await store.settle(r.userId, r.jti, 'b', 10 ** 9, true) // claims more than reserved: 100 of allowance at most
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 100 })
		})

		test('settle on an unlimited or unknown token or reservation changes nothing', async () => {
			const r = record(clock)
			await store.create(r)
			await store.settle(r.userId, r.jti, 'x', 10, true)
			await store.settle(r.userId, 'unknown', 'x', 10, true)
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: false })
			expect(await store.take(r.userId, 'unknown', 0)).toEqual({ status: 'missing' })
			const b = budgeted(100, 1, 10)
			await store.create(b)
			await store.settle(b.userId, b.jti, 'never-taken', 0, true)
			expect(await store.take(b.userId, b.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 100 })
		})

		test('a reservation delivered twice charges once', async () => {
			const r = budgeted(1000, 1, 0)
			await store.create(r)
			expect(await store.take(r.userId, r.jti, 600, { reservation: 'dup' })).toEqual({
				status: 'ok',
				budgeted: true,
				bytesLeft: 400,
			})
			expect(await store.take(r.userId, r.jti, 600, { reservation: 'dup' })).toEqual({
				status: 'ok',
				budgeted: true,
				bytesLeft: 400,
			})
		})

		test('cancel after the charge gives the bytes back; a cancel that arrives first refuses the charge', async () => {
			const r = budgeted(1000, 1, 0)
			await store.create(r)
			await store.take(r.userId, r.jti, 1000, { reservation: 'late' })
			await store.cancel(r.userId, r.jti, 'late')
			await store.cancel(r.userId, r.jti, 'late') // idempotent
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 1000 })
			// The same reservation arriving again after its cancel (a retried delivery) is refused.
			expect(await store.take(r.userId, r.jti, 1000, { reservation: 'late' })).toEqual({ status: 'cancelled' })
			await store.cancel(r.userId, r.jti, 'early')
			expect(await store.take(r.userId, r.jti, 1000, { reservation: 'early' })).toEqual({ status: 'cancelled' })
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 1000 })
			// A settle after a cancel gives nothing more.
			await store.settle(r.userId, r.jti, 'late', 0, true)
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 1000 })
		})

		test('the record binds the file: a take naming another file is a mismatch and charges nothing', async () => {
			const r = budgeted(1000, 1, 0, { filename: 'a.mp4' })
			await store.create(r)
			expect(await store.take(r.userId, r.jti, 1000, { filename: 'b.mp4', reservation: 'm' })).toEqual({
				status: 'mismatch',
			})
			expect(await store.take(r.userId, r.jti, 0, { filename: 'a.mp4' })).toEqual({
				status: 'ok',
				budgeted: true,
				bytesLeft: 1000,
			})
			const u = record(clock, { filename: 'a.mp4' })
			await store.create(u)
			expect(await store.take(u.userId, u.jti, 0, { filename: 'A.mp4' })).toEqual({ status: 'mismatch' })
		})

		test('create counts issues per user and refuses past the limit, writing nothing', async () => {
			const limit = { limit: 2, windowS: 60 }
			const first = record(clock)
			const user = first.userId
			expect(await store.create(first, limit)).toEqual({ status: 'created' })
			expect(await store.create(record(clock, { userId: user }), limit)).toEqual({ status: 'created' })
			const refused = record(clock, { userId: user })
			const answer = await store.create(refused, limit)
			expect(answer.status).toBe('rate_limited')
			expect(answer.status === 'rate_limited' ? answer.retryAfterS : 0).toBeGreaterThanOrEqual(1)
			expect(await store.take(user, refused.jti, 0)).toEqual({ status: 'missing' })
			expect(await store.create(record(clock), limit)).toEqual({ status: 'created' }) // another user
		})

		test('list hides used-up tokens', async () => {
			const r = budgeted(100, 1, 0)
			await store.create(r)
			expect((await store.list(r.userId)).map((t) => t.jti)).toEqual([r.jti])
			await store.take(r.userId, r.jti, 100, { reservation: 'all' })
			expect(await store.list(r.userId)).toEqual([])
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

		test('an unlimited token checked for its file again and again stays ok; for another file it is a mismatch, remembered or not', async () => {
			const r = record(clock, { filename: 'a.mp4' })
			await store.create(r)
			// The first take may fill the per-process cache; the next ones may be answered from it.
			for (let i = 0; i < 3; i++)
				expect(await store.take(r.userId, r.jti, 0, { filename: 'a.mp4' })).toEqual(UNLIMITED_OK)
			expect(await store.take(r.userId, r.jti, 10 ** 12, { filename: 'a.mp4' })).toEqual(UNLIMITED_OK)
			expect(await store.take(r.userId, r.jti, 0, { filename: 'b.mp4' })).toEqual({ status: 'mismatch' })
			expect(store.peek(r.userId, r.jti, 'b.mp4')).toBe(false)
			expect(await store.take(r.userId, r.jti, 0, { filename: 'a.mp4' })).toEqual(UNLIMITED_OK)
		})

		test('a remembered token revoked through this instance or another is refused at its very next take, and peek stops vouching for it', async () => {
			for (const via of [store, peer]) {
				const r = record(clock, { filename: 'a.mp4' })
				await store.create(r)
				for (let i = 0; i < 2; i++)
					expect(await store.take(r.userId, r.jti, 0, { filename: 'a.mp4' })).toEqual(UNLIMITED_OK)
				expect(await via.revoke(r.userId, r.jti)).toBe(true)
				expect(store.peek(r.userId, r.jti, 'a.mp4')).toBe(false)
				expect(await store.take(r.userId, r.jti, 0, { filename: 'a.mp4' })).toEqual({ status: 'revoked' })
			}
		})

		test('revokeAll through another instance refuses remembered tokens at their very next take', async () => {
			const user = `u${crypto.randomUUID().slice(0, 6)}`
			const a = record(clock, { userId: user, filename: 'a.mp4' })
			const b = record(clock, { userId: user, filename: 'b.mp4' })
			for (const r of [a, b]) {
				await store.create(r)
				for (let i = 0; i < 2; i++)
					expect(await store.take(user, r.jti, 0, { filename: r.filename })).toEqual(UNLIMITED_OK)
			}
			expect(await peer.revokeAll(user, 'a.mp4')).toBe(1)
			expect(await store.take(user, a.jti, 0, { filename: 'a.mp4' })).toEqual({ status: 'revoked' })
			expect(await store.take(user, b.jti, 0, { filename: 'b.mp4' })).toEqual(UNLIMITED_OK)
			expect(await peer.revokeAll(user)).toBe(1)
			expect(await store.take(user, b.jti, 0, { filename: 'b.mp4' })).toEqual({ status: 'revoked' })
		})

		test('budgets are never answered from memory: a charge through another instance is seen at the next take', async () => {
			const r = budgeted(1000, 1, 0, { filename: 'a.mp4' })
			await store.create(r)
			expect(await store.take(r.userId, r.jti, 0, { filename: 'a.mp4' })).toEqual({
				status: 'ok',
				budgeted: true,
				bytesLeft: 1000,
			})
			expect(store.peek(r.userId, r.jti, 'a.mp4')).toBe(false)
			await peer.take(r.userId, r.jti, 600, { filename: 'a.mp4', reservation: 'elsewhere' })
			expect(await store.take(r.userId, r.jti, 0, { filename: 'a.mp4' })).toEqual({
				status: 'ok',
				budgeted: true,
				bytesLeft: 400,
			})
			expect(await store.take(r.userId, r.jti, 401, { filename: 'a.mp4' })).toEqual({
				status: 'used_up',
				bytesLeft: 400,
			})
			expect(store.peek(r.userId, r.jti, 'a.mp4')).toBe(false)
		})

		test('peek never vouches for a token that take would refuse', async () => {
			expect(store.peek('nobody', 'nope', 'a.mp4')).toBe(false)
			const r = record(clock, { filename: 'a.mp4' })
			await store.create(r)
			await store.take(r.userId, r.jti, 0, { filename: 'a.mp4' })
			expect(store.peek(r.userId, r.jti, 'other.mp4')).toBe(false)
			await store.revoke(r.userId, r.jti)
			expect(store.peek(r.userId, r.jti, 'a.mp4')).toBe(false)
			const b = budgeted(10, 1, 0, { filename: 'a.mp4' })
			await store.create(b)
			await store.take(b.userId, b.jti, 10, { filename: 'a.mp4', reservation: 'all' })
			expect(store.peek(b.userId, b.jti, 'a.mp4')).toBe(false)
		})

		test('ping answers', async () => {
			await store.ping()
		})
	})
}
