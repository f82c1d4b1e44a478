/** The stable error codes of docs/contract.md §3; clients switch on these, never on messages. */
export const ERROR_CODES = [
	'invalid_request',
	'unauthorized',
	'forbidden',
	'not_found',
	'file_not_found',
	'missing_token',
	'invalid_token',
	'token_expired',
	'token_mismatch',
	'token_not_yet_valid',
	'ip_not_allowed',
	'token_revoked',
	'token_used_up',
	'range_not_satisfiable',
	'rate_limited',
	'too_many_live_tokens',
	'too_many_downloads',
	'payload_too_large',
	'unsupported_media_type',
	'store_unavailable',
	'storage_unavailable',
	'internal_error',
] as const

/** One of `ERROR_CODES`. */
export type ErrorCode = (typeof ERROR_CODES)[number]

/** An error a client may see: HTTP status, stable code, human message, extra headers. */
export class AppError extends Error {
	/** The authentic token a refusal concerns, when known (for the download.denied event); never sent. */
	jti?: string

	constructor(
		readonly code: ErrorCode,
		readonly status: number,
		message: string,
		readonly headers: Readonly<Record<string, string>> = {},
		options?: { cause?: unknown },
	) {
		super(message, options)
		this.name = 'AppError'
	}

	/** The JSON body every error response carries. */
	toJSON(): { error: ErrorCode; message: string } {
		return { error: this.code, message: this.message }
	}
}

/** 400: a parameter is malformed or out of range. */
export class InvalidRequestError extends AppError {
	constructor(message: string) {
		super('invalid_request', 400, message)
	}
}

/** The realm of every Bearer challenge the service sends (RFC 6750 §3). */
export const BEARER_REALM = 'Bearer realm="download-gate"'

// RFC 6750 §3: error_description is printable ASCII without quote or backslash
// (and a header value must not carry anything else anyway).
const challengeText = (message: string) => message.replace(/[^\x20-\x7e]|["\\]/g, "'")

/** 401 on the download route: Bearer challenge per RFC 6750. */
export class TokenError extends AppError {
	constructor(
		code: 'missing_token' | 'invalid_token' | 'token_expired' | 'token_revoked' | 'token_used_up',
		message: string,
		options?: { cause?: unknown },
	) {
		const challenge =
			code === 'missing_token'
				? BEARER_REALM
				: `${BEARER_REALM}, error="invalid_token", error_description="${challengeText(message)}"`
		super(code, 401, message, { 'WWW-Authenticate': challenge }, options)
	}
}

/** 401: the caller of a management route could not be authenticated. */
export class UnauthorizedError extends AppError {
	constructor(message: string, challenge = BEARER_REALM) {
		super('unauthorized', 401, message, { 'WWW-Authenticate': challenge })
	}
}

/** 403: authenticated, but not allowed to act on this user or file, or from this address. */
export class ForbiddenError extends AppError {
	constructor(code: 'forbidden' | 'token_mismatch' | 'ip_not_allowed', message: string) {
		super(code, 403, message)
	}
}

/** 403: the token's `nbf` lies ahead; `Retry-After` says in how many seconds it starts to work. */
export class TokenNotYetValidError extends AppError {
	constructor(secondsLeft: number) {
		const seconds = Math.max(1, Math.ceil(secondsLeft))
		super('token_not_yet_valid', 403, `This download token is valid from ${seconds} s from now.`, {
			'Retry-After': String(seconds),
		})
	}
}

/** 404: the file does not exist, is not a regular file, or lies outside storage. */
export class FileNotFoundError extends AppError {
	constructor() {
		super('file_not_found', 404, 'No such file for this user.')
	}
}

/** 413: a request body over the route's limit; nothing of it is kept. */
export class PayloadTooLargeError extends AppError {
	constructor(limitBytes: number) {
		super('payload_too_large', 413, `The request body is larger than ${limitBytes} bytes.`)
	}
}

/** 415: a request body in a media type the route does not take. */
export class UnsupportedMediaTypeError extends AppError {
	constructor(accepted: readonly string[]) {
		super('unsupported_media_type', 415, `Send the body as ${accepted.join(' or ')}.`, {
			'Accept-Post': accepted.join(', '),
		})
	}
}

/** 416: the range starts beyond the end of the file; `Content-Range` says how large it is. */
export class RangeNotSatisfiableError extends AppError {
	constructor(size: number) {
		super('range_not_satisfiable', 416, `The requested range is outside the file (${size} bytes).`, {
			'Content-Range': `bytes */${size}`,
		})
	}
}

/** 404 for a path no route serves. */
export class RouteNotFoundError extends AppError {
	constructor() {
		super('not_found', 404, 'No such route.')
	}
}

/** 500: a bug. The cause is logged, never sent. */
export class InternalError extends AppError {
	constructor(cause: unknown) {
		super('internal_error', 500, 'Something went wrong on our side.', {}, { cause })
	}
}

/** 429 with `Retry-After` in whole seconds. */
export class RateLimitedError extends AppError {
	constructor(retryAfterS: number) {
		const seconds = Math.max(1, Math.ceil(retryAfterS))
		super('rate_limited', 429, `Too many requests; retry in ${seconds} s.`, { 'Retry-After': String(seconds) })
	}
}

/** 429: the user holds as many live tokens as `MAX_LIVE_TOKENS_PER_USER` allows. */
export class TooManyLiveTokensError extends AppError {
	constructor(limit: number) {
		super(
			'too_many_live_tokens',
			429,
			`This user already holds ${limit} live tokens: revoke some (DELETE /api/users/:user_id/tokens/:jti, or all of a file's) or wait until they expire.`,
		)
	}
}

/** 429: the user already has `MAX_CONCURRENT_DOWNLOADS_PER_USER` bodies in flight. */
export class TooManyDownloadsError extends AppError {
	constructor(limit: number, retryAfterS: number) {
		const seconds = Math.max(1, Math.ceil(retryAfterS))
		super(
			'too_many_downloads',
			429,
			`This user already has ${limit} downloads in flight; retry when one has finished.`,
			{ 'Retry-After': String(seconds) },
		)
	}
}

/** 503: the token store did not answer; nothing is served without it. */
export class StoreUnavailableError extends AppError {
	constructor(cause?: unknown) {
		super(
			'store_unavailable',
			503,
			'The token store is unavailable; try again shortly.',
			{ 'Retry-After': '1' },
			{ cause },
		)
	}
}

/** 503: the file storage (a bucket) did not answer, failed, or refused us; nothing was charged. */
export class StorageUnavailableError extends AppError {
	constructor(cause?: unknown, message = 'The file storage is unavailable; try again shortly.') {
		super('storage_unavailable', 503, message, { 'Retry-After': '1' }, { cause })
	}
}
