import { Elysia } from 'elysia'
import type { CallerAuth, Credentials } from '../../auth/caller'
import { InvalidRequestError } from '../../errors'
import type { LifecycleService } from './service'

export interface LifecycleModuleDeps {
	readonly lifecycle: LifecycleService
	readonly callerAuth: CallerAuth
}

const credentialsOf = (request: Request): Credentials => ({
	apiKey: request.headers.get('x-api-key'),
	authorization: request.headers.get('authorization'),
})

/** The token lifecycle routes of SPEC §3.3, authorised like the token route. */
export function lifecycleModule(deps: LifecycleModuleDeps) {
	const { lifecycle, callerAuth } = deps
	const authorize = (request: Request, userId: string) => callerAuth.authorize(credentialsOf(request), userId)

	return new Elysia({ name: 'lifecycle' })
		.post('/api/tokens/revoke', async ({ body, set }) => {
			const token = (body as { token?: unknown } | null)?.token
			if (typeof token !== 'string' || token === '')
				throw new InvalidRequestError('Send a JSON body { "token": "<JWT>" }.')
			set.headers['cache-control'] = 'no-store'
			return lifecycle.revokePresented(token)
		})
		.get('/api/users/:user_id/tokens', async ({ request, params, set }) => {
			await authorize(request, params.user_id)
			set.headers['cache-control'] = 'no-store'
			return { tokens: await lifecycle.list(params.user_id) }
		})
		.delete('/api/users/:user_id/tokens/:jti', async ({ request, params, set }) => {
			await authorize(request, params.user_id)
			await lifecycle.revokeOne(params.user_id, params.jti)
			set.status = 204
			return null
		})
		.delete('/api/users/:user_id/tokens', async ({ request, params }) => {
			await authorize(request, params.user_id)
			return lifecycle.revokeAll(params.user_id)
		})
		.delete('/api/users/:user_id/files/:filename/tokens', async ({ request, params }) => {
			await authorize(request, params.user_id)
			return lifecycle.revokeAll(params.user_id, params.filename)
		})
}
