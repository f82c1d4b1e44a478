// Pure parsers for the response headers the downloader acts on; each returns null for anything malformed.

/** A whole number of at most 15 digits (so it stays exact as a JS number), or null. */
export function nonNegativeInt(raw: string | null): number | null {
	if (raw === null || !/^\d{1,15}$/.test(raw.trim())) return null
	return Number(raw.trim())
}

/** A satisfied `Content-Range`: the first and last byte sent, and the file's size when named. */
export interface ContentRange {
	readonly start: number
	readonly end: number
	readonly size: number | null
}

/** `bytes <start>-<end>/<size|*>` → numbers, or null when malformed or inconsistent. */
export function parseContentRange(raw: string | null): ContentRange | null {
	const m = raw === null ? null : /^\s*bytes\s+(\d{1,15})-(\d{1,15})\/(\d{1,15}|\*)\s*$/i.exec(raw)
	if (!m) return null
	const start = Number(m[1])
	const end = Number(m[2])
	const size = m[3] === '*' ? null : Number(m[3])
	if (end < start || (size !== null && end >= size)) return null
	return { start, end, size }
}

/** The file size a 416 names in the unsatisfied-range form of its `Content-Range`, or null. */
export function unsatisfiedSize(raw: string | null): number | null {
	const m = raw === null ? null : /^\s*bytes\s+\*\/(\d{1,15})\s*$/i.exec(raw)
	return m ? Number(m[1]) : null
}

/** Milliseconds a `Retry-After` (delay in seconds, or an HTTP-date) asks for, or null. */
export function retryAfterMs(raw: string | null, now = Date.now()): number | null {
	if (raw === null) return null
	const seconds = nonNegativeInt(raw)
	if (seconds !== null) return seconds * 1000
	const date = Date.parse(raw)
	return Number.isNaN(date) ? null : Math.max(0, date - now)
}

/** The ETag if it is strong (usable in `If-Range`, RFC 9110 §13.1.5), else null. */
export function strongEtag(raw: string | null): string | null {
	return raw?.startsWith('"') ? raw : null
}
