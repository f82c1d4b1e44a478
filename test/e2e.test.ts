import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CACHE_TRUST_AFTER_SILENCE_MS } from '../src/store/tracking'
import { randomBytesOf, serviceEnv, sha256 } from './support/helpers'
import { pollUntil } from './support/poll'
import { type RedisServer, startRedisServer } from './support/redis-server'
import { type ServerProcess, startServerProcess } from './support/server-process'

// The service as deployed (`bun src/index.ts`, production mode, real Redis),
// driven over real sockets: Bun's own layer changes Range, HEAD and sendfile.

const MiB = 1024 * 1024
/** Timers and requests of a loaded machine run late by up to this much. */
const MARGIN_MS = 250

interface Issued {
	token: string
	jti: string
	download_url: string
}

async function issue(base: string, user: string, file: string, query = ''): Promise<Issued> {
	const res = await fetch(`${base}/api/get-download-token/${user}/${encodeURIComponent(file)}${query}`)
	if (res.status !== 200) throw new Error(`issue: ${res.status} ${await res.text()}`)
	return (await res.json()) as Issued
}

/** Reads a response body, hashing as it goes, without keeping it in memory. */
async function hashBody(res: Response): Promise<{ hash: string; bytes: number }> {
	const hasher = new Bun.CryptoHasher('sha256')
	let bytes = 0
	for await (const chunk of res.body ?? new ReadableStream()) {
		hasher.update(chunk)
		bytes += chunk.byteLength
	}
	return { hash: hasher.digest('hex'), bytes }
}

/** A raw HTTP/1.1 request, so the path reaches the server exactly as written. */
function rawGet(base: string, path: string, headers: Record<string, string>): Promise<string> {
	const { hostname, port } = new URL(base)
	return new Promise((resolve, reject) => {
		const socket = connect(Number(port), hostname, () => {
			const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`)
			socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n${lines.join('')}\r\n`)
		})
		let data = ''
		socket.setEncoding('latin1')
		socket.on('data', (d: string) => {
			data += d
		})
		socket.on('end', () => resolve(data))
		socket.on('error', reject)
		socket.setTimeout(5000, () => {
			socket.destroy()
			resolve(data)
		})
	})
}

/**
 * The service in production mode with open issuance (as the original service),
 * a real Redis, and limits raised: these tests refuse on purpose (races,
 * escapes); the limits themselves are tested in rate-limit.test.ts.
 */
function deployedEnv(storage: string, extra: Record<string, string> = {}): Record<string, string> {
	return serviceEnv(storage, {
		NODE_ENV: 'production',
		ISSUE_AUTH: 'none',
		RATE_LIMIT_ISSUE: '100000/min',
		RATE_LIMIT_DENIED: '100000/min',
		LOG_LEVEL: 'warn',
		...extra,
	})
}

describe('the service as deployed', () => {
	let storage: string
	let server: ServerProcess
	let small: Uint8Array<ArrayBuffer>
	let medium: Uint8Array<ArrayBuffer>

	beforeAll(async () => {
		storage = await mkdtemp(join(tmpdir(), 'dlg-e2e-'))
		await mkdir(join(storage, '123'))
		await mkdir(join(storage, '124'))
		small = randomBytesOf(3 * MiB + 11)
		medium = randomBytesOf(48 * MiB + 5)
		await writeFile(join(storage, '123', 'myvideo.mp4'), small)
		await writeFile(join(storage, '123', 'medium.mp4'), medium)
		await writeFile(join(storage, '124', 'private.mp4'), 'user 124 only')
		server = await startServerProcess(
			deployedEnv(storage, {
				// Bytes written but unread when the client drops sit in socket buffers;
				// on loopback (tcp_rmem autotunes to 32 MiB) we measured 2-9 MiB, above
				// the 8 MiB default, so the allowance is sized for this link.
				RESUME_ALLOWANCE: '16MiB',
			}),
		)
	})
	afterAll(async () => {
		expect(await server.stop()).toBe(0) // graceful shutdown on SIGTERM
		await rm(storage, { recursive: true, force: true })
	})

	test("the original guide's curl commands work verbatim and save identical bytes", async () => {
		const cwd = await mkdtemp(join(tmpdir(), 'dlg-curl-'))
		const tokenCall = Bun.spawnSync(['curl', '-s', `${server.url}/api/get-download-token/123/myvideo.mp4?ttl=900`])
		expect(tokenCall.exitCode).toBe(0)
		const { token, expires_in, download_url } = JSON.parse(tokenCall.stdout.toString()) as Issued & {
			expires_in: number
		}
		expect(expires_in).toBe(900)
		expect(download_url).toBe(`${server.url}/api/download/123/myvideo.mp4`)
		const download = Bun.spawnSync(
			['curl', '-s', '-H', `Authorization: Bearer ${token}`, '-OJL', `${server.url}/api/download/123/myvideo.mp4`],
			{ cwd },
		)
		expect(download.exitCode).toBe(0)
		const saved = await Bun.file(join(cwd, 'myvideo.mp4')).bytes()
		expect(sha256(saved)).toBe(sha256(small))
		await rm(cwd, { recursive: true, force: true })
	})

	test('100 concurrent GETs on a max_uses=1 token: exactly one 200', async () => {
		const { token } = await issue(server.url, '123', 'myvideo.mp4', '?max_uses=1')
		const responses = await Promise.all(
			Array.from({ length: 100 }, () =>
				fetch(`${server.url}/api/download/123/myvideo.mp4`, { headers: { Authorization: `Bearer ${token}` } }),
			),
		)
		const statuses = responses.map((r) => r.status)
		expect(statuses.filter((s) => s === 200)).toHaveLength(1)
		expect(statuses.filter((s) => s === 401)).toHaveLength(99)
		const [served] = responses.filter((r) => r.status === 200)
		expect(sha256(await (served as Response).arrayBuffer())).toBe(sha256(small))
		const refusals = responses.filter((r) => r.status !== 200)
		const codes = await Promise.all(refusals.map(async (r) => ((await r.json()) as { error: string }).error))
		expect(new Set(codes)).toEqual(new Set(['token_used_up']))
	})

	test('a max_uses=1 download cut off halfway resumes with Range on the same token; a second whole one is refused', async () => {
		const { token } = await issue(server.url, '123', 'medium.mp4', '?max_uses=1')
		const auth = { Authorization: `Bearer ${token}` }
		const controller = new AbortController()
		const first = await fetch(`${server.url}/api/download/123/medium.mp4`, { headers: auth, signal: controller.signal })
		expect(first.status).toBe(200)
		const reader = (first.body as ReadableStream<Uint8Array>).getReader()
		const parts: Uint8Array[] = []
		let received = 0
		while (received < medium.length / 2) {
			const { value, done } = await reader.read()
			if (done || !value) break
			parts.push(value)
			received += value.byteLength
		}
		controller.abort() // the network drops
		await reader.cancel().catch(() => {})

		// The server learns of the drop asynchronously; a refused attempt costs nothing, so retry briefly.
		let rest: Response | undefined
		for (let attempt = 0; attempt < 30; attempt++) {
			rest = await fetch(`${server.url}/api/download/123/medium.mp4`, {
				headers: { ...auth, Range: `bytes=${received}-` },
			})
			if (rest.status !== 401) break
			await rest.arrayBuffer()
			await Bun.sleep(100)
		}
		if (!rest) throw new Error('no resume attempt was made')
		expect(rest.status).toBe(206)
		expect(rest.headers.get('content-range')).toBe(`bytes ${received}-${medium.length - 1}/${medium.length}`)
		const whole = new Uint8Array(medium.length)
		let offset = 0
		for (const part of [...parts, new Uint8Array(await rest.arrayBuffer())]) {
			whole.set(part, offset)
			offset += part.byteLength
		}
		expect(offset).toBe(medium.length)
		expect(sha256(whole)).toBe(sha256(medium))

		const again = await fetch(`${server.url}/api/download/123/medium.mp4`, { headers: auth })
		expect(again.status).toBe(401)
		expect(((await again.json()) as { error: string }).error).toBe('token_used_up')
	})

	test('four parallel ranges covering the file on a max_uses=1 token are all served', async () => {
		const { token } = await issue(server.url, '123', 'medium.mp4', '?max_uses=1')
		const quarter = Math.ceil(medium.length / 4)
		const ranges = [0, 1, 2, 3].map((i) => [i * quarter, Math.min(medium.length, (i + 1) * quarter) - 1] as const)
		const bodies = await Promise.all(
			ranges.map(async ([a, b]) => {
				const res = await fetch(`${server.url}/api/download/123/medium.mp4`, {
					headers: { Authorization: `Bearer ${token}`, Range: `bytes=${a}-${b}` },
				})
				expect(res.status).toBe(206)
				expect(res.headers.get('content-range')).toBe(`bytes ${a}-${b}/${medium.length}`)
				return new Uint8Array(await res.arrayBuffer())
			}),
		)
		const whole = new Uint8Array(medium.length)
		for (const [i, body] of bodies.entries()) whole.set(body, ranges[i]?.[0] ?? 0)
		expect(sha256(whole)).toBe(sha256(medium))
		const more = await fetch(`${server.url}/api/download/123/medium.mp4`, {
			headers: { Authorization: `Bearer ${token}`, Range: 'bytes=0-0' },
		})
		expect(more.status).toBe(401)
	})

	test('HEAD through Bun: Content-Length of the file, no body, nothing charged', async () => {
		const { token } = await issue(server.url, '123', 'myvideo.mp4', '?max_uses=1')
		for (let i = 0; i < 3; i++) {
			const res = await fetch(`${server.url}/api/download/123/myvideo.mp4`, {
				method: 'HEAD',
				headers: { Authorization: `Bearer ${token}` },
			})
			expect(res.status).toBe(200)
			expect(res.headers.get('content-length')).toBe(String(small.length))
		}
		const res = await fetch(`${server.url}/api/download/123/myvideo.mp4`, {
			headers: { Authorization: `Bearer ${token}` },
		})
		expect(res.status).toBe(200)
		expect(sha256(await res.arrayBuffer())).toBe(sha256(small))
	})

	test('Range through Bun: 206 exact, 416 with bytes */size, If-Range stale → 200 whole file', async () => {
		const { token } = await issue(server.url, '123', 'myvideo.mp4')
		const auth = { Authorization: `Bearer ${token}` }
		const url = `${server.url}/api/download/123/myvideo.mp4`
		const part = await fetch(url, { headers: { ...auth, Range: 'bytes=1000-1999' } })
		expect(part.status).toBe(206)
		expect(part.headers.get('content-length')).toBe('1000')
		expect(new Uint8Array(await part.arrayBuffer())).toEqual(small.slice(1000, 2000))
		const plain = await fetch(url, { headers: auth })
		expect(plain.headers.get('content-range')).toBeNull()
		expect(plain.headers.get('content-length')).toBe(String(small.length))
		await plain.arrayBuffer()
		const beyond = await fetch(url, { headers: { ...auth, Range: `bytes=${small.length}-` } })
		expect(beyond.status).toBe(416)
		expect(beyond.headers.get('content-range')).toBe(`bytes */${small.length}`)
		const stale = await fetch(url, { headers: { ...auth, Range: 'bytes=0-9', 'If-Range': '"stale"' } })
		expect(stale.status).toBe(200)
		expect(sha256(await stale.arrayBuffer())).toBe(sha256(small))
	})

	test.each([
		['/api/download/123/../124/private.mp4'],
		['/api/download/123/..%2F..%2F124%2Fprivate.mp4'],
		['/api/download/123/%2e%2e%2f124%2fprivate.mp4'],
		['/api/download/123/%2E%2E/124/private.mp4'],
		['/api/download/123/..%5C124%5Cprivate.mp4'],
		['/api/download/123/private.mp4%00'],
		['/api/download/..%2F124/private.mp4'],
		['/api/download/%2e%2e/124%2Fprivate.mp4'],
	])('raw path %s never serves another user’s file', async (path) => {
		const { token } = await issue(server.url, '123', 'myvideo.mp4')
		const reply = await rawGet(server.url, path, { Authorization: `Bearer ${token}` })
		const status = Number(reply.slice(9, 12))
		expect([400, 401, 403, 404]).toContain(status)
		expect(reply).not.toContain('user 124 only')
	})
})

describe('large files in constant memory', () => {
	let storage: string
	let server: ServerProcess
	let hash: string
	const size = 256 * MiB + 3

	beforeAll(async () => {
		storage = await mkdtemp(join(tmpdir(), 'dlg-big-'))
		await mkdir(join(storage, 'u1'))
		const data = randomBytesOf(size)
		hash = sha256(data)
		await writeFile(join(storage, 'u1', 'big.mp4'), data)
		server = await startServerProcess(deployedEnv(storage))
	})
	afterAll(async () => {
		await server.stop()
		await rm(storage, { recursive: true, force: true })
	})

	test.each([
		['unlimited token (sendfile)', ''],
		['max_uses token (counted stream)', '?max_uses=3'],
	])('a 256 MiB file, %s: hash equal, server RSS stays flat', async (_name, query) => {
		const { token } = await issue(server.url, 'u1', 'big.mp4', query)
		// A first download warms the JIT and the heap; the second is measured.
		await hashBody(
			await fetch(`${server.url}/api/download/u1/big.mp4`, { headers: { Authorization: `Bearer ${token}` } }),
		)
		const before = await server.rss()
		let peak = before
		const sampler = setInterval(async () => {
			peak = Math.max(peak, await server.rss().catch(() => 0))
		}, 20)
		const res = await fetch(`${server.url}/api/download/u1/big.mp4`, { headers: { Authorization: `Bearer ${token}` } })
		expect(res.status).toBe(200)
		const body = await hashBody(res)
		clearInterval(sampler)
		expect(body.bytes).toBe(size)
		expect(body.hash).toBe(hash)
		// Flat: chunks are garbage the GC reclaims, so growth stays far below the
		// file size (measured: 30-45 MiB for 128 and 512 MiB files alike).
		expect(peak - before).toBeLessThan(size / 4)
	})
})

describe('fail closed when Redis is down, recover when it returns', () => {
	let redis: RedisServer
	let dataDir: string
	let storage: string
	let server: ServerProcess

	beforeAll(async () => {
		dataDir = await mkdtemp(join(tmpdir(), 'dlg-redis-'))
		redis = await startRedisServer({ dataDir })
		storage = await mkdtemp(join(tmpdir(), 'dlg-fault-'))
		await mkdir(join(storage, '123'))
		await writeFile(join(storage, '123', 'myvideo.mp4'), 'video bytes')
		server = await startServerProcess(deployedEnv(storage, { REDIS_URL: redis.url, LOG_LEVEL: 'error' }))
	})
	afterAll(async () => {
		await server.stop()
		await redis.stop()
		await rm(storage, { recursive: true, force: true })
		await rm(dataDir, { recursive: true, force: true })
	})

	test('Redis stopped → 503 store_unavailable within the token cache’s bound, then every time; Redis back → the same token is served again', async () => {
		const { token } = await issue(server.url, '123', 'myvideo.mp4')
		const download = () =>
			fetch(`${server.url}/api/download/123/myvideo.mp4`, { headers: { Authorization: `Bearer ${token}` } })
		expect((await download()).status).toBe(200)

		const stopping = performance.now()
		await redis.stop()
		// The instance may answer from its token cache until it notices (CACHE_TRUST_AFTER_SILENCE_MS
		// at most): each answer meanwhile is the file or a 503, and the 503 comes within that bound.
		const answers: { atMs: number; status: number; body: string }[] = []
		const first = await pollUntil(
			async () => {
				const res = await download()
				const answer = { atMs: performance.now() - stopping, status: res.status, body: await res.text() }
				answers.push(answer)
				return answer
			},
			(a) => a.status !== 200,
			CACHE_TRUST_AFTER_SILENCE_MS + MARGIN_MS,
			10,
		)
		const served = answers.slice(0, -1)
		expect(served.map((a) => [a.status, a.body])).toEqual(served.map(() => [200, 'video bytes']))
		expect(first.status).toBe(503)
		expect((JSON.parse(first.body) as { error: string }).error).toBe('store_unavailable')
		expect(first.atMs).toBeLessThanOrEqual(CACHE_TRUST_AFTER_SILENCE_MS + MARGIN_MS)
		// From then on, every answer is a prompt 503.
		for (let i = 0; i < 3; i++) {
			const started = performance.now()
			const res = await download()
			expect(performance.now() - started).toBeLessThan(1500)
			expect(res.status).toBe(503)
			expect(((await res.json()) as { error: string }).error).toBe('store_unavailable')
		}
		const issuing = await fetch(`${server.url}/api/get-download-token/123/myvideo.mp4`)
		expect(issuing.status).toBe(503)
		expect(((await issuing.json()) as { error: string }).error).toBe('store_unavailable')
		expect((await fetch(`${server.url}/ready`)).status).toBe(503)

		await redis.start()
		const status = await pollUntil(
			async () => (await download()).status,
			(s) => s === 200,
			6000,
			100,
		)
		expect(status).toBe(200)
		expect(await (await download()).text()).toBe('video bytes')
		expect((await fetch(`${server.url}/ready`)).status).toBe(200)
	})
})
