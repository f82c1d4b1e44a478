import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { CACHE_TRUST_AFTER_SILENCE_MS } from '../../src/store/tracking'
import { bearer, downloadPath, makeTestApp, TEST_SECRET, type TestApp } from '../support/helpers'
import { pollUntil } from '../support/poll'
import { type RedisServer, startRedisServer } from '../support/redis-server'
import { type ServerProcess, startServerProcess } from '../support/server-process'

// Unlimited tokens' live records are remembered per process, kept coherent by
// Redis (CLIENT TRACKING). These tests try to make a remembered record outlive
// what Redis says: a revocation through another instance, a FLUSHALL, a
// restart, a hung server.

const revokeOn = (t: TestApp, user: string, jti: string) =>
	t.request(`/api/users/${user}/tokens/${jti}`, { method: 'DELETE' })

/** Waits (bounded, polling every 10 ms) until `condition` holds. */
const until = (condition: () => boolean, ms: number) => pollUntil(condition, Boolean, ms, 10)

/** Timers and requests of a loaded machine run late by up to this much. */
const MARGIN_MS = 250

describe('the per-process token cache never outlives Redis', () => {
	let server: RedisServer
	let a: TestApp
	let b: TestApp
	let redis: Redis

	beforeAll(async () => {
		server = await startRedisServer()
		const env = { REDIS_URL: server.url, REDIS_KEY_PREFIX: 'cache:', RATE_LIMIT_DENIED: '100000/min' }
		a = await makeTestApp({ env })
		b = await makeTestApp({ env: { ...env, STORAGE_DIR: a.storageDir } })
		await a.putFile('u', 'v.mp4', 'video')
		redis = new Redis(server.url)
		// Both instances subscribe to invalidations before anything is cached.
		expect(await until(() => a.deps.store.peek('u', 'none', 'v.mp4') === false, 100)).toBe(true)
		await Bun.sleep(200)
	})
	afterAll(async () => {
		redis.disconnect()
		await a.close()
		await b.close()
		await server.stop()
	})

	const download = (t: TestApp, token: string) => t.request(downloadPath('u', 'v.mp4'), { headers: bearer(token) })

	test('a download remembers the record: the next one asks nobody', async () => {
		const { token, jti } = await a.issue('u', 'v.mp4')
		expect(a.deps.store.peek('u', jti, 'v.mp4')).toBe(false)
		expect((await download(a, token)).status).toBe(200)
		expect(a.deps.store.peek('u', jti, 'v.mp4')).toBe(true)
		expect(a.deps.store.peek('u', jti, 'other.mp4')).toBe(false)
	})

	test('50 times: revoked through one instance, refused by the other at its very next request', async () => {
		for (let i = 0; i < 50; i++) {
			const { token, jti } = await a.issue('u', 'v.mp4')
			for (let k = 0; k < 2; k++) expect((await download(b, token)).status).toBe(200)
			expect(b.deps.store.peek('u', jti, 'v.mp4')).toBe(true)
			expect((await revokeOn(a, 'u', jti)).status).toBe(204)
			const after = await download(b, token)
			expect({ i, status: after.status }).toEqual({ i, status: 401 })
			expect(((await after.json()) as { error: string }).error).toBe('token_revoked')
		}
	})

	test('FLUSHALL forgets every remembered record on every instance', async () => {
		const { token, jti } = await a.issue('u', 'v.mp4')
		expect((await download(a, token)).status).toBe(200)
		expect((await download(b, token)).status).toBe(200)
		expect(a.deps.store.peek('u', jti, 'v.mp4')).toBe(true)
		await redis.flushall()
		for (const t of [a, b]) {
			expect((await download(t, token)).status).toBe(401)
			expect(t.deps.store.peek('u', jti, 'v.mp4')).toBe(false)
		}
	})

	test('a hung Redis (SIGSTOP) is not trusted: downloads get 503 within about a second, then work again', async () => {
		const { token, jti } = await a.issue('u', 'v.mp4')
		expect((await download(a, token)).status).toBe(200)
		expect(a.deps.store.peek('u', jti, 'v.mp4')).toBe(true)
		server.pause()
		try {
			expect(await until(() => !a.deps.store.peek('u', jti, 'v.mp4'), CACHE_TRUST_AFTER_SILENCE_MS + MARGIN_MS)).toBe(
				true,
			)
			expect((await download(a, token)).status).toBe(503)
		} finally {
			server.resume()
		}
		const status = await pollUntil(
			async () => (await download(a, token)).status,
			(s) => s === 200,
			3000,
			20,
		)
		expect(status).toBe(200)
		// Caching resumes once the tracked connection is back: downloads again ask nobody.
		const remembered = await pollUntil(
			async () => {
				expect((await download(a, token)).status).toBe(200)
				return a.deps.store.peek('u', jti, 'v.mp4')
			},
			Boolean,
			3000,
			20,
		)
		expect(remembered).toBe(true)
		// The main connection (issuance, revocations) comes back too, on its own schedule after the hang.
		const issuing = await pollUntil(
			async () => (await a.request('/api/get-download-token/u/v.mp4')).status,
			(s) => s === 200,
			3000,
			20,
		)
		expect(issuing).toBe(200)
	})

	test('a restart (records gone, connections dropped) forgets everything: never served from memory', async () => {
		const { token, jti } = await a.issue('u', 'v.mp4')
		expect((await download(a, token)).status).toBe(200)
		expect(a.deps.store.peek('u', jti, 'v.mp4')).toBe(true)
		await server.stop()
		expect(await until(() => !a.deps.store.peek('u', jti, 'v.mp4'), 1000)).toBe(true)
		expect((await download(a, token)).status).toBe(503)
		await server.start()
		const status = await pollUntil(
			async () => (await download(a, token)).status,
			(s) => s !== 503,
			3000,
			20,
		)
		// The restarted server kept nothing: the token's record is gone.
		expect(status).toBe(401)
	})
})

/**
 * A raw MONITOR connection to `port`: `next(command, ms)` resolves with true
 * once Redis has run `command`, or false after `ms` (ioredis' own monitor
 * mistakes a line arriving together with MONITOR's +OK for a reply to nothing, and throws).
 */
async function watchCommands(
	port: number,
): Promise<{ next(command: string, timeoutMs: number): Promise<boolean>; close(): void }> {
	const waiting: { pattern: string; resolve: () => void }[] = []
	let pending = ''
	const socket = await Bun.connect({
		hostname: '127.0.0.1',
		port,
		socket: {
			data(_socket, chunk) {
				pending += chunk.toString()
				const lines = pending.split('\r\n')
				pending = lines.pop() ?? ''
				for (const line of lines.map((l) => l.toLowerCase()))
					for (const w of [...waiting])
						if (line.includes(w.pattern)) {
							waiting.splice(waiting.indexOf(w), 1)
							w.resolve()
						}
			},
		},
	})
	socket.write('MONITOR\r\n')
	return {
		// Monitor lines read `+<time> [<db> <client>] "<command>" "<arg>"…`.
		next: (command, timeoutMs) =>
			new Promise((resolve) => {
				const w = { pattern: `] "${command.toLowerCase()}"`, resolve: () => resolve(true) }
				waiting.push(w)
				setTimeout(() => {
					if (waiting.includes(w)) waiting.splice(waiting.indexOf(w), 1)
					resolve(false)
				}, timeoutMs)
			}),
		close: () => socket.end(),
	}
}

// The bound at its worst moment: Redis hangs right after answering a
// heartbeat, so the next ping, and the silence it meets, come as late as they
// can. One instance on a Redis of its own, so every PING Redis sees is its heartbeat.
describe('after Redis hangs, a remembered verdict is used for at most CACHE_TRUST_AFTER_SILENCE_MS', () => {
	let server: RedisServer
	let t: TestApp
	let commands: Awaited<ReturnType<typeof watchCommands>>

	beforeAll(async () => {
		server = await startRedisServer()
		commands = await watchCommands(server.port)
		t = await makeTestApp({ env: { REDIS_URL: server.url, REDIS_KEY_PREFIX: 'bound:' } })
		await t.putFile('u', 'v.mp4', 'video')
	})
	afterAll(async () => {
		server?.resume()
		commands?.close()
		await t?.close()
		await server?.stop()
	})

	const download = (token: string) => t.request(downloadPath('u', 'v.mp4'), { headers: bearer(token) })
	test('twice: paused right after a heartbeat, a remembered unlimited token is 503 store_unavailable for every download sent later than the bound', async () => {
		for (let round = 0; round < 2; round++) {
			// Redis answers again (after the previous round's pause).
			expect(
				await pollUntil(
					async () => (await t.request('/ready')).status,
					(s) => s === 200,
					5000,
					20,
				),
			).toBe(200)
			const { token, jti } = await t.issue('u', 'v.mp4')
			// Remembered (after the previous round, once caching is back on).
			const remembered = await pollUntil(
				async () => (await download(token)).status === 200 && t.deps.store.peek('u', jti, 'v.mp4'),
				Boolean,
				3000,
				20,
			)
			expect(remembered).toBe(true)
			// A heartbeat comes every 250 ms.
			expect(await commands.next('ping', 2000)).toBe(true)
			server.pause()
			const pausedAt = performance.now()
			const answers: { sentMs: number; status: number; body: string }[] = []
			const ask = async () => {
				const sentMs = performance.now() - pausedAt
				const res = await download(token)
				const answer = { sentMs, status: res.status, body: await res.text() }
				answers.push(answer)
				return answer
			}
			try {
				const first = await pollUntil(ask, (a) => a.status !== 200, CACHE_TRUST_AFTER_SILENCE_MS + MARGIN_MS, 10)
				const next = await ask()
				const served = answers.slice(0, -2)
				// Until then the remembered verdict answered, with the right bytes…
				expect(served.length).toBeGreaterThan(0)
				expect(served.map((a) => [a.status, a.body])).toEqual(served.map(() => [200, 'video']))
				// …and no download sent later than the bound was served from memory.
				expect({ round, status: first.status }).toEqual({ round, status: 503 })
				expect((JSON.parse(first.body) as { error: string }).error).toBe('store_unavailable')
				expect(first.sentMs).toBeLessThanOrEqual(CACHE_TRUST_AFTER_SILENCE_MS + MARGIN_MS)
				expect(next.status).toBe(503)
				console.log(
					`[token-cache] round ${round}: last download served from memory sent ${served.at(-1)?.sentMs.toFixed(0)} ms after the pause, first 503 sent at ${first.sentMs.toFixed(0)} ms (bound ${CACHE_TRUST_AFTER_SILENCE_MS} ms)`,
				)
			} finally {
				server.resume()
			}
		}
	}, 20_000)
})

// Two instances as deployed (two processes, each with its own event loop):
// the invalidation reaches the other instance long before a client can send
// it the next request, so that request is refused.
describe('two service processes on one Redis', () => {
	let server: RedisServer
	let a: ServerProcess
	let b: ServerProcess
	let storage: string

	beforeAll(async () => {
		server = await startRedisServer()
		storage = await mkdtemp(join(tmpdir(), 'dlg-two-'))
		await mkdir(join(storage, 'u'))
		await writeFile(join(storage, 'u', 'v.mp4'), 'video')
		const env = {
			REDIS_URL: server.url,
			STORAGE_DIR: storage,
			JWT_SECRET: TEST_SECRET,
			LOG_LEVEL: 'warn',
			RATE_LIMIT_ISSUE: '100000/min',
			// Every revoked token's next request is a refusal on purpose.
			RATE_LIMIT_DENIED: '100000/min',
		}
		a = await startServerProcess(env)
		b = await startServerProcess(env)
	})
	afterAll(async () => {
		await a.stop()
		await b.stop()
		await server.stop()
		await rm(storage, { recursive: true, force: true })
	})

	test('100 times: revoked through one, refused by the other at its very next request (cache on)', async () => {
		const get = (s: ServerProcess, token: string) =>
			fetch(`${s.url}/api/download/u/v.mp4`, { headers: { Authorization: `Bearer ${token}` } })
		for (let i = 0; i < 100; i++) {
			const issued = await fetch(`${a.url}/api/get-download-token/u/v.mp4`)
			const { token, jti } = (await issued.json()) as { token: string; jti: string }
			// Twice: the second is answered from B's memory.
			for (let k = 0; k < 2; k++) expect((await get(b, token)).status).toBe(200)
			expect((await fetch(`${a.url}/api/users/u/tokens/${jti}`, { method: 'DELETE' })).status).toBe(204)
			expect({ i, status: (await get(b, token)).status }).toEqual({ i, status: 401 })
		}
	})

	test('FLUSHALL straight in Redis reaches both instances within the invalidation delivery (bounded, never undone)', async () => {
		// Not through the API, so no barrier: the contract (docs/contract.md §4) is that no
		// copy outlives the change by more than the invalidation's delivery.
		const redis = new Redis(server.url)
		const get = (s: ServerProcess, token: string) =>
			fetch(`${s.url}/api/download/u/v.mp4`, { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.status)
		try {
			let worstMs = 0
			for (let i = 0; i < 20; i++) {
				const issued = await fetch(`${a.url}/api/get-download-token/u/v.mp4`)
				const { token } = (await issued.json()) as { token: string }
				for (const s of [a, b, a, b]) expect(await get(s, token)).toBe(200)
				await redis.flushall()
				const flushed = performance.now()
				for (const s of [a, b]) {
					let status = await get(s, token)
					while (status === 200 && performance.now() - flushed < 250) status = await get(s, token)
					worstMs = Math.max(worstMs, performance.now() - flushed)
					expect({ i, status }).toEqual({ i, status: 401 })
					// Once refused, refused for good.
					for (let k = 0; k < 3; k++) expect(await get(s, token)).toBe(401)
				}
			}
			console.log(`[token-cache] worst FLUSHALL delivery seen by a client: ${worstMs.toFixed(1)} ms`)
		} finally {
			redis.disconnect()
		}
	})
})
