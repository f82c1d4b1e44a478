import { firstHop } from './forwarded'

// A host as RFC 9110 allows it in `Host`: a name or IPv4, or a bracketed IPv6, and an optional port.
const HOST =
	/^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]{2,45}\])(?::(\d{1,5}))?$/

/** True when `host` is a plain `name[:port]` or `[ipv6][:port]`, with a port ≤ 65535. */
export function isValidHost(host: string): boolean {
	const m = HOST.exec(host)
	return m !== null && (m[1] === undefined || Number(m[1]) <= 65_535)
}

/**
 * The origin a client reached, e.g. `https://files.example.com`, or null when
 * the request names none usable (no `Host`, or one that is not a host: Bun
 * then hands over a bare path as `request.url`). Never throws, unlike `new URL(request.url)`.
 * With `trustProxy`, `X-Forwarded-Proto`/`-Host` win when well-formed.
 */
export function requestOrigin(request: Request, trustProxy: boolean): string | null {
	const url = request.url
	const scheme = url.startsWith('https://') ? 'https' : url.startsWith('http://') ? 'http' : null
	const host = request.headers.get('host')
	if (scheme === null || host === null || !isValidHost(host)) return null
	if (!trustProxy) return `${scheme}://${host}`
	const proto = firstHop(request.headers.get('x-forwarded-proto'))
	const forwardedHost = firstHop(request.headers.get('x-forwarded-host'))
	const finalScheme = proto === 'http' || proto === 'https' ? proto : scheme
	// A forwarded host is only used when it looks like one; otherwise the request's own.
	return `${finalScheme}://${forwardedHost !== null && isValidHost(forwardedHost) ? forwardedHost : host}`
}

/** The query string's parameters, read without parsing the whole URL (which throws for a bad Host). */
export function queryParams(request: Request): URLSearchParams {
	const url = request.url
	const q = url.indexOf('?')
	if (q < 0) return new URLSearchParams()
	const hash = url.indexOf('#', q)
	return new URLSearchParams(hash < 0 ? url.slice(q + 1) : url.slice(q + 1, hash))
}
