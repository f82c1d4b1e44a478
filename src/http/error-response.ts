import { AppError, InternalError, InvalidRequestError, RouteNotFoundError } from '../errors'

/** The error-like values Elysia hands to `onError`, by its `code`. */
interface ValidationLike {
	readonly type?: string
	readonly valueError?: { readonly path?: string; readonly message?: string; readonly schema?: unknown }
}

/**
 * Any failure as an `AppError`: ours as they are, Elysia's validation and
 * parse errors as 400 `invalid_request`, an unknown route as 404, and
 * anything else as a 500 `internal_error` that keeps the real error as `cause`.
 */
export function toAppError(error: unknown, code: string | number): AppError {
	if (error instanceof AppError) return error
	if (code === 'NOT_FOUND') return new RouteNotFoundError()
	if (code === 'VALIDATION') {
		// Schemas carry a human `error` message; otherwise name the field that failed.
		const { type, valueError } = error as ValidationLike
		const custom = (valueError?.schema as { error?: unknown } | undefined)?.error
		return new InvalidRequestError(
			typeof custom === 'string'
				? custom
				: `${type ?? 'request'} ${valueError?.path ?? ''}: ${valueError?.message ?? 'invalid'}`.trim(),
		)
	}
	if (code === 'PARSE') {
		// Elysia wraps whatever a body parser throws: a refusal of ours (413) stays what it is.
		const cause = (error as { cause?: unknown }).cause
		return cause instanceof AppError ? cause : new InvalidRequestError('The request body is not valid JSON.')
	}
	if (code === 'INVALID_COOKIE_SIGNATURE' || code === 'INVALID_FILE_TYPE')
		return new InvalidRequestError('The request is malformed.')
	return new InternalError(error)
}

/** Headers every JSON error carries. */
export const JSON_TYPE = 'application/json; charset=utf-8'

/** A complete JSON error Response, for places outside Elysia's lifecycle (Bun's own error hook). */
export function errorResponse(err: AppError, extraHeaders: Record<string, string> = {}): Response {
	return new Response(JSON.stringify(err.toJSON()), {
		status: err.status,
		headers: { 'Content-Type': JSON_TYPE, 'Cache-Control': 'no-store', ...err.headers, ...extraHeaders },
	})
}
