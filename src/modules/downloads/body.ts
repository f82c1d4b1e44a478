import type { Selection } from '../../http/conditional'
import { contentDisposition } from '../../http/content-disposition'
import { SINGLE_READ_BYTES } from '../../http/file-stream'
import { contentTypeFor } from '../../http/mime'
import type { CheckedFile, RangeReader } from '../../storage/types'
import type { DownloadClaims } from '../tokens/download-token'
import { type PlannedBody, rangeOf } from './plan'

/** What decides how bodies go out, the same for every request of a process. */
export interface BodyRules {
	/** `S3_REDIRECT=unlimited`: seconds of a presigned URL for unlimited tokens' GETs; null = proxy every body. */
	readonly redirectTtlS: number | null
	/** Download slots are held (`MAX_CONCURRENT_DOWNLOADS_PER_USER`): every body must say when it ends. */
	readonly slotsHeld: boolean
}

/** One request's body, as the checks left it. */
export interface BodyRequest {
	readonly file: CheckedFile
	readonly claims: DownloadClaims
	readonly selection: Selection
	readonly method: 'GET' | 'HEAD'
	/** The body was paid for from a `max_uses` budget. */
	readonly budgeted: boolean
	/** False when the Response may be read after this turn of the event loop (see `DownloadRequest.zeroCopy`). */
	readonly zeroCopy: boolean
}

/** All `length` bytes of a range reader, as one blob; rejects (the reader cancelled) when it fails or ends early. */
async function readWhole(reader: RangeReader, length: number): Promise<Blob> {
	const bytes = new Uint8Array(length)
	let at = 0
	try {
		while (at < length) {
			const chunk = await reader.read(length - at)
			if (chunk === null) throw new Error(`the source ended ${length - at} bytes early`)
			bytes.set(chunk, at)
			at += chunk.length
		}
	} catch (err) {
		reader.cancel()
		throw err
	}
	return new Blob([bytes])
}

/**
 * How the body goes out. Zero-copy where the storage has it and nothing
 * needs to see the bytes go: a budgeted body larger than one write is
 * counted, so a broken connection can give back what was never written; a
 * paced one is paced; one holding a download slot must say when it ends. A
 * deliberate 200 to a Range request (If-Range failed, an unparsable range)
 * is streamed, since Bun answers a Range request itself for a whole-file body.
 * Rejects when the storage cannot start the read (`StorageUnavailableError`, `ObjectChangedError`).
 */
export function bodyFor(rules: BodyRules, r: BodyRequest): PlannedBody | Promise<PlannedBody> {
	const { file, claims, selection } = r
	if (r.method === 'HEAD' || selection.kind === 'not-modified' || selection.kind === 'unsatisfiable')
		return { kind: 'none' }
	const { start, end } = rangeOf(selection, file.size)
	// Budgeted bytes must be counted here, and paced ones paced here: only the others may leave for a presigned URL.
	if (!r.budgeted && claims.rate === undefined && rules.redirectTtlS !== null) {
		const url = file.presignedUrl(
			rules.redirectTtlS,
			contentDisposition(claims.filename),
			contentTypeFor(claims.filename),
		)
		if (url !== null) return { kind: 'redirect', url }
	}
	const counted = (r.budgeted && end - start > SINGLE_READ_BYTES) || rules.slotsHeld || claims.rate !== undefined
	const ignoredRange = selection.kind === 'full' && selection.rangeIgnored
	if (r.zeroCopy && !counted && !ignoredRange) {
		const blob = file.zeroCopy(start, end)
		if (blob !== null) return { kind: 'zero-copy', blob }
	}
	const reader = file.openRange(start, end)
	// A short body from a storage without zero-copy (a bucket) is read whole and handed over as one
	// blob, as a disk's would be: Bun sends every stream body chunked, without its Content-Length
	// (oven-sh/bun#10507, README "Uses are whole downloads"), and players probe with tiny ranges.
	if (!counted && !ignoredRange && end - start <= SINGLE_READ_BYTES)
		return Promise.resolve(reader).then(async (opened): Promise<PlannedBody> => {
			const blob = await readWhole(opened, end - start)
			return { kind: 'zero-copy', blob }
		})
	return reader instanceof Promise
		? reader.then((opened): PlannedBody => ({ kind: 'stream', reader: opened }))
		: { kind: 'stream', reader }
}
