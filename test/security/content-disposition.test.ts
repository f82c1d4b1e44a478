import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import * as contentDisposition from 'content-disposition'
import { bearer, downloadPath, makeTestApp, type TestApp } from '../support/helpers'
import { expectRaw4xxJson, firstResponse, rawGet, sendRaw } from './helpers'

// docs/contract.md §3.2: Content-Disposition: attachment; filename="<ASCII fallback>";
// filename*=UTF-8''<percent-encoded>. A hostile name must not break out of
// the header (no CR/LF, ASCII only) and a standard parser must read back
// exactly the stored name. Names that cannot be a file (CR, LF, NUL, \, /)
// are refused where tokens are issued.

const HOSTILE_NAMES: [string, string][] = [
	['double quotes', 'say "hi".mp4'],
	['a quote and a semicolon that mimic a parameter', "x\"; filename*=UTF-8''evil.exe.mp4"],
	['percent signs', '100% of %41%42.mp4'],
	['a semicolon and an equals sign', 'a;b=c.mp4'],
	['an apostrophe (the filename* delimiter)', "it's.mp4"],
	['a comma and parentheses', 'a,b (1).mp4'],
	['U+2028 LINE SEPARATOR', 'line\u2028sep.mp4'],
	['U+2029 PARAGRAPH SEPARATOR', 'para\u2029sep.mp4'],
	['U+202E RIGHT-TO-LEFT OVERRIDE', 'invoice\u202Egpj.exe.mp4'],
	['zero-width joiners and spaces', 'a\u200Db\u200Bc\uFEFF.mp4'],
	['emoji with a ZWJ sequence', '👨‍👩‍👧 family 🎬.mp4'],
	['combining marks only', '\u0301\u0302.mp4'],
	['CJK', '日本語の動画.mp4'],
	['255 bytes of ASCII', `${'a'.repeat(251)}.mp4`],
	['254 bytes of two-byte characters', `${'é'.repeat(125)}.mp4`],
	['255 bytes of three-byte characters', `${'日'.repeat(83)}.mp4a`],
	['252 bytes of four-byte characters', `${'😀'.repeat(62)}.mp4`],
	['an asterisk and a backtick', 'a*b`c.mp4'],
	['angle brackets and an ampersand', '<script>&amp;.mp4'],
]

/** True when every character is printable ASCII (no CR, LF, NUL or other control, no byte above 0x7e). */
const printableAscii = (value: string) => /^[\x20-\x7e]*$/.test(value)

describe('hostile filenames in Content-Disposition', () => {
	let t: TestApp
	beforeAll(async () => {
		t = await makeTestApp({ env: { RATE_LIMIT_ISSUE: '1000000/min' } })
		for (const [, name] of HOSTILE_NAMES) await t.putFile('123', name, `bytes of ${name}`)
	})
	afterAll(() => t.close())

	test('every name is at most 255 UTF-8 bytes (the table is valid input)', () => {
		for (const [, name] of HOSTILE_NAMES) expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255)
	})

	test.each(HOSTILE_NAMES)('%s: ASCII-only header, no CR/LF, parsed back to exactly the name', async (_n, name) => {
		const { token } = await t.issue('123', name)
		// Raw bytes off the wire: nothing between the server and this check may repair the header.
		const res = firstResponse(
			await sendRaw(t.baseUrl, rawGet(downloadPath('123', name), { Authorization: `Bearer ${token}` })),
		)
		expect(res.status).toBe(200)
		expect(res.text()).toBe(`bytes of ${name}`)
		const headers = res.all('content-disposition')
		expect(headers).toHaveLength(1)
		const header = headers[0] ?? ''
		expect(printableAscii(header)).toBe(true)
		const parsed = contentDisposition.parse(header)
		expect(parsed.type).toBe('attachment')
		expect(parsed.parameters.filename).toBe(name)
		// Nothing else sneaked in as a parameter.
		expect(Object.keys(parsed.parameters).sort()).toEqual(['filename'])
	})

	test('the ASCII fallback never names an empty, hidden or path-like file', async () => {
		const bad: [string, string][] = []
		for (const [, name] of HOSTILE_NAMES) {
			const { token } = await t.issue('123', name)
			const res = await t.request(downloadPath('123', name), { method: 'HEAD', headers: bearer(token) })
			const fallback = contentDisposition.parse(res.headers.get('content-disposition') ?? '', { extended: false })
				.parameters.filename
			if (!fallback || fallback.startsWith('.') || /[/\\]/.test(fallback)) bad.push([name, String(fallback)])
		}
		expect(bad).toEqual([])
	})

	test('HEAD sends the same Content-Disposition as GET', async () => {
		const name = HOSTILE_NAMES[1]?.[1] ?? ''
		const { token } = await t.issue('123', name)
		const get = await t.request(downloadPath('123', name), { headers: bearer(token) })
		const head = await t.request(downloadPath('123', name), { method: 'HEAD', headers: bearer(token) })
		await get.arrayBuffer()
		expect(head.headers.get('content-disposition')).toBe(get.headers.get('content-disposition'))
	})

	test.each([
		['CR', 'a%0Db.mp4'],
		['LF', 'a%0Ab.mp4'],
		['CR LF with a header after it', 'a.mp4%0D%0ASet-Cookie:%20x=1'],
		['NUL', 'a%00b.mp4'],
		['a backslash', 'a%5Cb.mp4'],
		['a slash', 'a%2Fb.mp4'],
		['a TAB', 'a%09b.mp4'],
		['ESC', 'a%1Bb.mp4'],
		['a C1 control (U+0085)', 'a%C2%85b.mp4'],
	])('%s in a name → 400 invalid_request at the token route, no header injected', async (_n, raw) => {
		const ex = await sendRaw(t.baseUrl, rawGet(`/api/get-download-token/123/${raw}`))
		const res = firstResponse(ex)
		expect(expectRaw4xxJson(res, raw).error).toBe('invalid_request')
		expect(res.status).toBe(400)
		expect(res.header('set-cookie')).toBeNull()
	})
})
