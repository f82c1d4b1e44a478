import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { bearer, downloadPath, makeTestApp, randomBytesOf, type TestApp } from '../support/helpers'
import { pollUntil } from '../support/poll'
import { type RedisServer, startRedisServer } from '../support/redis-server'
import { expectError } from './helpers'

// docs/contract.md §3.2: "A request answered with an error is never charged, even when the
// store executes a reservation after the service gave up waiting for it (a
// stalled Redis)", and "never serve a file without the store check".
// A SIGSTOPped redis-server keeps its sockets open: the command is written,
// the service times out, and Redis runs it the moment it is thawed.

type Listed = { tokens: { jti: string; bytes_left: number | null }[] }

describe('a stalled or dead Redis never charges an error and never lets a byte through', () => {
	let redis: RedisServer
	let t: TestApp
	let video: Uint8Array<ArrayBuffer>
	const path = downloadPath('123', 'video.mp4')

	beforeAll(async () => {
		redis = await startRedisServer()
		t = await makeTestApp({ env: { REDIS_URL: redis.url, RATE_LIMIT_DENIED: '1000000/min' } })
		video = await t.putFile('123', 'video.mp4', randomBytesOf(200 * 1024 + 1))
		// A server in service has its Lua scripts loaded; a stalled EVALSHA must not be saved by a NOSCRIPT.
		for (const query of ['', '?max_uses=2']) {
			const { token } = await t.issue('123', 'video.mp4', query)
			await (await t.request(path, { headers: bearer(token) })).arrayBuffer()
			await (await t.request(path, { headers: { ...bearer(token), Range: 'bytes=0-0' } })).arrayBuffer()
		}
	}, 15_000)
	afterAll(async () => {
		redis.resume()
		await t.close()
		await redis.stop()
	}, 15_000)

	const bytesLeft = async (jti: string) => {
		const res = await t.request('/api/users/123/tokens', { signal: AbortSignal.timeout(3000) })
		const listed = (await res.json()) as Listed
		return listed.tokens.find((x) => x.jti === jti)?.bytes_left ?? 'not listed: used up, revoked or gone'
	}
	const storeAnswers = async () =>
		(await t.request('/ready', { signal: AbortSignal.timeout(3000) }).catch(() => null))?.status === 200

	test('Redis paused: a budgeted GET is 503 store_unavailable within 2 s; once resumed, the budget is whole again (any late charge compensated) and the whole file still downloads', async () => {
		const { token, jti } = await t.issue('123', 'video.mp4', '?max_uses=1')
		expect(await bytesLeft(jti)).toBe(video.length)

		redis.pause()
		try {
			const started = performance.now()
			const res = await t.request(path, { headers: bearer(token), signal: AbortSignal.timeout(5000) })
			const elapsed = performance.now() - started
			await expectError(res, 503, 'store_unavailable')
			expect(elapsed).toBeLessThan(2000)
		} finally {
			redis.resume()
		}
		// The reservation sent before the timeout runs now, if it was going to; a compensation
		// (docs/contract.md §3.2: "compensated idempotently") may follow it, within the service's retry backoff.
		expect(await pollUntil(storeAnswers, Boolean, 5000)).toBe(true)
		expect(
			await pollUntil(
				() => bytesLeft(jti),
				(left) => left === video.length,
				6000,
				100,
			),
		).toBe(video.length)
		const res = await t.request(path, { headers: bearer(token), signal: AbortSignal.timeout(5000) })
		expect(res.status).toBe(200)
		expect(new Uint8Array(await res.arrayBuffer())).toEqual(video)
	}, 15_000)

	test('Redis paused: no request of any kind is served (GET, Range, HEAD, unlimited, budgeted), each answers 503 within 2 s, and nothing is charged', async () => {
		const unlimited = await t.issue('123', 'video.mp4')
		const budgeted = await t.issue('123', 'video.mp4', '?max_uses=2')
		const requests: [string, string, RequestInit][] = [
			['unlimited GET', path, { headers: bearer(unlimited.token) }],
			['unlimited Range', path, { headers: { ...bearer(unlimited.token), Range: 'bytes=0-99' } }],
			['unlimited HEAD', path, { method: 'HEAD', headers: bearer(unlimited.token) }],
			['budgeted GET', path, { headers: bearer(budgeted.token) }],
			['budgeted Range', path, { headers: { ...bearer(budgeted.token), Range: 'bytes=100-' } }],
			['budgeted HEAD', path, { method: 'HEAD', headers: bearer(budgeted.token) }],
			['issue', '/api/get-download-token/123/video.mp4?max_uses=1', {}],
		]
		redis.pause()
		let answers: { name: string; status: number; slow: boolean }[]
		try {
			answers = await Promise.all(
				requests.map(async ([name, p, init]) => {
					const started = performance.now()
					const res = await t.request(p, { ...init, signal: AbortSignal.timeout(5000) })
					await res.arrayBuffer()
					return { name, status: res.status, slow: performance.now() - started > 2000 }
				}),
			)
		} finally {
			redis.resume()
		}
		expect(answers).toEqual(requests.map(([name]) => ({ name, status: 503, slow: false })))

		expect(await pollUntil(storeAnswers, Boolean, 5000)).toBe(true)
		const full = 2 * video.length
		expect(
			await pollUntil(
				() => bytesLeft(budgeted.jti),
				(left) => left === full,
				6000,
				100,
			),
		).toBe(full)
	}, 15_000)

	test('Redis killed: every download answers 503 store_unavailable, never 200', async () => {
		const unlimited = await t.issue('123', 'video.mp4')
		const budgeted = await t.issue('123', 'video.mp4', '?max_uses=5')
		await redis.kill()
		try {
			const statuses: number[] = []
			for (const token of [unlimited.token, budgeted.token, unlimited.token, budgeted.token]) {
				const res = await t.request(path, { headers: bearer(token), signal: AbortSignal.timeout(5000) })
				statuses.push(res.status)
				await res.arrayBuffer()
			}
			expect(statuses).toEqual([503, 503, 503, 503])
		} finally {
			await redis.start()
		}
	}, 15_000)

	test("the 503 store_unavailable answer carries an X-Request-Id (the caller's when valid)", async () => {
		// The previous test restarted Redis; the client reconnects on its own, within its backoff.
		expect(await pollUntil(storeAnswers, Boolean, 5000)).toBe(true)
		const { token } = await t.issue('123', 'video.mp4')
		await redis.kill()
		try {
			const echoed = await t.request(path, {
				headers: { ...bearer(token), 'X-Request-Id': 'stall-check-1' },
				signal: AbortSignal.timeout(5000),
			})
			const generated = await t.request(path, { headers: bearer(token), signal: AbortSignal.timeout(5000) })
			expect([echoed.status, generated.status]).toEqual([503, 503])
			expect(echoed.headers.get('x-request-id')).toBe('stall-check-1')
			expect(generated.headers.get('x-request-id') ?? '').toMatch(/^[A-Za-z0-9._:-]{1,128}$/)
		} finally {
			await redis.start()
		}
	}, 15_000)
})
