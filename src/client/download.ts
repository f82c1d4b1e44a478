import { type FileHandle, open } from 'node:fs/promises'
import { writeBody } from './body'
import { DownloadError, errorFromResponse } from './download-error'
import { retryAfterMs } from './http-headers'
import { type DownloadState, discarded, planRequest, progressOf, startState, validSizeHint } from './plan'
import { type BodyAnswer, type FetchLike, headSize, readAnswer, requestHeaders, send } from './request'
import {
	afterRefusal,
	type BodyVerdict,
	completed,
	createTokenKeeper,
	enterBody,
	judgeBody,
	type TokenKeeper,
	withHeadSize,
	withoutOutgrownHint,
} from './resume'
import { createRetries, type Retries } from './retry'

export type { ClientErrorCode, DownloadErrorCode } from './download-error'
export { DownloadError } from './download-error'
export type { FetchLike } from './request'

/** Progress of a download: bytes on disk so far, and the file's size once known. */
export interface DownloadProgress {
	readonly received: number
	/** From the caller's `size`, `Content-Length`, the `Content-Range` total or a `HEAD`; null while unknown. */
	readonly total: number | null
}

/** A token answer of the service (docs/contract.md §3.1), or the parts of it a download needs. */
export interface IssuedDownload {
	readonly token: string
	readonly download_url: string
	/** The file's bytes at issuance (services before `size` was added do not send it). */
	readonly size?: number | null
}

/** What to download: a URL and token (and the size if known), or a whole token answer. */
export type DownloadTarget =
	| {
			/** The download URL, e.g. the `download_url` of a token answer. */
			readonly url: string | URL
			/** The download token, sent as `Authorization: Bearer <token>`. */
			readonly token: string
			/**
			 * The file's size if known (the token answer's `size`): progress then has a
			 * total from the first byte, and no `HEAD` is needed when the body comes
			 * without a length (budgeted bodies are chunked). Ignored unless a whole number.
			 */
			readonly size?: number | null
			readonly issued?: never
	  }
	| {
			/** A token answer (`token`, `download_url` and, from current services, `size`), passed as is. */
			readonly issued: IssuedDownload
			readonly url?: never
			readonly token?: never
			readonly size?: never
	  }

/** How `downloadToFile` behaves, whatever it downloads. */
export interface DownloadSettings {
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

/** What `downloadToFile` needs. */
export type DownloadOptions = DownloadTarget & DownloadSettings

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

/** What every step of one download shares. */
interface Download {
	readonly url: string | URL
	readonly fetch: FetchLike
	readonly signal: AbortSignal | undefined
	readonly file: FileHandle
	readonly tokens: TokenKeeper
	readonly retries: Retries
	readonly report: (state: DownloadState) => void
}

/**
 * Downloads `url` with a download token into `dest`, streaming each chunk to
 * disk (constant memory whatever the size).
 *
 * A dropped connection (the body errors, `fetch` throws, or the body ends
 * short of its announced length) resumes with `Range: bytes=<received>-` and
 * `If-Range: <ETag>` on the same token, as the service's byte budget allows
 * (docs/contract.md §3.2). A 200 to a resume means the file changed: the download restarts
 * from zero. `token_used_up` / `token_expired` ask `getFreshToken` for a new
 * token; other 4xx throw at once; 429/502/503/504 and network errors are
 * retried up to `maxAttempts` times in a row. When a 200 has no length
 * (budgeted bodies are sent chunked) and no `size` was given, a free `HEAD`
 * learns the size.
 *
 * On failure it throws `DownloadError` (or the signal's reason when aborted)
 * and leaves the partial file in place.
 */
export async function downloadToFile(options: DownloadOptions): Promise<DownloadResult> {
	const { url, token, sizeHint } = targetOf(options)
	const { signal } = options
	signal?.throwIfAborted()
	let state = startState(sizeHint)

	const file = await open(options.dest, 'w')
	const d: Download = {
		url,
		fetch: options.fetch ?? ((input, init) => fetch(input, init)),
		signal,
		file,
		tokens: createTokenKeeper(token, options.getFreshToken),
		retries: createRetries({
			maxAttempts: options.maxAttempts ?? 5,
			baseDelayMs: options.retryDelayMs ?? 250,
			signal,
		}),
		report: progressReporter(options.onProgress),
	}
	try {
		for (let done = false; !done; ) ({ state, done } = await attempt(d, state))
	} finally {
		await file.close()
	}
	d.report(state)
	return { bytes: state.received, resumed: state.resumed, tokensUsed: d.tokens.used, etag: state.etag }
}

/**
 * One GET and what follows from it: plan where it starts, send it, then write
 * its body and judge the cut (resume), or act on a refusal (fresh token,
 * retry). Returns the new state and whether the file is complete.
 */
async function attempt(d: Download, state: DownloadState): Promise<{ state: DownloadState; done: boolean }> {
	// 1. plan: the whole file, or the rest of it after what is on disk.
	const plan = planRequest(state)
	if (plan.kind === 'whole' && plan.discard) {
		await d.file.truncate(0)
		state = discarded(state)
		d.report(state)
	}

	// 2. request
	const headers = requestHeaders(d.tokens.current, plan)
	const response = await send(d.fetch, d.url, { headers, signal: d.signal })
	if (response instanceof DownloadError) {
		await d.retries.failed(response)
		return { state, done: false }
	}
	const answer = readAnswer(response.status, response.headers, state)
	switch (answer.kind) {
		case 'mismatch':
			await response.body?.cancel().catch(() => {})
			throw answer.error
		case 'complete':
			await response.body?.cancel().catch(() => {})
			return { state: completed(state, answer.size), done: true }
		case 'refused':
			await handleRefusal(d, response)
			return { state, done: false }
	}

	// 3. resume: write the body, then judge how it stopped.
	const received = await receiveBody(d, state, response, answer)
	const { verdict } = received
	if (verdict.next === 'fail') throw verdict.error
	// 4. retry: a cut that delivered nothing waits before the next attempt; one that delivered resumes at once.
	if (verdict.next === 'retry') await d.retries.failed(verdict.error)
	return { state: received.state, done: verdict.next === 'done' }
}

function targetOf(options: DownloadTarget): { url: string | URL; token: string; sizeHint: number | null } {
	if (options.issued !== undefined) {
		const { issued } = options
		return { url: issued.download_url, token: issued.token, sizeHint: validSizeHint(issued.size) }
	}
	return { url: options.url, token: options.token, sizeHint: validSizeHint(options.size) }
}

/** Reports progress when it changed. */
function progressReporter(onProgress: ((progress: DownloadProgress) => void) | undefined) {
	let last: DownloadProgress | null = null
	return (state: DownloadState): void => {
		const next = progressOf(state)
		if (last?.received === next.received && last.total === next.total) return
		last = next
		onProgress?.(next)
	}
}

/** An error answer: swaps a used-up or expired token for a fresh one (3. resume), waits to retry (4.), or throws. */
async function handleRefusal(d: Download, response: Response): Promise<void> {
	const error = await errorFromResponse(response)
	switch (afterRefusal(error, d.tokens.canRefresh)) {
		case 'refresh':
			return d.tokens.refresh()
		case 'retry':
			return d.retries.failed(error, retryAfterMs(response.headers.get('retry-after')))
		case 'fail':
			throw error
	}
}

/** Writes one 200/206 body to disk and judges how it stopped. */
async function receiveBody(
	d: Download,
	state: DownloadState,
	response: Response,
	answer: BodyAnswer,
): Promise<{ state: DownloadState; verdict: BodyVerdict }> {
	// A 200 to a resume: If-Range failed, the file changed since the first bytes; start over.
	if (answer.status === 200 && state.received > 0) await d.file.truncate(0)
	let now = enterBody(state, answer)
	d.report(now)
	// Budgeted bodies come chunked, without a length: unless the caller said, a free HEAD tells the size.
	const askHead = () => headSize(d.fetch, d.url, { token: d.tokens.current, validator: now.etag, signal: d.signal })
	const early = answer.status === 200 && now.size === null ? askHead() : null

	const before = now.received
	const written = await writeBody(d.file, response, d.signal, {
		from: before,
		end: answer.end,
		onWritten: (received) => d.report({ ...now, received }),
	})
	now = withoutOutgrownHint({ ...now, received: written.received })
	// A hint the body outgrew was about an older file: ask, as if none had been given.
	const head = early ?? (answer.status === 200 && now.size === null ? askHead() : null)
	if (head) {
		now = withHeadSize(now, await head)
		d.report(now)
	}
	if (now.received > before) {
		d.retries.succeeded()
		d.tokens.proven()
	}
	return {
		state: now,
		verdict: judgeBody(now, { status: answer.status, before, end: answer.end, broken: written.broken }),
	}
}
