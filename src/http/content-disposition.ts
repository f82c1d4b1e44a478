import { BoundedCache, stringBytes } from '../bounded-cache'

// RFC 5987 attr-char: everything else in filename* is percent-encoded.
const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/

function encodeExtValue(value: string): string {
	let out = ''
	for (const ch of value) {
		if (ATTR_CHAR.test(ch)) out += ch
		else for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
	}
	return out
}

/**
 * An ASCII stand-in: accents dropped (é → e), other non-ASCII, quotes and
 * backslashes become `_`; a name left empty or hidden (all marks, `.mp4`)
 * gets a `download` stem, so old clients never save a dot-file.
 */
export function asciiFallback(filename: string): string {
	const ascii = filename
		.normalize('NFKD')
		.replace(/\p{M}/gu, '')
		.replace(/[^\x20-\x7e]|["\\%/]/gu, '_')
	return ascii === '' || ascii.startsWith('.') ? `download${ascii}` : ascii
}

/**
 * `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>`
 * (RFC 6266 / RFC 5987), so old clients get a safe name and new ones the real one.
 */
export function contentDisposition(filename: string): string {
	let value = memo.get(filename)
	if (value === undefined) {
		value = `attachment; filename="${asciiFallback(filename)}"; filename*=UTF-8''${encodeExtValue(filename)}`
		memo.set(filename, value)
	}
	return value
}

// The same few files are downloaded over and over; encoding them once is enough.
const memo = new BoundedCache<string>(256 * 1024, (key, value) => stringBytes(key) + stringBytes(value))
