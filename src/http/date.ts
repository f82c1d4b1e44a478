let cachedSecond = -1
let cachedDate = ''

/**
 * The `Date` header value for now, formatted once per second. Setting it
 * ourselves matters for speed: when a response is sent after an await, Bun
 * ≤ 1.4.5 lets uWS write its own `Date` header uncorked, four `send()` calls
 * of a few bytes each (oven-sh/bun#41341); a `Date` we set travels with the
 * other headers.
 */
export function httpDateNow(nowMs: number = Date.now()): string {
	const second = Math.floor(nowMs / 1000)
	if (second !== cachedSecond) {
		cachedSecond = second
		cachedDate = new Date(second * 1000).toUTCString()
	}
	return cachedDate
}
