import { withHeaders } from '@elysiajs/openapi'
import { t } from 'elysia'
import { BinaryFile, errorBody, Filename, StoreOrStorageUnavailable, UserId } from '../../http/model'

const FILE_HEADERS = {
	'content-type': t.String({
		description: 'By extension: video/mp4, video/quicktime, video/webm, … else application/octet-stream',
	}),
	'content-disposition': t.String({
		description: `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded> (RFC 6266)`,
	}),
	'content-length': t.String({ description: 'Body length (budgeted bodies may be chunked instead, see README)' }),
	'accept-ranges': t.Literal('bytes'),
	etag: t.String({ description: 'Strong validator' }),
	'last-modified': t.String(),
	'cache-control': t.Literal('private, no-store'),
	'x-content-type-options': t.Literal('nosniff'),
}

const TokenProblem = withHeaders(
	errorBody(
		['missing_token', 'invalid_token', 'token_expired', 'token_revoked', 'token_used_up'],
		'No usable token: missing, forged or malformed, expired, revoked, or its max_uses budget cannot cover this body',
		'A download token is required.',
	),
	{ 'www-authenticate': t.String({ description: 'Bearer challenge (RFC 6750)' }) },
)

/** Schemas of the download route (docs/contract.md §3.2). */
export const downloadsModel = {
	params: t.Object({ user_id: UserId, filename: Filename }),
	headers: t.Object({
		range: t.Optional(
			t.String({
				description: 'One byte range, e.g. bytes=0-1023, bytes=1048576-, bytes=-500',
				examples: ['bytes=0-1023'],
			}),
		),
		'if-range': t.Optional(
			t.String({ description: 'ETag or HTTP-date: serve the range only if the file is unchanged' }),
		),
		'if-none-match': t.Optional(t.String({ description: '304 when the ETag matches' })),
		'if-modified-since': t.Optional(t.String({ description: '304 when not modified since (HTTP-date)' })),
	}),
	response: {
		200: withHeaders(BinaryFile('The whole file'), FILE_HEADERS),
		206: withHeaders(BinaryFile('One byte range of the file'), {
			...FILE_HEADERS,
			'content-range': t.String({ description: 'bytes <first>-<last>/<size>', examples: ['bytes 0-1023/73400320'] }),
		}),
		304: t.Void({ description: 'Not modified (If-None-Match / If-Modified-Since); costs nothing' }),
		400: errorBody(['invalid_request'], 'A malformed user_id or filename', 'filename must not start with a dot'),
		401: TokenProblem,
		403: withHeaders(
			errorBody(
				['token_mismatch', 'token_not_yet_valid', 'ip_not_allowed'],
				'The token was issued for another user, file or action; its not_before lies ahead (Retry-After says how long); or the client address is outside its ip ranges',
				'This token was not issued for this user and file.',
			),
			{
				'retry-after': t.Optional(
					t.String({ description: 'With token_not_yet_valid: seconds until it starts to work' }),
				),
			},
		),
		404: errorBody(
			['file_not_found'],
			'No such regular file inside STORAGE_DIR (or object in S3_BUCKET)',
			'No such file for this user.',
		),
		416: withHeaders(
			errorBody(
				['range_not_satisfiable'],
				'The range starts beyond the end of the file; costs nothing',
				'The requested range is outside the file (1024 bytes).',
			),
			{ 'content-range': t.String({ description: 'bytes */<size>' }) },
		),
		429: withHeaders(
			errorBody(
				['rate_limited', 'too_many_downloads'],
				'Too many refused attempts from this address, or the user already has MAX_CONCURRENT_DOWNLOADS_PER_USER downloads in flight',
				'Too many requests; retry in 42 s.',
			),
			{ 'retry-after': t.String({ description: 'Seconds to wait' }) },
		),
		503: StoreOrStorageUnavailable,
	},
}
