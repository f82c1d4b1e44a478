import { Elysia } from 'elysia'
import type { Caller, CallerAuth } from '../../auth/caller'
import { authGuard, guardSecurity } from '../../auth/guard'
import { FORM_MEDIA_TYPE, JSON_MEDIA_TYPE, readBody } from '../../http/body'
import { requestIdOf } from '../../http/request-id'
import { assertStrictQuery } from '../../http/strict-query'
import { DEFAULT_PAGE, listQueryRules, lifecycleModel as model, REVOKE_BODY_LIMIT } from './model'
import type { Actor, LifecycleService } from './service'

/** Who a guarded route's caller is, for the events it causes. */
const actorOf = (caller: Caller, set: { headers: Record<string, unknown> }): Actor => ({
	requestId: requestIdOf(set),
	by: caller.kind === 'service' ? 'service' : caller.kind === 'user' ? 'owner' : 'anonymous',
})

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
				return lifecycle.revokePresented(body.token, { requestId: requestIdOf(set) })
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
			async ({ params, query, set }) => {
				set.headers['cache-control'] = 'no-store'
				return lifecycle.list(params.user_id, { limit: query.limit ?? DEFAULT_PAGE, cursor: query.cursor })
			},
			{
				...model.user,
				...model.list,
				// Before the schema converts anything: only the exact spellings count.
				transform: ({ request }) => assertStrictQuery(request, listQueryRules),
				auth: 'owner',
				detail: {
					tags,
					security,
					summary: "List a user's live tokens, a page at a time",
					description:
						'Unexpired, unrevoked tokens that still have budget left, newest first, with their remaining byte budget and policy. Pass next_cursor as cursor for the next page (null on the last one); pages stay consistent while tokens are issued and revoked in between. Unknown or repeated query parameters, and a cursor that was altered or belongs to another user, are 400.',
				},
			},
		)
		.delete(
			'/api/users/:user_id/tokens/:jti',
			async ({ params, set, caller }) => {
				await lifecycle.revokeOne(params.user_id, params.jti, actorOf(caller, set))
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
		.delete(
			'/api/users/:user_id/tokens',
			({ params, caller, set }) => lifecycle.revokeAll(params.user_id, undefined, actorOf(caller, set)),
			{
				...model.user,
				...model.revokeAll,
				auth: 'owner',
				detail: {
					tags,
					security,
					summary: "Revoke all of a user's live tokens",
					description:
						'Touches only this user. Works in bounded batches, so it never holds Redis for long whatever the count; repeating it is safe.',
				},
			},
		)
		.delete(
			'/api/users/:user_id/files/:filename/tokens',
			({ params, caller, set }) => lifecycle.revokeAll(params.user_id, params.filename, actorOf(caller, set)),
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
