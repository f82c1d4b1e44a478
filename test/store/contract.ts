import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { CreateOptions, NewTokenRecord, TokenInfo, TokenStore } from '../../src/store/types'
import type { FakeClock } from '../support/helpers'

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
		sizeBytes: 1000,
		policy: {},
		graceS: 0,
		...overrides,
	}
}

/** Every live token of `userId`, page by page (`limit` per page), checking each page's size. */
export async function listAll(store: TokenStore, userId: string, limit = 1000): Promise<TokenInfo[]> {
	const out: TokenInfo[] = []
	let after: string | undefined
	for (let pages = 0; pages < 10_000; pages++) {
		const page = await store.list(userId, { limit, after })
		expect(page.tokens.length).toBeLessThanOrEqual(limit)
		out.push(...page.tokens)
		if (page.next === null) return out
		after = page.next
	}
	throw new Error('the listing never ended')
}

/** `create` with no live-token bound to speak of (the default `MAX_LIVE_TOKENS_PER_USER` is far above any test). */
export const createIn = (store: TokenStore, r: NewTokenRecord, options: Partial<CreateOptions> = {}) =>
	store.create(r, { maxLive: 1_000_000, ...options })

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
			await createIn(store, r)
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: false })
			expect(await store.take(r.userId, r.jti, 10 ** 12)).toEqual({ status: 'ok', budgeted: false })
		})

		test('a budget is reserved exactly and refused when it cannot cover the body', async () => {
			const r = budgeted(1000, 2, 100)
			await createIn(store, r)
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
			await createIn(store, r)
			await store.take(r.userId, r.jti, 1000, { reservation: 'r1' })
			await store.settle(r.userId, r.jti, 'r1', 300, true) // 700 unwritten + 100 of allowance
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 800 })
			await store.settle(r.userId, r.jti, 'r1', 0, true) // settled already: nothing more
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 800 })
			await store.take(r.userId, r.jti, 800, { reservation: 'r2' })
			await store.settle(r.userId, r.jti, 'r2', 300, true) // allowance spent: only the 500
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 500 })
			expect((await listAll(store, r.userId))[0]?.bytesLeft).toBe(500)
		})

		test('settling a complete body returns nothing; written never counts above what was reserved', async () => {
			const r = budgeted(1000, 1, 100)
			await createIn(store, r)
			await store.take(r.userId, r.jti, 600, { reservation: 'a' })
			await store.settle(r.userId, r.jti, 'a', 600, false)
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 400 })
			await store.take(r.userId, r.jti, 400, { reservation: 'b' })
			await store.settle(r.userId, r.jti, 'b', 10 ** 9, true) // claims more than reserved: 100 of allowance at most
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 100 })
		})

		test('settle on an unlimited or unknown token or reservation changes nothing', async () => {
			const r = record(clock)
			await createIn(store, r)
			await store.settle(r.userId, r.jti, 'x', 10, true)
			await store.settle(r.userId, 'unknown', 'x', 10, true)
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'ok', budgeted: false })
			expect(await store.take(r.userId, 'unknown', 0)).toEqual({ status: 'missing' })
			const b = budgeted(100, 1, 10)
			await createIn(store, b)
			await store.settle(b.userId, b.jti, 'never-taken', 0, true)
			expect(await store.take(b.userId, b.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 100 })
		})

		test('a reservation delivered twice charges once', async () => {
			const r = budgeted(1000, 1, 0)
			await createIn(store, r)
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
			await createIn(store, r)
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
			await createIn(store, r)
			expect(await store.take(r.userId, r.jti, 1000, { filename: 'b.mp4', reservation: 'm' })).toEqual({
				status: 'mismatch',
			})
			expect(await store.take(r.userId, r.jti, 0, { filename: 'a.mp4' })).toEqual({
				status: 'ok',
				budgeted: true,
				bytesLeft: 1000,
			})
			const u = record(clock, { filename: 'a.mp4' })
			await createIn(store, u)
			expect(await store.take(u.userId, u.jti, 0, { filename: 'A.mp4' })).toEqual({ status: 'mismatch' })
		})

		test('create counts issues per user and refuses past the limit, writing nothing', async () => {
			const limit = { limit: 2, windowS: 60 }
			const first = record(clock)
			const user = first.userId
			expect(await createIn(store, first, { issueLimit: limit })).toEqual({ status: 'created' })
			expect(await createIn(store, record(clock, { userId: user }), { issueLimit: limit })).toEqual({
				status: 'created',
			})
			const refused = record(clock, { userId: user })
			const answer = await createIn(store, refused, { issueLimit: limit })
			expect(answer.status).toBe('rate_limited')
			expect(answer.status === 'rate_limited' ? answer.retryAfterS : 0).toBeGreaterThanOrEqual(1)
			expect(await store.take(user, refused.jti, 0)).toEqual({ status: 'missing' })
			expect(await createIn(store, record(clock), { issueLimit: limit })).toEqual({ status: 'created' }) // another user
		})

		test('list hides used-up tokens', async () => {
			const r = budgeted(100, 1, 0)
			await createIn(store, r)
			expect((await listAll(store, r.userId)).map((t) => t.jti)).toEqual([r.jti])
			await store.take(r.userId, r.jti, 100, { reservation: 'all' })
			expect(await listAll(store, r.userId)).toEqual([])
		})

		test('revoke is distinct from missing and from used up, and idempotent', async () => {
			const r = budgeted(10, 1, 0)
			await createIn(store, r)
			expect(await store.revoke(r.userId, r.jti)).toBe(true)
			expect(await store.revoke(r.userId, r.jti)).toBe(true)
			expect(await store.take(r.userId, r.jti, 0)).toEqual({ status: 'revoked' })
			expect(await store.take(r.userId, r.jti, 5)).toEqual({ status: 'revoked' })
			expect(await store.revoke(r.userId, 'unknown')).toBe(false)
		})

		test('100 concurrent takes of a one-use budget: exactly one wins', async () => {
			const r = budgeted(4096, 1, 0)
			await createIn(store, r)
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
			for (const r of [other, a, b, c, short]) await createIn(store, r)
			const listed = await listAll(store, user)
			expect(listed.map((t) => t.jti).sort()).toEqual([a.jti, b.jti, c.jti, short.jti].sort())
			expect(listed.find((t) => t.jti === b.jti)).toEqual({
				jti: b.jti,
				filename: 'b.mp4',
				issuedAtS: b.issuedAtS,
				expiresAtS: b.expiresAtS,
				maxUses: 3,
				bytesLeft: 300,
				policy: {},
			})

			expect(await store.revokeAll(user, 'b.mp4')).toBe(2)
			expect((await listAll(store, user)).map((t) => t.jti).sort()).toEqual([a.jti, short.jti].sort())
			expect(await store.revokeAll(user)).toBe(2)
			expect(await listAll(store, user)).toEqual([])
			expect(await store.revokeAll(user)).toBe(0)
			expect(await store.take(other.userId, other.jti, 0)).toEqual({ status: 'ok', budgeted: false })
		})

		test('an unlimited token checked for its file again and again stays ok; for another file it is a mismatch, remembered or not', async () => {
			const r = record(clock, { filename: 'a.mp4' })
			await createIn(store, r)
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
				await createIn(store, r)
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
				await createIn(store, r)
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
			await createIn(store, r)
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
			await createIn(store, r)
			await store.take(r.userId, r.jti, 0, { filename: 'a.mp4' })
			expect(store.peek(r.userId, r.jti, 'other.mp4')).toBe(false)
			await store.revoke(r.userId, r.jti)
			expect(store.peek(r.userId, r.jti, 'a.mp4')).toBe(false)
			const b = budgeted(10, 1, 0, { filename: 'a.mp4' })
			await createIn(store, b)
			await store.take(b.userId, b.jti, 10, { filename: 'a.mp4', reservation: 'all' })
			expect(store.peek(b.userId, b.jti, 'a.mp4')).toBe(false)
		})

		test('a user holds at most maxLive live tokens; expired, revoked and used-up ones do not count', async () => {
			const user = `u${crypto.randomUUID().slice(0, 6)}`
			const live = (o: Partial<NewTokenRecord> = {}) => record(clock, { userId: user, ...o })
			const bound = { maxLive: 3 }
			const short = live({ expiresAtS: nowS() + 1 })
			const spent = budgeted(100, 1, 0, { userId: user })
			const revoked = live()
			for (const r of [short, spent, revoked]) expect(await store.create(r, bound)).toEqual({ status: 'created' })
			const refused = live()
			expect(await store.create(refused, bound)).toEqual({ status: 'too_many_live' })
			expect(await store.take(user, refused.jti, 0)).toEqual({ status: 'missing' })
			// Each way a token stops being live frees its place.
			await store.revoke(user, revoked.jti)
			expect(await store.create(live(), bound)).toEqual({ status: 'created' })
			expect(await store.create(live(), bound)).toEqual({ status: 'too_many_live' })
			await store.take(user, spent.jti, 100, { reservation: 'all', start: 0 })
			await store.settle(user, spent.jti, 'all', 100, false)
			expect(await store.create(live(), bound)).toEqual({ status: 'created' })
			expect(await store.create(live(), bound)).toEqual({ status: 'too_many_live' })
			clock.advance(1000)
			expect(await store.create(live(), bound)).toEqual({ status: 'created' })
			expect(await store.create(live(), bound)).toEqual({ status: 'too_many_live' })
			clock.advance(-1000)
		})

		test('a broken body that gives bytes back makes a spent token live again', async () => {
			const r = budgeted(100, 1, 0)
			await createIn(store, r)
			await store.take(r.userId, r.jti, 100, { reservation: 'x', start: 0 })
			await store.settle(r.userId, r.jti, 'x', 40, true)
			expect((await listAll(store, r.userId)).map((t) => [t.jti, t.bytesLeft])).toEqual([[r.jti, 60]])
		})

		test('pages: newest first, each live token once, and stable while tokens come and go between pages', async () => {
			const user = `u${crypto.randomUUID().slice(0, 6)}`
			const issued: NewTokenRecord[] = []
			for (let i = 0; i < 25; i++) {
				// Two per second: ties on the issue time are ordered by id, and still stable.
				if (i % 2 === 0) clock.advance(1000)
				const r = record(clock, { userId: user })
				issued.push(r)
				await createIn(store, r)
			}
			const newestFirst = [...issued].sort((a, b) =>
				a.issuedAtS !== b.issuedAtS ? b.issuedAtS - a.issuedAtS : a.jti < b.jti ? 1 : -1,
			)
			expect((await listAll(store, user, 10)).map((t) => t.jti)).toEqual(newestFirst.map((r) => r.jti))

			const seen: string[] = []
			let page = await store.list(user, { limit: 10 })
			seen.push(...page.tokens.map((t) => t.jti))
			// Between pages: a token is issued (newer than every page), one not yet seen is revoked.
			clock.advance(1000)
			await createIn(store, record(clock, { userId: user }))
			const gone = newestFirst[15]?.jti ?? ''
			await store.revoke(user, gone)
			while (page.next !== null) {
				page = await store.list(user, { limit: 10, after: page.next })
				seen.push(...page.tokens.map((t) => t.jti))
			}
			expect(seen).toEqual(newestFirst.map((r) => r.jti).filter((jti) => jti !== gone))
			expect(new Set(seen).size).toBe(seen.length)
		})

		test('the listing shows each token’s policy', async () => {
			const r = record(clock, { policy: { nbf: nowS() + 10, cidr: ['10.0.0.0/8', '::1/128'], rate: 65536 } })
			await createIn(store, r)
			expect((await listAll(store, r.userId))[0]?.policy).toEqual({
				nbf: nowS() + 10,
				cidr: ['10.0.0.0/8', '::1/128'],
				rate: 65536,
			})
		})

		test('expiry grace: a token whose first body started before exp stays usable until exp + grace; an unused one does not', async () => {
			const exp = nowS() + 10
			const used = record(clock, { expiresAtS: exp, graceS: 60 })
			const unused = record(clock, { userId: used.userId, expiresAtS: exp, graceS: 60 })
			for (const r of [used, unused]) await createIn(store, r)
			// A HEAD (no body) does not count as a start.
			expect(await store.take(used.userId, used.jti, 0, { markStart: true })).toEqual(UNLIMITED_OK)
			expect(await store.take(used.userId, used.jti, 500, { markStart: true })).toEqual(UNLIMITED_OK)
			clock.advance(30_000)
			const late = { expiredAtS: exp, markStart: true }
			expect(await store.take(used.userId, used.jti, 500, late)).toEqual(UNLIMITED_OK)
			expect(await store.take(unused.userId, unused.jti, 500, late)).toEqual({ status: 'expired' })
			// A start recorded after exp does not open the grace either.
			expect(await store.take(unused.userId, unused.jti, 500, late)).toEqual({ status: 'expired' })
			// Expired is not live, whatever the grace.
			expect((await listAll(store, used.userId)).map((t) => t.jti)).toEqual([])
			clock.advance(-30_000)
		})

		test('download slots: at most `limit` bodies per user, freed on release or when they lapse; refusals charge nothing', async () => {
			const user = `u${crypto.randomUUID().slice(0, 6)}`
			const a = record(clock, { userId: user })
			const b = budgeted(1000, 1, 0, { userId: user })
			for (const r of [a, b]) await createIn(store, r)
			const slot = (id: string) => ({ lease: { id, limit: 2, ttlMs: 30_000 } })
			expect(await store.take(user, a.jti, 10, slot('s1'))).toEqual(UNLIMITED_OK)
			expect(await store.take(user, a.jti, 10, slot('s2'))).toEqual(UNLIMITED_OK)
			// A check without a body holds no slot and needs none.
			expect(await store.take(user, a.jti, 0, slot('h'))).toEqual(UNLIMITED_OK)
			expect(await store.take(user, a.jti, 10, slot('s3'))).toEqual({ status: 'too_many_downloads', retryAfterS: 5 })
			expect(await store.take(user, b.jti, 1000, { ...slot('s4'), reservation: 'r4', start: 0 })).toMatchObject({
				status: 'too_many_downloads',
			})
			expect(await store.take(user, b.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 1000 })
			await store.release(user, ['s1'])
			expect(await store.take(user, b.jti, 1000, { ...slot('s4'), reservation: 'r5', start: 0 })).toEqual({
				status: 'ok',
				budgeted: true,
				bytesLeft: 0,
			})
			expect(await store.take(user, a.jti, 10, slot('s5'))).toMatchObject({ status: 'too_many_downloads' })
			// Renewed slots outlive their first lease; one not renewed lapses by itself.
			clock.advance(20_000)
			await store.renew(user, ['s4'], 30_000)
			clock.advance(15_000)
			expect(await store.take(user, a.jti, 10, slot('s6'))).toEqual(UNLIMITED_OK)
			expect(await store.take(user, a.jti, 10, slot('s7'))).toMatchObject({ status: 'too_many_downloads' })
			// Renewing a released slot does not bring it back.
			await store.release(user, ['s4', 's6'])
			await store.renew(user, ['s4'], 30_000)
			expect(await store.take(user, a.jti, 10, slot('s8'))).toEqual(UNLIMITED_OK)
			expect(await store.take(user, a.jti, 10, slot('s9'))).toEqual(UNLIMITED_OK)
			clock.advance(-35_000)
		})

		test('revokeAll works through any number of tokens in batches, per file too, and repeats safely', async () => {
			const user = `u${crypto.randomUUID().slice(0, 6)}`
			const records = Array.from({ length: 450 }, (_, i) =>
				record(clock, { userId: user, filename: i % 3 === 0 ? 'a.mp4' : 'b.mp4' }),
			)
			for (const r of records) await createIn(store, r)
			expect(await store.revokeAll(user, 'a.mp4')).toBe(150)
			expect(await store.revokeAll(user, 'a.mp4')).toBe(0)
			expect((await listAll(store, user)).length).toBe(300)
			expect(await store.revokeAll(user)).toBe(300)
			expect(await store.revokeAll(user)).toBe(0)
			expect(await listAll(store, user)).toEqual([])
			const last = records.at(-1)
			expect(await store.take(user, last?.jti ?? '', 0)).toEqual({ status: 'revoked' })
		})

		test('ping answers', async () => {
			await store.ping()
		})
	})
}
