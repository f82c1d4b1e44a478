import { withHeaders } from '@elysiajs/openapi'
import { t } from 'elysia'
import type { ErrorCode } from '../errors'
import { FILENAME_PATTERN, JTI_PATTERN, MAX_FILENAME_BYTES, USER_ID_PATTERN } from '../storage/names'

/** `{ error, message }` with the codes a status can carry, for validation and the OpenAPI document. */
export function errorBody(codes: readonly [ErrorCode, ...ErrorCode[]], description: string, example: string) {
	return t.Object(
		{
			error: t.UnionEnum(codes, { description: 'Stable machine-readable code' }),
			message: t.String({ description: 'For people; may change' }),
		},
		{ description, examples: [{ error: codes[0], message: example }] },
	)
}

/** 503 when the token store does not answer: nothing is ever served without it. */
export const StoreUnavailable = withHeaders(
	errorBody(
		['store_unavailable'],
		'The token store (Redis) did not answer; retry shortly',
		'The token store is unavailable; try again shortly.',
	),
	{ 'retry-after': t.String({ description: 'Seconds' }) },
)

/**
 * 503 of the routes that also need the file storage (issuing checks the file, downloading reads
 * it): the token store, or a bucket, did not answer. Nothing is charged either way.
 */
export const StoreOrStorageUnavailable = withHeaders(
	errorBody(
		['store_unavailable', 'storage_unavailable'],
		'The token store (Redis) did not answer (store_unavailable), or the file storage could not be used: a bucket unreachable, slower than its timeout, refusing the credentials, or a file replaced twice while it was being read (storage_unavailable). Nothing is charged; retry after Retry-After',
		'The token store is unavailable; try again shortly.',
	),
	{ 'retry-after': t.String({ description: 'Seconds' }) },
)

/** 429 with Retry-After. */
export const RateLimited = withHeaders(
	errorBody(['rate_limited'], 'Too many requests', 'Too many requests; retry in 42 s.'),
	{ 'retry-after': t.String({ description: 'Seconds until the window resets' }) },
)

/** 401 for a management route. */
export const Unauthorized = withHeaders(
	errorBody(['unauthorized'], 'Missing or wrong X-API-Key / user access token', 'The API key is not valid.'),
	{ 'www-authenticate': t.String() },
)

/** 403 for a user access token acting for someone else. */
export const Forbidden = errorBody(
	['forbidden'],
	'A user access token acting for another user',
	'This access token may not act for that user.',
)

/** `:user_id` as docs/contract.md §3.1 defines it. */
export const UserId = t.String({
	pattern: USER_ID_PATTERN,
	description: 'Your user id: 1-128 of A-Z a-z 0-9 _ . @ - (not . or ..)',
	examples: ['123'],
	error: 'user_id must be 1-128 characters of A-Z a-z 0-9 _ . @ -',
})

/** `:filename`: one URL-encoded path segment. */
export const Filename = t.String({
	pattern: FILENAME_PATTERN,
	maxLength: MAX_FILENAME_BYTES,
	description:
		'One path segment, URL-encoded: any Unicode except / \\ NUL and control characters, not starting with a dot, at most 255 UTF-8 bytes',
	examples: ['myvideo.mp4'],
	error:
		'filename must be one path segment of at most 255 bytes, without /, \\, NUL or control characters, not starting with a dot',
})

/** `:jti`: a token id as returned when it was issued. */
export const Jti = t.String({
	pattern: JTI_PATTERN,
	description: 'The token id, as returned when it was issued',
	error: 'jti must be 1-64 characters of A-Z a-z 0-9 _ -',
})

/** A file body: the OpenAPI document lists it as binary with its real media types. */
export const BinaryFile = (description: string) => t.String({ format: 'binary', description })

/** An OpenAPI security requirement list. */
export type Security = Record<string, string[]>[]

/** The schemes a management route accepts under this configuration (both, either, or none). */
export function callerSecurity(accepts: { apiKey: boolean; userToken: boolean }): Security {
	return [...(accepts.apiKey ? [{ apiKey: [] }] : []), ...(accepts.userToken ? [{ bearerAuth: [] }] : [])]
}
