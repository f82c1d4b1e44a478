import { describe, expect, test } from 'bun:test'
import {
	type ConditionalRequest,
	parseRange,
	type Representation,
	selectRepresentation,
} from '../../src/http/conditional'

// Range and conditional-request selection behind downloads (docs/contract.md §3.2).

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
