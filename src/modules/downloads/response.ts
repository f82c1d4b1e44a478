import { RangeNotSatisfiableError } from '../../errors'
import { contentDisposition } from '../../http/content-disposition'
import { httpDateNow } from '../../http/date'
import { errorResponse } from '../../http/error-response'
import { fileStream, SINGLE_READ_BYTES } from '../../http/file-stream'
import { contentTypeFor } from '../../http/mime'
import type { DownloadPlan } from './service'

/** How a download response ended, for the settle step, logs and metrics. */
export interface BodyEnd {
	/** The response's status. */
	readonly status: number
	/** Bytes handed to the HTTP layer (for zero-copy bodies: the body's length, once handed over). */
	readonly written: number
	/** False when the client went away or the file ended early. */
	readonly complete: boolean
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
	headers['Last-Modified'] = new Date(file.mtimeMs).toUTCString()
	headers.Date = httpDateNow()
	return headers
}

/**
 * Turns a plan into the Response (with `extraHeaders`, e.g. CORS and the
 * request id, among its own), and takes over its file: every path closes
 * it. Bodies come from the file opened at the check, never the path: zero-copy
 * `Bun.file` bodies reopen that very file through `/proc/self/fd`, counted
 * streams read its descriptor. No body exceeds the checked size. Budgeted
 * bodies are counted so a broken connection can give back what was never
 * written; `onEnd` reports how each response ended (at once when it has no
 * body, when handed to the runtime for zero-copy bodies, at the last byte or
 * the break for counted ones).
 */
export function downloadResponse(
	plan: DownloadPlan,
	method: 'GET' | 'HEAD',
	signal: AbortSignal,
	onEnd: (end: BodyEnd) => void,
	extraHeaders: Record<string, string> = {},
): Response {
	const { file, selection } = plan
	const headers = withRepresentationHeaders(plan, { ...extraHeaders })

	if (selection.kind === 'not-modified') {
		file.close()
		onEnd({ status: 304, written: 0, complete: true })
		const { 'Content-Type': _t, 'Content-Disposition': _d, ...validators } = headers
		return new Response(null, { status: 304, headers: validators })
	}
	if (selection.kind === 'unsatisfiable') {
		file.close()
		onEnd({ status: 416, written: 0, complete: true })
		return errorResponse(new RangeNotSatisfiableError(file.size), extraHeaders)
	}

	const start = selection.kind === 'partial' ? selection.start : 0
	const end = selection.kind === 'partial' ? selection.end + 1 : file.size
	const status = selection.kind === 'partial' ? 206 : 200
	if (selection.kind === 'partial') headers['Content-Range'] = `bytes ${start}-${end - 1}/${file.size}`
	headers['Content-Length'] = String(end - start)
	if (method === 'HEAD') {
		file.close()
		onEnd({ status, written: 0, complete: true })
		return new Response(null, { status, headers })
	}

	// Bun answers a Range request itself when the body is a whole file, so a
	// deliberate 200 to a Range request (If-Range failed, unparsable range) is streamed.
	const ignoredRange = selection.kind === 'full' && selection.rangeIgnored
	// A budgeted body that fits in one read leaves in one write whether counted
	// or not, so counting it in JS learns little (only a drop before that
	// write, then worth at most 64 KiB of budget); it gets the cheaper file
	// body, and its Content-Length, like an unlimited one.
	const counted = plan.budgeted && end - start > SINGLE_READ_BYTES
	if (!counted && !ignoredRange && file.reopenPath !== null) {
		// The slice caps the body at the checked size even if the file grows; Bun
		// opens its own descriptor on the same inode while rendering, then ours goes.
		const body = Bun.file(file.reopenPath).slice(start, end)
		file.closeSoon()
		onEnd({ status, written: end - start, complete: true })
		return new Response(body, { status, headers })
	}

	const { stream, abort } = fileStream(file, start, end, (written, complete) => {
		file.close()
		onEnd({ status, written, complete })
	})
	signal.addEventListener('abort', abort, { once: true })
	return new Response(stream, { status, headers })
}
