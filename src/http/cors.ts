import { Elysia } from 'elysia'

const ALLOW_HEADERS =
	'Authorization, X-API-Key, X-Request-Id, Range, If-Range, If-None-Match, If-Modified-Since, Content-Type'
const EXPOSE_HEADERS =
	'Content-Disposition, Content-Length, Content-Range, Content-Type, ETag, Last-Modified, Accept-Ranges, Retry-After, WWW-Authenticate, X-Request-Id'
const ALLOW_METHODS = 'GET, HEAD, POST, DELETE, OPTIONS'

/** CORS decisions for one configuration (`CORS_ORIGINS`). */
export interface Cors {
	/** The headers an ordinary response to a request from `origin` carries (none for no or a foreign origin). */
	responseHeaders(origin: string | null): Record<string, string>
	/** The 204 answer to a preflight from `origin`, or null when it is not one this configuration answers. */
	preflight(request: Request): Response | null
}

/** Builds the CORS rules: `*` allows any origin, a list only its members (and says `Vary: Origin`). */
export function createCors(origins: readonly string[] | '*'): Cors {
	const allowed = origins === '*' ? null : new Set(origins)
	const allowOrigin = (origin: string | null): string | null => {
		if (origin === null) return null
		if (allowed === null) return '*'
		return allowed.has(origin) ? origin : null
	}
	// Lower-case names: these merge into Elysia's `set.headers`, where case matters to the object.
	const vary: Record<string, string> = allowed === null ? {} : { vary: 'Origin' }
	return {
		responseHeaders(origin) {
			const allow = allowOrigin(origin)
			if (allow === null) return { ...vary }
			return { ...vary, 'access-control-allow-origin': allow, 'access-control-expose-headers': EXPOSE_HEADERS }
		},
		preflight(request) {
			if (request.method !== 'OPTIONS' || !request.headers.has('access-control-request-method')) return null
			const allow = allowOrigin(request.headers.get('origin'))
			if (allow === null) return null
			return new Response(null, {
				status: 204,
				headers: {
					...vary,
					'access-control-allow-origin': allow,
					'access-control-allow-methods': ALLOW_METHODS,
					'access-control-allow-headers': ALLOW_HEADERS,
					'access-control-max-age': '600',
				},
			})
		},
	}
}

/**
 * CORS for browsers: preflights answered with 204, and every response
 * (errors included) tells an allowed origin what it may read.
 */
export function corsModule(cors: Cors) {
	return new Elysia({ name: 'cors' }).onRequest(({ request, set }) => {
		const preflight = cors.preflight(request)
		if (preflight) return preflight
		Object.assign(set.headers, cors.responseHeaders(request.headers.get('origin')))
	})
}
