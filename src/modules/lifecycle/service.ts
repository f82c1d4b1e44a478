import { isoSeconds } from '../../clock'
import { AppError, InvalidRequestError, TokenError } from '../../errors'
import { assertValidNames, jtiProblem, userIdProblem } from '../../storage/names'
import type { TokenInfo, TokenStore } from '../../store/types'
import type { DownloadTokenCodec } from '../tokens/download-token'
import type { LiveToken, Revoked, RevokePresented } from './model'

export interface LifecycleService {
	/**
	 * Revokes the token presented (RFC 7009 style: possession is enough). A
	 * forged, malformed or expired token revokes nothing and is not an error.
	 */
	revokePresented(token: string): Promise<RevokePresented>
	/** The user's live tokens. Throws `InvalidRequestError`, `StoreUnavailableError`. */
	list(userId: string): Promise<LiveToken[]>
	/** Revokes one token; throws a 404 `not_found` AppError when the user has no such live token. */
	revokeOne(userId: string, jti: string): Promise<void>
	/** Revokes every live token of the user, or only those for `filename`; returns how many. */
	revokeAll(userId: string, filename?: string): Promise<Revoked>
}

function toLive(t: TokenInfo): LiveToken {
	return {
		jti: t.jti,
		filename: t.filename,
		issued_at: isoSeconds(t.issuedAtS),
		expires_at: isoSeconds(t.expiresAtS),
		max_uses: t.maxUses,
		bytes_left: t.bytesLeft,
	}
}

/** Builds the lifecycle service over the token store; it never sees an HTTP request. */
export function createLifecycleService(deps: { store: TokenStore; codec: DownloadTokenCodec }): LifecycleService {
	const { store, codec } = deps
	return {
		async revokePresented(token) {
			let claims: Awaited<ReturnType<DownloadTokenCodec['verify']>>
			try {
				claims = await codec.verify(token)
			} catch (err) {
				// Only authentic tokens name a record we may touch; the rest are already useless.
				if (err instanceof TokenError) return { revoked: false }
				throw err
			}
			if (userIdProblem(claims.user_id)) return { revoked: false }
			return { revoked: await store.revoke(claims.user_id, claims.jti) }
		},

		async list(userId) {
			assertValidNames(userId)
			const tokens = await store.list(userId)
			return tokens.sort((a, b) => a.issuedAtS - b.issuedAtS || a.jti.localeCompare(b.jti)).map(toLive)
		},

		async revokeOne(userId, jti) {
			assertValidNames(userId)
			const problem = jtiProblem(jti)
			if (problem) throw new InvalidRequestError(problem)
			if (!(await store.revoke(userId, jti)))
				throw new AppError('not_found', 404, 'This user has no unexpired token with that jti.')
		},

		async revokeAll(userId, filename) {
			assertValidNames(userId, filename)
			return { revoked: await store.revokeAll(userId, filename) }
		},
	}
}
