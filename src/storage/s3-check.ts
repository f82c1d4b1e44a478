import { bucketTimeout, requestFailure } from './s3-errors'

/** Why the bucket cannot be used, as a bucket storage's `check` and `verifyBucket` tell it. */
export type BucketProblem = 'unreachable' | 'timeout' | 'credentials' | 'access_denied' | 'no_bucket' | 'refused'

/** The bucket cannot be used: `problem` says why, `message` is one line for a person. */
export class BucketCheckError extends Error {
	constructor(
		readonly problem: BucketProblem,
		message: string,
		options?: { cause?: unknown },
	) {
		super(message, options)
		this.name = 'BucketCheckError'
	}
}

/** A key no file maps to: a file's key always has a slash after the prefix. */
export const PROBE_KEY = 'download-gate-check'

const CREDENTIAL_CODES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken'])

/** The `<Code>` and `<Message>` of an S3 error body, on one line. */
async function errorOf(response: Response): Promise<{ code: string; message: string }> {
	const text = (await response.text()).slice(0, 8192)
	const field = (name: string) =>
		(new RegExp(`<${name}>([^<]*)</${name}>`).exec(text)?.[1] ?? '').replace(/\s+/g, ' ').trim()
	return { code: field('Code'), message: field('Message') }
}

/**
 * GETs `url`, a presigned URL of the probe key, and resolves when the answer
 * proves the bucket exists and the credentials may read it (404 NoSuchKey,
 * or the object). Rejects with a `BucketCheckError` saying why not.
 */
export async function probeBucket(url: string, bucket: string, endpoint: string, timeoutMs: number): Promise<void> {
	const abort = new AbortController()
	// The whole probe (answer and its short error body) is bounded, not only its first byte.
	const timer = setTimeout(() => abort.abort(bucketTimeout(timeoutMs)), timeoutMs)
	try {
		let response: Response
		let error: { code: string; message: string }
		try {
			response = await fetch(url, {
				headers: { Range: 'bytes=0-0' },
				signal: abort.signal,
				decompress: false,
				redirect: 'manual',
			})
			if (response.ok) {
				await response.body?.cancel()
				return
			}
			error = await errorOf(response)
		} catch (err) {
			const cause = requestFailure(err, `GET ${PROBE_KEY}`)
			if (abort.signal.aborted)
				throw new BucketCheckError('timeout', `the bucket endpoint ${endpoint} did not answer within ${timeoutMs} ms`, {
					cause,
				})
			const code = (err as { code?: unknown }).code
			const why = typeof code === 'string' ? code : cause.message
			throw new BucketCheckError('unreachable', `cannot reach the bucket endpoint ${endpoint} (${why})`, { cause })
		}
		const { code, message } = error
		if (response.status === 404 && code === 'NoSuchKey') return
		const said = `${response.status} ${code || 'without an error code'}${message ? `: ${message}` : ''}`
		if (code === 'NoSuchBucket' || response.status === 404)
			throw new BucketCheckError('no_bucket', `bucket "${bucket}" does not exist at ${endpoint} (${said})`)
		if (CREDENTIAL_CODES.has(code))
			throw new BucketCheckError('credentials', `the bucket endpoint ${endpoint} refused the credentials (${said})`)
		if (code === 'AccessDenied')
			throw new BucketCheckError(
				'access_denied',
				`bucket "${bucket}" denied access (${said}); the credentials need s3:GetObject and s3:ListBucket on it`,
			)
		throw new BucketCheckError('refused', `bucket "${bucket}" at ${endpoint} answered ${said}`)
	} finally {
		clearTimeout(timer)
	}
}
