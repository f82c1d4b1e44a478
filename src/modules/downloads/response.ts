import { RangeNotSatisfiableError } from '../../errors'
import { contentDisposition } from '../../http/content-disposition'
import { httpDateNow } from '../../http/date'
import { errorResponse } from '../../http/error-response'
import { countedStream } from '../../http/file-stream'
import { contentTypeFor } from '../../http/mime'
import { type DownloadPlan, rangeOf } from './plan'

/** How a download response ended, for the settle step, logs and metrics. */
export interface BodyEnd {
	/** The response's status. */
	readonly status: number
	/** Bytes handed to the HTTP layer (for zero-copy bodies: the body's length, once handed over). */
	readonly written: number
	/** False when the client went away or the source ended early. */
	readonly complete: boolean
}

// The last file's Last-Modified, formatted once: repeated downloads of one file skip toUTCString.
let lastMtimeMs = Number.NaN
let lastModified = ''
function httpDateOf(mtimeMs: number): string {
	if (mtimeMs !== lastMtimeMs) {
		lastMtimeMs = mtimeMs
		lastModified = new Date(mtimeMs).toUTCString()
	}
	return lastModified
}

// Adds the representation's headers to `headers` (the caller's own object: one allocation per response).
function withRepresentationHeaders(plan: DownloadPlan, headers: Record<string, string>): Record<string, string> {
	const { file, claims } = plan
	headers['Content-Type'] = contentTypeFor(claims.filename)
	headers['Content-Disposition'] = contentDisposition(claims.filename)
	headers['X-Content-Type-Options'] = 'nosniff'
	headers['Cache-Control'] = 'private, no-store'
	headers['Accept-Ranges'] = 'bytes'
	headers.ETag = file.etag
	headers['Last-Modified'] = httpDateOf(file.mtimeMs)
	headers.Date = httpDateNow()
	return headers
}

/**
 * Turns a plan into the Response (with `extraHeaders`, e.g. CORS and the
 * request id, among its own), and takes over its file: every path closes it.
 * Bodies come from what the check pinned, never the name: a zero-copy slice
 * of the checked descriptor, or a stream from the checked version. No body
 * exceeds the checked size. `onEnd` reports how each response ended (at once
 * when it has no body, when handed to the runtime for zero-copy bodies and
 * redirects, at the last byte or the break for streams).
 */
export function downloadResponse(
	plan: DownloadPlan,
	method: 'GET' | 'HEAD',
	signal: () => AbortSignal,
	onEnd: (end: BodyEnd) => void,
	extraHeaders: Record<string, string> = {},
): Response {
	const { file, selection, body } = plan

	if (selection.kind === 'not-modified') {
		file.close()
		onEnd({ status: 304, written: 0, complete: true })
		const {
			'Content-Type': _t,
			'Content-Disposition': _d,
			...validators
		} = withRepresentationHeaders(plan, {
			...extraHeaders,
		})
		return new Response(null, { status: 304, headers: validators })
	}
	if (selection.kind === 'unsatisfiable') {
		file.close()
		onEnd({ status: 416, written: 0, complete: true })
		return errorResponse(new RangeNotSatisfiableError(file.size), extraHeaders)
	}
	if (body.kind === 'redirect') {
		file.close()
		onEnd({ status: 302, written: 0, complete: true })
		return new Response(null, {
			status: 302,
			headers: { ...extraHeaders, Location: body.url, 'Cache-Control': 'private, no-store' },
		})
	}

	const headers = withRepresentationHeaders(plan, { ...extraHeaders })
	const { start, end } = rangeOf(selection, file.size)
	const status = selection.kind === 'partial' ? 206 : 200
	if (selection.kind === 'partial') headers['Content-Range'] = `bytes ${start}-${end - 1}/${file.size}`
	headers['Content-Length'] = String(end - start)

	if (method === 'HEAD' || body.kind === 'none') {
		file.close()
		onEnd({ status, written: 0, complete: true })
		return new Response(null, { status, headers })
	}
	if (body.kind === 'zero-copy') {
		file.closeSoon()
		onEnd({ status, written: end - start, complete: true })
		return new Response(body.blob, { status, headers })
	}
	const { stream, abort } = countedStream(
		body.reader,
		end - start,
		(written, complete) => {
			file.close()
			onEnd({ status, written, complete })
		},
		{ rate: plan.claims.rate },
	)
	signal().addEventListener('abort', abort, { once: true })
	return new Response(stream, { status, headers })
}
