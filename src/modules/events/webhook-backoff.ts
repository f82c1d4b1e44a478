/** Exponential backoff between failed attempts on one endpoint. */
export interface BackoffPolicy {
	/** The wait after the first failure (before jitter). */
	readonly baseMs: number
	/** No wait is longer than this. */
	readonly capMs: number
}

/**
 * The wait after `failures` consecutive failures (≥ 1): `d = min(cap, base·2^(failures-1))`,
 * then "equal jitter", a uniform draw in [d/2, d]. Instances that failed together
 * spread out, and below half the cap each wait is at least the one before (the
 * upper bound of one is the lower bound of the next); from there on waits stay
 * between cap/2 and cap.
 */
export function backoffDelay(failures: number, policy: BackoffPolicy, random: () => number = Math.random): number {
	const exponent = Math.min(Math.max(failures, 1) - 1, 52)
	const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** exponent)
	return ceiling / 2 + random() * (ceiling / 2)
}

/**
 * A `Retry-After` header (delta seconds or an HTTP date) as milliseconds from
 * `nowMs`, or null when absent or unreadable.
 */
export function retryAfterMs(header: string | null, nowMs: number): number | null {
	if (header === null) return null
	const value = header.trim()
	if (/^\d+$/.test(value)) return Number(value) * 1000
	// Every HTTP-date form starts with the day's name; Date.parse alone would read '-5' as a year.
	if (!/^[A-Za-z]{3}/.test(value)) return null
	const date = Date.parse(value)
	if (Number.isNaN(date)) return null
	return Math.max(0, date - nowMs)
}
