import { Elysia } from 'elysia'
import { DOWNLOAD_PATH, type DownloadEndpoint } from './endpoint'
import { downloadsModel } from './model'

export { DOWNLOAD_PATH } from './endpoint'

/**
 * `GET`/`HEAD /api/download/:user_id/:filename` (SPEC §3.2) as Elysia routes:
 * their schemas document the route in the OpenAPI document, and `app.handle`
 * reaches them; a listening server sends this path straight to the endpoint
 * (see app.ts), which these routes delegate to as well.
 */
export function downloadsModule(endpoint: DownloadEndpoint) {
	// The endpoint sets CORS and the request id itself; headers left on the context would make Elysia rebuild its Response.
	const delegate = ({
		request,
		params,
		server,
		set,
	}: {
		request: Request
		params: { user_id: string; filename: string }
		server: Parameters<DownloadEndpoint>[2]
		set: { headers: Record<string, unknown> }
	}) => {
		for (const key of Object.keys(set.headers)) delete set.headers[key]
		return endpoint(request, params, server)
	}

	const detail = {
		tags: ['downloads'],
		security: [{ bearerAuth: [] }],
		description:
			'The original route, unchanged for existing clients. Checks, in order, before a byte is sent: token present, signature and algorithm (HS256), expiry, bound to this user/file/action, not revoked and its record naming this file, file exists inside storage, and for max_uses tokens the body is paid for from the byte budget. Single Range → 206, unsatisfiable → 416, If-Range / If-None-Match / If-Modified-Since honoured. HEAD, 304, 416 and errors cost nothing. Fails closed (503) when Redis is down.',
	}
	// The schemas document the route; where Elysia runs it they validate too (the endpoint checks the same rules).
	const hooks = { params: downloadsModel.params, headers: downloadsModel.headers, response: downloadsModel.response }

	return new Elysia({ name: 'downloads' })
		.get(DOWNLOAD_PATH, delegate, {
			...hooks,
			detail: { ...detail, summary: 'Download a file with its token' },
		})
		.head(DOWNLOAD_PATH, delegate, {
			...hooks,
			detail: { ...detail, summary: 'Headers of the file (size, ETag) without the body; costs nothing' },
		})
}
