import { describe, expect, test } from 'bun:test'
import { parseScrape } from '../modules/ops/prometheus'
import { tracked } from '../support/child-processes'
import { bearer, downloadPath, makeTestApp, REPO_ROOT, randomBytesOf, sha256, TEST_SECRET } from '../support/helpers'
import { pollUntil } from '../support/poll'
import { freePort } from '../support/redis-server'
import { bucketForFile, MiB, QUIET_LIMITS, recordReader } from './bucket-fixtures'

// The bucket at its worst, through the real service: an object replaced
// between the check (HEAD) and the read (GET), deleted or cut off mid-body,
// a bucket frozen (SIGSTOP) or killed, a client that leaves. docs/contract.md §6.

/** The bucket storage's timeout (src/storage/s3.ts: 5 s to the first byte, and between parts of a body). */
const STORAGE_TIMEOUT_MS = 5000
/** Scheduling on a shared machine: how late a timeout may fire and still count as prompt. */
const MARGIN_MS = 1500
/** Written bytes a broken body may give back, per token (small, so the rule shows). */
const ALLOWANCE = MiB

const USER = 'u1'

const { server, proxy, afterTests } = await bucketForFile()
const t = await makeTestApp({
	bucket: { ...server, endpoint: proxy.endpoint },
	// Each request checks the object afresh (one HEAD): the faults below land between that check and the read.
	env: { ...QUIET_LIMITS, RESUME_ALLOWANCE: String(ALLOWANCE), OPEN_FILE_CACHE_VALID: '0' },
})
const records = recordReader(t.config.redisKeyPrefix)
afterTests(
	() => t.close(),
	() => records.close(),
)

const download = (file: string, token: string, init: RequestInit = {}) =>
	t.request(downloadPath(USER, file), { ...init, headers: { ...bearer(token), ...init.headers } })
const errorOf = async (res: Response) => ((await res.json()) as { error: string }).error
const issue = (file: string, query = '') => t.issue(USER, file, query)
const settledBudget = (jti: string) => records.settledBudget(USER, jti, STORAGE_TIMEOUT_MS + MARGIN_MS)
/** The requests for one object since `from`, as `METHOD` strings. */
const requestsSince = (from: number, file: string) =>
	proxy.requests
		.slice(from)
		.filter((r) => r.path.endsWith(`/${USER}/${file}`))
		.map((r) => r.method)

/** The ETag s3rver (and S3, for a single-part upload) gives an object: its MD5, quoted. */
const md5Etag = (bytes: Uint8Array) => `"${new Bun.CryptoHasher('md5').update(bytes).digest('hex')}"`

/** Reads a body until it ends or fails: the bytes that came, and how it ended. */
async function readAll(
	res: Response,
	onChunk: (received: number) => void | Promise<void> = () => {},
): Promise<{ bytes: Buffer; error: string | null }> {
	const reader = (res.body as ReadableStream<Uint8Array>).getReader()
	const chunks: Uint8Array[] = []
	let received = 0
	try {
		for (;;) {
			const { value, done } = await reader.read()
			if (done) return { bytes: Buffer.concat(chunks), error: null }
			chunks.push(value)
			received += value.length
			await onChunk(received)
		}
	} catch (err) {
		return { bytes: Buffer.concat(chunks), error: err instanceof Error ? err.name : String(err) }
	}
}

describe('an object replaced between the check and the read', () => {
	const v1 = randomBytesOf(200 * 1024)
	const v2 = randomBytesOf(300 * 1024 + 1)
	const v3 = randomBytesOf(250 * 1024)

	/** Replaces the object with each of `versions` as the service's next GETs of it are about to go up. */
	function replaceOnGets(file: string, versions: Uint8Array[]) {
		const left = [...versions]
		proxy.onRequest = async (request) => {
			const next = left[0]
			if (request.method !== 'GET' || !request.path.endsWith(`/${USER}/${file}`) || next === undefined) return
			left.shift()
			await server.put(`${USER}/${file}`, next)
		}
	}

	test('once: checked again, and the new version is sent whole under its own headers; charged once', async () => {
		await t.putFile(USER, 'once.mp4', v1)
		const { token, jti } = await issue('once.mp4', '?max_uses=2')
		replaceOnGets('once.mp4', [v2])
		const from = proxy.requests.length
		try {
			const res = await download('once.mp4', token)
			expect(res.status).toBe(200)
			const etag = res.headers.get('etag')
			const body = await readAll(res)
			expect({ error: body.error, sha: sha256(body.bytes), length: body.bytes.length }).toEqual({
				error: null,
				sha: sha256(v2),
				length: v2.length,
			})
			expect(etag).toBe(md5Etag(v2))
		} finally {
			proxy.onRequest = null
		}
		expect(requestsSince(from, 'once.mp4')).toEqual(['HEAD', 'GET', 'HEAD', 'GET'])
		expect(await settledBudget(jti)).toMatchObject({ left: 2 * v1.length - v2.length, inFlight: 0 })
	})

	test('once by a version of the same length, on a short range: 206 of the new version under its own ETag', async () => {
		const same = randomBytesOf(v1.length)
		await t.putFile(USER, 'short.mp4', v1)
		const { token } = await issue('short.mp4')
		replaceOnGets('short.mp4', [same])
		try {
			const res = await download('short.mp4', token, { headers: { Range: 'bytes=1000-1999' } })
			expect(res.status).toBe(206)
			expect(res.headers.get('content-range')).toBe(`bytes 1000-1999/${same.length}`)
			expect(res.headers.get('etag')).toBe(md5Etag(same))
			expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(same.subarray(1000, 2000)))).toBe(true)
		} finally {
			proxy.onRequest = null
		}
	})

	test('twice: 503 storage_unavailable with Retry-After: 1 after two checks, never charged', async () => {
		await t.putFile(USER, 'twice.mp4', v1)
		const { token, jti } = await issue('twice.mp4', '?max_uses=2')
		replaceOnGets('twice.mp4', [v2, v3])
		const from = proxy.requests.length
		try {
			const res = await download('twice.mp4', token)
			expect(res.status).toBe(503)
			expect(res.headers.get('retry-after')).toBe('1')
			expect(await errorOf(res)).toBe('storage_unavailable')
		} finally {
			proxy.onRequest = null
		}
		expect(requestsSince(from, 'twice.mp4')).toEqual(['HEAD', 'GET', 'HEAD', 'GET'])
		expect(await settledBudget(jti)).toMatchObject({ left: 2 * v1.length, inFlight: 0 })
		// The third version is there now, and the same token gets it.
		const now = await download('twice.mp4', token)
		expect(sha256(await now.arrayBuffer())).toBe(sha256(v3))
	})

	test('deleted between the check and the read: 404 file_not_found, never charged', async () => {
		await t.putFile(USER, 'deleted.mp4', v1)
		const { token, jti } = await issue('deleted.mp4', '?max_uses=1')
		proxy.onRequest = async (request) => {
			if (request.method === 'GET' && request.path.endsWith(`/${USER}/deleted.mp4`))
				await server.remove(`${USER}/deleted.mp4`)
		}
		try {
			const res = await download('deleted.mp4', token)
			expect(res.status).toBe(404)
			expect(await errorOf(res)).toBe('file_not_found')
		} finally {
			proxy.onRequest = null
		}
		expect(await settledBudget(jti)).toMatchObject({ left: v1.length, inFlight: 0 })
	})
})

describe('an object deleted mid-download', () => {
	const big = randomBytesOf(16 * MiB)

	test('deleted and replaced while its body is read: the body is still the checked version, whole', async () => {
		await t.putFile(USER, 'mid.mp4', big)
		const { token } = await issue('mid.mp4', '?max_uses=1')
		const res = await download('mid.mp4', token)
		expect(res.status).toBe(200)
		let done = false
		const body = await readAll(res, async (received) => {
			if (done || received < MiB) return
			done = true
			await server.remove(`${USER}/mid.mp4`)
			await server.put(`${USER}/mid.mp4`, randomBytesOf(big.length))
		})
		expect(done).toBe(true)
		// s3rver goes on reading the version it opened, as S3 goes on sending the version a GET began.
		expect({ error: body.error, sha: sha256(body.bytes) }).toEqual({ error: null, sha: sha256(big) })
	})

	test('the bucket ends the body short: the client gets a prefix of the checked version and an error, never padding; written bytes come back within the allowance', async () => {
		await t.putFile(USER, 'cut.mp4', big)
		const { token, jti } = await issue('cut.mp4', '?max_uses=1')
		const res = await download('cut.mp4', token)
		expect(res.status).toBe(200)
		let cut = false
		const body = await readAll(res, async (received) => {
			if (cut || received < 2 * MiB) return
			cut = true
			await server.remove(`${USER}/cut.mp4`)
			// The object is gone and the bucket drops the connection it was sending it on.
			const get = proxy.requests.findLast((r) => r.method === 'GET' && r.path.endsWith(`/${USER}/cut.mp4`))
			proxy.connections[get?.connection ?? -1]?.cut()
		})
		expect(cut).toBe(true)
		expect(body.error).not.toBeNull()
		expect(body.bytes.length).toBeLessThan(big.length)
		expect(body.bytes.equals(Buffer.from(big.subarray(0, body.bytes.length)))).toBe(true)
		const budget = await settledBudget(jti)
		const [broken] = await records.events('download.broken', jti)
		const written = Number(broken?.bytes_written)
		expect(written).toBeGreaterThanOrEqual(body.bytes.length)
		expect(written).toBeLessThan(big.length)
		// docs/contract.md §3.2: unwritten bytes come back, and written ones up to the allowance, once.
		expect(budget).toEqual({
			left: big.length - written + Math.min(ALLOWANCE, written),
			allowance: ALLOWANCE - Math.min(ALLOWANCE, written),
			inFlight: 0,
		})
		expect(broken?.bytes_returned).toBe(big.length - written + Math.min(ALLOWANCE, written))
		const gone = await download('cut.mp4', token)
		expect(gone.status).toBe(404)
	})
})

describe('a client that leaves', () => {
	test('the GET to the bucket is cancelled: its connection closes at once, far short of the object', async () => {
		const large = randomBytesOf(64 * MiB)
		await t.putFile(USER, 'leave.mp4', large)
		const { token } = await issue('leave.mp4')
		const abort = new AbortController()
		const res = await download('leave.mp4', token, { signal: abort.signal })
		const reader = (res.body as ReadableStream<Uint8Array>).getReader()
		for (let received = 0; received < MiB; ) received += (await reader.read()).value?.length ?? MiB
		const get = proxy.requests.findLast((r) => r.method === 'GET' && r.path.endsWith(`/${USER}/leave.mp4`))
		const connection = proxy.connections[get?.connection ?? -1]
		const left = performance.now()
		abort.abort()
		const closed = await pollUntil(
			() => connection?.closed,
			(c) => c === true,
			2000,
			5,
		)
		// A cancelled read closes its connection in tens of milliseconds; one merely dropped
		// waits for the garbage collector to find its reader (100-650 ms seen, never while referenced).
		expect({ closed, atOnce: performance.now() - left < 250 }).toEqual({ closed: true, atOnce: true })
		expect(connection?.bytesDown ?? large.length).toBeLessThan(large.length / 2)
	}, 20_000)
})

describe('a bucket that stops answering', () => {
	const clip = randomBytesOf(300 * 1024)

	test('frozen (SIGSTOP): downloads and issuance 503 storage_unavailable within the timeout, /ready says storage; thawed, the same token works and nothing was charged', async () => {
		await t.putFile(USER, 'frozen.mp4', clip)
		const { token, jti } = await issue('frozen.mp4', '?max_uses=1')
		server.pause()
		let answers: { status: number; retryAfter: string | null; body: unknown; ms: number }[]
		try {
			const timed = async (request: Promise<Response>) => {
				const started = performance.now()
				const res = await request
				return {
					status: res.status,
					retryAfter: res.headers.get('retry-after'),
					body: await res.json(),
					ms: performance.now() - started,
				}
			}
			answers = await Promise.all([
				timed(download('frozen.mp4', token)),
				timed(t.request(`/api/get-download-token/${USER}/frozen.mp4`)),
				timed(t.request('/ready')),
			])
		} finally {
			server.resume()
		}
		expect(answers.map(({ status, retryAfter, body }) => ({ status, retryAfter, body }))).toEqual([
			{ status: 503, retryAfter: '1', body: { error: 'storage_unavailable', message: expect.any(String) } },
			{ status: 503, retryAfter: '1', body: { error: 'storage_unavailable', message: expect.any(String) } },
			{ status: 503, retryAfter: null, body: { status: 'unavailable', down: ['storage'] } },
		])
		for (const { ms } of answers) {
			expect(ms).toBeGreaterThanOrEqual(STORAGE_TIMEOUT_MS - 50)
			expect(ms).toBeLessThan(STORAGE_TIMEOUT_MS + MARGIN_MS)
		}
		expect(await records.budget(USER, jti)).toMatchObject({ left: clip.length, inFlight: 0 })
		const back = await download('frozen.mp4', token)
		expect(back.status).toBe(200)
		expect(sha256(await back.arrayBuffer())).toBe(sha256(clip))
		expect((await t.request('/ready')).status).toBe(200)
	}, 30_000)

	test('frozen mid-body: the body ends within the timeout instead of hanging, and what was not written comes back', async () => {
		const big = randomBytesOf(48 * MiB)
		await t.putFile(USER, 'frozen-mid.mp4', big)
		const { token, jti } = await issue('frozen-mid.mp4', '?max_uses=1')
		const res = await download('frozen-mid.mp4', token)
		expect(res.status).toBe(200)
		let pausedAt = 0
		let body: Awaited<ReturnType<typeof readAll>>
		try {
			body = await readAll(res, (received) => {
				if (pausedAt > 0 || received < MiB) return
				pausedAt = performance.now()
				server.pause()
			})
		} finally {
			server.resume()
		}
		// What was in flight when it froze is read at once; then the wait is the timeout.
		expect(body.error).not.toBeNull()
		expect(performance.now() - pausedAt).toBeLessThan(STORAGE_TIMEOUT_MS + MARGIN_MS)
		expect(body.bytes.equals(Buffer.from(big.subarray(0, body.bytes.length)))).toBe(true)
		const budget = await settledBudget(jti)
		const [broken] = await records.events('download.broken', jti)
		const written = Number(broken?.bytes_written)
		expect(budget.left).toBe(big.length - written + Math.min(ALLOWANCE, written))
		expect(written).toBeLessThan(big.length)
	}, 30_000)

	test('killed: 503 storage_unavailable at once, /ready says storage; restarted, the same token works', async () => {
		await t.putFile(USER, 'killed.mp4', clip)
		const { token, jti } = await issue('killed.mp4', '?max_uses=1')
		await server.kill()
		try {
			const started = performance.now()
			const res = await download('killed.mp4', token)
			expect({ status: res.status, error: await errorOf(res) }).toEqual({ status: 503, error: 'storage_unavailable' })
			expect(performance.now() - started).toBeLessThan(1000)
			const ready = await t.request('/ready')
			expect({ status: ready.status, body: await ready.json() }).toEqual({
				status: 503,
				body: { status: 'unavailable', down: ['storage'] },
			})
		} finally {
			await server.start()
		}
		expect(await records.budget(USER, jti)).toMatchObject({ left: clip.length, inFlight: 0 })
		const back = await download('killed.mp4', token)
		expect(back.status).toBe(200)
		expect(sha256(await back.arrayBuffer())).toBe(sha256(clip))
	}, 20_000)
})

describe('metrics', () => {
	test('download_gate_storage_request_duration_seconds counts each request by operation and outcome', async () => {
		const scrape = async () => {
			const parsed = parseScrape(await (await t.request('/metrics')).text())
			const counts: Record<string, number> = {}
			for (const operation of ['head', 'get', 'check'])
				for (const outcome of ['ok', 'not_found', 'changed', 'error'])
					counts[`${operation} ${outcome}`] = parsed.value('download_gate_storage_request_duration_seconds_count', {
						operation,
						outcome,
					})
			return counts
		}
		const clip = randomBytesOf(100_000)
		await t.putFile(USER, 'metered.mp4', clip)
		const { token } = await issue('metered.mp4')
		const before = await scrape()
		await (await download('metered.mp4', token)).arrayBuffer() // head ok, get ok
		await t.request(`/api/get-download-token/${USER}/absent.mp4`) // head not_found
		await t.request('/ready') // check ok
		proxy.onRequest = async (request) => {
			if (request.method === 'GET' && request.path.endsWith(`/${USER}/metered.mp4`)) {
				proxy.onRequest = null
				await server.put(`${USER}/metered.mp4`, randomBytesOf(100_000))
			}
		}
		await (await download('metered.mp4', token)).arrayBuffer() // head ok, get changed, head ok, get ok
		await server.kill()
		try {
			await download('metered.mp4', token) // head error
			await t.request('/ready') // check error
		} finally {
			await server.start()
		}
		const after = await scrape()
		const grown = Object.fromEntries(
			Object.entries(after)
				.map(([series, n]) => [series, n - (before[series] ?? 0)])
				.filter(([, n]) => n !== 0),
		)
		expect(grown).toEqual({
			'head ok': 3,
			'head not_found': 1,
			'head error': 1,
			'get ok': 2,
			'get changed': 1,
			'check ok': 1,
			'check error': 1,
		})
	})
})

describe('a bucket that cannot be used at start-up', () => {
	test.each([
		[
			'wrong credentials',
			{ S3_ACCESS_KEY_ID: 'NOT-A-KEY' },
			/^download-gate: cannot start: the file storage: the bucket endpoint http:\/\/127\.0\.0\.1:\d+ refused the credentials \(403 InvalidAccessKeyId: .+\)$/,
		],
		[
			'a missing bucket',
			{ S3_BUCKET: 'no-such-bucket' },
			/^download-gate: cannot start: the file storage: bucket "no-such-bucket" does not exist at http:\/\/127\.0\.0\.1:\d+ \(404 NoSuchBucket: .+\)$/,
		],
		[
			'nothing listening',
			{ S3_ENDPOINT: `http://127.0.0.1:${freePort()}` },
			/^download-gate: cannot start: the file storage: cannot reach the bucket endpoint http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)$/,
		],
	])(
		'%s: `bun src/index.ts` exits 1 with one line saying so',
		async (_, env, line) => {
			const child = tracked(
				Bun.spawn(['bun', 'src/index.ts'], {
					cwd: REPO_ROOT,
					env: {
						PATH: process.env.PATH ?? '',
						HOME: process.env.HOME ?? '/tmp',
						PORT: String(freePort()),
						HOST: '127.0.0.1',
						JWT_SECRET: TEST_SECRET,
						REDIS_URL: process.env.TEST_REDIS_URL ?? '',
						S3_BUCKET: server.bucket,
						S3_ENDPOINT: server.endpoint,
						S3_ACCESS_KEY_ID: server.accessKeyId,
						S3_SECRET_ACCESS_KEY: server.secretAccessKey,
						...env,
					},
					stdin: 'ignore',
					stdout: 'ignore',
					stderr: 'pipe',
					timeout: 15_000,
				}),
			)
			const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited])
			expect({ code, lines: stderr.trimEnd().split('\n') }).toEqual({ code: 1, lines: [expect.stringMatching(line)] })
		},
		20_000,
	)
})
