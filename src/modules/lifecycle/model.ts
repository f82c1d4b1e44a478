import { t } from 'elysia'
import { errorBody, Filename, Forbidden, StoreUnavailable, Unauthorized, UserId } from '../../http/model'

const LiveToken = t.Object({
	jti: t.String(),
	filename: t.String(),
	issued_at: t.String({ format: 'date-time' }),
	expires_at: t.String({ format: 'date-time' }),
	max_uses: t.Nullable(t.Integer({ minimum: 1 })),
	bytes_left: t.Nullable(
		t.Integer({ minimum: 0, description: 'Budget left in bytes (max_uses × size, minus what was sent)' }),
	),
})

const Revoked = t.Object(
	{ revoked: t.Integer({ minimum: 0, description: 'How many live tokens were revoked' }) },
	{ examples: [{ revoked: 3 }] },
)

const BadRequest = errorBody(
	['invalid_request'],
	'A malformed user_id, filename or jti',
	'user_id must be 1-128 characters of A-Z a-z 0-9 _ . @ -',
)

const SEND_TOKEN = 'Send a JSON body { "token": "<JWT>" }.'

const managed = {
	400: BadRequest,
	401: Unauthorized,
	403: Forbidden,
	503: StoreUnavailable,
}

/** Schemas of the lifecycle routes (SPEC §3.3). */
export const lifecycleModel = {
	revokePresented: {
		body: t.Object(
			{ token: t.String({ minLength: 1, description: 'The download token to revoke', error: SEND_TOKEN }) },
			{ examples: [{ token: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9…' }], error: SEND_TOKEN },
		),
		response: {
			200: t.Object(
				{
					revoked: t.Boolean({
						description: 'True when a live token was revoked; false for an invalid or expired one',
					}),
				},
				{ examples: [{ revoked: true }] },
			),
			400: errorBody(['invalid_request'], 'No token in the body', 'Send a JSON body { "token": "<JWT>" }.'),
			503: StoreUnavailable,
		},
	},
	user: { params: t.Object({ user_id: UserId }) },
	one: {
		params: t.Object({
			user_id: UserId,
			jti: t.String({
				pattern: '^[A-Za-z0-9_-]{1,64}$',
				description: 'The token id, as returned when it was issued',
				error: 'jti must be 1-64 characters of A-Z a-z 0-9 _ -',
			}),
		}),
	},
	file: { params: t.Object({ user_id: UserId, filename: Filename }) },
	list: {
		response: {
			200: t.Object(
				{ tokens: t.Array(LiveToken) },
				{
					examples: [
						{
							tokens: [
								{
									jti: 'Jm3kT0aQ2yR5LxVb8nC1pw',
									filename: 'myvideo.mp4',
									issued_at: '2026-11-24T10:00:00Z',
									expires_at: '2026-11-24T10:15:00Z',
									max_uses: 1,
									bytes_left: 73400320,
								},
							],
						},
					],
				},
			),
			...managed,
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
