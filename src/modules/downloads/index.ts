import { Elysia } from 'elysia'
import { bearerToken } from '../../auth/caller'
import type { Clock } from '../../clock'
import { AppError } from '../../errors'
import type { ConditionalRequest } from '../../http/conditional'
import type { Logger } from '../../log'
import { downloadResponse } from './response'
import type { DownloadService } from './service'

export interface DownloadsModuleDeps {
	readonly downloads: DownloadService
	readonly log: Logger
	readonly clock: Clock
	readonly allowQueryToken: boolean
}

const DOWNLOAD_PATH = '/api/download/:user_id/:filename'

/** `GET`/`HEAD /api/download/:user_id/:filename` (SPEC §3.2). */
export function downloadsModule(deps: DownloadsModuleDeps) {
	const { downloads, log, clock } = deps

	function tokenOf(request: Request): string | null {
		const header = bearerToken(request.headers.get('authorization'))
		if (header !== null || !deps.allowQueryToken) return header
		const query = new URL(request.url).searchParams.get('token')
		return query === null || query === '' ? null : query
	}

	async function serve(request: Request, params: { user_id: string; filename: string }, method: 'GET' | 'HEAD') {
		const started = clock()
		const h = request.headers
		const conditional: ConditionalRequest = {
			method,
			range: h.get('range'),
			ifRange: h.get('if-range'),
			ifNoneMatch: h.get('if-none-match'),
			ifModifiedSince: h.get('if-modified-since'),
		}
		try {
			const plan = await downloads.prepare({
				token: tokenOf(request),
				userId: params.user_id,
				filename: params.filename,
				conditional,
			})
			const response = downloadResponse(plan, method, request.signal, (written) => {
				log.info('download broken', { jti: plan.claims.jti, written, reserved: plan.reserved })
				void downloads.settle(plan, written)
			})
			log.info('download', {
				method,
				user_id: params.user_id,
				filename: params.filename,
				jti: plan.claims.jti,
				status: response.status,
				length: Number(response.headers.get('content-length') ?? 0),
				ms: clock() - started,
			})
			return response
		} catch (err) {
			if (err instanceof AppError)
				log.info('download denied', {
					method,
					user_id: params.user_id,
					filename: params.filename,
					status: err.status,
					code: err.code,
				})
			throw err
		}
	}

	return (
		new Elysia({ name: 'downloads' })
			// Elysia's fallback router runs the GET handler for HEAD; a HEAD must never be charged.
			.get(DOWNLOAD_PATH, ({ request, params }) => serve(request, params, request.method === 'HEAD' ? 'HEAD' : 'GET'))
			.head(DOWNLOAD_PATH, ({ request, params }) => serve(request, params, 'HEAD'))
	)
}
