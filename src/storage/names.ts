import { InvalidRequestError } from '../errors'

const USER_ID = /^[A-Za-z0-9_.@-]{1,128}$/
// Cc covers C0 and C1 controls and DEL; slash and backslash would split or alias a path.
const FORBIDDEN_IN_FILENAME = /[\p{Cc}/\\]/u
const MAX_FILENAME_BYTES = 255

/** Why a `user_id` is unacceptable, or null when it is fine (SPEC §3.1). */
export function userIdProblem(userId: string): string | null {
	if (!USER_ID.test(userId)) return 'user_id must be 1-128 characters of A-Z a-z 0-9 _ . @ -'
	// Allowed by the character set, but they name the storage root or its parent.
	if (userId === '.' || userId === '..') return 'user_id must not be . or ..'
	return null
}

/** Why a `filename` is unacceptable, or null when it is one safe path segment (SPEC §3.1). */
export function filenameProblem(filename: string): string | null {
	if (filename === '') return 'filename must not be empty'
	if (FORBIDDEN_IN_FILENAME.test(filename)) return 'filename must not contain /, \\, NUL or control characters'
	if (filename.startsWith('.')) return 'filename must not start with a dot'
	if (!filename.isWellFormed()) return 'filename must be valid Unicode'
	if (Buffer.byteLength(filename, 'utf8') > MAX_FILENAME_BYTES) return 'filename must be at most 255 bytes'
	return null
}

/** Throws `InvalidRequestError` unless `userId` (and `filename`, when given) are acceptable. */
export function assertValidNames(userId: string, filename?: string): void {
	const problem = userIdProblem(userId) ?? (filename === undefined ? null : filenameProblem(filename))
	if (problem) throw new InvalidRequestError(problem)
}
