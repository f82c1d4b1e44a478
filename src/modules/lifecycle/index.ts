import { Elysia } from 'elysia'
import type { CallerAuth } from '../../auth/caller'
import { authGuard, guardSecurity } from '../../auth/guard'
import { FORM_MEDIA_TYPE, JSON_MEDIA_TYPE, readBody } from '../../http/body'
import { lifecycleModel as model, REVOKE_BODY_LIMIT } from './model'
import type { LifecycleService } from './service'

export interface LifecycleModuleDeps {
	readonly lifecycle: LifecycleService
	readonly callerAuth: CallerAuth
}

/** The token lifecycle routes of docs/contract.md §3.3, guarded like the token route. */
export function lifecycleModule(deps: LifecycleModuleDeps) {
	const { lifecycle, callerAuth } = deps
	const security = guardSecurity(callerAuth, 'owner')
	const tags = ['lifecycle']

	return new Elysia({ name: 'lifecycle' })
		.use(authGuard(callerAuth))
		.post(
			'/api/tokens/revoke',
			async ({ body, set }) => {
				set.headers['cache-control'] = 'no-store'
				return lifecycle.revokePresented(body.token)
			},
			{
				...model.revokePresented,
				// Anyone may call this route: its body is read with a hard limit, never whole, and
				// only as JSON or a form (RFC 7009's own encoding); anything else is 415.
				parse: ({ request }) => readBody(request, REVOKE_BODY_LIMIT, [JSON_MEDIA_TYPE, FORM_MEDIA_TYPE]),
				detail: {
					tags,
					summary: 'Revoke the token you hold',
					description:
						'RFC 7009 style: possession is enough, no other credentials. Answers 200 even when the token was already invalid or expired (revoked: false). The body is JSON { "token": "<JWT>" } or the form token=<JWT>; any other media type is 415.',
					security: [],
				},
			},
		)
		.get(
			'/api/users/:user_id/tokens',
			async ({ params, set }) => {
				set.headers['cache-control'] = 'no-store'
				return { tokens: await lifecycle.list(params.user_id) }
			},
			{
				...model.user,
				...model.list,
				auth: 'owner',
				detail: {
					tags,
					security,
					summary: "List a user's live tokens",
					description: 'Unexpired, unrevoked tokens that still have budget left, with their remaining byte budget.',
				},
			},
		)
		.delete(
			'/api/users/:user_id/tokens/:jti',
			async ({ params, set }) => {
				await lifecycle.revokeOne(params.user_id, params.jti)
				set.status = 204
			},
			{
				...model.one,
				...model.revokeOne,
				auth: 'owner',
				detail: {
					tags,
					security,
					summary: 'Revoke one token',
					description: 'It answers token_revoked until its own expiry.',
				},
			},
		)
		.delete('/api/users/:user_id/tokens', ({ params }) => lifecycle.revokeAll(params.user_id), {
			...model.user,
			...model.revokeAll,
			auth: 'owner',
			detail: {
				tags,
				security,
				summary: "Revoke all of a user's live tokens",
				description: 'Touches only this user.',
			},
		})
		.delete(
			'/api/users/:user_id/files/:filename/tokens',
			({ params }) => lifecycle.revokeAll(params.user_id, params.filename),
			{
				...model.file,
				...model.revokeAll,
				auth: 'owner',
				detail: {
					tags,
					security,
					summary: 'Revoke all live tokens for one file',
					description: 'For when the file was replaced or removed.',
				},
			},
		)
}
