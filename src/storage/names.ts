import { InvalidRequestError } from '../errors'

// The one place the name rules of docs/contract.md §3.1 live: the route schemas use the
// patterns (for validation and the OpenAPI document), storage and services
// the functions, which also check what a pattern cannot (bytes, Unicode).

/** `user_id`: 1–128 of `[A-Za-z0-9_.@-]`. */
export const USER_ID_PATTERN = '^[A-Za-z0-9_.@-]{1,128}$'
/** `filename`: one path segment, no / \ NUL or control characters (C0, DEL, C1), not starting with a dot. */
export const FILENAME_PATTERN = '^[^./\\\\\\u0000-\\u001f\\u007f-\\u009f][^/\\\\\\u0000-\\u001f\\u007f-\\u009f]*$'
/** A token id as the service issues them (and a little wider, for ids of other issuers). */
export const JTI_PATTERN = '^[A-Za-z0-9_-]{1,64}$'
/** At most this many UTF-8 bytes in a filename. */
export const MAX_FILENAME_BYTES = 255

const USER_ID = new RegExp(USER_ID_PATTERN)
const JTI = new RegExp(JTI_PATTERN)
// Cc covers C0 and C1 controls and DEL; slash and backslash would split or alias a path.
const FORBIDDEN_IN_FILENAME = /[\p{Cc}/\\]/u

/** Why a `user_id` is unacceptable, or null when it is fine (docs/contract.md §3.1). */
export function userIdProblem(userId: string): string | null {
	if (!USER_ID.test(userId)) return 'user_id must be 1-128 characters of A-Z a-z 0-9 _ . @ -'
	// Allowed by the character set, but they name the storage root or its parent.
	if (userId === '.' || userId === '..') return 'user_id must not be . or ..'
	return null
}

/** Why a `filename` is unacceptable, or null when it is one safe path segment (docs/contract.md §3.1). */
export function filenameProblem(filename: string): string | null {
	if (filename === '') return 'filename must not be empty'
	if (FORBIDDEN_IN_FILENAME.test(filename)) return 'filename must not contain /, \\, NUL or control characters'
	if (filename.startsWith('.')) return 'filename must not start with a dot'
	if (!filename.isWellFormed()) return 'filename must be valid Unicode'
	if (Buffer.byteLength(filename, 'utf8') > MAX_FILENAME_BYTES) return 'filename must be at most 255 bytes'
	return null
}

/** Why a `jti` is unacceptable, or null. */
export function jtiProblem(jti: string): string | null {
	return JTI.test(jti) ? null : 'jti must be 1-64 characters of A-Z a-z 0-9 _ -'
}

/** Throws `InvalidRequestError` unless `userId` (and `filename`, when given) are acceptable. */
export function assertValidNames(userId: string, filename?: string): void {
	const problem = userIdProblem(userId) ?? (filename === undefined ? null : filenameProblem(filename))
	if (problem) throw new InvalidRequestError(problem)
}
