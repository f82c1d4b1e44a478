import { bucketTimeout } from './s3-errors'
import { type CheckedFile, ObjectChangedError } from './types'

// Sending a signed request to the bucket and reading what it answered: an
// answer is trusted only for the version that was checked and the bytes asked.

/** The ETag header as a quoted strong validator, or null when absent or weak. */
export function strongEtag(value: string | null): string | null {
	if (value === null) return null
	if (/^"[^"]*"$/.test(value)) return value
	// Some servers leave the quotes off; a weak validator (W/"…") cannot pin a version.
	return /^[^"\s/]+$/.test(value) ? `"${value}"` : null
}

/** A Content-Length header's value, or null when absent or not a plain count. */
export function lengthOf(value: string | null): number | null {
	return value !== null && /^\d+$/.test(value) ? Number(value) : null
}

/** Sends a request that fails with a `TimeoutError` when no answer starts within `timeoutMs`. */
export async function send(
	url: string,
	init: RequestInit,
	abort: AbortController,
	timeoutMs: number,
): Promise<Response> {
	const timer = setTimeout(() => abort.abort(bucketTimeout(timeoutMs)), timeoutMs)
	try {
		// Bytes as stored: a Content-Encoding of the object must not be undone on the way.
		// A redirect (a bucket in another region) is an answer to report, not to follow with this signature.
		return await fetch(url, { ...init, signal: abort.signal, decompress: false, redirect: 'manual' })
	} finally {
		clearTimeout(timer)
	}
}

/**
 * The body of a GET answer and how many bytes it holds, when they start at
 * byte `start` of `version` and cover `[start, end)`; else why not: an
 * `ObjectChangedError` when the object changed or went, another Error when
 * the bucket misbehaved.
 */
export function answerOf(
	response: Response,
	version: CheckedFile,
	start: number,
	end: number,
): { body: ReadableStream<Uint8Array>; length: number } | Error {
	const { status, headers, body } = response
	// 412: If-Match failed; 404: deleted; 416: it shrank below the range.
	if (status === 412 || status === 404 || status === 416)
		return new ObjectChangedError(`the object answered ${status} where ${version.etag} was checked`)
	if (status !== 206 && status !== 200) return new Error(`the bucket answered GET with ${status}`)
	// If-Match is not honoured everywhere (s3rver ignores it): the answer's own ETag decides.
	const etag = strongEtag(headers.get('etag'))
	if (etag !== version.etag)
		return new ObjectChangedError(`the object's ETag is ${etag ?? 'missing'} where ${version.etag} was checked`)
	const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(headers.get('content-range') ?? '')
	if (status === 206 && range === null) return new Error(`the bucket answered 206 without a Content-Range`)
	// A 200 is the whole object.
	const [first, last, total] = range
		? [Number(range[1]), Number(range[2]), Number(range[3])]
		: [0, version.size - 1, version.size]
	if (total !== version.size)
		return new ObjectChangedError(`the object is ${total} bytes where ${version.size} were checked`)
	const length = last - first + 1
	if (first !== start || last < end - 1 || lengthOf(headers.get('content-length')) !== length || body === null)
		return new Error(`the bucket answered other bytes than ${start}-${end - 1}: ${status} ${range?.[0] ?? ''}`)
	return { body, length }
}
