import { retryAfterMs } from './webhook-backoff'
import type { WebhookHeaders } from './webhook-signer'

/** `fetch` as the worker calls it (the global one by default; tests may wrap it). */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>

/**
 * How one attempt ended: `delivered` is any 2xx; `redirect` a 3xx (never
 * followed); `client_error` 4xx; `server_error` 5xx (and anything else not
 * 2xx); `timeout` no answer within the attempt's time; `network_error` the
 * connection failed (refused, reset, DNS, TLS).
 */
export type WebhookAttemptOutcome =
	| 'delivered'
	| 'redirect'
	| 'client_error'
	| 'server_error'
	| 'timeout'
	| 'network_error'

/** What one POST came to. */
export interface AttemptResult {
	readonly outcome: WebhookAttemptOutcome
	/** From the start of the request to the response's headers (or the failure). */
	readonly seconds: number
	/** For a failure: one short line for logs and the dead-letter entry. */
	readonly error: string | null
	/** The receiver's `Retry-After`, in ms, when it sent one with a failure. */
	readonly retryAfterMs: number | null
}

/** How much of a failure's body goes into the error line. */
const SNIPPET_BYTES = 200

function outcomeOf(status: number): WebhookAttemptOutcome {
	if (status >= 200 && status < 300) return 'delivered'
	if (status >= 300 && status < 400) return 'redirect'
	if (status >= 400 && status < 500) return 'client_error'
	return 'server_error'
}

/** The start of a body, read until SNIPPET_BYTES or `signal`; the rest is cancelled, never buffered. */
async function snippet(response: Response, signal: AbortSignal): Promise<string> {
	const body = response.body
	if (body === null) return ''
	const reader = body.getReader()
	const aborted = new Promise<null>((resolve) => {
		if (signal.aborted) resolve(null)
		signal.addEventListener('abort', () => resolve(null), { once: true })
	})
	const parts: Uint8Array[] = []
	let length = 0
	try {
		while (length < SNIPPET_BYTES) {
			const chunk = await Promise.race([reader.read(), aborted])
			if (chunk === null || chunk.done) break
			parts.push(chunk.value)
			length += chunk.value.byteLength
		}
	} catch {
		// A body that breaks off says nothing more about the failure than its status.
	} finally {
		reader.cancel().catch(() => {})
	}
	const text = new TextDecoder().decode(Buffer.concat(parts).subarray(0, SNIPPET_BYTES))
	return text.replace(/\s+/g, ' ').trim()
}

/**
 * POSTs `body` once. Redirects are not followed (`redirect: 'manual'`): a
 * 3xx is a failure, so a signed event never goes wherever a receiver (or
 * whoever took over its address) points. The whole attempt, body included,
 * is bounded by `timeoutMs`. Never throws.
 */
export async function postWebhook(
	fetchFn: FetchLike,
	url: string,
	headers: WebhookHeaders,
	body: string,
	timeoutMs: number,
	nowMs: () => number,
): Promise<AttemptResult> {
	const signal = AbortSignal.timeout(timeoutMs)
	const started = performance.now()
	const elapsed = () => (performance.now() - started) / 1000
	let response: Response
	try {
		response = await fetchFn(url, { method: 'POST', headers: { ...headers }, body, redirect: 'manual', signal })
	} catch (err) {
		const seconds = elapsed()
		if (signal.aborted) {
			return { outcome: 'timeout', seconds, error: `no answer within ${timeoutMs} ms`, retryAfterMs: null }
		}
		const message = err instanceof Error ? err.message : String(err)
		const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? `${err.code}: ` : ''
		return { outcome: 'network_error', seconds, error: `${code}${message}`, retryAfterMs: null }
	}
	const seconds = elapsed()
	const outcome = outcomeOf(response.status)
	if (outcome === 'delivered') {
		// The answer is in; its body is of no interest and must not hold the connection.
		response.body?.cancel().catch(() => {})
		return { outcome, seconds, error: null, retryAfterMs: null }
	}
	const location = outcome === 'redirect' ? response.headers.get('location') : null
	const text = await snippet(response, signal)
	const detail = location !== null ? ` to ${location}` : text !== '' ? `: ${text}` : ''
	return {
		outcome,
		seconds,
		error: `HTTP ${response.status}${detail}`,
		retryAfterMs: retryAfterMs(response.headers.get('retry-after'), nowMs()),
	}
}
