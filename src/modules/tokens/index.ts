import { Elysia } from 'elysia'
import type { CallerAuth } from '../../auth/caller'
import { authGuard, guardSecurity } from '../../auth/guard'
import { InvalidRequestError } from '../../errors'
import { requestIdOf } from '../../http/request-id'
import { requestOrigin } from '../../http/request-url'
import { assertStrictQuery } from '../../http/strict-query'
import { tokensModel } from './model'
import type { TokenService } from './service'

export interface TokensModuleDeps {
	readonly tokens: TokenService
	readonly callerAuth: CallerAuth
	readonly publicBaseUrl: string | null
	readonly trustProxy: boolean
	readonly defaultTtlS: number
	readonly maxTtlS: number
	/** Told of every token issued (for metrics). */
	readonly onIssued?: (budgeted: boolean) => void
}

/** `GET /api/get-download-token/:user_id/:filename` (docs/contract.md §3.1). */
export function tokensModule(deps: TokensModuleDeps) {
	const { queryRules, ...model } = tokensModel(deps)

	// `download_url` needs an origin: the configured one, else the request's own, which must be a real host.
	function baseUrl(request: Request): string {
		if (deps.publicBaseUrl) return deps.publicBaseUrl
		const origin = requestOrigin(request, deps.trustProxy)
		if (origin === null)
			throw new InvalidRequestError(
				'The request has no usable Host header to build download_url from (or set PUBLIC_BASE_URL).',
			)
		return origin
	}

	return new Elysia({ name: 'tokens' }).use(authGuard(deps.callerAuth)).get(
		'/api/get-download-token/:user_id/:filename',
		async ({ request, params, query, set }) => {
			const issued = await deps.tokens.issue({
				userId: params.user_id,
				filename: params.filename,
				ttl: query.ttl,
				maxUses: query.max_uses,
				policy: { notBefore: query.not_before, ip: query.ip, rate: query.rate },
				baseUrl: baseUrl(request),
				requestId: requestIdOf(set),
			})
			deps.onIssued?.(issued.max_uses !== null)
			set.headers['cache-control'] = 'no-store'
			return issued
		},
		{
			...model,
			// Before the schema converts anything: only the exact spellings count.
			transform: ({ request }) => assertStrictQuery(request, queryRules),
			auth: 'issuer',
			detail: {
				tags: ['tokens'],
				summary: 'Issue a download token for one file',
				description:
					'The original route, unchanged for existing clients. The file must exist; the token id is recorded in Redis before the answer is sent, so it can be limited to max_uses whole downloads or revoked before it expires. Unknown or repeated query parameters are refused. Pass the token to the download route as Authorization: Bearer <token>.',
				security: guardSecurity(deps.callerAuth, 'issuer'),
			},
		},
	)
}
