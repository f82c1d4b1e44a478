import { type FileHandle, open } from 'node:fs/promises'
import type { ErrorCode } from '../errors'

/** The subset of `fetch` the downloader uses; inject one to add proxies, logging or faults. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/** Progress of a download: bytes on disk so far, and the file's size once known. */
export interface DownloadProgress {
	readonly received: number
	/** From `Content-Length`, the `Content-Range` total or a `HEAD`; null while unknown. */
	readonly total: number | null
}

/** What `downloadToFile` needs. */
export interface DownloadOptions {
	/** The download URL, e.g. the `download_url` of a token answer. */
	readonly url: string | URL
	/** The download token, sent as `Authorization: Bearer <token>`. */
	readonly token: string
	/** Where to write the file; created or truncated. */
	readonly dest: string
	/** Called after every chunk written (and with 0 when a changed file restarts the download). */
	readonly onProgress?: (progress: DownloadProgress) => void
	/**
	 * Asked for a new token when the service answers `token_used_up` or
	 * `token_expired`; the download then continues with `Range` where it was.
	 * Without it, those answers throw a `DownloadError`.
	 */
	readonly getFreshToken?: () => string | Promise<string>
	/** The `fetch` to use (default: the global one). */
	readonly fetch?: FetchLike
	/**
	 * How many requests in a row may fail (network error, 429, 502, 503, 504)
	 * without delivering a byte before the download gives up. Default 5.
	 * A dropped connection that delivered bytes resumes at once and resets the count.
	 */
	readonly maxAttempts?: number
	/** Base delay between failed attempts, doubled each time (at most 30 s); `Retry-After` wins when sent. Default 250. */
	readonly retryDelayMs?: number
	/** Aborts the download; the promise rejects with the signal's reason. */
	readonly signal?: AbortSignal
}

/** What a finished download did. */
export interface DownloadResult {
	/** Bytes in `dest`, i.e. the file's size. */
	readonly bytes: number
	/** How many times the download continued with a `Range` request after a drop. */
	readonly resumed: number
	/** How many tokens were used: 1, plus one per `getFreshToken` call. */
	readonly tokensUsed: number
	/** The ETag of the downloaded representation, if the service sent one. */
	readonly etag: string | null
}

/** Failures detected by the client itself rather than answered by the service. */
export type ClientErrorCode =
	/** Every attempt failed (network error, 429, 502, 503, 504 without a service code). */
	| 'network_error'
	/** A 206 did not start where the download stands. */
	| 'range_mismatch'
	/** A 206 carried another ETag than the bytes already on disk. */
	| 'validator_mismatch'
	/** More bytes arrived than announced. */
	| 'length_mismatch'
	/** A status or body the service does not send. */
	| 'unexpected_response'

/** A service error code (SPEC §3), a client-side one, or a code this client does not know yet. */
export type DownloadErrorCode = ErrorCode | ClientErrorCode | (string & {})

/** Why a download failed: the service's `{ error, message }` with its status, or a client-side code. */
export class DownloadError extends Error {
	override readonly name = 'DownloadError'

	constructor(
		/** Stable machine-readable code, e.g. `token_used_up`, `file_not_found`, `network_error`. */
		readonly code: DownloadErrorCode,
		/** The HTTP status that carried the error; null when no response did. */
		readonly status: number | null,
		message: string,
		options?: { cause?: unknown },
	) {
		super(message, options)
	}
}

const MAX_BACKOFF_MS = 30_000
const RETRYABLE_STATUS = new Set([429, 502, 503, 504])
const REFRESHABLE_CODES = new Set(['token_used_up', 'token_expired'])

function nonNegativeInt(raw: string | null): number | null {
	if (raw === null || !/^\d{1,15}$/.test(raw.trim())) return null
	return Number(raw.trim())
}

/** `bytes <start>-<end>/<size|*>` → numbers, or null when malformed. */
function parseContentRange(raw: string | null): { start: number; end: number; size: number | null } | null {
	const m = raw === null ? null : /^\s*bytes\s+(\d{1,15})-(\d{1,15})\/(\d{1,15}|\*)\s*$/i.exec(raw)
	if (!m) return null
	const start = Number(m[1])
	const end = Number(m[2])
	const size = m[3] === '*' ? null : Number(m[3])
	if (end < start || (size !== null && end >= size)) return null
	return { start, end, size }
}

/** The file size a 416 names in its `Content-Range` (unsatisfied-range form), or null. */
function unsatisfiedSize(raw: string | null): number | null {
	const m = raw === null ? null : /^\s*bytes\s+\*\/(\d{1,15})\s*$/i.exec(raw)
	return m ? Number(m[1]) : null
}

/** Milliseconds a `Retry-After` (seconds or HTTP-date) asks for, or null. */
function retryAfterMs(raw: string | null, now = Date.now()): number | null {
	if (raw === null) return null
	const seconds = nonNegativeInt(raw)
	if (seconds !== null) return seconds * 1000
	const date = Date.parse(raw)
	return Number.isNaN(date) ? null : Math.max(0, date - now)
}

/** A strong ETag is usable in `If-Range`; a weak one is not (RFC 9110 §13.1.5). */
function strongEtag(raw: string | null): string | null {
	return raw?.startsWith('"') ? raw : null
}

/** Turns an error answer into a `DownloadError`, keeping the service's `{ error, message }`. */
async function failureOf(response: Response): Promise<DownloadError> {
	const text = await response.text().catch(() => '')
	try {
		const body: unknown = JSON.parse(text)
		if (typeof body === 'object' && body !== null && 'error' in body && typeof body.error === 'string') {
			const message = 'message' in body && typeof body.message === 'string' ? body.message : body.error
			return new DownloadError(body.error, response.status, message)
		}
	} catch {
		// not JSON: fall through
	}
	return new DownloadError('unexpected_response', response.status, `HTTP ${response.status}: ${text.slice(0, 200)}`)
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
	return new Promise((resolve, reject) => {
		if (signal?.aborted) return reject(signal.reason)
		const onAbort = () => {
			clearTimeout(timer)
			reject(signal?.reason)
		}
		const timer = setTimeout(() => {
			signal?.removeEventListener('abort', onAbort)
			resolve()
		}, ms)
		signal?.addEventListener('abort', onAbort, { once: true })
	})
}

async function writeAll(file: FileHandle, chunk: Uint8Array, position: number): Promise<void> {
	let done = 0
	while (done < chunk.byteLength) {
		const { bytesWritten } = await file.write(chunk, done, chunk.byteLength - done, position + done)
		done += bytesWritten
	}
}

/**
 * Downloads `url` with a download token into `dest`, streaming each chunk to
 * disk (constant memory whatever the size).
 *
 * A dropped connection (the body errors, `fetch` throws, or the body ends
 * short of its announced length) resumes with `Range: bytes=<received>-` and
 * `If-Range: <ETag>` on the same token, as the service's byte budget allows
 * (SPEC §3.2). A 200 to a resume means the file changed: the download restarts
 * from zero. `token_used_up` / `token_expired` ask `getFreshToken` for a new
 * token; other 4xx throw at once; 429/502/503/504 and network errors are
 * retried up to `maxAttempts` times in a row. When a 200 has no length
 * (budgeted bodies are sent chunked), a free `HEAD` learns the size.
 *
 * On failure it throws `DownloadError` (or the signal's reason when aborted)
 * and leaves the partial file in place.
 */
export async function downloadToFile(options: DownloadOptions): Promise<DownloadResult> {
	const doFetch: FetchLike = options.fetch ?? ((input, init) => fetch(input, init))
	const maxAttempts = Math.max(1, options.maxAttempts ?? 5)
	const retryDelayMs = Math.max(0, options.retryDelayMs ?? 250)
	const { signal, url } = options
	signal?.throwIfAborted()

	let token = options.token
	let tokensUsed = 1
	let freshTokenUnproven = false // a token from getFreshToken that has not delivered a byte yet
	let received = 0
	let total: number | null = null
	let etag: string | null = null
	let lastModified: string | null = null
	let resumed = 0
	let failures = 0
	let reported: DownloadProgress | null = null

	const report = () => {
		if (reported?.received === received && reported.total === total) return
		reported = { received, total }
		options.onProgress?.(reported)
	}

	/** Counts a failed attempt and waits before the next, or throws when attempts are spent. */
	const failed = async (error: DownloadError, retryAfter: number | null = null) => {
		failures += 1
		if (failures >= maxAttempts) throw error
		await sleep(retryAfter ?? Math.min(MAX_BACKOFF_MS, retryDelayMs * 2 ** (failures - 1)), signal)
	}

	/** The size from a free HEAD, when the GET did not say (chunked budgeted bodies). */
	const headLength = (validator: string | null): Promise<number | null> =>
		doFetch(url, { method: 'HEAD', headers: { authorization: `Bearer ${token}` }, signal }).then(
			(res) => {
				if (!res.ok) return null
				const sameFile = validator === null || res.headers.get('etag') === validator
				return sameFile ? nonNegativeInt(res.headers.get('content-length')) : null
			},
			() => null,
		)

	const file = await open(options.dest, 'w')
	try {
		for (;;) {
			const headers = new Headers({ authorization: `Bearer ${token}` })
			const validator = etag ?? lastModified
			if (received > 0 && validator === null) {
				// Nothing proves the file is unchanged: a Range could splice two versions.
				await file.truncate(0)
				received = 0
				report()
			}
			if (received > 0 && validator !== null) {
				headers.set('range', `bytes=${received}-`)
				headers.set('if-range', validator)
			}

			let response: Response
			try {
				response = await doFetch(url, { headers, signal })
			} catch (err) {
				if (signal?.aborted) throw signal.reason
				await failed(new DownloadError('network_error', null, `request failed: ${String(err)}`, { cause: err }))
				continue
			}

			// Where this body should end (exclusive), when the answer says.
			let expectedEnd: number | null
			let lengthFromHead: Promise<number | null> | null = null
			if (response.status === 200) {
				if (received > 0) {
					// If-Range failed: the file changed since the first bytes, start over.
					await file.truncate(0)
					received = 0
				}
				etag = strongEtag(response.headers.get('etag'))
				lastModified = response.headers.get('last-modified')
				expectedEnd = nonNegativeInt(response.headers.get('content-length'))
				total = expectedEnd
				if (total === null) lengthFromHead = headLength(etag)
				report()
			} else if (response.status === 206) {
				const range = parseContentRange(response.headers.get('content-range'))
				const answerEtag = strongEtag(response.headers.get('etag'))
				if (range === null || range.start !== received) {
					await response.body?.cancel().catch(() => {})
					throw new DownloadError(
						'range_mismatch',
						206,
						`asked for bytes from ${received}, got Content-Range ${response.headers.get('content-range')}`,
					)
				}
				if (etag !== null && answerEtag !== null && answerEtag !== etag) {
					await response.body?.cancel().catch(() => {})
					throw new DownloadError('validator_mismatch', 206, `a 206 for ${answerEtag} continued ${etag}`)
				}
				etag ??= answerEtag
				total = range.size ?? total
				expectedEnd = range.end + 1
				if (received > 0) resumed += 1
				report()
			} else if (response.status === 416 && received > 0) {
				const size = unsatisfiedSize(response.headers.get('content-range'))
				if (size === received) {
					// Everything had arrived; only the end of the last answer was lost.
					await response.body?.cancel().catch(() => {})
					total = size
					break
				}
				throw await failureOf(response)
			} else {
				const failure = await failureOf(response)
				if (
					response.status === 401 &&
					REFRESHABLE_CODES.has(failure.code) &&
					options.getFreshToken &&
					!freshTokenUnproven
				) {
					token = await options.getFreshToken()
					tokensUsed += 1
					freshTokenUnproven = true
					continue
				}
				if (RETRYABLE_STATUS.has(response.status)) {
					await failed(failure, retryAfterMs(response.headers.get('retry-after')))
					continue
				}
				throw failure
			}

			// Stream the body to disk, chunk by chunk.
			const before = received
			let broken: unknown = null
			const reader = response.body?.getReader()
			if (reader) {
				for (;;) {
					let chunk: Awaited<ReturnType<typeof reader.read>>
					try {
						chunk = await reader.read()
					} catch (err) {
						if (signal?.aborted) throw signal.reason
						broken = err
						break
					}
					if (chunk.done) break
					const bytes = chunk.value
					if (expectedEnd !== null && received + bytes.byteLength > expectedEnd) {
						await reader.cancel().catch(() => {})
						throw new DownloadError(
							'length_mismatch',
							response.status,
							`more bytes than announced (${expectedEnd - before} from ${before})`,
						)
					}
					await writeAll(file, bytes, received)
					received += bytes.byteLength
					report()
					signal?.throwIfAborted()
				}
				reader.releaseLock()
			}
			if (lengthFromHead) {
				total ??= await lengthFromHead
				expectedEnd ??= total
				report()
			}
			if (received > before) {
				failures = 0
				freshTokenUnproven = false
			}
			if (total !== null && received > total)
				throw new DownloadError('length_mismatch', response.status, `received ${received} of a ${total}-byte file`)

			const short = expectedEnd !== null && received < expectedEnd
			if (broken !== null || short) {
				// The connection dropped: resume at once if it made progress, else back off.
				if (received === before) {
					const why = broken === null ? 'the body ended early' : `the body failed: ${String(broken)}`
					await failed(new DownloadError('network_error', null, why, { cause: broken }))
				}
				continue
			}
			// A range shorter than asked for: ask for the rest.
			if (total !== null && received < total) continue
			break
		}
	} finally {
		await file.close()
	}
	report()
	return { bytes: received, resumed, tokensUsed, etag }
}
