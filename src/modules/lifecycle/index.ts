import { Elysia } from 'elysia'
import type { CallerAuth, Credentials } from '../../auth/caller'
import { callerSecurity } from '../../http/model'
import { lifecycleModel as model } from './model'
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

	const security = callerSecurity(callerAuth.accepts)
	const tags = ['lifecycle']

	return new Elysia({ name: 'lifecycle' })
		.post(
			'/api/tokens/revoke',
			async ({ body, set }) => {
				set.headers['cache-control'] = 'no-store'
				return lifecycle.revokePresented(body.token)
			},
			{
				...model.revokePresented,
				detail: {
					tags,
					summary: 'Revoke the token you hold',
					description:
						'RFC 7009 style: possession is enough, no other credentials. Answers 200 even when the token was already invalid or expired (revoked: false).',
					security: [],
				},
			},
		)
		.get(
			'/api/users/:user_id/tokens',
			async ({ request, params, set }) => {
				await authorize(request, params.user_id)
				set.headers['cache-control'] = 'no-store'
				return { tokens: await lifecycle.list(params.user_id) }
			},
			{
				...model.user,
				...model.list,
				detail: {
					tags,
					security,
					summary: "List a user's live tokens",
					description: 'Unexpired, unrevoked tokens with their remaining byte budget.',
				},
			},
		)
		.delete(
			'/api/users/:user_id/tokens/:jti',
			async ({ request, params, set }) => {
				await authorize(request, params.user_id)
				await lifecycle.revokeOne(params.user_id, params.jti)
				set.status = 204
			},
			{
				...model.one,
				...model.revokeOne,
				detail: {
					tags,
					security,
					summary: 'Revoke one token',
					description: 'It answers token_revoked until its own expiry.',
				},
			},
		)
		.delete(
			'/api/users/:user_id/tokens',
			async ({ request, params }) => {
				await authorize(request, params.user_id)
				return lifecycle.revokeAll(params.user_id)
			},
			{
				...model.user,
				...model.revokeAll,
				detail: {
					tags,
					security,
					summary: "Revoke all of a user's live tokens",
					description: 'Touches only this user.',
				},
			},
		)
		.delete(
			'/api/users/:user_id/files/:filename/tokens',
			async ({ request, params }) => {
				await authorize(request, params.user_id)
				return lifecycle.revokeAll(params.user_id, params.filename)
			},
			{
				...model.file,
				...model.revokeAll,
				detail: {
					tags,
					security,
					summary: 'Revoke all live tokens for one file',
					description: 'For when the file was replaced or removed.',
				},
			},
		)
}
