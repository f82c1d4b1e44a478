import { Elysia } from 'elysia'

const ALLOW_HEADERS = 'Authorization, X-API-Key, Range, If-Range, If-None-Match, If-Modified-Since, Content-Type'
const EXPOSE_HEADERS =
	'Content-Disposition, Content-Length, Content-Range, Content-Type, ETag, Last-Modified, Accept-Ranges, Retry-After, WWW-Authenticate'
const ALLOW_METHODS = 'GET, HEAD, POST, DELETE, OPTIONS'

/**
 * CORS for browsers: preflights answered with 204, and every response
 * (errors included) tells an allowed origin what it may read.
 */
export function corsModule(origins: readonly string[] | '*') {
	const allowed = origins === '*' ? null : new Set(origins)
	const allowOrigin = (origin: string | null): string | null => {
		if (origin === null) return null
		if (allowed === null) return '*'
		return allowed.has(origin) ? origin : null
	}

	return new Elysia({ name: 'cors' }).onRequest(({ request, set }) => {
		const origin = allowOrigin(request.headers.get('origin'))
		if (allowed !== null) set.headers.vary = 'Origin'
		if (origin === null) return
		set.headers['access-control-allow-origin'] = origin
		if (request.method === 'OPTIONS' && request.headers.has('access-control-request-method')) {
			return new Response(null, {
				status: 204,
				headers: {
					'Access-Control-Allow-Origin': origin,
					'Access-Control-Allow-Methods': ALLOW_METHODS,
					'Access-Control-Allow-Headers': ALLOW_HEADERS,
					'Access-Control-Max-Age': '600',
					...(allowed !== null ? { Vary: 'Origin' } : {}),
				},
			})
		}
		set.headers['access-control-expose-headers'] = EXPOSE_HEADERS
	})
}
