import type { Selection } from '../../http/conditional'
import type { CheckedFile, RangeReader } from '../../storage/types'
import type { DownloadClaims } from '../tokens/download-token'

/**
 * How a planned response's body goes out: none (HEAD, 304, 416), a zero-copy
 * slice of the checked file (sendfile), a stream read from the checked file
 * (counted when a budget or a policy needs to know what was written), or a
 * redirect to a presigned URL of the checked object.
 */
export type PlannedBody =
	| { readonly kind: 'none' }
	| { readonly kind: 'zero-copy'; readonly blob: Blob }
	| { readonly kind: 'stream'; readonly reader: RangeReader }
	| { readonly kind: 'redirect'; readonly url: string }

/**
 * What the download route is about to send, every check passed. It owns the
 * checked file: whoever sends the plan closes `file` (see `downloadResponse`).
 */
export interface DownloadPlan {
	readonly claims: DownloadClaims
	readonly file: CheckedFile
	readonly selection: Selection
	readonly body: PlannedBody
	/** True when the body was paid for from a `max_uses` budget. */
	readonly budgeted: boolean
	/** The reservation's id in the store, when bytes were reserved. */
	readonly reservation: string | null
	/** The download slot the body holds (`MAX_CONCURRENT_DOWNLOADS_PER_USER`), when it holds one. */
	readonly lease: string | null
	readonly requestId: string | undefined
}

/** The byte range `[start, end)` a selection sends (the whole file unless partial). */
export function rangeOf(selection: Selection, size: number): { readonly start: number; readonly end: number } {
	return selection.kind === 'partial' ? { start: selection.start, end: selection.end + 1 } : { start: 0, end: size }
}

/** The bytes a GET or HEAD with `selection` sends as its body (0 for HEAD, 304, 416). */
export function bodyLength(selection: Selection, size: number, method: 'GET' | 'HEAD'): number {
	if (method === 'HEAD') return 0
	if (selection.kind === 'full') return size
	if (selection.kind === 'partial') return selection.end - selection.start + 1
	return 0
}
