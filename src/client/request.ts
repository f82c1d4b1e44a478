// Step 2, request: one GET with Authorization (+ Range/If-Range), and what its answer means for the download.
import { DownloadError } from './download-error'
import { nonNegativeInt, parseContentRange, strongEtag, unsatisfiedSize } from './http-headers'
import type { DownloadState, RequestPlan } from './plan'

/** The subset of `fetch` the downloader uses; inject one to add proxies, logging or faults. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/** The headers of a planned GET: the token, and `Range` + `If-Range` when it asks for the rest. */
export function requestHeaders(token: string, plan: RequestPlan): Headers {
	const headers = new Headers({ authorization: `Bearer ${token}` })
	if (plan.kind === 'rest') {
		headers.set('range', `bytes=${plan.from}-`)
		headers.set('if-range', plan.ifRange)
	}
	return headers
}

/** A 200 or 206 whose body continues (206) or replaces (200) the bytes on disk. */
export interface BodyAnswer {
	readonly kind: 'body'
	readonly status: 200 | 206
	/** Where the body's first byte goes. */
	readonly from: number
	/** Where it should end (exclusive), when the answer says (`Content-Length`, `Content-Range`). */
	readonly end: number | null
	/** The file's size, when the answer says. */
	readonly size: number | null
	readonly etag: string | null
	readonly lastModified: string | null
}

/** How one GET was answered, as far as the status and headers tell. */
export type Answer =
	| BodyAnswer
	/** A 416 naming exactly the bytes on disk: everything had arrived, only the end of the last answer was lost. */
	| { readonly kind: 'complete'; readonly size: number }
	/** A 206 that contradicts the bytes on disk (another start or another ETag): the download cannot go on. */
	| { readonly kind: 'mismatch'; readonly error: DownloadError }
	/** An error answer: its body says which (`errorFromResponse`). */
	| { readonly kind: 'refused' }

/** Reads a GET's status and headers against where the download stands (pure). */
export function readAnswer(status: number, headers: Headers, state: DownloadState): Answer {
	const etag = strongEtag(headers.get('etag'))
	const lastModified = headers.get('last-modified')
	if (status === 200) {
		const length = nonNegativeInt(headers.get('content-length'))
		return { kind: 'body', status, from: 0, end: length, size: length, etag, lastModified }
	}
	if (status === 206) {
		const raw = headers.get('content-range')
		const range = parseContentRange(raw)
		if (range === null || range.start !== state.received) {
			const message = `asked for bytes from ${state.received}, got Content-Range ${raw}`
			return { kind: 'mismatch', error: new DownloadError('range_mismatch', 206, message) }
		}
		if (state.etag !== null && etag !== null && etag !== state.etag) {
			const message = `a 206 for ${etag} continued ${state.etag}`
			return { kind: 'mismatch', error: new DownloadError('validator_mismatch', 206, message) }
		}
		return { kind: 'body', status, from: range.start, end: range.end + 1, size: range.size, etag, lastModified }
	}
	if (status === 416 && state.received > 0 && unsatisfiedSize(headers.get('content-range')) === state.received)
		return { kind: 'complete', size: state.received }
	return { kind: 'refused' }
}

/**
 * Sends one GET. A network failure comes back as a `network_error` to retry;
 * an aborted `signal` throws its reason.
 */
export async function send(
	fetchLike: FetchLike,
	url: string | URL,
	init: { headers: Headers; signal: AbortSignal | undefined },
): Promise<Response | DownloadError> {
	try {
		return await fetchLike(url, init)
	} catch (err) {
		if (init.signal?.aborted) throw init.signal.reason
		return new DownloadError('network_error', null, `request failed: ${String(err)}`, { cause: err })
	}
}

/** The size a free `HEAD` reports for the same representation (ETag `validator`, when known), or null. */
export async function headSize(
	fetchLike: FetchLike,
	url: string | URL,
	init: { token: string; validator: string | null; signal: AbortSignal | undefined },
): Promise<number | null> {
	try {
		const res = await fetchLike(url, {
			method: 'HEAD',
			headers: { authorization: `Bearer ${init.token}` },
			signal: init.signal,
		})
		if (!res.ok) return null
		const sameFile = init.validator === null || res.headers.get('etag') === init.validator
		return sameFile ? nonNegativeInt(res.headers.get('content-length')) : null
	} catch {
		return null
	}
}
