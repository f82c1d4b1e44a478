import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { NewTokenRecord } from '../../../src/store/types'
import { createIn, record } from '../../store/contract'
import {
	API_KEY,
	bearer,
	downloadPath,
	type IssueBody,
	makeTestApp,
	type StoreKind,
	type TestApp,
} from '../../support/helpers'
import { pollUntil } from '../../support/poll'
import { newestFirst, seedTokens } from './seed'

// The paged listing through its HTTP route (docs/contract.md §3.3): every live token once, newest first,
// stable while tokens come and go between pages; every bad parameter and every altered cursor refused.

const key = { 'X-API-Key': API_KEY }
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

interface Listed {
	readonly jti: string
	readonly filename: string
	readonly issued_at: string
}
interface Page {
	readonly tokens: Listed[]
	readonly next_cursor: string | null
}
type ErrorBody = { error: string; message: string }

const seconds = (iso: string) => Date.parse(iso) / 1000

describe('GET /api/users/:user_id/tokens, paged (redis store)', () => {
	let t: TestApp
	let pager: NewTokenRecord[]
	const nowS = () => Math.floor(t.clock.now() / 1000)
	const get = (user: string, query: string) => t.request(`/api/users/${user}/tokens${query}`, { headers: key })
	async function page(user: string, limit: number | null, cursor: string | null = null): Promise<Page> {
		const params = new URLSearchParams()
		if (limit !== null) params.set('limit', String(limit))
		if (cursor !== null) params.set('cursor', cursor)
		const query = params.size > 0 ? `?${params}` : ''
		const res = await get(user, query)
		if (res.status !== 200) throw new Error(`GET ${query} answered ${res.status}: ${await res.text()}`)
		return (await res.json()) as Page
	}
	/** 2,500 tokens issued three a second (ties on the issue time are ordered by id), an hour to live. */
	const seed = (user: string) => {
		const base = nowS()
		return seedTokens(t.deps.store, 2500, (i) =>
			record(t.clock, { userId: user, issuedAtS: base - 2500 + Math.floor(i / 3), expiresAtS: base + 3600 }),
		)
	}

	beforeAll(async () => {
		t = await makeTestApp({ env: { API_KEYS: API_KEY, RATE_LIMIT_ISSUE: '100000/min' } })
		pager = newestFirst((await seed('pager')).records)
	}, 30_000)
	afterAll(() => t.close())

	test('2,500 live tokens in pages of 100: each exactly once, newest first; next_cursor null on the last page', async () => {
		const pages: Page[] = []
		let cursor: string | null = null
		do {
			const next: Page = await page('pager', 100, cursor)
			pages.push(next)
			cursor = next.next_cursor
		} while (cursor !== null && pages.length < 100)
		// 25 full pages, and the last (full too) already says it is the last: no empty 26th to ask for.
		expect(pages.map((p) => p.tokens.length)).toEqual(Array(25).fill(100))
		expect(pages.map((p) => p.next_cursor === null)).toEqual([...Array(24).fill(false), true])
		expect(pages.flatMap((p) => p.tokens.map((x) => x.jti))).toEqual(pager.map((r) => r.jti))
	})

	test('limit: 100 unless asked, 1 and 1,000 as asked', async () => {
		expect((await page('pager', null)).tokens.map((x) => x.jti)).toEqual(pager.slice(0, 100).map((r) => r.jti))
		expect((await page('pager', 1)).tokens.map((x) => x.jti)).toEqual(pager.slice(0, 1).map((r) => r.jti))
		const big = await page('pager', 1000)
		expect(big.tokens.map((x) => x.jti)).toEqual(pager.slice(0, 1000).map((r) => r.jti))
		expect((await page('pager', 1000, big.next_cursor)).tokens[0]?.jti).toBe(pager[1000]?.jti)
	})

	test('tokens issued and revoked between pages: none twice, none of those live throughout skipped, none after its revocation', async () => {
		const seeded = newestFirst((await seed('churn')).records)
		await t.putFile('churn', 'c.mp4', 'cccc')
		const revoked = new Set<string>()
		const revokedUnseen = new Set<string>()
		const issuedBetween = new Set<string>()
		const seen: Listed[] = []
		const revoke = async (jti: string) => {
			const res = await t.request(`/api/users/churn/tokens/${jti}`, { method: 'DELETE', headers: key })
			expect(res.status).toBe(204)
			revoked.add(jti)
		}
		let cursor: string | null = null
		for (let pages = 0; pages < 100; pages++) {
			const current: Page = await page('churn', 100, cursor)
			for (const x of current.tokens) expect(revokedUnseen.has(x.jti)).toBe(false)
			seen.push(...current.tokens)
			cursor = current.next_cursor
			if (cursor === null) break
			const last = current.tokens.at(-1)
			if (last === undefined) throw new Error('a page with a next_cursor but no tokens')
			// The cursor's own token, one already listed, and the next two that were not yet listed.
			await revoke(last.jti)
			await revoke(current.tokens[0]?.jti ?? '')
			const at = seeded.findIndex((r) => r.jti === last.jti)
			for (const r of seeded.slice(at + 1, at + 3)) {
				await revoke(r.jti)
				revokedUnseen.add(r.jti)
			}
			// New tokens: in the cursor's own second (their ids may sort either side of it), and newer than all.
			for (const issuedAtS of [seconds(last.issued_at), seconds(last.issued_at), nowS()]) {
				const fresh = record(t.clock, { userId: 'churn', issuedAtS, expiresAtS: nowS() + 3600 })
				expect(await createIn(t.deps.store, fresh)).toEqual({ status: 'created' })
				issuedBetween.add(fresh.jti)
			}
			issuedBetween.add((await t.issue('churn', 'c.mp4')).jti)
		}
		expect(cursor).toBeNull()

		const jtis = seen.map((x) => x.jti)
		expect(new Set(jtis).size).toBe(jtis.length)
		// Newest first all along: each listed position strictly after the one before.
		const out = seen.flatMap((x, i) => {
			const prev = seen[i - 1]
			if (prev === undefined) return []
			const [a, b] = [seconds(prev.issued_at), seconds(x.issued_at)]
			return a > b || (a === b && prev.jti > x.jti) ? [] : [`${prev.jti} then ${x.jti}`]
		})
		expect(out).toEqual([])
		const liveThroughout = seeded.filter((r) => !revoked.has(r.jti)).map((r) => r.jti)
		expect(liveThroughout.length).toBeGreaterThan(2400)
		expect(liveThroughout.filter((jti) => !jtis.includes(jti))).toEqual([])
		expect(jtis.filter((jti) => !seeded.some((r) => r.jti === jti) && !issuedBetween.has(jti))).toEqual([])
		expect(jtis.filter((jti) => revokedUnseen.has(jti))).toEqual([])
		// What was issued in the cursor's second and sorts after it shows up on a later page (some did).
		expect(jtis.filter((jti) => issuedBetween.has(jti)).length).toBeGreaterThan(0)
	}, 30_000)

	test.each([
		['?limit=0'],
		['?limit=1001'],
		['?limit=abc'],
		['?limit=-1'],
		['?limit=1.5'],
		['?limit=1e2'],
		['?limit=010'],
		['?limit=%2010'],
		['?limit='],
		['?limit=10&limit=10'],
		['?limit=10&limit=20'],
		['?limit[]=10'],
		['?Limit=10'],
		['?foo=1'],
		['?limit=10&foo='],
		['?cursor='],
		['?cursor=abc'],
		['?cursor=abc&cursor=abc'],
	])('%s → 400 invalid_request', async (query) => {
		const res = await get('pager', query)
		expect(res.status).toBe(400)
		expect(res.headers.get('content-type')).toStartWith('application/json')
		expect(((await res.json()) as ErrorBody).error).toBe('invalid_request')
	})

	test('a cursor edited by one character, at any position, to any other character → 400', async () => {
		const cursor = (await page('pager', 100)).next_cursor ?? ''
		expect(cursor).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)
		// The cursor itself still works, so every refusal below is the edit's.
		expect((await page('pager', 100, cursor)).tokens[0]?.jti).toBe(pager[100]?.jti)
		const edits: string[] = []
		for (let i = 0; i < cursor.length; i++) {
			for (const c of `${BASE64URL}.`) if (c !== cursor[i]) edits.push(cursor.slice(0, i) + c + cursor.slice(i + 1))
			edits.push(cursor.slice(0, i) + cursor.slice(i + 1))
		}
		const accepted: string[] = []
		for (let from = 0; from < edits.length; from += 64) {
			await Promise.all(
				edits.slice(from, from + 64).map(async (edited) => {
					const res = await get('pager', `?cursor=${edited}`)
					const body = (await res.json()) as ErrorBody
					if (res.status !== 400 || body.error !== 'invalid_request') accepted.push(`${edited} → ${res.status}`)
				}),
			)
		}
		expect(edits.length).toBeGreaterThan(cursor.length * 64)
		expect(accepted).toEqual([])
	}, 30_000)

	test('another user’s cursor → 400, with a message saying to start over', async () => {
		const cursor = (await page('pager', 10)).next_cursor ?? ''
		await seedTokens(t.deps.store, 20, () => record(t.clock, { userId: 'other' }))
		const res = await get('other', `?limit=10&cursor=${cursor}`)
		expect(res.status).toBe(400)
		expect(await res.json()).toEqual({
			error: 'invalid_request',
			message: 'cursor is not one this listing gave out for this user; start from the first page',
		})
		expect((await page('pager', 10, cursor)).tokens).toHaveLength(10)
	})
})

describe.each<StoreKind>(['redis', 'memory'])('MAX_LIVE_TOKENS_PER_USER=100 (%s store)', (store) => {
	let t: TestApp
	const issueRaw = (user: string, query = '') =>
		t.request(`/api/get-download-token/${user}/a.mp4${query}`, { headers: key })
	const listed = async (user: string) =>
		((await (await t.request(`/api/users/${user}/tokens?limit=1000`, { headers: key })).json()) as Page).tokens.map(
			(x) => x.jti,
		)
	const refusedWith429 = async () => {
		const res = await issueRaw('bound')
		expect(res.status).toBe(429)
		expect(res.headers.get('retry-after')).toBeNull()
		expect(await res.json()).toEqual({
			error: 'too_many_live_tokens',
			message:
				"This user already holds 100 live tokens: revoke some (DELETE /api/users/:user_id/tokens/:jti, or all of a file's) or wait until they expire.",
		})
	}

	beforeAll(async () => {
		t = await makeTestApp({
			store,
			env: { API_KEYS: API_KEY, MAX_LIVE_TOKENS_PER_USER: '100', RATE_LIMIT_ISSUE: '100000/min' },
		})
		await t.putFile('bound', 'a.mp4', 'aaaa')
		await t.putFile('free', 'a.mp4', 'aaaa')
	})
	afterAll(() => t.close())

	test('the 101st → 429 too_many_live_tokens; a revoke, an expiry and a used-up token each free a place', async () => {
		const short = await t.issue('bound', 'a.mp4', '?ttl=5')
		const once = await t.issue('bound', 'a.mp4', '?max_uses=1')
		const rest: IssueBody[] = []
		for (let i = 0; i < 98; i++) rest.push(await t.issue('bound', 'a.mp4'))
		expect(await listed('bound')).toHaveLength(100)
		await refusedWith429()
		// Refused means nothing written: still 100 listed, and other users are not bound by it.
		expect(await listed('bound')).toHaveLength(100)
		expect((await issueRaw('free')).status).toBe(200)

		const revoked = rest[0]?.jti ?? ''
		expect((await t.request(`/api/users/bound/tokens/${revoked}`, { method: 'DELETE', headers: key })).status).toBe(204)
		expect((await issueRaw('bound')).status).toBe(200)
		await refusedWith429()

		t.clock.advance(6000) // `short` expires
		expect((await issueRaw('bound')).status).toBe(200)
		await refusedWith429()

		const res = await t.request(downloadPath('bound', 'a.mp4'), { headers: bearer(once.token) })
		expect(res.status).toBe(200)
		expect(await res.text()).toBe('aaaa')
		// The budget is settled when the body ends: wait (bounded) until the token left the listing.
		const settled = await pollUntil(
			() => listed('bound'),
			(jtis) => !jtis.includes(once.jti),
			2000,
		)
		expect(settled).not.toContain(once.jti)
		expect((await issueRaw('bound')).status).toBe(200)
		await refusedWith429()
		expect(await listed('bound')).not.toContain(short.jti)
	})
})
