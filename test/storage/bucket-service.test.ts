import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { parse as parseDisposition } from 'content-disposition'
import { contentDisposition } from '../../src/http/content-disposition'
import { bearer, downloadPath, makeTestApp, randomBytesOf, sha256, type TestApp } from '../support/helpers'
import { pollUntil } from '../support/poll'
import { bucketForFile, MiB, objectHead, QUIET_LIMITS, recordReader } from './bucket-fixtures'

// docs/contract.md §3.2 and §6 through the real service with its files in a
// bucket (s3rver, behind a proxy that sees every request the service sends it).
// Everything a client sees from a directory holds from the bucket.

const USER = 'u1'
const CLIP = 'clip.mp4'
const UNICODE = 'Öffnung “Ü” 日本.mp4'

const clip = randomBytesOf(3 * MiB + 7)
const tiny = randomBytesOf(10_000)
const { server, proxy, afterTests } = await bucketForFile()
// Every request checks the object afresh (one HEAD each), so the counts below are exact; the
// remembered version (OPEN_FILE_CACHE_VALID) has its own test at the end.
const t = await makeTestApp({
	bucket: { ...server, endpoint: proxy.endpoint },
	env: { ...QUIET_LIMITS, OPEN_FILE_CACHE_VALID: '0' },
})
const records = recordReader(t.config.redisKeyPrefix)
afterTests(
	() => t.close(),
	() => records.close(),
)

const get = (file: string, token: string, headers: Record<string, string> = {}, method = 'GET') =>
	t.request(downloadPath(USER, file), { method, headers: { ...bearer(token), ...headers } })
const issue = async (file: string, query = '') => {
	const issued = await t.issue(USER, file, query)
	return { ...issued, size: (issued as unknown as { size: number }).size }
}
const errorOf = async (res: Response) => ((await res.json()) as { error: string }).error
const settledBudget = (userId: string, jti: string) => records.settledBudget(userId, jti)

beforeAll(async () => {
	await t.putFile(USER, CLIP, clip)
	await t.putFile(USER, UNICODE, tiny)
})

describe('issuance from a bucket', () => {
	test("size is the object's length from its metadata; the check is one HEAD, no GET", async () => {
		const before = proxy.requestsFor(`/${USER}/${CLIP}`)
		const issued = await issue(CLIP, '?max_uses=2')
		expect(issued.size).toBe(clip.length)
		expect(proxy.requestsFor(`/${USER}/${CLIP}`)).toEqual({ head: before.head + 1, get: before.get })
		expect(await records.budget(USER, issued.jti)).toMatchObject({ left: 2 * clip.length, inFlight: 0 })
	})

	test('a missing object is 404 file_not_found at issuance', async () => {
		const res = await t.request(`/api/get-download-token/${USER}/absent.mp4`)
		expect(res.status).toBe(404)
		expect(await errorOf(res)).toBe('file_not_found')
	})
})

describe('docs/contract.md §3.2 from a bucket', () => {
	test("200: the object's bytes, Content-Length, type, disposition, and the object's own ETag and Last-Modified", async () => {
		const { token } = await issue(UNICODE)
		const object = await objectHead(server, `${USER}/${UNICODE}`)
		const res = await get(UNICODE, token)
		expect(res.status).toBe(200)
		expect({
			'content-length': res.headers.get('content-length'),
			'content-type': res.headers.get('content-type'),
			'content-disposition': res.headers.get('content-disposition'),
			'accept-ranges': res.headers.get('accept-ranges'),
			etag: res.headers.get('etag'),
			'last-modified': res.headers.get('last-modified'),
			'cache-control': res.headers.get('cache-control'),
			'x-content-type-options': res.headers.get('x-content-type-options'),
		}).toEqual({
			'content-length': String(tiny.length),
			'content-type': 'video/mp4',
			'content-disposition': contentDisposition(UNICODE),
			'accept-ranges': 'bytes',
			etag: object.etag,
			'last-modified': object.lastModified,
			'cache-control': 'private, no-store',
			'x-content-type-options': 'nosniff',
		})
		expect(parseDisposition(res.headers.get('content-disposition') ?? '')).toEqual({
			type: 'attachment',
			parameters: { filename: UNICODE },
		})
		expect(sha256(await res.arrayBuffer())).toBe(sha256(tiny))
	})

	test('a single Range is 206 with Content-Range and exactly those bytes (first, middle, suffix, open-ended)', async () => {
		const { token } = await issue(CLIP)
		const size = clip.length
		for (const [range, first, last] of [
			['bytes=0-0', 0, 0],
			['bytes=1048570-2097160', 1048570, 2097160],
			['bytes=-500', size - 500, size - 1],
			[`bytes=${size - 3}-`, size - 3, size - 1],
		] as const) {
			const res = await get(CLIP, token, { Range: range })
			expect({ range, status: res.status, contentRange: res.headers.get('content-range') }).toEqual({
				range,
				status: 206,
				contentRange: `bytes ${first}-${last}/${size}`,
			})
			// Bodies of one read (64 KiB) carry Content-Length; longer ones are streamed, and Bun frames
			// every stream body chunked (oven-sh/bun#10507): Content-Range carries the length then.
			expect(res.headers.get('content-length')).toBe(last - first + 1 <= 65536 ? String(last - first + 1) : null)
			expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(clip.subarray(first, last + 1)))).toBe(true)
		}
	})

	test('an unsatisfiable range is 416 with bytes */size, and no GET reaches the bucket', async () => {
		const { token } = await issue(CLIP)
		const before = proxy.requestsFor(`/${USER}/${CLIP}`)
		const res = await get(CLIP, token, { Range: `bytes=${clip.length}-` })
		expect(res.status).toBe(416)
		expect(res.headers.get('content-range')).toBe(`bytes */${clip.length}`)
		expect(await errorOf(res)).toBe('range_not_satisfiable')
		expect(proxy.requestsFor(`/${USER}/${CLIP}`)).toEqual({ head: before.head + 1, get: before.get })
	})

	test("If-Range with the object's ETag is honoured (206); with another ETag or an old date the whole object is sent", async () => {
		const { token } = await issue(CLIP)
		const object = await objectHead(server, `${USER}/${CLIP}`)
		const same = await get(CLIP, token, { Range: 'bytes=10-19', 'If-Range': object.etag })
		expect(same.status).toBe(206)
		expect(Buffer.from(await same.arrayBuffer()).equals(Buffer.from(clip.subarray(10, 20)))).toBe(true)
		for (const stale of ['"another-version"', 'Thu, 01 Jan 1970 00:00:00 GMT']) {
			const res = await get(CLIP, token, { Range: 'bytes=10-19', 'If-Range': stale })
			expect({ stale, status: res.status, range: res.headers.get('content-range') }).toEqual({
				stale,
				status: 200,
				range: null,
			})
			expect(sha256(await res.arrayBuffer())).toBe(sha256(clip))
		}
	})

	test("If-None-Match with the object's ETag, and If-Modified-Since its Last-Modified: 304 with both, no GET to the bucket", async () => {
		const { token, jti } = await issue(CLIP, '?max_uses=1')
		const object = await objectHead(server, `${USER}/${CLIP}`)
		const before = proxy.requestsFor(`/${USER}/${CLIP}`)
		const conditionals: Record<string, string>[] = [
			{ 'If-None-Match': object.etag },
			{ 'If-Modified-Since': object.lastModified },
		]
		for (const conditional of conditionals) {
			const res = await get(CLIP, token, conditional)
			expect(res.status).toBe(304)
			expect(res.headers.get('etag')).toBe(object.etag)
			expect(res.headers.get('last-modified')).toBe(object.lastModified)
			expect(await res.text()).toBe('')
		}
		const changed = await get(CLIP, token, { 'If-None-Match': '"another-version"' })
		expect(changed.status).toBe(200)
		await changed.arrayBuffer()
		// Two 304s and the 200: three HEADs, one GET; the 304s cost nothing, the 200 the whole budget.
		expect(proxy.requestsFor(`/${USER}/${CLIP}`)).toEqual({ head: before.head + 3, get: before.get + 1 })
		expect(await settledBudget(USER, jti)).toMatchObject({ left: 0, inFlight: 0 })
	})

	test('HEAD answers the headers of a GET from one HEAD to the bucket, never a GET, and costs nothing', async () => {
		const { token, jti } = await issue(CLIP, '?max_uses=1')
		const object = await objectHead(server, `${USER}/${CLIP}`)
		const before = proxy.requestsFor(`/${USER}/${CLIP}`)
		// Range is defined for GET only (RFC 9110 §14.2): a HEAD with one describes the whole file.
		for (const range of [null, 'bytes=100-199']) {
			const res = await get(CLIP, token, range ? { Range: range } : {}, 'HEAD')
			expect({
				status: res.status,
				length: res.headers.get('content-length'),
				etag: res.headers.get('etag'),
				lastModified: res.headers.get('last-modified'),
				disposition: res.headers.get('content-disposition'),
			}).toEqual({
				status: 200,
				length: String(clip.length),
				etag: object.etag,
				lastModified: object.lastModified,
				disposition: contentDisposition(CLIP),
			})
			expect(await res.text()).toBe('')
		}
		expect(proxy.requestsFor(`/${USER}/${CLIP}`)).toEqual({ head: before.head + 2, get: before.get })
		expect(await records.budget(USER, jti)).toMatchObject({ left: clip.length, inFlight: 0 })
	})

	test('the GET to the bucket asks for the range with If-Match on the checked ETag', async () => {
		const { token } = await issue(CLIP)
		const object = await objectHead(server, `${USER}/${CLIP}`)
		const from = proxy.requests.length
		const res = await get(CLIP, token, { Range: 'bytes=5-9' })
		await res.arrayBuffer()
		expect(
			proxy.requests
				.slice(from)
				.filter((r) => r.path.endsWith(`/${USER}/${CLIP}`))
				.map(({ method, range, ifMatch }) => ({ method, range, ifMatch })),
		).toEqual([
			{ method: 'HEAD', range: null, ifMatch: null },
			{ method: 'GET', range: 'bytes=5-9', ifMatch: object.etag },
		])
	})

	test('a token whose object is gone is 404 file_not_found, and costs nothing', async () => {
		await t.putFile(USER, 'going.mp4', tiny)
		const { token, jti } = await issue('going.mp4', '?max_uses=1')
		await server.remove(`${USER}/going.mp4`)
		const res = await get('going.mp4', token)
		expect(res.status).toBe(404)
		expect(await errorOf(res)).toBe('file_not_found')
		expect(await records.budget(USER, jti)).toMatchObject({ left: tiny.length, inFlight: 0 })
	})
})

describe('budgets from a bucket', () => {
	test('max_uses=1: one whole download, then token_used_up; 416, 304 and HEAD were free', async () => {
		const { token, jti } = await issue(CLIP, '?max_uses=1')
		const object = await objectHead(server, `${USER}/${CLIP}`)
		expect((await get(CLIP, token, { Range: `bytes=${clip.length + 5}-` })).status).toBe(416)
		expect((await get(CLIP, token, { 'If-None-Match': object.etag })).status).toBe(304)
		expect((await get(CLIP, token, {}, 'HEAD')).status).toBe(200)
		const first = await get(CLIP, token)
		expect(first.status).toBe(200)
		expect(sha256(await first.arrayBuffer())).toBe(sha256(clip))
		const again = await get(CLIP, token)
		expect(again.status).toBe(401)
		expect(await errorOf(again)).toBe('token_used_up')
		expect(await settledBudget(USER, jti)).toMatchObject({ left: 0, inFlight: 0 })
	})

	test('four parallel ranges covering the object on max_uses=1 are all served, and nothing more', async () => {
		const { token } = await issue(CLIP, '?max_uses=1')
		const quarter = Math.ceil(clip.length / 4)
		const parts = await Promise.all(
			[0, 1, 2, 3].map(async (i) => {
				const [a, b] = [i * quarter, Math.min(clip.length, (i + 1) * quarter) - 1]
				const res = await get(CLIP, token, { Range: `bytes=${a}-${b}` })
				expect(res.status).toBe(206)
				return Buffer.from(await res.arrayBuffer())
			}),
		)
		expect(sha256(Buffer.concat(parts))).toBe(sha256(clip))
		expect((await get(CLIP, token, { Range: 'bytes=0-0' })).status).toBe(401)
	})

	test('a download cut halfway gives back what was not written (and the allowance), and resumes with Range', async () => {
		const { token, jti } = await issue(CLIP, '?max_uses=1')
		const abort = new AbortController()
		const res = await t.request(downloadPath(USER, CLIP), { headers: bearer(token), signal: abort.signal })
		expect(res.status).toBe(200)
		const reader = (res.body as ReadableStream<Uint8Array>).getReader()
		const parts: Uint8Array[] = []
		let received = 0
		while (received < MiB) {
			const { value, done } = await reader.read()
			if (done || !value) break
			parts.push(value)
			received += value.byteLength
		}
		abort.abort()
		await reader.cancel().catch(() => {})
		// The allowance (min(size, 8 MiB) = the size here) covers every written byte: the budget comes back whole.
		const settled = await pollUntil(
			() => records.budget(USER, jti),
			(b) => b.inFlight === 0 && b.left === clip.length,
			5000,
		)
		expect(settled.left).toBe(clip.length)
		const rest = await get(CLIP, token, { Range: `bytes=${received}-` })
		expect(rest.status).toBe(206)
		expect(rest.headers.get('content-range')).toBe(`bytes ${received}-${clip.length - 1}/${clip.length}`)
		const whole = Buffer.concat([...parts, Buffer.from(await rest.arrayBuffer())])
		expect(sha256(whole)).toBe(sha256(clip))
	})
})

describe('S3_REDIRECT=unlimited', () => {
	let redirecting: TestApp

	beforeAll(async () => {
		redirecting = await makeTestApp({
			bucket: server,
			env: { ...QUIET_LIMITS, S3_REDIRECT: 'unlimited', S3_REDIRECT_TTL: '120' },
		})
	})
	afterAll(() => redirecting.close())

	test('an unlimited token: 302 to a presigned URL that serves the bytes with the disposition and type of the file', async () => {
		const { token } = await redirecting.issue(USER, UNICODE)
		const res = await redirecting.request(downloadPath(USER, UNICODE), { headers: bearer(token), redirect: 'manual' })
		expect(res.status).toBe(302)
		expect(res.headers.get('cache-control')).toBe('private, no-store')
		const location = new URL(res.headers.get('location') ?? '')
		expect(location.origin).toBe(server.endpoint)
		expect(location.searchParams.get('X-Amz-Expires')).toBe('120')
		expect(await res.text()).toBe('')
		const followed = await fetch(location)
		expect(followed.status).toBe(200)
		expect(followed.headers.get('content-type')).toBe('video/mp4')
		expect(followed.headers.get('content-disposition')).toBe(contentDisposition(UNICODE))
		expect(sha256(await followed.arrayBuffer())).toBe(sha256(tiny))
	})

	test('following the redirect as a client does (curl -L, fetch) yields the file', async () => {
		const { token } = await redirecting.issue(USER, CLIP)
		const res = await redirecting.request(downloadPath(USER, CLIP), { headers: bearer(token) })
		expect(res.status).toBe(200)
		expect(res.redirected).toBe(true)
		expect(sha256(await res.arrayBuffer())).toBe(sha256(clip))
	})

	test('a budgeted token is proxied: 200 and 206 from the service, its bytes counted', async () => {
		const { token, jti } = await redirecting.issue(USER, CLIP, '?max_uses=1')
		const budgeted = recordReader(redirecting.config.redisKeyPrefix)
		try {
			const part = await redirecting.request(downloadPath(USER, CLIP), {
				headers: { ...bearer(token), Range: 'bytes=0-99' },
				redirect: 'manual',
			})
			expect(part.status).toBe(206)
			expect(Buffer.from(await part.arrayBuffer()).equals(Buffer.from(clip.subarray(0, 100)))).toBe(true)
			const whole = await redirecting.request(downloadPath(USER, CLIP), {
				headers: { ...bearer(token), Range: 'bytes=100-' },
				redirect: 'manual',
			})
			expect(whole.status).toBe(206)
			expect(whole.headers.get('location')).toBeNull()
			await whole.arrayBuffer()
			const settled = await pollUntil(
				() => budgeted.budget(USER, jti),
				(b) => b.inFlight === 0,
				5000,
			)
			expect(settled).toMatchObject({ left: 0, inFlight: 0 })
			const full = await redirecting.request(downloadPath(USER, CLIP), {
				headers: bearer((await redirecting.issue(USER, CLIP, '?max_uses=1')).token),
				redirect: 'manual',
			})
			expect(full.status).toBe(200)
			expect(sha256(await full.arrayBuffer())).toBe(sha256(clip))
		} finally {
			await budgeted.close()
		}
	})

	test('HEAD of an unlimited token is answered by the service itself', async () => {
		const { token } = await redirecting.issue(USER, CLIP)
		const res = await redirecting.request(downloadPath(USER, CLIP), {
			method: 'HEAD',
			headers: bearer(token),
			redirect: 'manual',
		})
		expect(res.status).toBe(200)
		expect(res.headers.get('content-length')).toBe(String(clip.length))
	})
})

describe('the remembered version (OPEN_FILE_CACHE_VALID, default 1 s)', () => {
	let remembering: TestApp

	beforeAll(async () => {
		remembering = await makeTestApp({ bucket: { ...server, endpoint: proxy.endpoint }, env: { ...QUIET_LIMITS } })
	})
	afterAll(() => remembering.close())

	test('downloads of one object within the window cost one HEAD; a version replaced meanwhile is refused by its ETag and checked afresh', async () => {
		const name = 'remembered.mp4'
		const first = randomBytesOf(96 * 1024)
		const second = randomBytesOf(80 * 1024)
		await remembering.putFile(USER, name, first)
		const { token } = await remembering.issue(USER, name)
		const before = proxy.requestsFor(`/${USER}/${name}`)
		for (let i = 0; i < 3; i++) {
			const res = await remembering.request(downloadPath(USER, name), { headers: bearer(token) })
			expect(res.status).toBe(200)
			expect(sha256(await res.arrayBuffer())).toBe(sha256(first))
		}
		// Issuance checked it (one HEAD) and remembered it: the three downloads only GET.
		expect(proxy.requestsFor(`/${USER}/${name}`)).toEqual({ head: before.head, get: before.get + 3 })
		await remembering.putFile(USER, name, second)
		const after = await remembering.request(downloadPath(USER, name), { headers: bearer(token) })
		expect(after.status).toBe(200)
		expect(after.headers.get('etag')).not.toBe(null)
		expect(sha256(await after.arrayBuffer())).toBe(sha256(second))
		// The remembered ETag's GET found another version: forgotten, checked again (HEAD), read again.
		expect(proxy.requestsFor(`/${USER}/${name}`)).toEqual({ head: before.head + 1, get: before.get + 5 })
	})
})
