import type { ErrorCode } from '../errors'

/** Failures detected by the client itself rather than answered by the service. */
export type ClientErrorCode =
	/** Every attempt failed (network error, 429, 502, 503, 504 without a service code). */
	| 'network_error'
	/** A 206 did not start where the download stands. */
	| 'range_mismatch'
	/** A 206 carried another ETag than the bytes already on disk. */
	| 'validator_mismatch'
	/** More bytes arrived than announced. */
	| 'length_mismatch'
	/** A status or body the service does not send. */
	| 'unexpected_response'

/** A service error code (docs/contract.md §3), a client-side one, or a code this client does not know yet. */
export type DownloadErrorCode = ErrorCode | ClientErrorCode | (string & {})

/** Why a download failed: the service's `{ error, message }` with its status, or a client-side code. */
export class DownloadError extends Error {
	override readonly name = 'DownloadError'

	constructor(
		/** Stable machine-readable code, e.g. `token_used_up`, `file_not_found`, `network_error`. */
		readonly code: DownloadErrorCode,
		/** The HTTP status that carried the error; null when no response did. */
		readonly status: number | null,
		message: string,
		options?: { cause?: unknown },
	) {
		super(message, options)
	}
}

/** The `DownloadError` an error answer's status and body text stand for: the service's own code when the body is ours. */
export function errorFromBody(status: number, text: string): DownloadError {
	try {
		const body: unknown = JSON.parse(text)
		if (typeof body === 'object' && body !== null && 'error' in body && typeof body.error === 'string') {
			const message = 'message' in body && typeof body.message === 'string' ? body.message : body.error
			return new DownloadError(body.error, status, message)
		}
	} catch {
		// not JSON: a proxy's page, say
	}
	const snippet = text.trim().slice(0, 200)
	return new DownloadError('unexpected_response', status, snippet ? `HTTP ${status}: ${snippet}` : `HTTP ${status}`)
}

/** Reads an error answer's body and turns it into a `DownloadError` (never throws). */
export async function errorFromResponse(response: Response): Promise<DownloadError> {
	return errorFromBody(response.status, await response.text().catch(() => ''))
}
