import { Elysia } from 'elysia'
import { callerSecurity } from '../http/model'
import type { AuthRequirement, Caller, CallerAuth } from './caller'

export type { AuthRequirement } from './caller'

/**
 * The guard plugin: a route declares `{ auth: 'issuer' | 'owner' }` and gets
 * `caller` in its context, or the request is refused (401 `unauthorized`, 403
 * `forbidden`) before the handler runs. No route calls the check by hand, so
 * none can forget it. `security` is the OpenAPI requirement to put beside it.
 */
export function authGuard(callerAuth: CallerAuth) {
	return new Elysia({ name: 'auth-guard' }).macro({
		auth: (requirement: AuthRequirement) => ({
			async resolve({ request, params }): Promise<{ caller: Caller }> {
				const { user_id } = params as { user_id?: unknown }
				const caller = await callerAuth.authorize(
					{ apiKey: request.headers.get('x-api-key'), authorization: request.headers.get('authorization') },
					typeof user_id === 'string' ? user_id : '',
					requirement,
				)
				return { caller }
			},
		}),
	})
}

/** The OpenAPI security requirement of routes guarded with `requirement` under this configuration. */
export const guardSecurity = (callerAuth: CallerAuth, requirement: AuthRequirement) =>
	callerSecurity(callerAuth.accepts(requirement))
