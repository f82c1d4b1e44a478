import { StorageUnavailableError } from '../errors'
import { answerOf, lengthOf, send, strongEtag } from './s3-answers'
import { PROBE_KEY, probeBucket } from './s3-check'
import { requestFailure } from './s3-errors'
import { BucketRangeReader, EMPTY_RANGE_READER } from './s3-range-reader'
import { type CheckedFile, ObjectChangedError, type RangeReader, type Storage } from './types'

export { BucketCheckError, type BucketProblem } from './s3-check'

// Every request is signed by Bun.S3Client (presign) and sent with fetch: the
// client's own calls (stat, stream, list) take no AbortSignal, so they could
// neither time out nor be cancelled when a client leaves. A presigned URL
// signs the host header only, so Range, If-Match and Accept-Encoding ride along.

/** A request the bucket storage makes, as reported to `observe`. */
export type BucketOperation = 'head' | 'get' | 'check'
/** How a request ended: `changed` is a GET that found another version than the one checked. */
export type BucketOutcome = 'ok' | 'not_found' | 'changed' | 'error'

/** Where the bucket is and how to reach it. */
export interface BucketStorageOptions {
	readonly bucket: string
	/** Any S3-compatible endpoint (`http://127.0.0.1:9000`); AWS for the region when absent. */
	readonly endpoint?: string
	/** Signing region; `us-east-1` when absent. */
	readonly region?: string
	readonly accessKeyId: string
	readonly secretAccessKey: string
	readonly sessionToken?: string
	/** Prepended to every key: the object of a file is `<prefix><user_id>/<filename>`. */
	readonly prefix?: string
	/** The bucket in the host name (`<bucket>.<endpoint host>`) instead of the path. */
	readonly virtualHostedStyle?: boolean
	/** Longest wait for the first byte of an answer, and for each next part of a body (default 5000 ms). */
	readonly timeoutMs?: number
	/** Called once per request when its answer (or failure) is known, with the seconds it took. */
	readonly observe?: (operation: BucketOperation, outcome: BucketOutcome, seconds: number) => void
	/**
	 * How long an object's checked version (size, ETag, Last-Modified) is
	 * reused without a HEAD (0: a HEAD for every download). Safe because every
	 * read still carries that ETag and compares the answer's: a version
	 * replaced meanwhile is refused, forgotten, and checked afresh.
	 */
	readonly metadataValidMs?: number
	/** Objects whose version is remembered, at most (least recently used forgotten first). */
	readonly metadataMaxEntries?: number
}

const DEFAULT_TIMEOUT_MS = 5000
// A URL signed for our own request is used at once; a short validity limits what a leaked one could fetch.
const SIGNED_FOR_S = 60

/** One path segment a URL keeps as it is: `.` and `..` would be resolved away, `\` read as `/`. */
const plainSegment = (name: string) =>
	name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\\') && !name.includes('\0')

/** The endpoint Bun signs for; in virtual-hosted style it must name the bucket in its host already. */
function clientEndpoint(options: BucketStorageOptions, region: string): string {
	const endpoint = options.endpoint ?? `https://s3.${region}.amazonaws.com`
	if (!options.virtualHostedStyle) return endpoint
	const url = new URL(endpoint)
	if (!url.hostname.startsWith(`${options.bucket}.`)) url.hostname = `${options.bucket}.${url.hostname}`
	return url.href.replace(/\/$/, '')
}

/** What a checked object needs of its storage. */
interface Bucket {
	getRange(object: BucketObject, start: number, end: number): Promise<RangeReader>
	presign(key: string, seconds: number, disposition: string, contentType: string): string
}

/** One version of one object, as a HEAD found it; it holds nothing, so closing is a no-op. */
class BucketObject implements CheckedFile {
	constructor(
		private readonly bucket: Bucket,
		readonly key: string,
		readonly size: number,
		readonly etag: string,
		readonly mtimeMs: number,
	) {}

	zeroCopy(): null {
		return null
	}

	openRange(start: number, end: number): Promise<RangeReader> {
		return this.bucket.getRange(this, start, end)
	}

	presignedUrl(seconds: number, disposition: string, contentType: string): string {
		return this.bucket.presign(this.key, seconds, disposition, contentType)
	}

	close(): void {}

	closeSoon(): void {}
}

/**
 * Creates storage over the `<prefix><user_id>/<filename>` objects of one
 * S3-compatible bucket. Every request waits at most `timeoutMs` for an answer;
 * a bucket that fails, refuses or is too slow rejects with
 * `StorageUnavailableError` (cause kept); a GET that finds another version than
 * the checked one rejects with `ObjectChangedError`.
 */
export function createBucketStorage(options: BucketStorageOptions): Storage {
	const region = options.region ?? 'us-east-1'
	const prefix = options.prefix ?? ''
	const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
	const observe = options.observe ?? (() => {})
	const endpoint = clientEndpoint(options, region)
	const client = new Bun.S3Client({
		bucket: options.bucket,
		endpoint,
		region,
		accessKeyId: options.accessKeyId,
		secretAccessKey: options.secretAccessKey,
		sessionToken: options.sessionToken,
		virtualHostedStyle: options.virtualHostedStyle === true,
	})
	const signed = (key: string, method: 'GET' | 'HEAD') => client.presign(key, { method, expiresIn: SIGNED_FOR_S })
	const keyOf = (userId: string, filename: string) =>
		plainSegment(userId) && plainSegment(filename) ? `${prefix}${userId}/${filename}` : null
	const timed = (operation: BucketOperation) => {
		const started = performance.now()
		return (outcome: BucketOutcome) => observe(operation, outcome, (performance.now() - started) / 1000)
	}

	type Version = { size: number; etag: string; mtimeMs: number }
	const validMs = options.metadataValidMs ?? 0
	const maxEntries = options.metadataMaxEntries ?? 1024
	// Insertion order is recency; a version the bucket contradicted is forgotten at once.
	const versions = new Map<string, { version: Version; at: number }>()
	const remembered = (key: string): Version | null => {
		const entry = versions.get(key)
		if (entry === undefined) return null
		versions.delete(key)
		if (performance.now() - entry.at >= validMs) return null
		versions.set(key, entry)
		return entry.version
	}
	const remember = (key: string, version: Version) => {
		if (validMs <= 0) return
		versions.set(key, { version, at: performance.now() })
		if (versions.size > maxEntries) versions.delete(versions.keys().next().value ?? '')
	}

	/** HEAD of the object: its version, or null when there is none. */
	async function head(key: string): Promise<Version | null> {
		const done = timed('head')
		let response: Response
		try {
			response = await send(signed(key, 'HEAD'), { method: 'HEAD' }, new AbortController(), timeoutMs)
		} catch (err) {
			done('error')
			throw new StorageUnavailableError(requestFailure(err, `HEAD ${key}`))
		}
		if (response.status === 404) {
			done('not_found')
			return null
		}
		const size = lengthOf(response.headers.get('content-length'))
		const etag = strongEtag(response.headers.get('etag'))
		const mtimeMs = Date.parse(response.headers.get('last-modified') ?? '')
		if (response.status !== 200 || size === null || etag === null || Number.isNaN(mtimeMs)) {
			done('error')
			const lacking = response.status === 200 ? ' without Content-Length, a strong ETag or Last-Modified' : ''
			throw new StorageUnavailableError(new Error(`HEAD ${key}: the bucket answered ${response.status}${lacking}`))
		}
		done('ok')
		return { size, etag, mtimeMs }
	}

	/** The remembered version of `key`, else what a HEAD finds (then remembered from now on). */
	async function versionOf(key: string): Promise<Version | null> {
		const known = remembered(key)
		if (known !== null) return known
		const found = await head(key)
		if (found !== null) remember(key, found)
		return found
	}

	const bucket: Bucket = {
		async getRange(object, start, end) {
			if (
				!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && start <= end && end <= object.size)
			)
				throw new RangeError(`bytes ${start}-${end} are outside the object (${object.size} bytes)`)
			if (start === end) return EMPTY_RANGE_READER
			const done = timed('get')
			const abort = new AbortController()
			const range = `bytes=${start}-${end - 1}`
			const request = `GET ${object.key} ${range}`
			const headers = { Range: range, 'If-Match': object.etag, 'Accept-Encoding': 'identity' }
			let response: Response
			try {
				response = await send(signed(object.key, 'GET'), { headers }, abort, timeoutMs)
			} catch (err) {
				done('error')
				throw new StorageUnavailableError(requestFailure(err, request))
			}
			const answer = answerOf(response, object, start, end)
			if (!(answer instanceof Error)) {
				done('ok')
				return new BucketRangeReader(answer.body.getReader(), abort, end - start, answer.length, timeoutMs, request)
			}
			// Nothing of this answer is read: its connection is closed rather than drained.
			abort.abort(answer)
			if (answer instanceof ObjectChangedError) versions.delete(object.key)
			await response.body?.cancel().catch(() => {})
			done(answer instanceof ObjectChangedError ? 'changed' : 'error')
			throw answer instanceof ObjectChangedError ? answer : new StorageUnavailableError(requestFailure(answer, request))
		},

		presign(key, seconds, disposition, contentType) {
			return client.presign(key, {
				method: 'GET',
				expiresIn: seconds,
				contentDisposition: disposition,
				type: contentType,
			})
		},
	}

	return {
		kind: 'bucket',

		async open(userId, filename) {
			const key = keyOf(userId, filename)
			const found = key === null ? null : await versionOf(key)
			return key === null || found === null
				? null
				: new BucketObject(bucket, key, found.size, found.etag, found.mtimeMs)
		},

		async size(userId, filename) {
			const key = keyOf(userId, filename)
			return key === null ? null : ((await versionOf(key))?.size ?? null)
		},

		async check() {
			const done = timed('check')
			try {
				await probeBucket(signed(`${prefix}${PROBE_KEY}`, 'GET'), options.bucket, endpoint, timeoutMs)
				done('ok')
			} catch (err) {
				done('error')
				throw err
			}
		},

		async close() {
			versions.clear()
		},
	}
}

/**
 * Checks once that the bucket answers, accepts the credentials and exists; rejects
 * with a `BucketCheckError` whose message is one line for a person (printed at start-up).
 */
export async function verifyBucket(options: BucketStorageOptions): Promise<void> {
	await createBucketStorage(options).check()
}
