import { withHeaders } from '@elysiajs/openapi'
import { t } from 'elysia'
import { TooManyLiveTokensError } from '../../errors'
import { errorBody, Filename, Forbidden, StoreOrStorageUnavailable, Unauthorized, UserId } from '../../http/model'
import { DIGITS, type QueryRule } from '../../http/strict-query'
import { IP_ERROR, IP_PATTERN, MAX_RATE, MIN_RATE, NOT_BEFORE_ERROR, NOT_BEFORE_PATTERN, RATE_ERROR } from './policy'

/** The most whole downloads one token may grant. */
export const MAX_USES_LIMIT = 1_000_000

/** The body of a successful token request (docs/contract.md §3.1); the type is derived from it. */
export const IssuedToken = t.Object(
	{
		token: t.String({ description: 'The download token (JWT, HS256, header kid)' }),
		expires_in: t.Integer({ description: 'Seconds until it expires', examples: [900] }),
		download_url: t.String({ description: 'Where to GET the file with Authorization: Bearer <token>' }),
		jti: t.String({ description: 'Token id, for listing and revoking' }),
		expires_at: t.String({ format: 'date-time' }),
		max_uses: t.Nullable(
			t.Integer({ minimum: 1, description: 'Whole downloads allowed; null = unlimited within the TTL' }),
		),
		size: t.Integer({
			minimum: 0,
			description: "The file's size in bytes at issuance, so a client can show progress before the first byte",
		}),
		not_before: t.Nullable(
			t.String({ format: 'date-time', description: 'The token works from this time on (claim nbf); null = at once' }),
		),
		ip: t.Nullable(
			t.Array(t.String(), {
				description: 'Canonical CIDR ranges the client address must lie in (claim cidr); null = anywhere',
			}),
		),
		rate: t.Nullable(
			t.Integer({ description: 'Bytes per second every body of this token is paced to (claim rate); null = unpaced' }),
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
				jti: '3f1c9a0b7d2e4c5fa1b2c3d4e5f60718',
				expires_at: '2026-11-24T10:15:00Z',
				max_uses: 1,
				size: 73400320,
				not_before: null,
				ip: ['203.0.113.0/24'],
				rate: null,
			},
		],
	},
)
export type IssuedToken = typeof IssuedToken.static

/** 429 of the token route: the user's issue rate (with Retry-After), or the bound on the user's live tokens. */
const TooManyForUser = withHeaders(
	Object.assign(
		errorBody(
			['rate_limited', 'too_many_live_tokens'],
			'Too many token requests for this user (ask again after Retry-After), or the user already holds MAX_LIVE_TOKENS_PER_USER live tokens (revoke some, or wait until they expire or are used up)',
			'Too many requests; retry in 42 s.',
		),
		{
			examples: [
				{ error: 'rate_limited', message: 'Too many requests; retry in 42 s.' },
				{ error: 'too_many_live_tokens', message: new TooManyLiveTokensError(10_000).message },
			],
		},
	),
	{ 'retry-after': t.String({ description: 'Seconds until the window resets (rate_limited only)' }) },
)

/** Schemas of the token route (docs/contract.md §3.1); they validate requests and generate the OpenAPI document. */
export function tokensModel(limits: { defaultTtlS: number; maxTtlS: number }) {
	const ttlError = `ttl must be a whole number from 1 to ${limits.maxTtlS}`
	const maxUsesError = `max_uses must be a whole number from 1 to ${MAX_USES_LIMIT}`
	/** The exact spelling each query parameter accepts (see `assertStrictQuery`). */
	const queryRules: Record<'ttl' | 'max_uses' | 'not_before' | 'ip' | 'rate', QueryRule> = {
		ttl: { pattern: DIGITS, message: ttlError },
		max_uses: { pattern: DIGITS, message: maxUsesError },
		not_before: { pattern: NOT_BEFORE_PATTERN, message: NOT_BEFORE_ERROR },
		ip: { pattern: IP_PATTERN, message: IP_ERROR },
		rate: { pattern: DIGITS, message: RATE_ERROR },
	}
	return {
		queryRules,
		params: t.Object({ user_id: UserId, filename: Filename }),
		query: t.Object({
			ttl: t.Optional(
				t.Integer({
					minimum: 1,
					maximum: limits.maxTtlS,
					description: `Token lifetime in seconds, a whole number from 1 to ${limits.maxTtlS} (default ${limits.defaultTtlS})`,
					examples: [900],
					error: ttlError,
				}),
			),
			max_uses: t.Optional(
				t.Integer({
					minimum: 1,
					maximum: MAX_USES_LIMIT,
					description:
						'Whole downloads allowed (a byte budget of max_uses × file size; ranges and resumed downloads count by bytes). Absent = unlimited within the TTL',
					examples: [1],
					error: maxUsesError,
				}),
			),
			not_before: t.Optional(
				t.String({
					description:
						'The token works only from this time on: epoch seconds or an RFC 3339 date-time with a zone, before the expiry (claim nbf). Earlier downloads are refused 403 token_not_yet_valid with Retry-After',
					examples: ['2026-12-24T18:00:00Z'],
					error: NOT_BEFORE_ERROR,
				}),
			),
			ip: t.Optional(
				t.String({
					description:
						'Up to 8 IPv4/IPv6 addresses or CIDR ranges, comma-separated (a bare address is one host), the client address must lie in (claim cidr; the socket address, or X-Forwarded-For with TRUST_PROXY). Others are refused 403 ip_not_allowed',
					examples: ['203.0.113.0/24,2001:db8::/32'],
					error: IP_ERROR,
				}),
			),
			rate: t.Optional(
				t.Integer({
					minimum: MIN_RATE,
					maximum: MAX_RATE,
					description: `Every body of this token is paced to this many bytes per second, from ${MIN_RATE} (claim rate)`,
					examples: [1048576],
					error: RATE_ERROR,
				}),
			),
		}),
		response: {
			200: IssuedToken,
			400: errorBody(
				['invalid_request'],
				'A bad ttl, max_uses, not_before, ip, rate, user_id or filename, an unknown or repeated query parameter, or no usable Host',
				'ttl must be a whole number from 1 to 86400',
			),
			401: Unauthorized,
			403: Forbidden,
			404: errorBody(['file_not_found'], 'The file does not exist for this user', 'No such file for this user.'),
			429: TooManyForUser,
			503: StoreOrStorageUnavailable,
		},
	}
}
