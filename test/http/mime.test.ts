import { describe, expect, test } from 'bun:test'
import { contentTypeFor } from '../../src/http/mime'

// Content-Type of downloads, by extension.

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
