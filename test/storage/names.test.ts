import { describe, expect, test } from 'bun:test'
import { filenameProblem, userIdProblem } from '../../src/storage/names'

// The user_id and filename rules (docs/contract.md §3.1).

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
