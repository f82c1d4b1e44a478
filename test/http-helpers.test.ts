import { describe, expect, test } from 'bun:test'
import { type ConditionalRequest, parseRange, type Representation, selectRepresentation } from '../src/http/conditional'
import { asciiFallback, contentDisposition } from '../src/http/content-disposition'
import { httpDateNow } from '../src/http/date'
import { contentTypeFor } from '../src/http/mime'
import { filenameProblem, userIdProblem } from '../src/storage/names'

// Proves the pure HTTP helpers behind downloads (SPEC §3.1, §3.2): range and
// conditional-request selection, Content-Disposition, Content-Type by
// extension, and the user_id / filename rules.

// ---- conditional requests ---------------------------------------------------

// 2024-01-15T10:30:00.250Z: a fractional second, as real file systems report.
const MTIME_S = Date.UTC(2024, 0, 15, 10, 30, 0) / 1000
const FILE: Representation = { size: 1000, etag: '"abc-123"', mtimeMs: MTIME_S * 1000 + 250 }

function req(overrides: Partial<ConditionalRequest> = {}): ConditionalRequest {
	return { method: 'GET', range: null, ifRange: null, ifNoneMatch: null, ifModifiedSince: null, ...overrides }
}

/** IMF-fixdate, the preferred HTTP-date format. */
const httpDate = (seconds: number) => new Date(seconds * 1000).toUTCString()

const pad = (n: number) => String(n).padStart(2, '0')
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const clock = (d: Date) => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`

/** Obsolete RFC 850 format: `Monday, 15-Jan-24 10:30:00 GMT`. */
function rfc850Date(seconds: number): string {
	const d = new Date(seconds * 1000)
	const year = pad(d.getUTCFullYear() % 100)
	return `${DAYS[d.getUTCDay()]}, ${pad(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${year} ${clock(d)} GMT`
}

/** Obsolete asctime format, always GMT although it names no zone: `Mon Jan 15 10:30:00 2024`. */
function asctimeDate(seconds: number): string {
	const d = new Date(seconds * 1000)
	const day = String(d.getUTCDate()).padStart(2, ' ')
	return `${DAYS[d.getUTCDay()]?.slice(0, 3)} ${MONTHS[d.getUTCMonth()]} ${day} ${clock(d)} ${d.getUTCFullYear()}`
}

describe('parseRange', () => {
	test.each([
		['bytes=0-499', { start: 0, end: 499 }],
		['bytes=0-0', { start: 0, end: 0 }],
		['bytes=999-999', { start: 999, end: 999 }],
		['bytes=500-', { start: 500, end: 999 }],
		['bytes=999-', { start: 999, end: 999 }],
		['bytes=-200', { start: 800, end: 999 }],
		['bytes=-1', { start: 999, end: 999 }],
		['bytes=-1000', { start: 0, end: 999 }],
		['bytes=-5000', { start: 0, end: 999 }],
		['bytes=0-999999', { start: 0, end: 999 }],
		['bytes=999-5000', { start: 999, end: 999 }],
		['BYTES=10-19', { start: 10, end: 19 }],
		['bytes=0-999999999999999', { start: 0, end: 999 }],
		['bytes=-999999999999999', { start: 0, end: 999 }],
	])('%s on 1000 bytes is a single range', (header, expected) => {
		expect(parseRange(header, 1000)).toEqual(expected)
	})

	test.each(['bytes=1000-', 'bytes=1000-1000', 'bytes=1000-2000', 'bytes=5000-', 'bytes=-0', 'bytes=999999999999999-'])(
		'%s on 1000 bytes is unsatisfiable',
		(header) => {
			expect(parseRange(header, 1000)).toBe('unsatisfiable')
		},
	)

	test.each(['bytes=0-', 'bytes=0-0', 'bytes=-1', 'bytes=-0'])('%s on an empty file is unsatisfiable', (header) => {
		expect(parseRange(header, 0)).toBe('unsatisfiable')
	})

	test.each([
		'',
		'garbage',
		'bytes=',
		'bytes=-',
		'bytes 0-1',
		'bytes:0-1',
		'items=0-1',
		'bytes=0-1,5-9',
		'bytes=0-1, 5-9',
		'bytes=-1,0-1',
		'bytes=abc',
		'bytes=a-b',
		'bytes=5-1',
		'bytes=1.5-2',
		'bytes=-1-2',
		'bytes=0x10-0x20',
		'bytes=+1-2',
		'bytes=1e3-',
		'bytes=\uff11-\uff12',
	])('%p is ignored (serve the whole file)', (header) => {
		expect(parseRange(header, 1000)).toBe('ignore')
	})

	test('positions of any length are understood (RFC 9110 §14.1.2): beyond the file, clamped or unsatisfiable', () => {
		expect(parseRange('bytes=0-9999999999999999', 1000)).toEqual({ start: 0, end: 999 })
		expect(parseRange('bytes=0-99999999999999999999999999', 1000)).toEqual({ start: 0, end: 999 })
		expect(parseRange('bytes=-9999999999999999', 1000)).toEqual({ start: 0, end: 999 })
		expect(parseRange('bytes=9999999999999999-', 1000)).toBe('unsatisfiable')
		expect(parseRange(`bytes=${'0'.repeat(100)}5-9`, 1000)).toEqual({ start: 5, end: 9 })
	})

	test('end before start is ignored even when start is past the end of the file', () => {
		expect(parseRange('bytes=50-10', 20)).toBe('ignore')
	})

	test('positions beyond 4 GiB stay exact', () => {
		const size = 5 * 1024 ** 3 + 7
		expect(parseRange('bytes=4294967296-', size)).toEqual({ start: 4294967296, end: size - 1 })
		expect(parseRange('bytes=-1', size)).toEqual({ start: size - 1, end: size - 1 })
		expect(parseRange(`bytes=${size - 2}-${size + 100}`, size)).toEqual({ start: size - 2, end: size - 1 })
	})
})

describe('selectRepresentation: Range', () => {
	test('no Range: full, nothing ignored', () => {
		expect(selectRepresentation(req(), FILE)).toEqual({ kind: 'full', rangeIgnored: false })
	})

	test('a satisfiable single range on GET is partial', () => {
		expect(selectRepresentation(req({ range: 'bytes=100-199' }), FILE)).toEqual({
			kind: 'partial',
			start: 100,
			end: 199,
		})
	})

	test('the end is clamped to the last byte', () => {
		expect(selectRepresentation(req({ range: 'bytes=900-5000' }), FILE)).toEqual({
			kind: 'partial',
			start: 900,
			end: 999,
		})
	})

	test('a start past the end is unsatisfiable', () => {
		expect(selectRepresentation(req({ range: 'bytes=1000-' }), FILE)).toEqual({ kind: 'unsatisfiable' })
	})

	test('multiple ranges are ignored: full with rangeIgnored', () => {
		expect(selectRepresentation(req({ range: 'bytes=0-1,10-20' }), FILE)).toEqual({
			kind: 'full',
			rangeIgnored: true,
		})
	})

	test('another unit is ignored: full with rangeIgnored', () => {
		expect(selectRepresentation(req({ range: 'items=0-1' }), FILE)).toEqual({ kind: 'full', rangeIgnored: true })
	})

	test.each(['bytes=0-1', 'bytes=1000-', 'garbage'])('HEAD with Range %p describes the whole file', (range) => {
		expect(selectRepresentation(req({ method: 'HEAD', range }), FILE)).toEqual({ kind: 'full', rangeIgnored: false })
	})

	test('HEAD with Range and a failing If-Range is still a plain full response', () => {
		expect(selectRepresentation(req({ method: 'HEAD', range: 'bytes=0-1', ifRange: '"other"' }), FILE)).toEqual({
			kind: 'full',
			rangeIgnored: false,
		})
	})

	test('an empty file with a Range is unsatisfiable', () => {
		expect(selectRepresentation(req({ range: 'bytes=0-' }), { ...FILE, size: 0 })).toEqual({ kind: 'unsatisfiable' })
	})
})

describe('selectRepresentation: If-Range', () => {
	test('the same strong ETag honours the range', () => {
		expect(selectRepresentation(req({ range: 'bytes=0-9', ifRange: '"abc-123"' }), FILE)).toEqual({
			kind: 'partial',
			start: 0,
			end: 9,
		})
	})

	test('surrounding whitespace does not defeat the match', () => {
		expect(selectRepresentation(req({ range: 'bytes=0-9', ifRange: '  "abc-123" ' }), FILE)).toEqual({
			kind: 'partial',
			start: 0,
			end: 9,
		})
	})

	test.each([
		['a weak tag for the same value', 'W/"abc-123"'],
		['a different tag', '"abc-124"'],
		['a prefix of the tag', '"abc-12"'],
		['the tag unquoted', 'abc-123'],
		['a list of tags', '"abc-123", "x"'],
		['garbage', 'whenever'],
		['an empty value', ''],
	])('%s sends the whole file with rangeIgnored', (_label, ifRange) => {
		expect(selectRepresentation(req({ range: 'bytes=0-9', ifRange }), FILE)).toEqual({
			kind: 'full',
			rangeIgnored: true,
		})
	})

	test('an HTTP-date equal to the modification second honours the range', () => {
		expect(selectRepresentation(req({ range: 'bytes=0-9', ifRange: httpDate(MTIME_S) }), FILE)).toEqual({
			kind: 'partial',
			start: 0,
			end: 9,
		})
	})

	test.each([
		['one second later', MTIME_S + 1],
		['one second earlier', MTIME_S - 1],
		['a day later', MTIME_S + 86_400],
	])('an HTTP-date %s sends the whole file with rangeIgnored', (_label, seconds) => {
		expect(selectRepresentation(req({ range: 'bytes=0-9', ifRange: httpDate(seconds) }), FILE)).toEqual({
			kind: 'full',
			rangeIgnored: true,
		})
	})

	test('If-Range without Range is a plain full response', () => {
		expect(selectRepresentation(req({ ifRange: '"other"' }), FILE)).toEqual({ kind: 'full', rangeIgnored: false })
	})

	test('a holding If-Range with an unsatisfiable range is 416', () => {
		expect(selectRepresentation(req({ range: 'bytes=5000-', ifRange: '"abc-123"' }), FILE)).toEqual({
			kind: 'unsatisfiable',
		})
	})

	test('a holding If-Range with a malformed range is full with rangeIgnored', () => {
		expect(selectRepresentation(req({ range: 'bytes=9-1', ifRange: '"abc-123"' }), FILE)).toEqual({
			kind: 'full',
			rangeIgnored: true,
		})
	})
})

describe('selectRepresentation: If-None-Match', () => {
	test.each([
		['the exact tag', '"abc-123"'],
		['*', '*'],
		[' * ', ' * '],
		['a list holding the tag', '"x", "abc-123", "y"'],
		['a list without spaces', '"x","abc-123"'],
		['the weak form of the tag (weak comparison)', 'W/"abc-123"'],
		['a list holding the weak form', '  "x" ,W/"abc-123"  '],
	])('%s is 304', (_label, ifNoneMatch) => {
		expect(selectRepresentation(req({ ifNoneMatch }), FILE)).toEqual({ kind: 'not-modified' })
	})

	test.each([
		['a different tag', '"abc-124"'],
		['a prefix of the tag', '"abc-12"'],
		['a longer tag', '"abc-123-x"'],
		['the tag unquoted', 'abc-123'],
		['an empty value', ''],
	])('%s is the full file', (_label, ifNoneMatch) => {
		expect(selectRepresentation(req({ ifNoneMatch }), FILE)).toEqual({ kind: 'full', rangeIgnored: false })
	})

	test('HEAD with a matching tag is 304', () => {
		expect(selectRepresentation(req({ method: 'HEAD', ifNoneMatch: '"abc-123"' }), FILE)).toEqual({
			kind: 'not-modified',
		})
	})

	test('304 wins over 416 and over a range', () => {
		expect(selectRepresentation(req({ ifNoneMatch: '"abc-123"', range: 'bytes=5000-' }), FILE)).toEqual({
			kind: 'not-modified',
		})
		expect(selectRepresentation(req({ ifNoneMatch: '"abc-123"', range: 'bytes=0-9' }), FILE)).toEqual({
			kind: 'not-modified',
		})
	})

	test('a non-matching If-None-Match makes If-Modified-Since irrelevant', () => {
		const r = req({ ifNoneMatch: '"other"', ifModifiedSince: httpDate(MTIME_S + 3600) })
		expect(selectRepresentation(r, FILE)).toEqual({ kind: 'full', rangeIgnored: false })
	})

	test('a matching If-None-Match wins over an older If-Modified-Since', () => {
		const r = req({ ifNoneMatch: '"abc-123"', ifModifiedSince: httpDate(MTIME_S - 3600) })
		expect(selectRepresentation(r, FILE)).toEqual({ kind: 'not-modified' })
	})

	test('a non-matching If-None-Match still lets a range through', () => {
		expect(selectRepresentation(req({ ifNoneMatch: '"other"', range: 'bytes=0-9' }), FILE)).toEqual({
			kind: 'partial',
			start: 0,
			end: 9,
		})
	})
})

describe('selectRepresentation: If-Modified-Since', () => {
	test('the same second as the modification time (ms truncated) is 304', () => {
		expect(selectRepresentation(req({ ifModifiedSince: httpDate(MTIME_S) }), FILE)).toEqual({
			kind: 'not-modified',
		})
	})

	test('a later date is 304', () => {
		expect(selectRepresentation(req({ ifModifiedSince: httpDate(MTIME_S + 1) }), FILE)).toEqual({
			kind: 'not-modified',
		})
	})

	test('one second before the modification time is the full file', () => {
		expect(selectRepresentation(req({ ifModifiedSince: httpDate(MTIME_S - 1) }), FILE)).toEqual({
			kind: 'full',
			rangeIgnored: false,
		})
	})

	test('a file modified late in a second is still 304 against that second', () => {
		const file = { ...FILE, mtimeMs: MTIME_S * 1000 + 999 }
		expect(selectRepresentation(req({ ifModifiedSince: httpDate(MTIME_S) }), file)).toEqual({
			kind: 'not-modified',
		})
	})

	test('HEAD honours it too', () => {
		expect(selectRepresentation(req({ method: 'HEAD', ifModifiedSince: httpDate(MTIME_S) }), FILE)).toEqual({
			kind: 'not-modified',
		})
	})

	test('the obsolete RFC 850 format of the same second is 304', () => {
		expect(rfc850Date(MTIME_S)).toBe('Monday, 15-Jan-24 10:30:00 GMT')
		expect(selectRepresentation(req({ ifModifiedSince: rfc850Date(MTIME_S) }), FILE)).toEqual({
			kind: 'not-modified',
		})
	})

	test('the obsolete asctime format of the same second is 304', () => {
		expect(asctimeDate(MTIME_S)).toBe('Mon Jan 15 10:30:00 2024')
		expect(selectRepresentation(req({ ifModifiedSince: asctimeDate(MTIME_S) }), FILE)).toEqual({
			kind: 'not-modified',
		})
	})

	test('asctime is GMT whatever the server time zone', () => {
		// RFC 9110 §5.6.7: asctime names no zone but is UTC. West of Greenwich,
		// reading it as local time would turn an older date into a newer one.
		const saved = process.env.TZ
		process.env.TZ = 'America/New_York'
		try {
			const r = req({ ifModifiedSince: asctimeDate(MTIME_S - 3600) })
			expect(selectRepresentation(r, FILE)).toEqual({ kind: 'full', rangeIgnored: false })
		} finally {
			if (saved === undefined) delete process.env.TZ
			else process.env.TZ = saved
		}
	})

	test.each(['garbage', '', 'yesterday', 'Mon, 32 Jan 2024 10:30:00 GMT'])(
		'an invalid date %p is ignored',
		(ifModifiedSince) => {
			expect(selectRepresentation(req({ ifModifiedSince }), FILE)).toEqual({ kind: 'full', rangeIgnored: false })
		},
	)

	// RFC 9110 §13.1.3: a recipient MUST ignore If-Modified-Since when the value
	// is not a valid HTTP-date. These are not, though a lenient date parser
	// reads each of them as a year far in the future (so 304 forever).
	test.each(['not a date 2999', '2999', '2999-01-01T00:00:00Z'])(
		'a non-HTTP-date %p is ignored, not read as a date',
		(ifModifiedSince) => {
			expect(selectRepresentation(req({ ifModifiedSince }), FILE)).toEqual({ kind: 'full', rangeIgnored: false })
		},
	)

	test('a 304-worthy If-Modified-Since beats a range', () => {
		expect(selectRepresentation(req({ ifModifiedSince: httpDate(MTIME_S), range: 'bytes=0-9' }), FILE)).toEqual({
			kind: 'not-modified',
		})
	})

	test('an older If-Modified-Since lets a range through', () => {
		expect(selectRepresentation(req({ ifModifiedSince: httpDate(MTIME_S - 60), range: 'bytes=0-9' }), FILE)).toEqual({
			kind: 'partial',
			start: 0,
			end: 9,
		})
	})
})

// ---- Content-Disposition ----------------------------------------------------

const ATTR_CHARS = /^[A-Za-z0-9!#$&+\-.^_`|~]$/
const HEADER_SHAPE = /^attachment; filename="([^"]*)"; filename\*=UTF-8''(.*)$/

function parts(filename: string): { fallback: string; ext: string } {
	const header = contentDisposition(filename)
	const m = HEADER_SHAPE.exec(header)
	if (!m) throw new Error(`unexpected Content-Disposition: ${JSON.stringify(header)}`)
	return { fallback: m[1] ?? '', ext: m[2] ?? '' }
}

/** Every character of an RFC 5987 ext-value is an attr-char or an upper-case %XX escape. */
function isExtValue(ext: string): boolean {
	const rest = ext.replace(/%[0-9A-F]{2}/g, '')
	return [...rest].every((ch) => ATTR_CHARS.test(ch))
}

function isSafeFallback(fallback: string): boolean {
	return /^[\x20-\x7e]*$/.test(fallback) && !/["\\%\r\n]/.test(fallback)
}

const HANDPICKED_NAMES = [
	'video.mp4',
	'My Video (1).mp4',
	'Café.mp4',
	'Cafe\u0301.mp4',
	'naïve résumé.mov',
	'日本語の動画.mp4',
	'中文视频.webm',
	'한국어 영상.mp4',
	'😀.mp4',
	'👨‍👩‍👧 family.mp4',
	'🏳️‍🌈.mov',
	'עברית.mp4',
	'العربية.mp4',
	'\u202Egnp.exe.mp4',
	'\u200Fmixed RTL.mp4',
	'say "hi".mp4',
	'back\\slash.mp4',
	'semi;colon.mp4',
	'a; filename="evil.exe".mp4',
	"it's.mp4",
	'(paren) [bracket] {brace}.mp4',
	'star*.mp4',
	'100%.mp4',
	'%41%42.mp4',
	'%E9.mp4',
	"UTF-8''trick.mp4",
	'a=b&c=d.mp4',
	'q?.mp4',
	'comma, and more.mp4',
	'tab\there.mp4',
	'line\r\nbreak.mp4',
	'nbsp\u00a0here.mp4',
	'ligature ﬁle.mp4',
	'fullwidth ＂quote＼ ％.mp4',
	'𝐁𝐨𝐥𝐝.mp4',
	'Straße.mp4',
	'Ωμέγα.mp4',
	'Ñandú.mp4',
	'\u0301\u0301leading marks.mp4',
	'zero\u200bwidth.mp4',
	'bom\ufeff.mp4',
	'line\u2028sep.mp4',
	'!#$&+-.^_`|~ attr chars.mp4',
	'x'.repeat(250),
]

/** A deterministic pseudo-random generator (mulberry32), so failures replay. */
function prng(seed: number): () => number {
	let a = seed >>> 0
	return () => {
		a = (a + 0x6d2b79f5) >>> 0
		let t = a
		t = Math.imul(t ^ (t >>> 15), t | 1)
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296
	}
}

const PIECES = [
	...'abcXYZ0189 ._-!#$&+^`|~',
	...'"\\%;,\'()*=?<>@[]{}:/',
	...'éÅñüçÀøæß€',
	'\u0301',
	'\u0308',
	'\u20dd',
	...'日本語動画中文한국',
	...'عربيעברית',
	'\u200f',
	'\u202e',
	'😀',
	'🎬',
	'👨‍👩‍👧',
	'🏳️‍🌈',
	'\u00a0',
	'ﬁ',
	'＂',
	'＼',
	'％',
	'𝐀',
	'\ufeff',
]

function generatedNames(count: number, seed: number): string[] {
	const next = prng(seed)
	return Array.from({ length: count }, () => {
		const length = 1 + Math.floor(next() * 24)
		let name = ''
		for (let i = 0; i < length; i++) name += PIECES[Math.floor(next() * PIECES.length)] ?? ''
		return name
	})
}

const ALL_NAMES = [...HANDPICKED_NAMES, ...generatedNames(600, 0x5eed)]

describe('contentDisposition', () => {
	test('a plain ASCII name is the same in both parameters', () => {
		expect(contentDisposition('video.mp4')).toBe(`attachment; filename="video.mp4"; filename*=UTF-8''video.mp4`)
	})

	test('accents are dropped in the fallback and percent-encoded as UTF-8 in filename*', () => {
		expect(contentDisposition('Café.mp4')).toBe(`attachment; filename="Cafe.mp4"; filename*=UTF-8''Caf%C3%A9.mp4`)
	})

	test('a decomposed accent keeps its exact code points in filename*', () => {
		expect(parts('Cafe\u0301.mp4')).toEqual({ fallback: 'Cafe.mp4', ext: 'Cafe%CC%81.mp4' })
	})

	test('quotes, backslashes and percent signs become _ in the fallback', () => {
		expect(asciiFallback('say "hi" \\ 100%.mp4')).toBe('say _hi_ _ 100_.mp4')
	})

	test('CJK becomes _ in the fallback', () => {
		expect(asciiFallback('日本.mp4')).toBe('__.mp4')
	})

	test.each([
		[' ', '%20'],
		["'", '%27'],
		['(', '%28'],
		[')', '%29'],
		['*', '%2A'],
		[';', '%3B'],
		[',', '%2C'],
		['%', '%25'],
		['"', '%22'],
		['\\', '%5C'],
		['=', '%3D'],
		['/', '%2F'],
	])('%p is percent-encoded in filename*', (ch, encoded) => {
		expect(parts(`a${ch}b`).ext).toBe(`a${encoded}b`)
	})

	test('every RFC 5987 attr-char stays as it is in filename*', () => {
		const attrChars = 'ABCXYZabcxyz0189!#$&+-.^_`|~'
		expect(parts(attrChars).ext).toBe(attrChars)
	})

	test('a CR LF in a name cannot break out of the header', () => {
		const header = contentDisposition('a\r\nSet-Cookie: x=1.mp4')
		expect(header).not.toMatch(/[\r\n]/)
		expect(parts('a\r\nSet-Cookie: x=1.mp4').ext).toBe('a%0D%0ASet-Cookie%3A%20x%3D1.mp4')
	})

	test('a name that mimics the header parameters stays inside the quoted fallback', () => {
		const { fallback } = parts('a"; filename*=UTF-8\'\'evil.exe; x=".mp4')
		expect(fallback).toBe("a_; filename*=UTF-8''evil.exe; x=_.mp4")
	})

	test(`for ${ALL_NAMES.length} names, filename* decodes back to the original`, () => {
		const wrong = ALL_NAMES.filter((name) => {
			const { ext } = parts(name)
			return !isExtValue(ext) || decodeURIComponent(ext) !== name
		})
		expect(wrong).toEqual([])
	})

	test(`for ${ALL_NAMES.length} names, the fallback is printable ASCII without " \\ % CR LF`, () => {
		const wrong = ALL_NAMES.filter((name) => {
			const { fallback } = parts(name)
			return !isSafeFallback(fallback) || fallback !== asciiFallback(name)
		})
		expect(wrong).toEqual([])
	})

	test(`for ${ALL_NAMES.length} names, the header is a valid header value`, () => {
		const wrong = ALL_NAMES.filter((name) => {
			const value = contentDisposition(name)
			try {
				return new Headers({ 'Content-Disposition': value }).get('Content-Disposition') !== value
			} catch {
				return true
			}
		})
		expect(wrong).toEqual([])
	})

	test('names that are already safe ASCII are their own fallback', () => {
		for (const name of ['video.mp4', 'My Video (1).mp4', "it's; fine=yes.mov", 'a_b-c.d'])
			expect(asciiFallback(name)).toBe(name)
	})
})

// ---- Content-Type -----------------------------------------------------------

describe('contentTypeFor', () => {
	test.each([
		['movie.mp4', 'video/mp4'],
		['MOVIE.MP4', 'video/mp4'],
		['clip.mov', 'video/quicktime'],
		['clip.MOV', 'video/quicktime'],
		['clip.MoV', 'video/quicktime'],
		['clip.webm', 'video/webm'],
		['archive.tar.mp4', 'video/mp4'],
		['日本語.mp4', 'video/mp4'],
		['a.b.c.webm', 'video/webm'],
	])('%s is %s', (name, type) => {
		expect(contentTypeFor(name)).toBe(type)
	})

	test.each(['README', 'mp4', 'video.', 'video.mp4.', 'video.unknownext', 'video.mp4x', 'video.mp', 'video.mp4 '])(
		'%p is application/octet-stream',
		(name) => {
			expect(contentTypeFor(name)).toBe('application/octet-stream')
		},
	)

	// A plain object lookup also finds Object.prototype members: `x.constructor`
	// would be served as `Content-Type: function Object() { [native code] }`.
	test.each(['video.constructor', 'video.__proto__', 'video.tostring', 'video.valueof', 'video.hasownproperty'])(
		'%p, named like an Object.prototype member, is application/octet-stream',
		(name) => {
			expect(contentTypeFor(name)).toBe('application/octet-stream')
		},
	)

	test('every answer is a string usable as a header value', () => {
		for (const name of ['a.constructor', 'a.__proto__', 'a.mp4', 'a.zzz', 'a']) {
			const type: unknown = contentTypeFor(name)
			expect(typeof type).toBe('string')
			expect(() => new Headers({ 'Content-Type': String(type) })).not.toThrow()
		}
	})
})

// ---- names ------------------------------------------------------------------

describe('userIdProblem', () => {
	test.each([
		'a',
		'123',
		'user_1',
		'user-1',
		'user.name',
		'user@example.com',
		'A-Za-z0-9_.@',
		'a'.repeat(128),
		'.a',
		'a..b',
	])('%p is accepted', (userId) => {
		expect(userIdProblem(userId)).toBeNull()
	})

	test.each([
		['empty', ''],
		['.', '.'],
		['..', '..'],
		['129 characters', 'a'.repeat(129)],
		['a slash', 'a/b'],
		['a backslash', 'a\\b'],
		['a space', 'a b'],
		['a trailing newline', 'abc\n'],
		['a leading newline', '\nabc'],
		['NUL', 'a\0b'],
		['a colon', 'a:b'],
		['a plus', 'a+b'],
		['a percent', 'a%2F'],
		['braces (a cluster hash tag)', '{a}'],
		['an accent', 'josé'],
		['CJK', '日本'],
		['an emoji', 'a😀'],
		['a full-width letter', '\uff41'],
		['the Kelvin sign', '\u212a'],
	])('%s is refused', (_label, userId) => {
		const problem = userIdProblem(userId)
		expect(typeof problem).toBe('string')
		expect(problem).not.toBe('')
	})
})

describe('filenameProblem', () => {
	test.each([
		'video.mp4',
		'My Video (1).mp4',
		'日本語の動画.mp4',
		'😀🎬.mov',
		'Cafe\u0301.mp4',
		'עברית.mp4',
		'it\'s; "quoted" *.mp4',
		'100%.mp4',
		'file.',
		'a..b',
		'no extension',
		'nbsp\u00a0ok.mp4',
		' leading space.mp4',
		'\ud83d\ude00',
	])('%p is accepted', (filename) => {
		expect(filenameProblem(filename)).toBeNull()
	})

	test.each([
		['empty', ''],
		['.', '.'],
		['..', '..'],
		['a dot file', '.hidden'],
		['a dot-dot prefix', '..mp4'],
		['a slash', 'a/b.mp4'],
		['a traversal', '../etc/passwd'],
		['a backslash', 'a\\b.mp4'],
		['NUL', 'a\0b.mp4'],
		['SOH', 'a\x01b.mp4'],
		['TAB', 'a\tb.mp4'],
		['LF', 'a\nb.mp4'],
		['CR', 'a\rb.mp4'],
		['US (0x1F)', 'a\x1fb.mp4'],
		['DEL', 'a\x7fb.mp4'],
		['C1 U+0080', 'a\u0080b.mp4'],
		['C1 U+0085 (NEL)', 'a\u0085b.mp4'],
		['C1 U+009F', 'a\u009fb.mp4'],
		['a lone high surrogate', 'a\ud800b.mp4'],
		['a lone low surrogate', 'a\udc00b.mp4'],
		['a reversed surrogate pair', '\ude00\ud83d.mp4'],
		['a trailing lone high surrogate', 'video.mp4\ud83d'],
	])('%s is refused', (_label, filename) => {
		const problem = filenameProblem(filename)
		expect(typeof problem).toBe('string')
		expect(problem).not.toBe('')
	})

	test('255 bytes of ASCII is accepted, 256 refused', () => {
		const name = `${'a'.repeat(251)}.mp4`
		expect(Buffer.byteLength(name)).toBe(255)
		expect(filenameProblem(name)).toBeNull()
		expect(filenameProblem(`a${name}`)).not.toBeNull()
	})

	test('255 bytes of three-byte characters is accepted, one more byte refused', () => {
		const name = '€'.repeat(85)
		expect(Buffer.byteLength(name)).toBe(255)
		expect(filenameProblem(name)).toBeNull()
		expect(filenameProblem(`${name}a`)).not.toBeNull()
	})

	test('four-byte characters are counted in UTF-8 bytes, not UTF-16 units', () => {
		const fits = `${'😀'.repeat(63)}abc`
		expect(Buffer.byteLength(fits)).toBe(255)
		expect(filenameProblem(fits)).toBeNull()
		const over = '😀'.repeat(64)
		expect(Buffer.byteLength(over)).toBe(256)
		expect(over.length).toBe(128)
		expect(filenameProblem(over)).not.toBeNull()
	})

	test('a name short in characters but over 255 bytes is refused', () => {
		const name = '日'.repeat(86)
		expect(name.length).toBe(86)
		expect(filenameProblem(name)).not.toBeNull()
	})
})

describe('httpDateNow', () => {
	test('is the IMF-fixdate of the current second, formatted once per second', () => {
		const t = Date.UTC(2026, 10, 24, 4, 42, 39, 10)
		expect(httpDateNow(t)).toBe('Tue, 24 Nov 2026 04:42:39 GMT')
		expect(httpDateNow(t + 980)).toBe('Tue, 24 Nov 2026 04:42:39 GMT')
		expect(httpDateNow(t + 990)).toBe('Tue, 24 Nov 2026 04:42:40 GMT')
		expect(httpDateNow(t)).toBe('Tue, 24 Nov 2026 04:42:39 GMT')
	})

	test('defaults to the wall clock', () => {
		expect(Math.abs(Date.parse(httpDateNow()) - Date.now())).toBeLessThan(2000)
	})
})
