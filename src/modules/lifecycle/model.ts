import { t } from 'elysia'
import { errorBody, Filename, Forbidden, Jti, StoreUnavailable, Unauthorized, UserId } from '../../http/model'
import { DIGITS, type QueryRule } from '../../http/strict-query'
import { CURSOR_PATTERN } from './cursor'

/** A live token as the listing route shows it (docs/contract.md §3.3); the type is derived from it. */
export const LiveToken = t.Object({
	jti: t.String(),
	filename: t.String(),
	issued_at: t.String({ format: 'date-time' }),
	expires_at: t.String({ format: 'date-time' }),
	max_uses: t.Nullable(t.Integer({ minimum: 1 })),
	bytes_left: t.Nullable(
		t.Integer({ minimum: 0, description: 'Budget left in bytes (max_uses × size, minus what was sent)' }),
	),
	not_before: t.Nullable(t.String({ format: 'date-time', description: 'Valid from (claim nbf); null = at once' })),
	ip: t.Nullable(t.Array(t.String(), { description: 'CIDR ranges the client must be in (claim cidr)' })),
	rate: t.Nullable(t.Integer({ description: 'Bytes per second its bodies are paced to (claim rate)' })),
})
export type LiveToken = typeof LiveToken.static

/** The most tokens one page of the listing holds, and how many it holds unless asked. */
export const MAX_PAGE = 1000
export const DEFAULT_PAGE = 100

const LIMIT_ERROR = `limit must be a whole number from 1 to ${MAX_PAGE}`
const CURSOR_ERROR = 'cursor must be a next_cursor this listing gave out'

/** The exact spelling each listing parameter accepts (see `assertStrictQuery`). */
export const listQueryRules: Record<'limit' | 'cursor', QueryRule> = {
	limit: { pattern: DIGITS, message: LIMIT_ERROR },
	cursor: { pattern: CURSOR_PATTERN, message: CURSOR_ERROR },
}

/** One page of the listing, and where the next starts. */
export const TokenList = t.Object(
	{
		tokens: t.Array(LiveToken),
		next_cursor: t.Nullable(t.String({ description: 'Pass as cursor for the next page; null on the last page' })),
	},
	{
		examples: [
			{
				tokens: [
					{
						jti: '3f1c9a0b7d2e4c5fa1b2c3d4e5f60718',
						filename: 'myvideo.mp4',
						issued_at: '2026-11-24T10:00:00Z',
						expires_at: '2026-11-24T10:15:00Z',
						max_uses: 1,
						bytes_left: 73400320,
						not_before: null,
						ip: null,
						rate: null,
					},
				],
				next_cursor: 'MDAxNzY0MDEyMDAwOjNmMWM5YTBiN2QyZTRjNWZhMWIyYzNkNGU1ZjYwNzE4.q5Vx3cYp8ZkWm1n2B4d6Hg',
			},
		],
	},
)
export type TokenList = typeof TokenList.static

const Revoked = t.Object(
	{ revoked: t.Integer({ minimum: 0, description: 'How many live tokens were revoked' }) },
	{ examples: [{ revoked: 3 }] },
)
export type Revoked = typeof Revoked.static

const BadRequest = errorBody(
	['invalid_request'],
	'A malformed user_id, filename or jti',
	'user_id must be 1-128 characters of A-Z a-z 0-9 _ . @ -',
)

const SEND_TOKEN = 'Send a JSON body { "token": "<JWT>" } or the form token=<JWT>.'

/** The largest body `POST /api/tokens/revoke` reads; a token is a few hundred bytes. */
export const REVOKE_BODY_LIMIT = 16 * 1024

const managed = {
	400: BadRequest,
	401: Unauthorized,
	403: Forbidden,
	503: StoreUnavailable,
}

const RevokePresented = t.Object(
	{
		revoked: t.Boolean({
			description: 'True when a live token was revoked; false for an invalid or expired one',
		}),
	},
	{ examples: [{ revoked: true }] },
)
export type RevokePresented = typeof RevokePresented.static

/** Schemas of the lifecycle routes (docs/contract.md §3.3). */
export const lifecycleModel = {
	revokePresented: {
		body: t.Object(
			{ token: t.String({ minLength: 1, description: 'The download token to revoke', error: SEND_TOKEN }) },
			{ examples: [{ token: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9…' }], error: SEND_TOKEN },
		),
		response: {
			200: RevokePresented,
			400: errorBody(['invalid_request'], 'No token in the body, or a field given twice', SEND_TOKEN),
			413: errorBody(
				['payload_too_large'],
				`A body over ${REVOKE_BODY_LIMIT} bytes`,
				`The request body is larger than ${REVOKE_BODY_LIMIT} bytes.`,
			),
			415: errorBody(
				['unsupported_media_type'],
				'A body that is neither application/json nor application/x-www-form-urlencoded',
				'Send the body as application/json or application/x-www-form-urlencoded.',
			),
			503: StoreUnavailable,
		},
	},
	user: { params: t.Object({ user_id: UserId }) },
	one: { params: t.Object({ user_id: UserId, jti: Jti }) },
	file: { params: t.Object({ user_id: UserId, filename: Filename }) },
	list: {
		query: t.Object({
			limit: t.Optional(
				t.Integer({
					minimum: 1,
					maximum: MAX_PAGE,
					description: `Tokens per page, 1 to ${MAX_PAGE} (default ${DEFAULT_PAGE})`,
					examples: [100],
					error: LIMIT_ERROR,
				}),
			),
			cursor: t.Optional(
				t.String({
					description: 'The next_cursor of the previous page; absent for the first page',
					examples: ['MDAxNzY0MDEyMDAwOjNmMWM5YTBiN2QyZTRjNWZhMWIyYzNkNGU1ZjYwNzE4.q5Vx3cYp8ZkWm1n2B4d6Hg'],
					error: CURSOR_ERROR,
				}),
			),
		}),
		response: {
			200: TokenList,
			...managed,
			400: errorBody(
				['invalid_request'],
				'A malformed user_id, a bad limit or cursor, or an unknown or repeated query parameter',
				LIMIT_ERROR,
			),
		},
	},
	revokeOne: {
		response: {
			204: t.Void({ description: 'Revoked (or already revoked): it now answers token_revoked until it expires' }),
			...managed,
			404: errorBody(
				['not_found'],
				'This user has no unexpired token with that jti',
				'This user has no unexpired token with that jti.',
			),
		},
	},
	revokeAll: { response: { 200: Revoked, ...managed } },
}
