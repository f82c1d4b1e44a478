/** The request headers that decide which part of a file is sent (RFC 9110 §13, §14). */
export interface ConditionalRequest {
	readonly method: 'GET' | 'HEAD'
	readonly range: string | null
	readonly ifRange: string | null
	readonly ifNoneMatch: string | null
	readonly ifModifiedSince: string | null
}

/** The validators of the file about to be sent. */
export interface Representation {
	readonly size: number
	readonly etag: string
	readonly mtimeMs: number
}

/**
 * What to answer: 304, 416, the whole file (`rangeIgnored` when a Range header
 * was present but not honoured), or one byte range (inclusive `end`).
 */
export type Selection =
	| { readonly kind: 'not-modified' }
	| { readonly kind: 'unsatisfiable' }
	| { readonly kind: 'full'; readonly rangeIgnored: boolean }
	| { readonly kind: 'partial'; readonly start: number; readonly end: number }

const weak = (tag: string) => (tag.startsWith('W/') ? tag.slice(2) : tag)

function matchesAny(header: string, etag: string): boolean {
	if (header.trim() === '*') return true
	const target = weak(etag)
	// Entity tags are quoted and may not contain commas; a split is safe.
	return header.split(',').some((candidate) => weak(candidate.trim()) === target)
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
// RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms; all GMT.
const IMF_FIXDATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) ([A-Z][a-z]{2}) (\d{4}) (\d\d):(\d\d):(\d\d) GMT$/
const RFC_850 =
	/^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d\d)-([A-Z][a-z]{2})-(\d\d) (\d\d):(\d\d):(\d\d) GMT$/
const ASCTIME = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) (\d{4})$/

function utcSeconds(year: number, month: string, day: string, h: string, m: string, s: string): number | null {
	const mon = MONTHS.indexOf(month)
	const [d, hh, mm, ss] = [Number(day), Number(h), Number(m), Number(s)]
	if (mon < 0 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60) return null
	return Date.UTC(year, mon, d, hh, mm, ss) / 1000
}

/** Seconds since the epoch of an HTTP-date (never another date format), or null. */
export function httpDateS(value: string): number | null {
	const v = value.trim()
	let m = IMF_FIXDATE.exec(v)
	if (m) return utcSeconds(Number(m[3]), m[2] ?? '', m[1] ?? '', m[4] ?? '', m[5] ?? '', m[6] ?? '')
	m = RFC_850.exec(v)
	if (m) {
		// Two-digit years: RFC 9110 reads those more than 50 years ahead as the past century.
		const yy = Number(m[3])
		const thisYear = new Date().getUTCFullYear()
		let year = Math.floor(thisYear / 100) * 100 + yy
		if (year > thisYear + 50) year -= 100
		return utcSeconds(year, m[2] ?? '', m[1] ?? '', m[4] ?? '', m[5] ?? '', m[6] ?? '')
	}
	m = ASCTIME.exec(v)
	if (m) return utcSeconds(Number(m[6]), m[1] ?? '', (m[2] ?? '').trim(), m[3] ?? '', m[4] ?? '', m[5] ?? '')
	return null
}

type ParsedRange = { start: number; end: number } | 'unsatisfiable' | 'ignore'

const isOws = (c: string | undefined) => c === ' ' || c === '\t'
function trimOws(s: string): string {
	let a = 0
	let b = s.length
	while (a < b && isOws(s[a])) a++
	while (b > a && isOws(s[b - 1])) b--
	return s.slice(a, b)
}

const significant = (digits: string) => digits.replace(/^0+(?=\d)/, '')

/** A decimal position of any length: exact up to 2^53 − 1, else Infinity (beyond any file). */
function position(digits: string): number {
	const s = significant(digits)
	const n = s.length > 16 ? Number.POSITIVE_INFINITY : Number(s)
	return n > Number.MAX_SAFE_INTEGER ? Number.POSITIVE_INFINITY : n
}

/** `a < b` for decimal strings of any length (exactly, also beyond 2^53). */
function lessThan(a: string, b: string): boolean {
	const x = significant(a)
	const y = significant(b)
	return x.length !== y.length ? x.length < y.length : x < y
}

/**
 * Parses a `Range` header against a file of `size` bytes (RFC 9110 §14.1.2):
 * `bytes=` (any case) then a list read with the recipient list rule (OWS
 * around commas, empty elements skipped). One range is honoured; several are
 * ignored (the whole file is sent), as is anything malformed or another unit.
 * A first position at or beyond the end is unsatisfiable, a last position
 * beyond it is clamped, positions of any length are understood.
 */
export function parseRange(header: string, size: number): ParsedRange {
	const eq = header.indexOf('=')
	if (eq < 0 || header.slice(0, eq).toLowerCase() !== 'bytes') return 'ignore'
	let spec: string | null = null
	for (const element of header.slice(eq + 1).split(',')) {
		const trimmed = trimOws(element)
		if (trimmed === '') continue
		if (spec !== null) return 'ignore'
		spec = trimmed
	}
	if (spec === null) return 'ignore'
	const int = /^([0-9]+)-([0-9]*)$/.exec(spec)
	if (int) {
		if (int[2] && lessThan(int[2], int[1] ?? '')) return 'ignore'
		const first = position(int[1] ?? '')
		const last = int[2] ? position(int[2]) : null
		if (first >= size) return 'unsatisfiable'
		return { start: first, end: last === null || last >= size - 1 ? size - 1 : last }
	}
	const suffix = /^-([0-9]+)$/.exec(spec)
	if (!suffix) return 'ignore'
	const length = position(suffix[1] ?? '')
	// A 206 cannot carry zero bytes: an empty suffix, or any suffix of an empty file.
	if (length === 0 || size === 0) return 'unsatisfiable'
	return { start: length >= size ? 0 : size - length, end: size - 1 }
}

function ifRangeHolds(ifRange: string, file: Representation): boolean {
	const value = ifRange.trim()
	if (value.startsWith('"') || value.startsWith('W/')) return value === file.etag // strong comparison only
	const date = httpDateS(value)
	return date !== null && date === Math.floor(file.mtimeMs / 1000)
}

/** Decides 304 / 416 / 200 / 206 for a GET or HEAD on `file`, in RFC 9110 §13.2.2 order. */
export function selectRepresentation(req: ConditionalRequest, file: Representation): Selection {
	if (req.ifNoneMatch !== null) {
		if (matchesAny(req.ifNoneMatch, file.etag)) return { kind: 'not-modified' }
	} else if (req.ifModifiedSince !== null) {
		const since = httpDateS(req.ifModifiedSince)
		if (since !== null && Math.floor(file.mtimeMs / 1000) <= since) return { kind: 'not-modified' }
	}
	// Range is defined for GET only; HEAD describes the whole representation.
	if (req.method !== 'GET' || req.range === null) return { kind: 'full', rangeIgnored: false }
	if (req.ifRange !== null && !ifRangeHolds(req.ifRange, file)) return { kind: 'full', rangeIgnored: true }
	const range = parseRange(req.range, file.size)
	if (range === 'ignore') return { kind: 'full', rangeIgnored: true }
	if (range === 'unsatisfiable') return { kind: 'unsatisfiable' }
	return { kind: 'partial', start: range.start, end: range.end }
}
