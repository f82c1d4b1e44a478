// Step 1, plan: where the download stands between two requests, and where the next GET starts.

/** What the download knows about the file's size, and from whom. */
export interface KnownSize {
	readonly bytes: number
	/**
	 * `announced`: by the service for the representation being downloaded (`Content-Length`,
	 * the `Content-Range` total, a `HEAD`), so more bytes than that is an error.
	 * `hinted`: by the caller (the token's `size` at issuance), used for progress and to
	 * tell a complete body from a short one, never to reject bytes (the file may have grown).
	 */
	readonly source: 'announced' | 'hinted'
}

/** Where a download stands between two requests. */
export interface DownloadState {
	/** Bytes on disk, from offset 0. */
	readonly received: number
	/** The file's size, when known. */
	readonly size: KnownSize | null
	/** The strong ETag of the bytes on disk, if the service sent one. */
	readonly etag: string | null
	/** Their `Last-Modified`, the weaker validator used when there is no strong ETag. */
	readonly lastModified: string | null
	/** How many times a `Range` request continued the download. */
	readonly resumed: number
}

/** A caller's size hint, kept only when it is a whole number of bytes. */
export function validSizeHint(size: number | null | undefined): number | null {
	return typeof size === 'number' && Number.isSafeInteger(size) && size >= 0 ? size : null
}

/** The state before the first request: nothing on disk, and the size the caller knows, if any. */
export function startState(sizeHint: number | null): DownloadState {
	return {
		received: 0,
		size: sizeHint === null ? null : { bytes: sizeHint, source: 'hinted' },
		etag: null,
		lastModified: null,
		resumed: 0,
	}
}

/** The next GET: the whole file (after dropping the bytes on disk when `discard`), or the rest from `from`. */
export type RequestPlan =
	| { readonly kind: 'whole'; readonly discard: boolean }
	| { readonly kind: 'rest'; readonly from: number; readonly ifRange: string }

/** Where the next GET starts: the rest with `If-Range` when a validator proves the bytes on disk, else from zero. */
export function planRequest(state: DownloadState): RequestPlan {
	if (state.received === 0) return { kind: 'whole', discard: false }
	const validator = state.etag ?? state.lastModified
	// Nothing proves the file is unchanged: a Range could splice two versions.
	if (validator === null) return { kind: 'whole', discard: true }
	return { kind: 'rest', from: state.received, ifRange: validator }
}

/** The state once the bytes on disk are dropped. */
export function discarded(state: DownloadState): DownloadState {
	return { ...state, received: 0 }
}

/** The progress to show: bytes on disk, and the size unless a caller's hint has proved too small. */
export function progressOf(state: DownloadState): { received: number; total: number | null } {
	const { received, size } = state
	const total = size === null || (size.source === 'hinted' && received > size.bytes) ? null : size.bytes
	return { received, total }
}
