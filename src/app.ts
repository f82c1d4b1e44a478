import { Elysia } from 'elysia'
import { createCallerAuth } from './auth/caller'
import type { Deps } from './deps'
import { type AppError, InternalError } from './errors'
import { clientIp } from './http/client-ip'
import { corsModule } from './http/cors'
import { errorResponse, toAppError } from './http/error-response'
import { errorFields } from './log'
import { docsModule } from './modules/docs'
import { DOWNLOAD_PATH, downloadsModule } from './modules/downloads'
import { createRefusalLimiter } from './modules/downloads/refusals'
import { createDownloadService } from './modules/downloads/service'
import { lifecycleModule } from './modules/lifecycle'
import { createLifecycleService } from './modules/lifecycle/service'
import { opsModule } from './modules/ops'
import { createTelemetry } from './modules/ops/telemetry'
import { tokensModule } from './modules/tokens'
import { createDownloadTokenCodec } from './modules/tokens/download-token'
import { createTokenService } from './modules/tokens/service'

/** Requests with larger bodies are cut off by the runtime itself; routes set their own, smaller limits. */
const MAX_REQUEST_BODY_BYTES = 1024 * 1024

/**
 * The root Elysia app: request ids, one error renderer, CORS, then each
 * feature module. Builds services from `deps`; performs no I/O itself.
 */
export function createApp(deps: Deps) {
	const { config, clock, log, store, storage, metrics } = deps
	const codec = createDownloadTokenCodec({
		secret: config.jwtSecret,
		previousSecrets: config.jwtPreviousSecrets,
		clock,
	})
	const tokens = createTokenService({
		store,
		storage,
		codec,
		clock,
		defaultTtlS: config.defaultTtlS,
		resumeAllowanceBytes: config.resumeAllowanceBytes,
		rateLimitIssue: config.rateLimitIssue,
	})
	const downloads = createDownloadService({ codec, store, storage, log, cancellations: deps.cancellations })
	const callerAuth = createCallerAuth(config, clock)
	const telemetry = createTelemetry({ log, metrics })
	const refusals = createRefusalLimiter({ rateLimiter: deps.rateLimiter, rule: config.rateLimitDenied, clock, log })

	// What reaches the runtime's own error hook escaped every route (a body
	// that failed while being sent, a bug in a hook): still one JSON shape.
	const lastResort = (error: unknown) => {
		log.error('unhandled error outside a route', errorFields(error))
		return errorResponse(new InternalError(error))
	}

	function logFailure(err: AppError, request: Request) {
		if (err.status < 500) return
		const fields = { request_id: telemetry.record(request).id, code: err.code, ...errorFields(err.cause ?? err) }
		// A bug is logged whole; an unavailable store is an operational state, told once per request.
		if (err.code === 'internal_error') log.error('request failed', fields)
		else log.warn('request failed', fields)
	}

	return new Elysia({
		name: 'download-gate',
		serve: { development: false, error: lastResort, maxRequestBodySize: MAX_REQUEST_BODY_BYTES },
	})
		.onRequest(({ request, set, server }) => {
			const rec = telemetry.record(request)
			set.headers['x-request-id'] = rec.id
			// Known only while the connection is open: taken now for the access line.
			rec.ip = clientIp(request, server, config.trustProxy)
		})
		.onError(async ({ error, code, set, request, route, server }) => {
			let err = toAppError(error, code)
			logFailure(err, request)
			// Every refusal of a download counts toward the per-IP limit, malformed requests included.
			if (route === DOWNLOAD_PATH)
				err = await refusals.limit(err, telemetry.record(request).ip ?? clientIp(request, server, config.trustProxy))
			telemetry.refused(request, err)
			set.status = err.status
			set.headers['content-type'] = 'application/json; charset=utf-8'
			Object.assign(set.headers, err.headers)
			return err.toJSON()
		})
		.onAfterResponse(({ request, route, set, params }) => {
			const status = typeof set.status === 'number' ? set.status : 200
			telemetry.finish(request, route || 'unmatched', status, params ?? {})
		})
		.use(corsModule(config.corsOrigins))
		.use(docsModule({ enabled: config.swaggerEnabled, publicBaseUrl: config.publicBaseUrl }))
		.use(
			opsModule({
				store,
				storage,
				log,
				draining: deps.draining,
				metricsText: deps.metricsText,
				metricsToken: config.metricsToken,
			}),
		)
		.use(
			tokensModule({
				tokens,
				callerAuth,
				publicBaseUrl: config.publicBaseUrl,
				trustProxy: config.trustProxy,
				defaultTtlS: config.defaultTtlS,
				maxTtlS: config.maxTtlS,
				onIssued: (budgeted) => metrics.tokensIssued.inc({ budgeted: budgeted ? 'true' : 'false' }),
			}),
		)
		.use(lifecycleModule({ lifecycle: createLifecycleService({ store, codec }), callerAuth }))
		.use(downloadsModule({ downloads, telemetry, allowQueryToken: config.allowQueryToken }))
}

/** The app's type, for typed clients (Eden treaty). */
export type App = ReturnType<typeof createApp>
