import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createMemoryTokenStore } from '../../src/store/memory'
import { createFixedWindows, createMemoryRateLimiter } from '../../src/store/rate-limit'
import { bearer, downloadPath, fakeClock, makeTestApp, type StoreKind, type TestApp } from '../support/helpers'
import { createIn, record } from './contract'

describe.each<StoreKind>(['redis', 'memory'])('rate limits (%s store)', (store) => {
	let t: TestApp
	beforeAll(async () => {
		t = await makeTestApp({ store, env: { RATE_LIMIT_ISSUE: '3/min', RATE_LIMIT_DENIED: '3/min' } })
		await t.putFile('123', 'a.mp4', 'aaa')
		await t.putFile('124', 'a.mp4', 'bbb')
	})
	afterAll(() => t.close())

	test('RATE_LIMIT_ISSUE: the 4th token request of a user in the window → 429 rate_limited with Retry-After', async () => {
		for (let i = 0; i < 3; i++) expect((await t.request('/api/get-download-token/123/a.mp4')).status).toBe(200)
		const res = await t.request('/api/get-download-token/123/a.mp4')
		expect(res.status).toBe(429)
		expect(((await res.json()) as { error: string }).error).toBe('rate_limited')
		const retryAfter = Number(res.headers.get('retry-after'))
		expect(retryAfter).toBeGreaterThanOrEqual(1)
		expect(retryAfter).toBeLessThanOrEqual(60)
		// Another user has a window of their own.
		expect((await t.request('/api/get-download-token/124/a.mp4')).status).toBe(200)
	})

	test('RATE_LIMIT_DENIED: refusals per client IP turn into 429; valid downloads are not counted', async () => {
		const { token } = await t.issue('124', 'a.mp4')
		for (let i = 0; i < 5; i++)
			expect((await t.request(downloadPath('124', 'a.mp4'), { headers: bearer(token) })).status).toBe(200)
		for (let i = 0; i < 3; i++) {
			const denied = await t.request(downloadPath('124', 'a.mp4'), { headers: bearer('forged.token.value') })
			expect(denied.status).toBe(401)
		}
		const limited = await t.request(downloadPath('124', 'a.mp4'), { headers: bearer('forged.token.value') })
		expect(limited.status).toBe(429)
		expect(((await limited.json()) as { error: string }).error).toBe('rate_limited')
		expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
		// Guessing is stopped, the legitimate download still goes through.
		expect((await t.request(downloadPath('124', 'a.mp4'), { headers: bearer(token) })).status).toBe(200)
	})
})

test('a window resets: requests are allowed again once it has passed', async () => {
	const t = await makeTestApp({ store: 'memory', env: { RATE_LIMIT_ISSUE: '1/min' } })
	await t.putFile('9', 'a.mp4', 'a')
	expect((await t.request('/api/get-download-token/9/a.mp4')).status).toBe(200)
	expect((await t.request('/api/get-download-token/9/a.mp4')).status).toBe(429)
	t.clock.advance(60_000)
	expect((await t.request('/api/get-download-token/9/a.mp4')).status).toBe(200)
	await t.close()
})

test('a Redis window ends by its own expiry: a client that waits Retry-After is allowed, in a window counted afresh', async () => {
	// The app's clock is a fake one that never moves: only the window's expiry in Redis can end it.
	const t = await makeTestApp({ store: 'redis', env: { RATE_LIMIT_ISSUE: '1/1s' } })
	try {
		await t.putFile('9', 'a.mp4', 'a')
		const issue = () => t.request('/api/get-download-token/9/a.mp4')
		expect((await issue()).status).toBe(200)
		const limited = await issue()
		expect(limited.status).toBe(429)
		expect(((await limited.json()) as { error: string }).error).toBe('rate_limited')
		// The rule's 1 s, rounded up to whole seconds: never more than the rule's length.
		expect(limited.headers.get('retry-after')).toBe('1')
		// Waiting what Retry-After says is enough (50 ms more: Redis expires a key only after its last millisecond).
		await Bun.sleep(1000 + 50)
		expect((await issue()).status).toBe(200)
		expect((await issue()).status).toBe(429)
	} finally {
		await t.close()
	}
})

test('a refused IP is blocked until its window resets, then counted afresh', async () => {
	const t = await makeTestApp({ store: 'memory', env: { RATE_LIMIT_DENIED: '2/min' } })
	await t.putFile('9', 'a.mp4', 'a')
	const deny = () => t.request(downloadPath('9', 'a.mp4'), { headers: bearer('forged') })
	expect([(await deny()).status, (await deny()).status, (await deny()).status, (await deny()).status]).toEqual([
		401, 401, 429, 429,
	])
	t.clock.advance(61_000)
	expect((await deny()).status).toBe(401)
	await t.close()
})

test('in memory, one fixed-window counter: it starts with the first event, counts refused ones, and ends windowS later', () => {
	const clock = fakeClock()
	const windows = createFixedWindows(clock.now)
	const rule = { limit: 2, windowS: 10 }
	expect(windows.hit('k', rule)).toEqual({ allowed: true, retryAfterS: 10 })
	clock.advance(4_500)
	expect(windows.hit('k', rule)).toEqual({ allowed: true, retryAfterS: 6 })
	expect(windows.hit('k', rule)).toEqual({ allowed: false, retryAfterS: 6 })
	expect(windows.hit('other', rule)).toEqual({ allowed: true, retryAfterS: 10 })
	clock.advance(5_499)
	expect(windows.hit('k', rule)).toEqual({ allowed: false, retryAfterS: 1 })
	clock.advance(1)
	expect(windows.hit('k', rule)).toEqual({ allowed: true, retryAfterS: 10 })
	// Sweeping forgets only windows that are over.
	windows.sweep()
	expect(windows.hit('k', rule)).toEqual({ allowed: true, retryAfterS: 10 })
})

test('the memory rate limiter and the memory store’s issue limit count alike', async () => {
	const clock = fakeClock()
	const limiter = createMemoryRateLimiter(clock.now)
	const store = createMemoryTokenStore({ clock: clock.now })
	const rule = { limit: 2, windowS: 10 }
	const user = 'same-user'
	try {
		const limited: unknown[] = []
		const issued: unknown[] = []
		for (let i = 0; i < 4; i++) {
			limited.push(await limiter.hit('issue', user, rule))
			issued.push(await createIn(store, record(clock, { userId: user }), { issueLimit: rule }))
			clock.advance(3_000)
		}
		expect(limited).toEqual([
			{ allowed: true, retryAfterS: 10 },
			{ allowed: true, retryAfterS: 7 },
			{ allowed: false, retryAfterS: 4 },
			{ allowed: false, retryAfterS: 1 },
		])
		expect(issued).toEqual([
			{ status: 'created' },
			{ status: 'created' },
			{ status: 'rate_limited', retryAfterS: 4 },
			{ status: 'rate_limited', retryAfterS: 1 },
		])
		// The window is over: both allow again.
		expect(await limiter.hit('issue', user, rule)).toEqual({ allowed: true, retryAfterS: 10 })
		expect(await createIn(store, record(clock, { userId: user }), { issueLimit: rule })).toEqual({ status: 'created' })
	} finally {
		await store.close()
	}
})
