// Step 4, retry: which failures are worth another attempt, how long to wait, and when to give up.
import type { DownloadError } from './download-error'

const MAX_BACKOFF_MS = 30_000
const RETRYABLE_STATUS: ReadonlySet<number> = new Set([429, 502, 503, 504])

/** True for the statuses that say "later" rather than "no": 429, 502, 503, 504. */
export function isRetryableStatus(status: number): boolean {
	return RETRYABLE_STATUS.has(status)
}

/** The wait before attempt `failures + 1`: `Retry-After` when sent, else `baseMs` doubled per failure, at most 30 s (pure). */
export function backoffMs(failures: number, baseMs: number, retryAfterMs: number | null): number {
	return retryAfterMs ?? Math.min(MAX_BACKOFF_MS, baseMs * 2 ** (failures - 1))
}

/** Counts failed attempts in a row; `failed` waits before the next or throws once `maxAttempts` are spent. */
export interface Retries {
	/** Counts a failed attempt, then waits (`Retry-After` wins), or throws `error` when no attempt is left. */
	failed(error: DownloadError, retryAfterMs?: number | null): Promise<void>
	/** An attempt delivered bytes: the count starts over. */
	succeeded(): void
}

/** Retries for one download; waits end early with the signal's reason when it aborts. */
export function createRetries(options: {
	maxAttempts: number
	baseDelayMs: number
	signal: AbortSignal | undefined
}): Retries {
	const maxAttempts = Math.max(1, options.maxAttempts)
	const baseDelayMs = Math.max(0, options.baseDelayMs)
	let failures = 0
	return {
		async failed(error, retryAfterMs = null) {
			failures += 1
			if (failures >= maxAttempts) throw error
			await sleep(backoffMs(failures, baseDelayMs, retryAfterMs), options.signal)
		},
		succeeded() {
			failures = 0
		},
	}
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
