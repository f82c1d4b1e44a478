import { bearerToken } from '../../auth/caller'
import type { AppError } from '../../errors'
import { clientIp, type PeerInfo } from '../../http/client-ip'
import type { ConditionalRequest } from '../../http/conditional'
import type { Cors } from '../../http/cors'
import { errorResponse, toAppError } from '../../http/error-response'
import { queryParams } from '../../http/request-url'
import type { DownloadResult } from '../ops/metrics'
import type { Telemetry } from '../ops/telemetry'
import type { RefusalLimiter } from './refusals'
import { type BodyEnd, downloadResponse } from './response'
import type { DownloadPlan, DownloadRequest, DownloadService } from './service'

/** The route pattern of downloads. */
export const DOWNLOAD_PATH = '/api/download/:user_id/:filename'

/** The download route's path for one file, each segment percent-encoded. */
export const downloadPathOf = (userId: string, filename: string): string =>
	DOWNLOAD_PATH.replace(':user_id', () => encodeURIComponent(userId)).replace(':filename', () =>
		encodeURIComponent(filename),
	)

export interface DownloadEndpointDeps {
	readonly downloads: DownloadService
	readonly telemetry: Telemetry
	readonly refusals: RefusalLimiter
	readonly cors: Cors
	readonly allowQueryToken: boolean
	readonly trustProxy: boolean
}

/** The download route's handling, whole: checks, body, refusals, CORS, request id, access line and metrics. */
export interface DownloadEndpoint {
	/** Answers one download request; never throws (a refusal is an error Response). */
	answer(
		request: Request,
		params: { readonly user_id: string; readonly filename: string },
		server: PeerInfo | null,
		options?: { readonly zeroCopy: boolean },
	): Response | Promise<Response>
	/**
	 * Answers a request refused before `answer` ran (Elysia's own validation,
	 * when `app.handle` reaches the route): counted toward the per-IP limit like every refusal.
	 */
	refuse(request: Request, error: unknown, code: string | number, server: PeerInfo | null): Promise<Response>
}

function resultOf(end: BodyEnd): DownloadResult {
	if (!end.complete) return 'broken'
	if (end.status === 206) return 'partial'
	if (end.status === 304) return 'not_modified'
	if (end.status === 416) return 'range_not_satisfiable'
	return 'full'
}

/**
 * The download route's whole handling, served by Bun's router directly. It is
 * the product's hot path: a request whose token verdict and live record this
 * process already knows (a player's range requests, a download manager's
 * connections, every repeat) is answered without waiting on anything, so Bun
 * sends headers and body in one corked write; anything else asks the store.
 * Elysia's per-request lifecycle cost more than all of the checks together
 * (profiled: about 30 µs of CPU per download), and rebuilding a returned
 * Response would read a file body as a stream, so this route does its own
 * CORS, request id, error rendering, refusal limiting and telemetry. The
 * Elysia route of the same path (downloads module) delegates here.
 */
export function createDownloadEndpoint(deps: DownloadEndpointDeps): DownloadEndpoint {
	const { downloads, telemetry, refusals, cors } = deps

	function tokenOf(request: Request): string | null {
		const header = bearerToken(request.headers.get('authorization'))
		if (header !== null || !deps.allowQueryToken) return header
		const query = queryParams(request).get('token')
		return query === null || query === '' ? null : query
	}

	function respond(
		request: Request,
		plan: DownloadPlan,
		method: 'GET' | 'HEAD',
		headers: Record<string, string>,
		server: PeerInfo | null,
	): Response {
		const rec = telemetry.record(request)
		// Bun builds a request's AbortSignal when first asked (and tracks it once listened to):
		// only streams and unlimited bodies' events need it, not every zero-copy answer.
		const signalOf = () => request.signal
		rec.jti = plan.claims.jti
		rec.budgeted = plan.budgeted
		const paced = plan.claims.rate !== undefined && plan.body.kind === 'stream'
		if (paced) telemetry.metrics.pacedInFlight.inc()
		let response: Response
		try {
			response = downloadResponse(
				plan,
				method,
				signalOf,
				(end) => {
					if (paced) telemetry.metrics.pacedInFlight.dec()
					void downloads.finish(plan, end).then((returned) => {
						if (returned > 0) telemetry.metrics.budgetBytesReturned.inc(returned)
					})
					if (method === 'GET') telemetry.downloadEnded(resultOf(end), plan.budgeted, end.written)
				},
				headers,
			)
		} catch (err) {
			// Nothing was sent: the file is closed, the reservation given back whole, the slot freed.
			plan.file.close()
			if (paced) telemetry.metrics.pacedInFlight.dec()
			void downloads.finish(plan, { status: 500, written: 0, complete: false })
			throw err
		}
		downloads.started(plan, signalOf)
		rec.status = response.status
		rec.bytes = Number(response.headers.get('content-length') ?? 0)
		if (telemetry.logsRequests) rec.ip = clientIp(request, server, deps.trustProxy)
		telemetry.finish(request, DOWNLOAD_PATH, response.status, {})
		return response
	}

	// CORS and the request id, on every answer of this route.
	const baseHeaders = (request: Request) => ({
		...cors.responseHeaders(request.headers.get('origin')),
		'x-request-id': telemetry.record(request).id,
	})

	// Every refusal counts toward the per-IP limit, malformed requests included; a 5xx never does.
	async function refuse(
		request: Request,
		error: unknown,
		headers: Record<string, string>,
		server: PeerInfo | null,
		code: string | number = 'UNKNOWN',
	) {
		const rec = telemetry.record(request)
		rec.ip = clientIp(request, server, deps.trustProxy)
		let err: AppError = toAppError(error, code)
		downloads.refused(err, {
			userId: rec.userId ?? '',
			filename: rec.filename ?? '',
			requestId: rec.id,
			ip: rec.ip,
		})
		err = await refusals.limit(err, rec.ip)
		telemetry.refused(request, err)
		telemetry.finish(request, DOWNLOAD_PATH, err.status, {})
		return errorResponse(err, headers)
	}

	function answer(
		request: Request,
		params: { readonly user_id: string; readonly filename: string },
		server: PeerInfo | null,
		options?: { readonly zeroCopy: boolean },
	): Response | Promise<Response> {
		const rec = telemetry.record(request)
		rec.userId = params.user_id
		rec.filename = params.filename
		const method = request.method === 'HEAD' ? 'HEAD' : 'GET'
		const headers = baseHeaders(request)
		const h = request.headers
		const conditional: ConditionalRequest = {
			method,
			range: h.get('range'),
			ifRange: h.get('if-range'),
			ifNoneMatch: h.get('if-none-match'),
			ifModifiedSince: h.get('if-modified-since'),
		}
		const wanted: DownloadRequest = {
			token: tokenOf(request),
			userId: params.user_id,
			filename: params.filename,
			conditional,
			clientAddress: () => clientIp(request, server, deps.trustProxy),
			requestId: rec.id,
			zeroCopy: options?.zeroCopy,
		}
		try {
			const known = downloads.prepareKnown(wanted)
			if (known !== null) return respond(request, known, method, headers, server)
		} catch (err) {
			return refuse(request, err, headers, server)
		}
		return downloads.prepare(wanted).then(
			(plan) => {
				try {
					return respond(request, plan, method, headers, server)
				} catch (err) {
					return refuse(request, err, headers, server)
				}
			},
			(err: unknown) => refuse(request, err, headers, server),
		)
	}

	return {
		answer,
		refuse: (request, error, code, server) => refuse(request, error, baseHeaders(request), server, code),
	}
}
