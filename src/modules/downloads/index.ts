import { Elysia } from 'elysia'
import { bearerToken } from '../../auth/caller'
import type { Clock } from '../../clock'
import type { RateLimit } from '../../config'
import { AppError, RateLimitedError } from '../../errors'
import type { ConditionalRequest } from '../../http/conditional'
import { firstHop } from '../../http/forwarded'
import { errorFields, type Logger } from '../../log'
import type { RateLimiter } from '../../store/rate-limit'
import { downloadsModel } from './model'
import { downloadResponse } from './response'
import type { DownloadService } from './service'

export interface DownloadsModuleDeps {
	readonly downloads: DownloadService
	readonly log: Logger
	readonly clock: Clock
	readonly allowQueryToken: boolean
	readonly rateLimiter: RateLimiter
	readonly rateLimitDenied: RateLimit
	readonly trustProxy: boolean
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

	// An IP over the limit is remembered here until its window resets, so a
	// flood of refusals costs no Redis round trip each; this only makes this
	// instance stricter, the shared count stays in Redis.
	const blockedUntil = new Map<string, number>()

	// Only refusals are counted, so guessing and scraping hit 429 while the
	// happy path pays no extra round trip. A limiter outage keeps the refusal as it was.
	async function limitRefusal(err: AppError, ip: string): Promise<AppError> {
		if (err.status >= 500) return err
		const now = clock()
		const until = blockedUntil.get(ip)
		if (until !== undefined) {
			if (until > now) return new RateLimitedError((until - now) / 1000)
			blockedUntil.delete(ip)
		}
		try {
			const hit = await deps.rateLimiter.hit('denied', ip, deps.rateLimitDenied)
			if (hit.allowed) return err
			if (blockedUntil.size >= 10_000) blockedUntil.clear()
			blockedUntil.set(ip, now + hit.retryAfterS * 1000)
			return new RateLimitedError(hit.retryAfterS)
		} catch (limiterErr) {
			log.warn('rate limiter unavailable', errorFields(limiterErr))
			return err
		}
	}

	async function serve(
		request: Request,
		params: { user_id: string; filename: string },
		method: 'GET' | 'HEAD',
		clientIpOf: () => string,
	) {
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
			if (!(err instanceof AppError)) throw err
			const ip = clientIpOf()
			const answer = await limitRefusal(err, ip)
			log.info('download denied', {
				method,
				user_id: params.user_id,
				filename: params.filename,
				ip,
				status: answer.status,
				code: err.code,
			})
			throw answer
		}
	}

	function clientIp(request: Request, server: { requestIP(r: Request): { address: string } | null } | null): string {
		if (deps.trustProxy) {
			const forwarded = firstHop(request.headers.get('x-forwarded-for'))
			if (forwarded) return forwarded
		}
		return server?.requestIP(request)?.address ?? 'unknown'
	}

	const detail = {
		tags: ['downloads'],
		security: [{ bearerAuth: [] }],
		description:
			'The original route, unchanged for existing clients. Checks, in order, before a byte is sent: token present, signature and algorithm (HS256), expiry, bound to this user/file/action, not revoked, file exists inside storage, and for max_uses tokens the body is paid for from the byte budget. Single Range → 206, unsatisfiable → 416, If-Range / If-None-Match / If-Modified-Since honoured. HEAD, 304, 416 and errors cost nothing. Fails closed (503) when Redis is down.',
	}
	const hooks = { params: downloadsModel.params, headers: downloadsModel.headers, response: downloadsModel.response }

	return (
		new Elysia({ name: 'downloads' })
			// Elysia's fallback router runs the GET handler for HEAD; a HEAD must never be charged.
			.get(
				DOWNLOAD_PATH,
				({ request, params, server }) =>
					serve(request, params, request.method === 'HEAD' ? 'HEAD' : 'GET', () => clientIp(request, server)),
				{ ...hooks, detail: { ...detail, summary: 'Download a file with its token' } },
			)
			.head(
				DOWNLOAD_PATH,
				({ request, params, server }) => serve(request, params, 'HEAD', () => clientIp(request, server)),
				{
					...hooks,
					detail: { ...detail, summary: 'Headers of the file (size, ETag) without the body; costs nothing' },
				},
			)
	)
}
