import { Elysia } from 'elysia'
import { createCallerAuth } from './auth/caller'
import type { Deps } from './deps'
import { InternalError } from './errors'
import { clientIp } from './http/client-ip'
import { corsModule, createCors } from './http/cors'
import { errorResponse, toAppError } from './http/error-response'
import { errorFields } from './log'
import { docsModule } from './modules/docs'
import { downloadsModule } from './modules/downloads'
import { lifecycleModule } from './modules/lifecycle'
import { createCursorCodec } from './modules/lifecycle/cursor'
import { createLifecycleService } from './modules/lifecycle/service'
import { opsModule } from './modules/ops'
import { createTelemetry } from './modules/ops/telemetry'
import { tokensModule } from './modules/tokens'
import { createDownloadTokenCodec } from './modules/tokens/download-token'
import { createTokenService } from './modules/tokens/service'

/**
 * Bodies larger than this are refused by the runtime itself (a bare 413,
 * before any of our code runs). Routes with a body read it against their own,
 * far smaller limits and answer 413 JSON; this outer bound only has to be
 * high enough that ordinary oversized requests reach that JSON answer.
 */
const MAX_REQUEST_BODY_BYTES = 16 * 1024 * 1024

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
		graceS: config.expiryGraceS,
	})
	const tokens = createTokenService({
		store,
		storage,
		codec,
		clock,
		defaultTtlS: config.defaultTtlS,
		resumeAllowanceBytes: config.resumeAllowanceBytes,
		rateLimitIssue: config.rateLimitIssue,
		maxLiveTokens: config.maxLiveTokensPerUser,
		expiryGraceS: config.expiryGraceS,
	})
	const callerAuth = createCallerAuth(config, clock)
	const telemetry = createTelemetry({ log, metrics, logsRequests: log.enabled('info') })
	const cors = createCors(config.corsOrigins)
	const downloads = downloadsModule({
		codec,
		store,
		storage,
		cancellations: deps.cancellations,
		rateLimiter: deps.rateLimiter,
		telemetry,
		cors,
		clock,
		log,
		refusalLimit: config.rateLimitDenied,
		allowQueryToken: config.allowQueryToken,
		trustProxy: config.trustProxy,
		redirectTtlS: config.storage.kind === 'bucket' ? config.storage.redirectTtlS : null,
		graceS: config.expiryGraceS,
		maxConcurrentPerUser: config.maxConcurrentDownloadsPerUser,
		events: deps.events,
	})

	// What reaches the runtime's own error hook escaped every route (a body
	// that failed while being sent, a bug in a hook): still one JSON shape.
	const lastResort = (error: unknown) => {
		log.error('unhandled error outside a route', errorFields(error))
		return errorResponse(new InternalError(error))
	}

	return new Elysia({
		name: 'download-gate',
		serve: {
			development: false,
			error: lastResort,
			maxRequestBodySize: MAX_REQUEST_BODY_BYTES,
			// The hot path, straight from Bun's router; other methods fall through to Elysia.
			routes: downloads.routes,
		},
	})
		.onRequest(({ request, set, server }) => {
			const rec = telemetry.record(request)
			set.headers['x-request-id'] = rec.id
			// Known only while the connection is open: taken now for the access line.
			if (telemetry.logsRequests) rec.ip = clientIp(request, server, config.trustProxy)
		})
		.onError(({ error, code, set, request }) => {
			const err = toAppError(error, code)
			telemetry.refused(request, err)
			// The request id and CORS headers the hooks set travel with the error.
			return errorResponse(err, set.headers as Record<string, string>)
		})
		.onAfterResponse(({ request, route, set, params }) => {
			const status = typeof set.status === 'number' ? set.status : 200
			telemetry.finish(request, route || 'unmatched', status, params ?? {})
		})
		.use(corsModule(cors))
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
		.use(
			lifecycleModule({
				lifecycle: createLifecycleService({ store, codec, cursors: createCursorCodec(config.jwtSecret) }),
				callerAuth,
			}),
		)
		.use(downloads.plugin)
}

/** The app's type, for typed clients (Eden treaty). */
export type App = ReturnType<typeof createApp>
