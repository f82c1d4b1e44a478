import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bearer, downloadPath, makeTestApp, serviceEnv, type TestApp } from '../support/helpers'
import { pollUntil } from '../support/poll'
import { type ServerProcess, startServerProcess } from '../support/server-process'
import { downloadClaims, expectError, expectRawError, firstResponse, forge, nowS, sendRaw } from './helpers'

// Anonymous input is bounded: a download token over 4 KiB is refused before
// it is parsed, a revoke body over the limit is 413, and a flood of junk
// leaves the server's memory where it was.

const KiB = 1024
const MiB = 1024 * KiB
const TOKEN_LIMIT = 4 * KiB

/** An authentic token for a live record, padded with an extra claim to exactly `length` characters or just below. */
async function paddedToken(claims: Record<string, unknown>, length: number): Promise<string> {
	let best = ''
	for (let pad = Math.max(0, Math.floor(((length - 400) * 3) / 4)); pad < length; pad++) {
		const token = await forge({ ...claims, pad: 'p'.repeat(pad) })
		if (token.length > length) break
		best = token
	}
	return best
}

describe('download tokens are bounded at 4 KiB', () => {
	let t: TestApp
	beforeAll(async () => {
		t = await makeTestApp({ env: { ALLOW_QUERY_TOKEN: 'true', RATE_LIMIT_DENIED: '1000000/min' } })
		await t.putFile('123', 'a.mp4', 'the file')
	})
	afterAll(() => t.close())

	test('an authentic token for a live record, padded past 4 KiB, is 401 invalid_token (header and ?token=)', async () => {
		const { jti } = await t.issue('123', 'a.mp4')
		const claims = downloadClaims('123', 'a.mp4', jti, nowS(t.clock))
		// The same claims unpadded are served: only the length is wrong below.
		expect((await t.request(downloadPath('123', 'a.mp4'), { headers: bearer(await forge(claims)) })).status).toBe(200)

		for (const length of [TOKEN_LIMIT + 4, 8 * KiB, 15 * KiB]) {
			const token = await paddedToken(claims, length)
			expect(token.length).toBeGreaterThan(TOKEN_LIMIT)
			await expectError(await t.request(downloadPath('123', 'a.mp4'), { headers: bearer(token) }), 401, 'invalid_token')
			await expectError(await t.request(`${downloadPath('123', 'a.mp4')}?token=${token}`), 401, 'invalid_token')
		}
	})

	test('an authentic padded token of at most 4 KiB is still accepted', async () => {
		const { jti } = await t.issue('123', 'a.mp4')
		const token = await paddedToken(downloadClaims('123', 'a.mp4', jti, nowS(t.clock)), TOKEN_LIMIT)
		expect(token.length).toBeGreaterThan(TOKEN_LIMIT - 4)
		const res = await t.request(downloadPath('123', 'a.mp4'), { headers: bearer(token) })
		expect(res.status).toBe(200)
		expect(await res.text()).toBe('the file')
	})

	test('a 4 KiB + 1 junk token is invalid_token, not a parse error or a 5xx', async () => {
		const junk = `${'a'.repeat(2000)}.${'b'.repeat(1000)}.${'c'.repeat(TOKEN_LIMIT - 3001)}`
		expect(junk.length).toBe(TOKEN_LIMIT + 1)
		await expectError(await t.request(downloadPath('123', 'a.mp4'), { headers: bearer(junk) }), 401, 'invalid_token')
	})
})

describe('POST /api/tokens/revoke bodies are bounded', () => {
	let t: TestApp
	beforeAll(async () => {
		t = await makeTestApp()
	})
	afterAll(() => t.close())

	const revokeRequest = (body: Uint8Array, headers: string) => {
		const head = Buffer.from(
			`POST /api/tokens/revoke HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nConnection: close\r\n${headers}\r\n`,
			'latin1',
		)
		return new Uint8Array(Buffer.concat([head, body]))
	}
	const jsonOf = (size: number) => Buffer.from(`{"token":"${'x'.repeat(size - 12)}"}`)

	test.each([
		['1 MiB', MiB],
		['10 MiB', 10 * MiB],
	])(
		'a %s JSON body with Content-Length → 413 payload_too_large as JSON, promptly',
		async (_name, size) => {
			const body = jsonOf(size)
			const ex = await sendRaw(t.baseUrl, revokeRequest(body, `Content-Length: ${body.length}\r\n`), {
				timeoutMs: 10_000,
			})
			expectRawError(firstResponse(ex), 413, 'payload_too_large')
			expect(ex.ms).toBeLessThan(5000)
		},
		15_000,
	)

	test('a 1 MiB chunked body (no Content-Length to check up front) → 413 payload_too_large as JSON', async () => {
		const body = jsonOf(MiB)
		const chunks: Buffer[] = []
		for (let i = 0; i < body.length; i += 64 * KiB) {
			const part = body.subarray(i, i + 64 * KiB)
			chunks.push(Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n'))
		}
		chunks.push(Buffer.from('0\r\n\r\n'))
		const ex = await sendRaw(
			t.baseUrl,
			revokeRequest(new Uint8Array(Buffer.concat(chunks)), 'Transfer-Encoding: chunked\r\n'),
			{ timeoutMs: 10_000 },
		)
		expectRawError(firstResponse(ex), 413, 'payload_too_large')
	}, 15_000)

	test('the 413 answer carries an X-Request-Id', async () => {
		const body = jsonOf(MiB)
		const ex = await sendRaw(
			t.baseUrl,
			revokeRequest(body, `Content-Length: ${body.length}\r\nX-Request-Id: big-body-1\r\n`),
			{ timeoutMs: 10_000 },
		)
		const res = firstResponse(ex)
		expect({ status: res.status, id: res.header('x-request-id') }).toEqual({ status: 413, id: 'big-body-1' })
	}, 15_000)

	test('a small revoke body is still served (the limit does not refuse real requests)', async () => {
		const res = await t.request('/api/tokens/revoke', {
			method: 'POST',
			headers: { 'Content-Type': 'application/json' },
			body: JSON.stringify({ token: 'not.a.token' }),
		})
		expect(res.status).toBe(200)
		expect(await res.json()).toEqual({ revoked: false })
	})
})

describe('a flood of anonymous junk leaves the server memory where it was', () => {
	let storage: string
	let server: ServerProcess
	beforeAll(async () => {
		storage = await mkdtemp(join(tmpdir(), 'dlg-rss-'))
		await mkdir(join(storage, '123'))
		await writeFile(join(storage, '123', 'a.mp4'), 'x')
		server = await startServerProcess(
			// Guessing from many addresses is the threat; one test address must not hit the denial limit first.
			serviceEnv(storage, { RATE_LIMIT_DENIED: '1000000/min' }),
		)
	})
	afterAll(async () => {
		await server.stop()
		await rm(storage, { recursive: true, force: true })
	})

	test('1,000 revoke bodies of 1 MiB junk and 1,000 header-sized junk tokens: server RSS within 10 MiB of the start', async () => {
		const junkMiB = 'J'.repeat(MiB - 64)
		// As large as Bun's 16 KiB header limit allows, each one distinct.
		const junkToken = 'T'.repeat(15_000)
		const statuses: Record<string, number> = {}
		const count = (key: string) => {
			statuses[key] = (statuses[key] ?? 0) + 1
		}
		const revoke = async (i: number) => {
			try {
				const res = await fetch(`${server.url}/api/tokens/revoke`, {
					method: 'POST',
					headers: { 'Content-Type': 'application/json' },
					body: `{"token":"${i}.${junkMiB}"}`,
					signal: AbortSignal.timeout(10_000),
				})
				await res.arrayBuffer()
				count(`revoke ${res.status}`)
			} catch {
				count('revoke connection error')
			}
		}
		const junkAuth = async (i: number) => {
			try {
				const res = await fetch(`${server.url}/api/download/123/a.mp4`, {
					headers: bearer(`${i}.${junkToken}`),
					signal: AbortSignal.timeout(10_000),
				})
				await res.arrayBuffer()
				count(`download ${res.status}`)
			} catch {
				count('download connection error')
			}
		}
		const flood = async (send: (i: number) => Promise<void>, from: number, to: number) => {
			const next = { i: from }
			await Promise.all(
				Array.from({ length: 8 }, async () => {
					while (next.i < to) await send(next.i++)
				}),
			)
		}
		/** RSS once it settles: polled (bounded) until within the limit of `base`, so a late GC is not held against it. */
		const settledRss = async (base: number) =>
			pollUntil(
				() => server.rss(),
				(rss) => rss - base <= 10 * MiB,
				2000,
				200,
			)
		const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10

		// Warm-up: JIT, connection pools, allocator arenas.
		await flood(revoke, 0, 100)
		await flood(junkAuth, 0, 100)
		await Bun.sleep(300)
		const before = await server.rss()
		await flood(revoke, 100, 1100)
		const afterBodies = await settledRss(before)
		await flood(junkAuth, 100, 1100)
		const afterTokens = await settledRss(before)

		expect((await fetch(`${server.url}/health`)).status).toBe(200)
		const seen = {
			grewAfterRevokeBodiesMiB: mib(afterBodies - before),
			grewDuringJunkTokensMiB: mib(afterTokens - afterBodies),
			grewInAllMiB: mib(afterTokens - before),
			statuses,
		}
		expect({ overLimitMiB: Math.max(0, mib(afterTokens - before - 10 * MiB)), ...seen }).toEqual({
			overLimitMiB: 0,
			...seen,
		})
	}, 60_000)
})
