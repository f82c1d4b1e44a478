import { Elysia } from 'elysia'
import type { CallerAuth } from '../../auth/caller'
import { firstHop } from '../../http/forwarded'
import { callerSecurity } from '../../http/model'
import { tokensModel } from './model'
import type { TokenService } from './service'

export interface TokensModuleDeps {
	readonly tokens: TokenService
	readonly callerAuth: CallerAuth
	readonly publicBaseUrl: string | null
	readonly trustProxy: boolean
	readonly defaultTtlS: number
	readonly maxTtlS: number
}

/** `GET /api/get-download-token/:user_id/:filename` (SPEC §3.1). */
export function tokensModule(deps: TokensModuleDeps) {
	function baseUrl(request: Request): string {
		if (deps.publicBaseUrl) return deps.publicBaseUrl
		const url = new URL(request.url)
		if (!deps.trustProxy) return url.origin
		const proto = firstHop(request.headers.get('x-forwarded-proto'))
		const host = firstHop(request.headers.get('x-forwarded-host'))
		const scheme = proto === 'http' || proto === 'https' ? proto : url.protocol.slice(0, -1)
		// A forwarded host is only used when it looks like one; otherwise the request's own.
		return `${scheme}://${host && /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:.]+\](:\d{1,5})?$/.test(host) ? host : url.host}`
	}

	const model = tokensModel(deps)
	return new Elysia({ name: 'tokens' }).get(
		'/api/get-download-token/:user_id/:filename',
		async ({ request, params, query, set }) => {
			await deps.callerAuth.authorize(
				{ apiKey: request.headers.get('x-api-key'), authorization: request.headers.get('authorization') },
				params.user_id,
			)
			const issued = await deps.tokens.issue({
				userId: params.user_id,
				filename: params.filename,
				ttl: query.ttl,
				maxUses: query.max_uses,
				baseUrl: baseUrl(request),
			})
			set.headers['cache-control'] = 'no-store'
			return issued
		},
		{
			...model,
			detail: {
				tags: ['tokens'],
				summary: 'Issue a download token for one file',
				description:
					'The original route, unchanged for existing clients. The file must exist; the token id is recorded in Redis before the answer is sent, so it can be limited to max_uses whole downloads or revoked before it expires. Pass the token to the download route as Authorization: Bearer <token>.',
				security: callerSecurity(deps.callerAuth.accepts),
			},
		},
	)
}
