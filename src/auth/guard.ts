import { Elysia } from 'elysia'
import { callerSecurity } from '../http/model'
import type { Caller, CallerAuth } from './caller'

/**
 * What a route's `auth` option declares: `issuer` may ask for tokens for
 * `:user_id`, `owner` may list and revoke `:user_id`'s tokens. Both accept an
 * API key (any user) or that user's own access token, per `ISSUE_AUTH`.
 */
export type AuthRequirement = 'issuer' | 'owner'

/**
 * The guard plugin: a route declares `{ auth: 'issuer' | 'owner' }` and gets
 * `caller` in its context, or the request is refused (401 `unauthorized`, 403
 * `forbidden`) before the handler runs. No route calls the check by hand, so
 * none can forget it. `security` is the OpenAPI requirement to put beside it.
 */
export function authGuard(callerAuth: CallerAuth) {
	return new Elysia({ name: 'auth-guard' }).macro({
		auth: (_requirement: AuthRequirement) => ({
			async resolve({ request, params }): Promise<{ caller: Caller }> {
				const { user_id } = params as { user_id?: unknown }
				const caller = await callerAuth.authorize(
					{ apiKey: request.headers.get('x-api-key'), authorization: request.headers.get('authorization') },
					typeof user_id === 'string' ? user_id : '',
				)
				return { caller }
			},
		}),
	})
}

/** The OpenAPI security requirement of guarded routes under this configuration. */
export const guardSecurity = (callerAuth: CallerAuth) => callerSecurity(callerAuth.accepts)
