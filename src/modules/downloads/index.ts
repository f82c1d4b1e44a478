import { Elysia } from 'elysia'
import type { Clock } from '../../clock'
import type { RateLimit } from '../../config'
import type { PeerInfo } from '../../http/client-ip'
import type { Cors } from '../../http/cors'
import type { Logger } from '../../log'
import type { Storage } from '../../storage/types'
import type { CancellationQueue } from '../../store/cancellations'
import type { RateLimiter } from '../../store/rate-limit'
import type { TokenStore } from '../../store/types'
import type { EventWriter } from '../events/writer'
import type { Telemetry } from '../ops/telemetry'
import type { DownloadTokenCodec } from '../tokens/download-token'
import { createDownloadEndpoint, DOWNLOAD_PATH } from './endpoint'
import { downloadsModel } from './model'
import { createRefusalLimiter } from './refusals'
import { createDownloadService } from './service'
import { createSlotKeeper } from './slots'

export { DOWNLOAD_PATH, downloadPathOf } from './endpoint'

/** What the download route needs from the rest of the service. */
export interface DownloadsModuleDeps {
	readonly codec: DownloadTokenCodec
	readonly store: TokenStore
	readonly storage: Storage
	readonly cancellations: CancellationQueue
	readonly rateLimiter: RateLimiter
	readonly telemetry: Telemetry
	readonly cors: Cors
	readonly clock: Clock
	readonly log: Logger
	/** `RATE_LIMIT_DENIED`: refusals per client IP before 429. */
	readonly refusalLimit: RateLimit
	readonly allowQueryToken: boolean
	readonly trustProxy: boolean
	/** `S3_REDIRECT=unlimited`: seconds of a redirect's presigned URL; null = proxy every body. */
	readonly redirectTtlS: number | null
	/** `EXPIRY_GRACE_S`. */
	readonly graceS: number
	/** `MAX_CONCURRENT_DOWNLOADS_PER_USER`; 0 = no limit. */
	readonly maxConcurrentPerUser: number
	/** Where unlimited tokens' download events and denials go; null = events off. */
	readonly events: EventWriter | null
}

/** A Bun route handler (`Bun.serve({ routes })`), with the server it runs on. */
type NativeHandler = (request: Bun.BunRequest<string>, server: Bun.Server<unknown>) => Promise<Response> | Response

/**
 * `GET`/`HEAD /api/download/:user_id/:filename` (docs/contract.md §3.2): builds
 * the download service, the per-IP refusal limiter and the endpoint that
 * answers each request whole (checks, body, refusals, CORS, request id, access
 * line, metrics), and hands the app both ways in: `routes` for Bun's own
 * router (`serve.routes`: a listening server sends downloads straight there,
 * past Elysia's per-request lifecycle) and `plugin`, the same route as Elysia
 * routes (its OpenAPI document, and what `app.handle` reaches).
 */
export function downloadsModule(deps: DownloadsModuleDeps) {
	const downloads = createDownloadService({
		codec: deps.codec,
		store: deps.store,
		storage: deps.storage,
		log: deps.log,
		clock: deps.clock,
		cancellations: deps.cancellations,
		redirectTtlS: deps.redirectTtlS,
		graceS: deps.graceS,
		slots:
			deps.maxConcurrentPerUser > 0
				? {
						limit: deps.maxConcurrentPerUser,
						keeper: createSlotKeeper(deps.store, deps.log, (held) => deps.telemetry.metrics.slotsHeld.set(held)),
					}
				: null,
		events: deps.events,
	})
	const refusals = createRefusalLimiter({
		rateLimiter: deps.rateLimiter,
		rule: deps.refusalLimit,
		clock: deps.clock,
		log: deps.log,
	})
	const endpoint = createDownloadEndpoint({
		downloads,
		telemetry: deps.telemetry,
		refusals,
		cors: deps.cors,
		allowQueryToken: deps.allowQueryToken,
		trustProxy: deps.trustProxy,
	})

	// Bun's router matched the pattern, so both parameters are there.
	const native: NativeHandler = (request, server) =>
		endpoint.answer(request, { user_id: request.params.user_id ?? '', filename: request.params.filename ?? '' }, server)

	const detail = {
		tags: ['downloads'],
		security: [{ bearerAuth: [] }],
		description:
			'The original route, unchanged for existing clients. Checks, in order, before a byte is sent: token present, signature and algorithm (HS256), expiry, bound to this user/file/action, not revoked and its record naming this file, file exists inside storage, and for max_uses tokens the body is paid for from the byte budget. Single Range → 206, unsatisfiable → 416, If-Range / If-None-Match / If-Modified-Since honoured. HEAD, 304, 416 and errors cost nothing. Fails closed (503) when Redis is down.',
	}
	// The schemas document the route; where Elysia runs it (app.handle) they validate too, and
	// what they refuse is answered by the endpoint like any other refusal of a download.
	const hooks = { params: downloadsModel.params, headers: downloadsModel.headers, response: downloadsModel.response }

	// The endpoint sets CORS and the request id itself; headers the app's hooks left on the
	// context would make Elysia rebuild the Response (and read a file body as a stream).
	const delegate = (context: {
		request: Request
		params: { user_id: string; filename: string }
		server: PeerInfo | null
		set: { headers: Record<string, unknown> }
	}) => {
		for (const key of Object.keys(context.set.headers)) delete context.set.headers[key]
		// The caller of app.handle reads the body whenever it likes: after the descriptor a zero-copy body names has closed.
		return endpoint.answer(context.request, context.params, context.server, { zeroCopy: false })
	}

	const plugin = new Elysia({ name: 'downloads' })
		.onError({ as: 'local' }, ({ request, error, code, server, set }) => {
			for (const key of Object.keys(set.headers)) delete set.headers[key]
			return endpoint.refuse(request, error, code, server)
		})
		.get(DOWNLOAD_PATH, delegate, {
			...hooks,
			detail: { ...detail, summary: 'Download a file with its token' },
		})
		.head(DOWNLOAD_PATH, delegate, {
			...hooks,
			detail: { ...detail, summary: 'Headers of the file (size, ETag) without the body; costs nothing' },
		})

	return { routes: { [DOWNLOAD_PATH]: { GET: native, HEAD: native } }, plugin }
}
