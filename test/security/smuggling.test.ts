import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { makeTestApp, type TestApp } from '../support/helpers'
import { expectClientError, sendRaw } from './helpers'

// Request smuggling: a second request hidden inside the body of the first,
// under framings two HTTP parsers may read differently (a proxy in front and
// Bun behind). Whatever Bun makes of them, the hidden request must never be
// answered with the file: a 4xx for the outer request, or a closed connection.

const SECRET_FILE = 'SMUGGLED-FILE-BYTES'

describe('request smuggling framings never get a hidden download answered', () => {
	let t: TestApp
	let hidden: string

	beforeAll(async () => {
		t = await makeTestApp({ store: 'memory', env: { RATE_LIMIT_DENIED: '1000000/min' } })
		await t.putFile('123', 'a.mp4', SECRET_FILE)
		const { token } = await t.issue('123', 'a.mp4')
		hidden = `GET /api/download/123/a.mp4 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`
	})
	afterAll(() => t.close())

	const outer = (headers: string[], body: string) =>
		`POST /api/tokens/revoke HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${body}`

	/** `hidden` as one chunk whose size line is `sizeLine` (the size itself written in some hostile way). */
	const chunkedHidden = (sizeLine: (hex: string) => string) =>
		`${sizeLine(hidden.length.toString(16))}\r\n${hidden}\r\n0\r\n\r\n`

	const framings: [string, () => string][] = [
		[
			'Content-Length and Transfer-Encoding: chunked (CL.TE)',
			() => outer([`Content-Length: ${5 + hidden.length}`, 'Transfer-Encoding: chunked'], `0\r\n\r\n${hidden}`),
		],
		[
			'Transfer-Encoding: chunked and a short Content-Length (TE.CL)',
			() =>
				outer(
					['Transfer-Encoding: chunked', 'Content-Length: 4'],
					chunkedHidden((h) => h),
				),
		],
		[
			'two Content-Length headers that disagree',
			() => outer(['Content-Length: 2', `Content-Length: ${2 + hidden.length}`], `{}${hidden}`),
		],
		[
			'two identical Content-Length headers',
			() => outer([`Content-Length: ${2 + hidden.length}`, `Content-Length: ${2 + hidden.length}`], `{}${hidden}`),
		],
		['a Content-Length list "2, N"', () => outer([`Content-Length: 2, ${2 + hidden.length}`], `{}${hidden}`)],
		...[' chunked', 'xchunked', 'chunked, identity', 'identity, chunked', 'chunked\t', '"chunked"', 'chunk'].map(
			(te): [string, () => string] => [
				`Transfer-Encoding: ${JSON.stringify(te)} with a Content-Length covering the hidden request`,
				() => outer([`Transfer-Encoding: ${te}`, `Content-Length: ${5 + hidden.length}`], `0\r\n\r\n${hidden}`),
			],
		),
		[
			'Transfer-Encoding twice (chunked, then identity) with a Content-Length',
			() =>
				outer(
					['Transfer-Encoding: chunked', 'Transfer-Encoding: identity', `Content-Length: ${5 + hidden.length}`],
					`0\r\n\r\n${hidden}`,
				),
		],
		[
			'Transfer-Encoding folded onto a continuation line',
			() => outer(['Transfer-Encoding:', ' chunked', `Content-Length: ${5 + hidden.length}`], `0\r\n\r\n${hidden}`),
		],
		[
			'a tab before the colon of Transfer-Encoding',
			() => outer(['Transfer-Encoding\t: chunked', `Content-Length: ${5 + hidden.length}`], `0\r\n\r\n${hidden}`),
		],
		[
			'Transfer-Encoding in an HTTP/1.0 request',
			() => outer(['Transfer-Encoding: chunked'], `0\r\n\r\n${hidden}`).replace('HTTP/1.1', 'HTTP/1.0'),
		],
		[
			'a negative chunk size',
			() =>
				outer(
					['Transfer-Encoding: chunked'],
					chunkedHidden((h) => `-${h}`),
				),
		],
		[
			'a 0x-prefixed chunk size',
			() =>
				outer(
					['Transfer-Encoding: chunked'],
					chunkedHidden((h) => `0x${h}`),
				),
		],
		[
			'a + sign on the chunk size',
			() =>
				outer(
					['Transfer-Encoding: chunked'],
					chunkedHidden((h) => `+${h}`),
				),
		],
		[
			'a chunk size that overflows 64 bits',
			() =>
				outer(
					['Transfer-Encoding: chunked'],
					chunkedHidden((h) => `1${'0'.repeat(16)}${h}`),
				),
		],
		[
			'a chunk size with a leading space',
			() =>
				outer(
					['Transfer-Encoding: chunked'],
					chunkedHidden((h) => ` ${h}`),
				),
		],
		[
			'a chunk size with trailing spaces',
			() =>
				outer(
					['Transfer-Encoding: chunked'],
					chunkedHidden((h) => `${h}  `),
				),
		],
		[
			'a chunk size that is not hex',
			() =>
				outer(
					['Transfer-Encoding: chunked'],
					chunkedHidden(() => 'zz'),
				),
		],
		[
			'a chunk size ended by a bare LF',
			() =>
				outer(
					['Transfer-Encoding: chunked'],
					chunkedHidden((h) => `${h}\n`),
				),
		],
		[
			'a chunk extension with a bare CR',
			() =>
				outer(
					['Transfer-Encoding: chunked'],
					chunkedHidden((h) => `${h};x=\ry`),
				),
		],
		[
			'a chunk extension (legal), hidden request as chunk data',
			() =>
				outer(
					['Transfer-Encoding: chunked'],
					chunkedHidden((h) => `${h};name=value`),
				),
		],
		[
			'a chunk size 40 bytes short of its data',
			() => outer(['Transfer-Encoding: chunked'], `${(hidden.length - 40).toString(16)}\r\n${hidden}\r\n0\r\n\r\n`),
		],
		['a chunked body with no terminating chunk', () => outer(['Transfer-Encoding: chunked'], `2\r\n{}\r\n${hidden}`)],
		['a Content-Length with a sign', () => outer([`Content-Length: +${2 + hidden.length}`], `{}${hidden}`)],
		['a Content-Length in hex', () => outer([`Content-Length: 0x${(2 + hidden.length).toString(16)}`], `{}${hidden}`)],
		[
			'a Content-Length with a leading zero run',
			() => outer([`Content-Length: 000${2 + hidden.length}`], `{}${hidden}`),
		],
		['a Content-Length past 2^64', () => outer(['Content-Length: 18446744073709551618'], `{}${hidden}`)],
		[
			'Expect: 100-continue with the hidden request as body',
			() => outer(['Expect: 100-continue', `Content-Length: ${hidden.length}`], hidden),
		],
	]

	test.each(framings)('%s', async (_name, build) => {
		const ex = await sendRaw(t.baseUrl, build(), { expect: 1, quietMs: 250 })
		// The hidden request is never answered with the file …
		expect(ex.raw).not.toContain(SECRET_FILE)
		expect(ex.responses.filter((r) => r.status === 200 && r.text().includes(SECRET_FILE))).toEqual([])
		// … and the outer request gets at most one answer, a 4xx (or the connection just closes).
		const finals = ex.responses.filter((r) => r.status !== 100)
		expect(finals.length).toBeLessThanOrEqual(1)
		for (const res of finals) expectClientError(res.status, ex.raw.slice(0, 200))
		expect(ex.closed || finals.length === 1).toBe(true)
	})

	test('a GET with a Content-Length body: the body is consumed, never run as a request', async () => {
		const ex = await sendRaw(
			t.baseUrl,
			`GET /health HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`,
			{ expect: 1, quietMs: 250 },
		)
		expect(ex.raw).not.toContain(SECRET_FILE)
		expect(ex.responses.map((r) => r.status)).toEqual([200])
	})

	test('a HEAD with a Content-Length body: the body is consumed, never run as a request', async () => {
		const ex = await sendRaw(
			t.baseUrl,
			`HEAD /api/download/123/a.mp4 HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`,
			{ expect: 1, quietMs: 250, headIndexes: [0] },
		)
		expect(ex.raw).not.toContain(SECRET_FILE)
		expect(ex.responses).toHaveLength(1)
	})

	test('the baseline: the same request pipelined openly is answered (the checks above are not vacuous)', async () => {
		const ex = await sendRaw(t.baseUrl, `GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n${hidden}`, { expect: 2 })
		expect(ex.raw).toContain(SECRET_FILE)
	})
})
