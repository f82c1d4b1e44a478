import { Elysia } from 'elysia'
import { createCallerAuth } from './auth/caller'
import type { Deps } from './deps'
import { AppError } from './errors'
import { corsModule } from './http/cors'
import { errorFields } from './log'
import { docsModule } from './modules/docs'
import { downloadsModule } from './modules/downloads'
import { createDownloadService } from './modules/downloads/service'
import { lifecycleModule } from './modules/lifecycle'
import { createLifecycleService } from './modules/lifecycle/service'
import { opsModule } from './modules/ops'
import { tokensModule } from './modules/tokens'
import { createDownloadTokenCodec } from './modules/tokens/download-token'
import { createTokenService } from './modules/tokens/service'

const JSON_TYPE = 'application/json; charset=utf-8'

function errorBody(code: string, message: string) {
	return { error: code, message }
}

/**
 * The root Elysia app: one error renderer, CORS, then each feature module.
 * Builds services from `deps`; performs no I/O itself.
 */
export function createApp(deps: Deps) {
	const { config, clock, log, store, storage } = deps
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
		maxTtlS: config.maxTtlS,
		resumeAllowanceBytes: config.resumeAllowanceBytes,
		rateLimiter: deps.rateLimiter,
		rateLimitIssue: config.rateLimitIssue,
	})
	const downloads = createDownloadService({ codec, store, storage, log })
	const callerAuth = createCallerAuth(config, clock)

	return new Elysia({ name: 'download-gate' })
		.onError(({ error, code, set }) => {
			set.headers['content-type'] = JSON_TYPE
			if (error instanceof AppError) {
				set.status = error.status
				Object.assign(set.headers, error.headers)
				if (error.status >= 500) log.warn('request failed', { code: error.code, ...errorFields(error) })
				return error.toJSON()
			}
			if (code === 'NOT_FOUND') {
				set.status = 404
				return errorBody('not_found', 'No such route.')
			}
			if (code === 'VALIDATION') {
				// Schemas carry a human `error` message; otherwise name the field that failed.
				const first = error.valueError
				const custom = (first?.schema as { error?: unknown } | undefined)?.error
				set.status = 400
				return errorBody(
					'invalid_request',
					typeof custom === 'string'
						? custom
						: `${error.type} ${first?.path ?? ''}: ${first?.message ?? 'invalid'}`.trim(),
				)
			}
			if (code === 'PARSE') {
				set.status = 400
				return errorBody('invalid_request', 'The request body is not valid JSON.')
			}
			// Anything else is a bug: log it whole, tell the client nothing about it.
			log.error('unhandled error', { code: String(code), ...errorFields(error) })
			set.status = 500
			return errorBody('internal_error', 'Something went wrong on our side.')
		})
		.use(corsModule(config.corsOrigins))
		.use(docsModule({ enabled: config.swaggerEnabled, publicBaseUrl: config.publicBaseUrl }))
		.use(opsModule({ store, storage, log, draining: deps.draining }))
		.use(
			tokensModule({
				tokens,
				callerAuth,
				publicBaseUrl: config.publicBaseUrl,
				trustProxy: config.trustProxy,
				defaultTtlS: config.defaultTtlS,
				maxTtlS: config.maxTtlS,
			}),
		)
		.use(lifecycleModule({ lifecycle: createLifecycleService({ store, codec }), callerAuth }))
		.use(
			downloadsModule({
				downloads,
				log,
				clock,
				allowQueryToken: config.allowQueryToken,
				rateLimiter: deps.rateLimiter,
				rateLimitDenied: config.rateLimitDenied,
				trustProxy: config.trustProxy,
			}),
		)
}

/** The app's type, for typed clients (Eden treaty). */
export type App = ReturnType<typeof createApp>
