import { t } from 'elysia'
import {
	errorBody,
	Filename,
	Forbidden,
	POSITIVE_INT_PATTERN,
	RateLimited,
	StoreUnavailable,
	Unauthorized,
	UserId,
} from '../../http/model'

/** Schemas of the token route (SPEC §3.1); they validate requests and generate the OpenAPI document. */
export function tokensModel(limits: { defaultTtlS: number; maxTtlS: number }) {
	const IssuedToken = t.Object(
		{
			token: t.String({ description: 'The download token (JWT, HS256, header kid)' }),
			expires_in: t.Integer({ description: 'Seconds until it expires', examples: [900] }),
			download_url: t.String({ description: 'Where to GET the file with Authorization: Bearer <token>' }),
			jti: t.String({ description: 'Token id, for listing and revoking' }),
			expires_at: t.String({ format: 'date-time' }),
			max_uses: t.Nullable(
				t.Integer({ minimum: 1, description: 'Whole downloads allowed; null = unlimited within the TTL' }),
			),
		},
		{
			description: 'A download token for one user and file',
			examples: [
				{
					token:
						'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjJ3Q3VyX1BYZmZjcW1Ib1QifQ.eyJ1c2VyX2lkIjoiMTIzIiwiZmlsZW5hbWUiOiJteXZpZGVvLm1wNCJ9.c2lnbmF0dXJl',
					expires_in: 900,
					download_url: 'https://files.example.com/api/download/123/myvideo.mp4',
					jti: 'Jm3kT0aQ2yR5LxVb8nC1pw',
					expires_at: '2026-11-24T10:15:00Z',
					max_uses: 1,
				},
			],
		},
	)
	return {
		params: t.Object({ user_id: UserId, filename: Filename }),
		query: t.Object({
			ttl: t.Optional(
				t.String({
					pattern: POSITIVE_INT_PATTERN,
					description: `Token lifetime in seconds, a whole number from 1 to ${limits.maxTtlS} (default ${limits.defaultTtlS})`,
					examples: ['900'],
					error: `ttl must be a whole number from 1 to ${limits.maxTtlS}`,
				}),
			),
			max_uses: t.Optional(
				t.String({
					pattern: POSITIVE_INT_PATTERN,
					description:
						'Whole downloads allowed (a byte budget of max_uses × file size; ranges and resumed downloads count by bytes). Absent = unlimited within the TTL',
					examples: ['1'],
					error: 'max_uses must be a whole number from 1 to 1000000',
				}),
			),
		}),
		response: {
			200: IssuedToken,
			400: errorBody(
				['invalid_request'],
				'A bad ttl, max_uses, user_id or filename',
				'ttl must be a whole number from 1 to 86400',
			),
			401: Unauthorized,
			403: Forbidden,
			404: errorBody(['file_not_found'], 'The file does not exist for this user', 'No such file for this user.'),
			429: RateLimited,
			503: StoreUnavailable,
		},
	}
}
