import { describe, expect, test } from 'bun:test'
import * as contentDispositionParser from 'content-disposition'
import fc from 'fast-check'
import { parseRange } from '../../src/http/conditional'
import { contentDisposition } from '../../src/http/content-disposition'
import { filenameProblem, userIdProblem } from '../../src/storage/names'

// Pure parsers and encoders against small reference models written from the
// contracts (docs/contract.md §3.1, RFC 6266/8187, RFC 9110 §14.1.2). A failure prints
// fast-check's shrunk counter-example: the exact input the code and the
// contract disagree on.

const RUNS = 3000

/** A string with everything outside printable ASCII escaped, so a counter-example reads unambiguously. */
const visible = (s: string) =>
	s.replace(/[^\x20-\x7e]/gu, (c) => {
		const cp = c.codePointAt(0) ?? 0
		return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`
	})

// ---------------------------------------------------------------------------
// docs/contract.md §3.1 names

/** user_id: 1–128 of [A-Za-z0-9_.@-]; "." and ".." would name the storage root or its parent. */
function userIdModel(id: string): boolean {
	if (id.length < 1 || id.length > 128) return false
	for (const ch of id) if (!/[A-Za-z0-9_.@-]/.test(ch)) return false
	return id !== '.' && id !== '..'
}

/** filename: one segment of Unicode scalar values, no / \ NUL or control (Cc), not starting with ".", ≤ 255 UTF-8 bytes. */
function filenameModel(name: string): boolean {
	if (name === '' || name.startsWith('.')) return false
	let bytes = 0
	for (const ch of name) {
		const cp = ch.codePointAt(0) ?? 0
		if (cp >= 0xd800 && cp <= 0xdfff) return false // a lone surrogate is not Unicode text
		if (cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f)) return false
		if (ch === '/' || ch === '\\') return false
		bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4
	}
	return bytes <= 255
}

const userIdArb = fc.oneof(
	fc.string({ unit: fc.constantFrom('a', 'Z', '0', '9', '_', '.', '@', '-'), maxLength: 140 }),
	fc.string({
		unit: fc.constantFrom('a', '.', ' ', '/', '\\', '\0', '*', ':', 'é', '%', '\n', '{', '}'),
		maxLength: 20,
	}),
	fc.constantFrom('.', '..', '...', '.a', 'a.', '@', '-', 'a'.repeat(128), 'a'.repeat(129)),
)

// Characters chosen to sit on every boundary of the model, plus arbitrary code points.
const hostileChar = fc.oneof(
	fc.constantFrom('a', 'Z', '.', '/', '\\', '\0', '\x1f', ' ', '\x7f', '\x80', '\x85', '\x9f', '\xa0', '%', '"', ';'),
	fc.constantFrom('é', '日', '😀', '\u2028', '\u2029', '\u202e', '\u200d', '\ufeff', '\ufffd', '\ud800', '\udc00'),
	fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
)
const filenameArb = fc.oneof(
	fc.string({ unit: hostileChar, maxLength: 40 }),
	// Around the 255-byte limit, in 1-, 2-, 3- and 4-byte characters.
	fc
		.tuple(fc.constantFrom('a', 'é', '日', '😀'), fc.integer({ min: 60, max: 260 }), fc.constantFrom('', '.mp4', 'x'))
		.map(([ch, n, tail]) => ch.repeat(n) + tail),
)

describe('userIdProblem and filenameProblem agree with the docs/contract.md §3.1 model', () => {
	test('userIdProblem(id) is null exactly when the model accepts id', () => {
		fc.assert(
			fc.property(userIdArb, (id) => {
				expect({ id: visible(id), accepted: userIdProblem(id) === null }).toEqual({
					id: visible(id),
					accepted: userIdModel(id),
				})
			}),
			{ numRuns: RUNS },
		)
	})

	test('filenameProblem(name) is null exactly when the model accepts name', () => {
		fc.assert(
			fc.property(filenameArb, (name) => {
				expect({ name: visible(name), accepted: filenameProblem(name) === null }).toEqual({
					name: visible(name),
					accepted: filenameModel(name),
				})
			}),
			{ numRuns: RUNS },
		)
	})
})

// ---------------------------------------------------------------------------
// RFC 6266 / RFC 8187 Content-Disposition

const validFilenameArb = fc
	.oneof(
		fc.string({ unit: hostileChar, minLength: 1, maxLength: 40 }),
		fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
		fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }),
	)
	.filter(filenameModel)

describe('contentDisposition round-trips through the content-disposition parser', () => {
	test('for every valid filename: printable ASCII only, and filename* parses back to exactly the name', () => {
		fc.assert(
			fc.property(validFilenameArb, (name) => {
				const header = contentDisposition(name)
				expect({ name, asciiOnly: /^[\x20-\x7e]*$/.test(header) }).toEqual({ name, asciiOnly: true })
				const parsed = contentDispositionParser.parse(header)
				expect({ name, type: parsed.type, parameters: { ...parsed.parameters } }).toEqual({
					name,
					type: 'attachment',
					parameters: { filename: name },
				})
			}),
			{ numRuns: RUNS },
		)
	})

	test('for any string at all (backslashes, CR/LF, lone surrogates): the header stays printable ASCII', () => {
		fc.assert(
			fc.property(fc.string({ unit: hostileChar, maxLength: 60 }), (name) => {
				expect({ name, asciiOnly: /^[\x20-\x7e]*$/.test(contentDisposition(name)) }).toEqual({
					name,
					asciiOnly: true,
				})
			}),
			{ numRuns: RUNS },
		)
	})
})

// ---------------------------------------------------------------------------
// RFC 9110 §14.1.2 byte ranges

type RangeResult = { start: number; end: number } | 'unsatisfiable' | 'ignore'

const isOws = (c: string) => c === ' ' || c === '\t'
const trimOws = (s: string) => {
	let a = 0
	let b = s.length
	while (a < b && isOws(s[a] ?? '')) a++
	while (b > a && isOws(s[b - 1] ?? '')) b--
	return s.slice(a, b)
}

/**
 * The reference: `ranges-specifier = range-unit "=" range-set`, the unit
 * "bytes" case-insensitively, `range-set = 1#range-spec` read with the
 * recipient list rule (OWS around commas, empty elements ignored). One
 * range-spec is honoured; more than one (this service's choice) and anything
 * invalid are ignored (whole file). int-range: last < first is invalid;
 * first ≥ size is unsatisfiable; last clamps to size − 1. suffix-range: a zero
 * suffix is unsatisfiable, as is any suffix of an empty file (a 206 cannot
 * carry zero bytes); a suffix longer than the file is the whole file. Numbers
 * have any number of digits (compared as BigInt).
 */
function rangeModel(header: string, size: number): RangeResult {
	const eq = header.indexOf('=')
	if (eq < 0 || header.slice(0, eq).toLowerCase() !== 'bytes') return 'ignore'
	const specs = header
		.slice(eq + 1)
		.split(',')
		.map(trimOws)
		.filter((s) => s !== '')
	if (specs.length !== 1) return 'ignore'
	const spec = specs[0] ?? ''
	const big = BigInt(size)
	const int = /^([0-9]+)-([0-9]*)$/.exec(spec)
	if (int) {
		const first = BigInt(int[1] ?? '0')
		const last = int[2] ? BigInt(int[2]) : null
		if (last !== null && last < first) return 'ignore'
		if (first >= big) return 'unsatisfiable'
		return { start: Number(first), end: last === null || last >= big - 1n ? size - 1 : Number(last) }
	}
	const suffix = /^-([0-9]+)$/.exec(spec)
	if (suffix) {
		const length = BigInt(suffix[1] ?? '0')
		if (length === 0n || size === 0) return 'unsatisfiable'
		return { start: length >= big ? 0 : size - Number(length), end: size - 1 }
	}
	return 'ignore'
}

const sizeArb = fc.oneof(
	fc.integer({ min: 0, max: 2000 }),
	fc.constantFrom(0, 1, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER),
	fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
)
const smallNumber = fc.integer({ min: 0, max: 3000 }).map(String)
const anyNumber = fc.oneof(
	smallNumber,
	fc.bigInt({ min: 0n, max: 2n ** 80n }).map(String),
	fc.tuple(fc.integer({ min: 1, max: 30 }), smallNumber).map(([zeros, n]) => '0'.repeat(zeros) + n),
)
const unitArb = fc.constantFrom('bytes', 'BYTES', 'Bytes')
const specArb = (n: fc.Arbitrary<string>) =>
	fc.oneof(
		fc.tuple(n, n).map(([a, b]) => `${a}-${b}`),
		n.map((a) => `${a}-`),
		n.map((b) => `-${b}`),
	)

const sameResult = (header: string, size: number) => {
	const got = parseRange(header, size)
	expect({ header: visible(header), size, got }).toEqual({
		header: visible(header),
		size,
		got: rangeModel(header, size),
	})
}

describe('parseRange(header, size) against RFC 9110 §14.1.2', () => {
	test('single ranges with numbers below 2^53 (up to 4 digits)', () => {
		fc.assert(
			fc.property(unitArb, specArb(smallNumber), fc.integer({ min: 0, max: 5000 }), (unit, spec, size) =>
				sameResult(`${unit}=${spec}`, size),
			),
			{ numRuns: RUNS },
		)
	})

	test('single ranges with numbers of any length (leading zeros, beyond 2^53)', () => {
		fc.assert(
			fc.property(unitArb, specArb(anyNumber), sizeArb, (unit, spec, size) => sameResult(`${unit}=${spec}`, size)),
			{ numRuns: RUNS },
		)
	})

	test('multi-range lists (with OWS and empty elements) are ignored; one range among empty elements is honoured', () => {
		const ows = fc.constantFrom('', ' ', '\t', ' \t ')
		fc.assert(
			fc.property(
				fc.array(fc.oneof(specArb(smallNumber), fc.constant('')), { minLength: 1, maxLength: 6 }),
				ows,
				fc.integer({ min: 0, max: 5000 }),
				(specs, space, size) => sameResult(`bytes=${specs.join(`${space},${space}`)}`, size),
			),
			{ numRuns: RUNS },
		)
	})

	test('whitespace anywhere in a single range (SP, HTAB, and obs-text 0xA0) agrees with the model', () => {
		const ws = fc.constantFrom('', '', ' ', '\t', '\xa0')
		fc.assert(
			fc.property(
				fc.tuple(ws, ws, ws, ws, ws),
				smallNumber,
				smallNumber,
				fc.integer({ min: 0, max: 5000 }),
				(w, first, last, size) => sameResult(`bytes${w[0]}=${w[1]}${first}${w[2]}-${w[3]}${last}${w[4]}`, size),
			),
			{ numRuns: RUNS },
		)
	})

	test('arbitrary header bytes (any character a header value can carry) agree with the model', () => {
		const headerChar = fc.oneof(
			fc.constantFrom('b', 'y', 't', 'e', 's', 'B', '=', '-', ',', ' ', '\t', '0', '1', '9', 'x', '+', '.', ';'),
			fc.constantFrom('\xa0', '\x85', '\xff'),
		)
		fc.assert(
			fc.property(
				fc.oneof(
					fc.string({ unit: headerChar, maxLength: 24 }),
					fc.string({ unit: headerChar, maxLength: 16 }).map((s) => `bytes=${s}`),
				),
				fc.integer({ min: 0, max: 200 }),
				(header, size) => sameResult(header, size),
			),
			{ numRuns: 20 * RUNS },
		)
	})

	test('whatever the input, a range it returns lies inside the file (0 ≤ start ≤ end < size, integers)', () => {
		fc.assert(
			fc.property(
				fc.oneof(
					fc.string({ maxLength: 40 }),
					unitArb.chain((u) => specArb(anyNumber).map((s) => `${u}=${s}`)),
				),
				sizeArb,
				(header, size) => {
					const got = parseRange(header, size)
					const inside =
						typeof got === 'string' ||
						(Number.isSafeInteger(got.start) &&
							Number.isSafeInteger(got.end) &&
							got.start >= 0 &&
							got.start <= got.end &&
							got.end < size)
					expect({ header: visible(header), size, got, inside }).toEqual({
						header: visible(header),
						size,
						got,
						inside: true,
					})
				},
			),
			{ numRuns: RUNS },
		)
	})
})
