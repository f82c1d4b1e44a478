/** The error a request is aborted with when the bucket sends nothing for `ms`. */
export function bucketTimeout(ms: number): Error {
	const err = new Error(`the bucket sent nothing for ${ms} ms`)
	err.name = 'TimeoutError'
	return err
}

/**
 * Why a request to the bucket failed, as an Error fit for logs: Bun's fetch
 * errors carry the request's presigned URL (in `path`), which would let a log
 * reader fetch the object until it expires.
 */
export function requestFailure(err: unknown, request: string): Error {
	if (!(err instanceof Error)) return new Error(`${request}: ${String(err)}`)
	const code = (err as { code?: unknown }).code
	const failure = new Error(`${request}: ${typeof code === 'string' ? `${code} ` : ''}${err.message}`)
	failure.name = err.name
	return failure
}
