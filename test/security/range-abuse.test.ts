import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { bearer, downloadPath, makeTestApp, type TestApp } from '../support/helpers'
import { patternBytes } from './churn'
import { expectError, firstResponse, rawGet, sendRaw } from './helpers'

// Range abuse (RFC 9110 §14): whatever the header, the answer is the whole
// file (200), one exact slice (206), or 416 — quickly, never a 5xx, never a
// byte outside the file — and HEAD, 304 and 416 cost a budget nothing.

const SIZE = 1000
const PATH = downloadPath('123', 'r.bin')

type Expected = { status: 200 } | { status: 206; start: number; end: number } | { status: 416 }

const full: Expected = { status: 200 }
const slice = (start: number, end: number): Expected => ({ status: 206, start, end })
const unsatisfiable: Expected = { status: 416 }

const manyRanges = (n: number, f: (i: number) => string) =>
	`bytes=${Array.from({ length: n }, (_, i) => f(i)).join(',')}`

// What RFC 9110 §14.1.2 makes of each header for a 1000-byte file, with this
// service's choice to answer any multi-range request with the whole file.
const CASES: [string, string, Expected][] = [
	['1,500 distinct ranges', manyRanges(1500, (i) => `${i % SIZE}-${i % SIZE}`), full],
	['bytes=0-0 repeated 2,000 times', manyRanges(2000, () => '0-0'), full],
	['two overlapping ranges', 'bytes=0-499,250-999', full],
	['a first-pos beyond 2^53', 'bytes=9007199254740993-', unsatisfiable],
	['a first-pos of 31 digits', `bytes=1${'0'.repeat(30)}-`, unsatisfiable],
	['a last-pos of 31 digits (clamped to the end)', `bytes=0-1${'0'.repeat(30)}`, slice(0, SIZE - 1)],
	['a last-pos beyond 2^53 (clamped to the end)', 'bytes=10-9007199254740993', slice(10, SIZE - 1)],
	['a suffix beyond 2^53 (the whole file)', 'bytes=-9007199254740993', slice(0, SIZE - 1)],
	['1e30 written as a float', 'bytes=0-1e30', full],
	['a negative first-pos', 'bytes=-5-10', full],
	['a double minus', 'bytes=--5', full],
	['bytes=-0 (an empty suffix)', 'bytes=-0', unsatisfiable],
	['reversed bounds', 'bytes=10-5', full],
	['a decimal point', 'bytes=1.5-10', full],
	['a hex number', 'bytes=0x10-0x20', full],
	['a plus sign', 'bytes=+5-10', full],
	['no range at all', 'bytes=', full],
	['only a minus', 'bytes=-', full],
	['another unit', 'items=0-5', full],
	['no equals sign', 'bytes 0-5', full],
	['an upper-case unit (units are case-insensitive)', 'BYTES=0-9', slice(0, 9)],
	['the last byte', `bytes=${SIZE - 1}-`, slice(SIZE - 1, SIZE - 1)],
	['first-pos equal to the size', `bytes=${SIZE}-`, unsatisfiable],
	['a first-pos of 12,000 zeros', `bytes=${'0'.repeat(12_000)}-9`, slice(0, 9)],
]

describe('range abuse on the download route', () => {
	let t: TestApp
	let file: Uint8Array<ArrayBuffer>
	let token: string
	let budgeted: string

	beforeAll(async () => {
		t = await makeTestApp({ env: { RATE_LIMIT_DENIED: '1000000/min' } })
		file = await t.putFile('123', 'r.bin', patternBytes(0, SIZE))
		token = (await t.issue('123', 'r.bin')).token
		budgeted = (await t.issue('123', 'r.bin', '?max_uses=1000000')).token
	})
	afterAll(() => t.close())

	test.each(CASES)('%s', async (_name, range, expected) => {
		for (const tok of [token, budgeted]) {
			const started = performance.now()
			const res = await t.request(PATH, { headers: { ...bearer(tok), Range: range } })
			const body = new Uint8Array(await res.arrayBuffer())
			const elapsed = performance.now() - started
			const seen =
				res.status === 206
					? { status: 206, start: Number(/bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1]) }
					: { status: res.status }
			const want = expected.status === 206 ? { status: 206, start: expected.start } : { status: expected.status }
			expect({ range: range.slice(0, 60), ...seen }).toEqual({ range: range.slice(0, 60), ...want })
			expect(elapsed).toBeLessThan(1000)
			const exact =
				expected.status === 206 ? file.slice(expected.start, expected.end + 1) : expected.status === 200 ? file : null
			expect(res.status === 416 ? null : body).toEqual(exact)
		}
	})

	test('416 carries Content-Range: bytes */size and a JSON body', async () => {
		const res = await t.request(PATH, { headers: { ...bearer(token), Range: 'bytes=-0' } })
		expect(res.headers.get('content-range')).toBe(`bytes */${SIZE}`)
		await expectError(res, 416, 'range_not_satisfiable')
	})

	test('whitespace: OWS around commas of a multi-range is still multi-range (whole file); a range of tabs and spaces is ignored', async () => {
		for (const [range, status] of [
			['bytes=0-1 , 5-6', 200],
			['bytes=\t0-1,\t5-6', 200],
			['bytes=  \t  ', 200],
		] as const) {
			const res = firstResponse(
				await sendRaw(t.baseUrl, rawGet(PATH, { Authorization: `Bearer ${token}`, Range: range })),
			)
			expect({ range, status: res.status, length: res.body.length }).toEqual({ range, status, length: SIZE })
		}
	})

	test('a whitespace bomb in Range (8,000 spaces and tabs) is answered within 1 s', async () => {
		const bomb = `bytes=${' \t'.repeat(4000)}x`
		const started = performance.now()
		const res = firstResponse(await sendRaw(t.baseUrl, rawGet(PATH, { Authorization: `Bearer ${token}`, Range: bomb })))
		expect(performance.now() - started).toBeLessThan(1000)
		expect(res.status).toBe(200)
	})

	test('If-Range garbage, a weak ETag or a date that does not match → the whole file, never a slice', async () => {
		for (const ifRange of ['garbage', 'W/"x"', '"', '""', 'Mon, 01 Jan 1990 00:00:00 GMT', '\x7f', '*']) {
			const res = firstResponse(
				await sendRaw(
					t.baseUrl,
					rawGet(PATH, { Authorization: `Bearer ${token}`, Range: 'bytes=0-9', 'If-Range': ifRange }),
				),
			)
			expect({ ifRange, status: res.status, length: res.body.length }).toEqual({ ifRange, status: 200, length: SIZE })
		}
	})

	test('416, 304 and HEAD cost nothing: a max_uses=1 token still downloads the whole file afterwards', async () => {
		const { token: once, jti } = await t.issue('123', 'r.bin', '?max_uses=1')
		const auth = bearer(once)
		const etag = (await t.request(PATH, { method: 'HEAD', headers: auth })).headers.get('etag') ?? ''
		for (let i = 0; i < 5; i++) {
			expect((await t.request(PATH, { headers: { ...auth, Range: 'bytes=-0' } })).status).toBe(416)
			expect((await t.request(PATH, { headers: { ...auth, Range: `bytes=${SIZE}-` } })).status).toBe(416)
			expect((await t.request(PATH, { headers: { ...auth, 'If-None-Match': etag } })).status).toBe(304)
			expect((await t.request(PATH, { method: 'HEAD', headers: { ...auth, Range: 'bytes=0-9' } })).status).toBe(200)
		}
		const listed = (await (await t.request('/api/users/123/tokens')).json()) as {
			tokens: { jti: string; bytes_left: number | null }[]
		}
		expect(listed.tokens.find((x) => x.jti === jti)?.bytes_left).toBe(SIZE)
		const res = await t.request(PATH, { headers: auth })
		expect(res.status).toBe(200)
		expect(new Uint8Array(await res.arrayBuffer())).toEqual(file)
	})

	test('a multi-range request on a max_uses=1 token is charged once for the whole file, not per range', async () => {
		const { token: once } = await t.issue('123', 'r.bin', '?max_uses=1')
		const res = await t.request(PATH, { headers: { ...bearer(once), Range: manyRanges(500, () => '0-0') } })
		expect(res.status).toBe(200)
		expect(new Uint8Array(await res.arrayBuffer())).toEqual(file)
		await expectError(await t.request(PATH, { headers: bearer(once) }), 401, 'token_used_up')
	})
})
