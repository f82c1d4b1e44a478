import { Elysia } from 'elysia'
import { bearerToken } from '../../auth/caller'
import type { ConditionalRequest } from '../../http/conditional'
import { queryParams } from '../../http/request-url'
import type { DownloadResult } from '../ops/metrics'
import type { Telemetry } from '../ops/telemetry'
import { downloadsModel } from './model'
import { type BodyEnd, downloadResponse } from './response'
import type { DownloadService } from './service'

export interface DownloadsModuleDeps {
	readonly downloads: DownloadService
	readonly telemetry: Telemetry
	readonly allowQueryToken: boolean
}

/** The route pattern of downloads; refusals on it count toward `RATE_LIMIT_DENIED`. */
export const DOWNLOAD_PATH = '/api/download/:user_id/:filename'

function resultOf(end: BodyEnd): DownloadResult {
	if (!end.complete) return 'broken'
	if (end.status === 206) return 'partial'
	if (end.status === 304) return 'not_modified'
	if (end.status === 416) return 'range_not_satisfiable'
	return 'full'
}

/** `GET`/`HEAD /api/download/:user_id/:filename` (SPEC §3.2). Refusals are rendered (and rate limited) by the app. */
export function downloadsModule(deps: DownloadsModuleDeps) {
	const { downloads, telemetry } = deps

	function tokenOf(request: Request): string | null {
		const header = bearerToken(request.headers.get('authorization'))
		if (header !== null || !deps.allowQueryToken) return header
		const query = queryParams(request).get('token')
		return query === null || query === '' ? null : query
	}

	async function serve(request: Request, params: { user_id: string; filename: string }, method: 'GET' | 'HEAD') {
		const rec = telemetry.record(request)
		rec.userId = params.user_id
		rec.filename = params.filename
		const h = request.headers
		const conditional: ConditionalRequest = {
			method,
			range: h.get('range'),
			ifRange: h.get('if-range'),
			ifNoneMatch: h.get('if-none-match'),
			ifModifiedSince: h.get('if-modified-since'),
		}
		const plan = await downloads.prepare({
			token: tokenOf(request),
			userId: params.user_id,
			filename: params.filename,
			conditional,
			requestId: rec.id,
		})
		rec.jti = plan.claims.jti
		rec.budgeted = plan.budgeted
		const response = downloadResponse(plan, method, request.signal, (end) => {
			void downloads.settle(plan, end.written, end.complete).then((returned) => {
				if (returned > 0) telemetry.metrics.budgetBytesReturned.inc(returned)
			})
			if (method === 'GET') telemetry.downloadEnded(resultOf(end), plan.budgeted, end.written)
		})
		rec.status = response.status
		rec.bytes = Number(response.headers.get('content-length') ?? 0)
		return response
	}

	const detail = {
		tags: ['downloads'],
		security: [{ bearerAuth: [] }],
		description:
			'The original route, unchanged for existing clients. Checks, in order, before a byte is sent: token present, signature and algorithm (HS256), expiry, bound to this user/file/action, not revoked and its record naming this file, file exists inside storage, and for max_uses tokens the body is paid for from the byte budget. Single Range → 206, unsatisfiable → 416, If-Range / If-None-Match / If-Modified-Since honoured. HEAD, 304, 416 and errors cost nothing. Fails closed (503) when Redis is down.',
	}
	const hooks = { params: downloadsModel.params, headers: downloadsModel.headers, response: downloadsModel.response }

	return (
		new Elysia({ name: 'downloads' })
			// Elysia's fallback router runs the GET handler for HEAD; a HEAD must never be charged.
			.get(DOWNLOAD_PATH, ({ request, params }) => serve(request, params, request.method === 'HEAD' ? 'HEAD' : 'GET'), {
				...hooks,
				detail: { ...detail, summary: 'Download a file with its token' },
			})
			.head(DOWNLOAD_PATH, ({ request, params }) => serve(request, params, 'HEAD'), {
				...hooks,
				detail: { ...detail, summary: 'Headers of the file (size, ETag) without the body; costs nothing' },
			})
	)
}
