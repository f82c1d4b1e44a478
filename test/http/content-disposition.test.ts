import { describe, expect, test } from 'bun:test'
import { asciiFallback, contentDisposition } from '../../src/http/content-disposition'

// Content-Disposition of downloads (docs/contract.md §3.2): an ASCII fallback and the UTF-8 name.

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
