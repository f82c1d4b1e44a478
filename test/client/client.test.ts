import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtemp, rm, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import {
	createClient,
	DownloadError,
	type DownloadGateClient,
	type DownloadProgress,
	downloadToFile,
	type FetchLike,
} from '../../src/client'
import { API_KEY, makeTestApp, randomBytesOf, sha256, type TestApp } from '../support/helpers'

const MiB = 1024 * 1024
const USER = '123'
const USER_SECRET = 'user-access-token-secret-0123456789abcdef'

/** One request the downloader made, as the injected fetch saw it. */
interface SeenRequest {
	readonly method: string
	readonly range: string | null
	readonly ifRange: string | null
	readonly authorization: string | null
}

/**
 * A fetch that records every request and, for the first GET only, lets
 * `cutAt` bytes through, then errors the body. `mode: 'abort'` aborts the real
 * request (the server sees a dropped connection and gives unsent bytes back);
 * `mode: 'drain'` reads the real body to its end behind the client's back (the
 * server sees a whole download, so a one-use budget is spent).
 */
function cuttingFetch(
	cutAt: number,
	mode: 'abort' | 'drain' = 'abort',
	beforeResume?: () => void | Promise<void>,
): { fetch: FetchLike; seen: SeenRequest[]; drained: () => Promise<void> } {
	const seen: SeenRequest[] = []
	let cut = false
	let resumeHooked = false
	let drain: Promise<void> = Promise.resolve()
	const fetchLike: FetchLike = async (input, init) => {
		const headers = new Headers(init?.headers)
		const method = init?.method ?? 'GET'
		seen.push({
			method,
			range: headers.get('range'),
			ifRange: headers.get('if-range'),
			authorization: headers.get('authorization'),
		})
		if (method !== 'GET') return fetch(input, init)
		if (cut) {
			if (!resumeHooked) {
				resumeHooked = true
				await beforeResume?.()
			}
			return fetch(input, init)
		}
		cut = true
		const controller = new AbortController()
		init?.signal?.addEventListener('abort', () => controller.abort(), { once: true })
		const real = await fetch(input, { ...init, signal: controller.signal })
		const source = real.body?.getReader()
		if (!source) throw new Error('no body to cut')
		let passed = 0
		const body = new ReadableStream<Uint8Array>({
			async pull(out) {
				if (passed >= cutAt) {
					if (mode === 'abort') controller.abort()
					else
						drain = (async () => {
							while (!(await source.read()).done) {}
						})()
					out.error(new TypeError('connection reset (injected by the test)'))
					return
				}
				const { done, value } = await source.read()
				if (done) return out.close()
				const room = cutAt - passed
				const chunk = value.byteLength > room ? value.subarray(0, room) : value
				passed += chunk.byteLength
				out.enqueue(chunk)
			},
			cancel() {
				controller.abort()
			},
		})
		return new Response(body, { status: real.status, headers: real.headers })
	}
	return { fetch: fetchLike, seen, drained: () => drain }
}

/** A fetch answering from a script first, then the real network. */
function scriptedFetch(script: Array<Response | Error>): {
	fetch: FetchLike
	calls: () => number
	seen: SeenRequest[]
} {
	const seen: SeenRequest[] = []
	return {
		calls: () => seen.length,
		seen,
		fetch: async (input, init) => {
			const headers = new Headers(init?.headers)
			seen.push({
				method: init?.method ?? 'GET',
				range: headers.get('range'),
				ifRange: headers.get('if-range'),
				authorization: headers.get('authorization'),
			})
			const next = script.shift()
			if (next instanceof Error) throw next
			return next ?? fetch(input, init)
		},
	}
}

const jsonError = (status: number, error: string, headers: Record<string, string> = {}) =>
	new Response(JSON.stringify({ error, message: `${error} (scripted)` }), {
		status,
		headers: { 'content-type': 'application/json', ...headers },
	})

async function fileHash(path: string): Promise<string> {
	return sha256(await Bun.file(path).bytes())
}

async function rejection(promise: Promise<unknown>): Promise<DownloadError> {
	try {
		await promise
	} catch (err) {
		if (err instanceof DownloadError) return err
		throw err
	}
	throw new Error('expected a DownloadError')
}

let app: TestApp
let client: DownloadGateClient
let dir: string
let video: Uint8Array<ArrayBuffer>
let videoHash: string
let n = 0
const dest = () => join(dir, `out-${++n}.mp4`)

beforeAll(async () => {
	app = await makeTestApp({
		env: {
			API_KEYS: API_KEY,
			AUTH_JWT_SECRET: USER_SECRET,
			RATE_LIMIT_ISSUE: '100000/min',
			RATE_LIMIT_DENIED: '100000/min',
		},
	})
	client = createClient(app.baseUrl, { apiKey: API_KEY })
	dir = await mkdtemp(join(tmpdir(), 'dlg-client-'))
	video = await app.putFile(USER, 'v.mp4', randomBytesOf(20 * MiB + 7))
	videoHash = sha256(video)
})

afterAll(async () => {
	await app.close()
	await rm(dir, { recursive: true, force: true })
})

/** A fresh token for `v.mp4` through the typed client (what an app's getFreshToken does). */
async function freshToken(query: { ttl?: number; max_uses?: number } = {}): Promise<string> {
	const { data, error } = await client.api['get-download-token']({ user_id: USER })({ filename: 'v.mp4' }).get({
		query,
	})
	if (error) throw new Error(`could not issue: ${error.status}`)
	return data.token
}

describe('createClient (Eden treaty)', () => {
	test('issues a token with typed data', async () => {
		const { data, error, status } = await client.api['get-download-token']({ user_id: USER })({
			filename: 'v.mp4',
		}).get({ query: { ttl: 60, max_uses: 2 } })
		expect(error).toBeNull()
		expect(status).toBe(200)
		if (!data) throw new Error('no data')
		expect(data.token.split('.')).toHaveLength(3)
		expect(data.expires_in).toBe(60)
		expect(data.max_uses).toBe(2)
		expect(data.download_url).toBe(`${app.baseUrl}/api/download/${USER}/v.mp4`)
		// parseDate is off, so the value is the string its type says.
		expect(typeof data.expires_at).toBe('string')
	})

	test('error answers surface the status and the { error, message } body', async () => {
		const missing = await client.api['get-download-token']({ user_id: USER })({ filename: 'nope.mp4' }).get()
		expect(missing.data).toBeNull()
		expect(missing.error?.status).toBe(404)
		expect(missing.error?.value).toEqual({ error: 'file_not_found', message: expect.any(String) })

		const badTtl = await client.api['get-download-token']({ user_id: USER })({ filename: 'v.mp4' }).get({
			query: { ttl: 0 }, // below the minimum: the typed query only takes numbers
		})
		expect(badTtl.error?.status).toBe(400)
		expect(badTtl.error?.value).toMatchObject({ error: 'invalid_request' })

		const anonymous = createClient(app.baseUrl)
		const refused = await anonymous.api['get-download-token']({ user_id: USER })({ filename: 'v.mp4' }).get()
		expect(refused.error?.status).toBe(401)
		expect(refused.error?.value).toMatchObject({ error: 'unauthorized' })
	})

	test('lists a user’s tokens and revokes one; the revoked token no longer downloads', async () => {
		const { data: issued } = await client.api['get-download-token']({ user_id: USER })({ filename: 'v.mp4' }).get({
			query: { max_uses: 1 },
		})
		if (!issued) throw new Error('no token')

		const listed = await client.api.users({ user_id: USER }).tokens.get()
		const mine = listed.data?.tokens.find((t) => t.jti === issued.jti)
		expect(mine).toMatchObject({ filename: 'v.mp4', max_uses: 1, bytes_left: video.byteLength })

		const revoked = await client.api.users({ user_id: USER }).tokens({ jti: issued.jti }).delete()
		expect(revoked.status).toBe(204)
		const after = await client.api.users({ user_id: USER }).tokens.get()
		expect(after.data?.tokens.some((t) => t.jti === issued.jti)).toBe(false)
		const unknown = await client.api.users({ user_id: USER }).tokens({ jti: 'no-such-jti' }).delete()
		expect(unknown.error?.status).toBe(404)
		expect(unknown.error?.value).toMatchObject({ error: 'not_found' })

		const err = await rejection(downloadToFile({ url: issued.download_url, token: issued.token, dest: dest() }))
		expect(err).toMatchObject({ status: 401, code: 'token_revoked' })
	})

	test('a user access token acts for its own user only', async () => {
		const now = Math.floor(app.clock.now() / 1000)
		const accessToken = await new SignJWT({ sub: USER })
			.setProtectedHeader({ alg: 'HS256' })
			.setIssuedAt(now)
			.setExpirationTime(now + 3600)
			.sign(new TextEncoder().encode(USER_SECRET))
		const asUser = createClient(app.baseUrl, { accessToken })
		const own = await asUser.api['get-download-token']({ user_id: USER })({ filename: 'v.mp4' }).get()
		expect(own.error).toBeNull()
		expect(own.data?.token).toBeString()
		const other = await asUser.api['get-download-token']({ user_id: '124' })({ filename: 'v.mp4' }).get()
		expect(other.error?.status).toBe(403)
		expect(other.error?.value).toMatchObject({ error: 'forbidden' })
	})

	test('filenames must be percent-encoded by the caller (Eden does not encode path params)', async () => {
		const name = 'clip #1 100% été.mp4'
		await app.putFile(USER, name, 'tiny')
		const { data, error } = await client.api['get-download-token']({ user_id: USER })({
			filename: encodeURIComponent(name),
		}).get()
		expect(error).toBeNull()
		if (!data) throw new Error('no token')
		const out = dest()
		await downloadToFile({ url: data.download_url, token: data.token, dest: out })
		expect(await Bun.file(out).text()).toBe('tiny')
	})
})

describe('downloadToFile', () => {
	test('a 20 MiB file lands byte for byte, with monotonic progress ending at its size', async () => {
		const { token, download_url } = await app.issue(USER, 'v.mp4')
		const progress: DownloadProgress[] = []
		const out = dest()
		const result = await downloadToFile({ url: download_url, token, dest: out, onProgress: (p) => progress.push(p) })
		expect(result).toMatchObject({ bytes: video.byteLength, resumed: 0, tokensUsed: 1 })
		expect(result.etag).toStartWith('"')
		expect(await fileHash(out)).toBe(videoHash)
		expect(progress.length).toBeGreaterThan(1)
		for (let i = 1; i < progress.length; i++)
			expect(progress[i]?.received ?? 0).toBeGreaterThanOrEqual(progress[i - 1]?.received ?? 0)
		expect(progress.every((p) => p.total === video.byteLength)).toBe(true) // Content-Length from the start
		expect(progress.at(-1)).toEqual({ received: video.byteLength, total: video.byteLength })
	})

	test('a one-use token (chunked body, no Content-Length) learns the size from a HEAD', async () => {
		const { token, download_url } = await app.issue(USER, 'v.mp4', '?max_uses=1')
		const progress: DownloadProgress[] = []
		const out = dest()
		const recorded = scriptedFetch([])
		const result = await downloadToFile({
			url: download_url,
			token,
			dest: out,
			fetch: recorded.fetch,
			onProgress: (p) => progress.push(p),
		})
		expect(recorded.seen.map((r) => r.method).sort()).toEqual(['GET', 'HEAD'])
		expect(result.bytes).toBe(video.byteLength)
		expect(await fileHash(out)).toBe(videoHash)
		expect(progress.at(-1)).toEqual({ received: video.byteLength, total: video.byteLength })
		// The whole use is spent: a second download is refused.
		const err = await rejection(downloadToFile({ url: download_url, token, dest: dest() }))
		expect(err).toMatchObject({ status: 401, code: 'token_used_up' })
	})

	test('a budgeted 20 MiB download given its size shows progress from the first byte, with no HEAD', async () => {
		const { token, download_url } = await app.issue(USER, 'v.mp4', '?max_uses=1')
		const seen: { method: string; contentLength: string | null }[] = []
		const recording: FetchLike = async (input, init) => {
			const res = await fetch(input, init)
			seen.push({ method: init?.method ?? 'GET', contentLength: res.headers.get('content-length') })
			return res
		}
		const progress: DownloadProgress[] = []
		const out = dest()
		const result = await downloadToFile({
			url: download_url,
			token,
			size: video.byteLength,
			dest: out,
			fetch: recording,
			onProgress: (p) => progress.push(p),
		})
		// One GET, answered chunked (no Content-Length): only the given size told the total.
		expect(seen).toEqual([{ method: 'GET', contentLength: null }])
		expect(result).toMatchObject({ bytes: video.byteLength, resumed: 0, tokensUsed: 1 })
		expect(await fileHash(out)).toBe(videoHash)
		expect(progress[0]).toEqual({ received: 0, total: video.byteLength })
		expect(progress.length).toBeGreaterThan(2)
		for (let i = 1; i < progress.length; i++)
			expect(progress[i]?.received ?? 0).toBeGreaterThan(progress[i - 1]?.received ?? 0)
		expect(progress.every((p) => p.total === video.byteLength)).toBe(true)
		expect(progress.at(-1)).toEqual({ received: video.byteLength, total: video.byteLength })
	})

	test('the issued token passed as is: its size spares the HEAD', async () => {
		const { data, error } = await client.api['get-download-token']({ user_id: USER })({ filename: 'v.mp4' }).get({
			query: { max_uses: 1 },
		})
		if (error) throw new Error(`could not issue: ${error.status}`)
		expect(data.size).toBe(video.byteLength)
		const recorded = scriptedFetch([])
		const progress: DownloadProgress[] = []
		const out = dest()
		const result = await downloadToFile({
			issued: data,
			dest: out,
			fetch: recorded.fetch,
			onProgress: (p) => progress.push(p),
		})
		expect(recorded.seen.map((r) => [r.method, r.authorization])).toEqual([['GET', `Bearer ${data.token}`]])
		expect(result.bytes).toBe(video.byteLength)
		expect(await fileHash(out)).toBe(videoHash)
		expect(progress.every((p) => p.total === video.byteLength)).toBe(true)
	})

	test('a connection cut halfway resumes with Range + If-Range on the same unlimited token', async () => {
		const { token, download_url } = await app.issue(USER, 'v.mp4')
		const cutter = cuttingFetch(Math.floor(video.byteLength / 2))
		const out = dest()
		const result = await downloadToFile({ url: download_url, token, dest: out, fetch: cutter.fetch })
		expect(await fileHash(out)).toBe(videoHash)
		expect(result.resumed).toBeGreaterThanOrEqual(1)
		expect(result.tokensUsed).toBe(1)
		const resume = cutter.seen.find((r) => r.range !== null)
		expect(resume?.range).toBe(`bytes=${Math.floor(video.byteLength / 2)}-`)
		expect(resume?.ifRange).toBe(result.etag)
		expect(resume?.authorization).toBe(`Bearer ${token}`)
	})

	test('a one-use token cut halfway resumes (on the same token, or a fresh one if the budget ran out)', async () => {
		const { token, download_url } = await app.issue(USER, 'v.mp4', '?max_uses=1')
		const cutter = cuttingFetch(Math.floor(video.byteLength / 2))
		let fresh = 0
		const out = dest()
		const result = await downloadToFile({
			url: download_url,
			token,
			dest: out,
			fetch: cutter.fetch,
			getFreshToken: () => {
				fresh += 1
				return freshToken({ max_uses: 1 })
			},
		})
		expect(await fileHash(out)).toBe(videoHash)
		expect(result.resumed).toBeGreaterThanOrEqual(1)
		expect(result.tokensUsed).toBe(1 + fresh)
		expect(cutter.seen.some((r) => r.range !== null)).toBe(true)
	})

	test('a resume refused as token_used_up continues with Range on a token from getFreshToken', async () => {
		const { token, download_url } = await app.issue(USER, 'v.mp4', '?max_uses=1')
		const half = Math.floor(video.byteLength / 2)
		// The server sends the whole file (the one use is spent), the client keeps half.
		const cutter = cuttingFetch(half, 'drain', async () => {
			await cutter.drained()
		})
		const freshTokens: string[] = []
		const out = dest()
		const result = await downloadToFile({
			url: download_url,
			token,
			dest: out,
			fetch: cutter.fetch,
			getFreshToken: async () => {
				const t = await freshToken({ max_uses: 1 })
				freshTokens.push(t)
				return t
			},
		})
		expect(freshTokens).toHaveLength(1)
		expect(result).toMatchObject({ bytes: video.byteLength, tokensUsed: 2, resumed: 1 })
		expect(await fileHash(out)).toBe(videoHash)
		const gets = cutter.seen.filter((r) => r.method === 'GET')
		expect(gets.map((r) => [r.range, r.authorization])).toEqual([
			[null, `Bearer ${token}`],
			[`bytes=${half}-`, `Bearer ${token}`], // refused: token_used_up
			[`bytes=${half}-`, `Bearer ${freshTokens[0]}`],
		])
	})

	test('without getFreshToken, a used-up resume throws DownloadError token_used_up', async () => {
		const { token, download_url } = await app.issue(USER, 'v.mp4', '?max_uses=1')
		const cutter = cuttingFetch(1 * MiB, 'drain', () => cutter.drained())
		const err = await rejection(downloadToFile({ url: download_url, token, dest: dest(), fetch: cutter.fetch }))
		expect(err).toBeInstanceOf(DownloadError)
		expect(err).toMatchObject({ status: 401, code: 'token_used_up' })
	})

	test('a resume refused as token_expired gets a fresh token too', async () => {
		const timed = await makeTestApp({ env: { API_KEYS: API_KEY } })
		try {
			const small = await timed.putFile(USER, 's.mp4', randomBytesOf(2 * MiB + 3))
			const { token, download_url } = await timed.issue(USER, 's.mp4', '?ttl=60')
			const cutter = cuttingFetch(MiB, 'abort', () => timed.clock.advance(120_000))
			let fresh = 0
			const out = dest()
			const result = await downloadToFile({
				url: download_url,
				token,
				dest: out,
				fetch: cutter.fetch,
				getFreshToken: async () => {
					fresh += 1
					return (await timed.issue(USER, 's.mp4', '?ttl=60')).token
				},
			})
			expect(fresh).toBe(1)
			expect(result).toMatchObject({ bytes: small.byteLength, tokensUsed: 2, resumed: 1 })
			expect(await fileHash(out)).toBe(sha256(small))
		} finally {
			await timed.close()
		}
	})

	test('a 200 to a resume (the file changed, If-Range failed) restarts from zero', async () => {
		// Without the open-file cache: it would serve the checked version for up to a second after the swap.
		const app = await makeTestApp({ env: { API_KEYS: API_KEY, OPEN_FILE_CACHE_VALID: '0' } })
		try {
			await app.putFile(USER, 'changing.mp4', randomBytesOf(4 * MiB))
			const replacement = randomBytesOf(3 * MiB + 1)
			const { token, download_url } = await app.issue(USER, 'changing.mp4')
			const cutter = cuttingFetch(2 * MiB, 'abort', async () => {
				await app.putFile(USER, 'changing.mp4', replacement)
			})
			const progress: DownloadProgress[] = []
			const out = dest()
			const result = await downloadToFile({
				url: download_url,
				token,
				dest: out,
				fetch: cutter.fetch,
				onProgress: (p) => progress.push(p),
			})
			expect(result).toMatchObject({ bytes: replacement.byteLength, resumed: 0 })
			expect(await fileHash(out)).toBe(sha256(replacement))
			expect(cutter.seen.some((r) => r.range === `bytes=${2 * MiB}-`)).toBe(true)
			// The restart is reported from zero (its 200 is streamed without Content-Length, so a HEAD tells the size).
			const restart = progress.findIndex((p, i) => i > 0 && p.received === 0)
			expect(restart).toBeGreaterThan(0)
			expect(progress[restart - 1]?.received).toBe(2 * MiB)
			expect(progress.at(-1)).toEqual({ received: replacement.byteLength, total: replacement.byteLength })
		} finally {
			await app.close()
		}
	})

	test('404 and 403 are thrown at once as DownloadError with the service’s code', async () => {
		await app.putFile(USER, 'gone.mp4', 'soon gone')
		const gone = await app.issue(USER, 'gone.mp4')
		await unlink(join(app.storageDir, USER, 'gone.mp4'))
		const counted = scriptedFetch([])
		const notFound = await rejection(
			downloadToFile({ url: gone.download_url, token: gone.token, dest: dest(), fetch: counted.fetch }),
		)
		expect(notFound).toMatchObject({ name: 'DownloadError', status: 404, code: 'file_not_found' })
		expect(notFound.message).toBeString()
		expect(counted.calls()).toBe(1) // not retried

		const forV = await app.issue(USER, 'v.mp4')
		const mismatch = await rejection(
			downloadToFile({ url: `${app.baseUrl}/api/download/${USER}/changing.mp4`, token: forV.token, dest: dest() }),
		)
		expect(mismatch).toMatchObject({ status: 403, code: 'token_mismatch' })

		const forged = await rejection(downloadToFile({ url: forV.download_url, token: 'a.b.c', dest: dest() }))
		expect(forged).toMatchObject({ status: 401, code: 'invalid_token' })
	})

	test('503, 429 and network errors are retried (Retry-After honoured); maxAttempts bounds them', async () => {
		await app.putFile(USER, 'small.mp4', 'small file')
		const { token, download_url } = await app.issue(USER, 'small.mp4')
		const flaky = scriptedFetch([
			jsonError(503, 'store_unavailable', { 'retry-after': '0' }),
			new TypeError('fetch failed'),
			jsonError(429, 'rate_limited', { 'retry-after': '0' }),
		])
		const out = dest()
		const result = await downloadToFile({ url: download_url, token, dest: out, fetch: flaky.fetch, retryDelayMs: 1 })
		expect(result.bytes).toBe(10)
		expect(await Bun.file(out).text()).toBe('small file')
		expect(flaky.calls()).toBe(4)

		const down = scriptedFetch(Array.from({ length: 10 }, () => jsonError(503, 'store_unavailable')))
		const err = await rejection(
			downloadToFile({ url: download_url, token, dest: dest(), fetch: down.fetch, maxAttempts: 3, retryDelayMs: 1 }),
		)
		expect(err).toMatchObject({ status: 503, code: 'store_unavailable' })
		expect(down.calls()).toBe(3)
	})

	test('a body that ends cleanly but short of its Content-Length is resumed', async () => {
		await app.putFile(USER, 'small.mp4', 'small file')
		const { token, download_url } = await app.issue(USER, 'small.mp4')
		const head = await fetch(download_url, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } })
		const etag = head.headers.get('etag') ?? ''
		const short = scriptedFetch([new Response('smal', { status: 200, headers: { 'content-length': '10', etag } })])
		const out = dest()
		const result = await downloadToFile({ url: download_url, token, dest: out, fetch: short.fetch })
		expect(result).toMatchObject({ bytes: 10, resumed: 1, etag })
		expect(await Bun.file(out).text()).toBe('small file')
		expect(short.seen[1]).toMatchObject({ range: 'bytes=4-', ifRange: etag })
	})

	test('a 206 that does not start where the download stands is an error', async () => {
		await app.putFile(USER, 'small.mp4', 'small file')
		const { token, download_url } = await app.issue(USER, 'small.mp4')
		const wrong = scriptedFetch([
			new Response('file', { status: 206, headers: { 'content-range': 'bytes 6-9/10', etag: '"x"' } }),
		])
		const err = await rejection(downloadToFile({ url: download_url, token, dest: dest(), fetch: wrong.fetch }))
		expect(err).toMatchObject({ status: 206, code: 'range_mismatch' })
	})

	test('an aborted signal stops the download with its reason', async () => {
		const { token, download_url } = await app.issue(USER, 'v.mp4')
		const controller = new AbortController()
		const reason = new Error('user cancelled')
		const promise = downloadToFile({
			url: download_url,
			token,
			dest: dest(),
			signal: controller.signal,
			onProgress: (p) => {
				if (p.received > MiB) controller.abort(reason)
			},
		})
		await expect(promise).rejects.toBe(reason)
	})
})
