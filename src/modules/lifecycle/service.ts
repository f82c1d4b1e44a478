import { isoSeconds } from '../../clock'
import { AppError, InvalidRequestError } from '../../errors'
import { assertValidNames, jtiProblem, userIdProblem } from '../../storage/names'
import type { EventContext, TokenInfo, TokenStore } from '../../store/types'
import type { DownloadTokenCodec } from '../tokens/download-token'
import type { CursorCodec } from './cursor'
import type { LiveToken, Revoked, RevokePresented, TokenList } from './model'
import { createGate } from './page-gate'

/**
 * Listing pages one process builds at once; the others wait their turn. A
 * page of 1,000 holds a few MB until it is sent, and the work is CPU-bound in
 * one thread: 20 clients paging at once took the heap ~100 MiB up with no
 * bound, ~40 with this one, and no longer to finish.
 */
const PAGES_AT_ONCE = 2

/** Who asks a lifecycle route to act, for the token.revoked events it causes. */
export type Actor = EventContext

export interface LifecycleService {
	/**
	 * Revokes the token presented (RFC 7009 style: possession is enough). A
	 * forged or malformed token revokes nothing and is not an error.
	 */
	revokePresented(token: string, actor: Actor): Promise<RevokePresented>
	/**
	 * One page of the user's live tokens, newest first, after `cursor`.
	 * Throws `InvalidRequestError` (a cursor that is malformed, altered or
	 * another user's), `StoreUnavailableError`.
	 */
	list(userId: string, page: { limit: number; cursor?: string | undefined }): Promise<TokenList>
	/** Revokes one token; throws a 404 `not_found` AppError when the user has no such live token. */
	revokeOne(userId: string, jti: string, actor: Actor): Promise<void>
	/** Revokes every live token of the user, or only those for `filename`; returns how many. */
	revokeAll(userId: string, filename: string | undefined, actor: Actor): Promise<Revoked>
}

function toLive(t: TokenInfo): LiveToken {
	return {
		jti: t.jti,
		filename: t.filename,
		issued_at: isoSeconds(t.issuedAtS),
		expires_at: isoSeconds(t.expiresAtS),
		max_uses: t.maxUses,
		bytes_left: t.bytesLeft,
		not_before: t.policy.nbf === undefined ? null : isoSeconds(t.policy.nbf),
		ip: t.policy.cidr === undefined ? null : [...t.policy.cidr],
		rate: t.policy.rate ?? null,
	}
}

/** Builds the lifecycle service over the token store; it never sees an HTTP request. */
export function createLifecycleService(deps: {
	store: TokenStore
	codec: DownloadTokenCodec
	cursors: CursorCodec
}): LifecycleService {
	const { store, codec, cursors } = deps
	const pages = createGate(PAGES_AT_ONCE)
	return {
		async revokePresented(token, actor) {
			// Only authentic, still usable tokens name a record worth touching; the rest are already useless.
			const claims = await codec.revocable(token)
			if (claims === null || userIdProblem(claims.user_id)) return { revoked: false }
			return { revoked: await store.revoke(claims.user_id, claims.jti, { ...actor, by: 'holder' }) }
		},

		async list(userId, page) {
			assertValidNames(userId)
			let after: string | undefined
			if (page.cursor !== undefined) {
				const position = cursors.open(userId, page.cursor)
				if (position === null)
					throw new InvalidRequestError(
						'cursor is not one this listing gave out for this user; start from the first page',
					)
				after = position
			}
			return pages.run(async () => {
				const found = await store.list(userId, { limit: page.limit, after })
				return {
					tokens: found.tokens.map(toLive),
					next_cursor: found.next === null ? null : cursors.seal(userId, found.next),
				}
			})
		},

		async revokeOne(userId, jti, actor) {
			assertValidNames(userId)
			const problem = jtiProblem(jti)
			if (problem) throw new InvalidRequestError(problem)
			if (!(await store.revoke(userId, jti, actor)))
				throw new AppError('not_found', 404, 'This user has no unexpired token with that jti.')
		},

		async revokeAll(userId, filename, actor) {
			assertValidNames(userId, filename)
			return { revoked: await store.revokeAll(userId, filename, actor) }
		},
	}
}
