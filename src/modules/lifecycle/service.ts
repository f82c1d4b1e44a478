import { isoSeconds } from '../../clock'
import { AppError, InvalidRequestError, TokenError } from '../../errors'
import { assertValidNames, userIdProblem } from '../../storage/names'
import type { TokenInfo, TokenStore } from '../../store/types'
import type { DownloadTokenCodec } from '../tokens/download-token'

/** A live token as the listing route shows it (SPEC §3.3). */
export interface LiveToken {
	readonly jti: string
	readonly filename: string
	readonly issued_at: string
	readonly expires_at: string
	readonly max_uses: number | null
	readonly bytes_left: number | null
}

export interface LifecycleService {
	/**
	 * Revokes the token presented (RFC 7009 style: possession is enough). A
	 * forged, malformed or expired token revokes nothing and is not an error.
	 */
	revokePresented(token: string): Promise<{ revoked: boolean }>
	/** The user's live tokens. Throws `InvalidRequestError`, `StoreUnavailableError`. */
	list(userId: string): Promise<LiveToken[]>
	/** Revokes one token; throws a 404 `not_found` AppError when the user has no such live token. */
	revokeOne(userId: string, jti: string): Promise<void>
	/** Revokes every live token of the user, or only those for `filename`; returns how many. */
	revokeAll(userId: string, filename?: string): Promise<{ revoked: number }>
}

const JTI = /^[A-Za-z0-9_-]{1,64}$/

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
			if (!JTI.test(jti)) throw new InvalidRequestError('jti must be 1-64 characters of A-Z a-z 0-9 _ -')
			if (!(await store.revoke(userId, jti)))
				throw new AppError('not_found', 404, 'This user has no unexpired token with that jti.')
		},

		async revokeAll(userId, filename) {
			assertValidNames(userId, filename)
			return { revoked: await store.revokeAll(userId, filename) }
		},
	}
}
