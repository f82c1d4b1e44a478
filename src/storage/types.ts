// The storage seam: the download and issuance code talk to this interface
// only, and do not know whether files sit in a directory (disk.ts) or a
// bucket (s3.ts). One contract test suite runs against both.

/**
 * The version read is not the version checked (a bucket's object was replaced
 * in between). Never sent to a client: the download is checked again, once.
 */
export class ObjectChangedError extends Error {
	constructor(message: string) {
		super(message)
		this.name = 'ObjectChangedError'
	}
}

/**
 * One version of one file, found and pinned by a check: everything sent for
 * it comes from what the check found, never from the name again (a file
 * swapped, a link planted or an object replaced afterwards cannot change what
 * is sent under these headers). The holder closes it on every path.
 */
export interface CheckedFile {
	/** Bytes, as the check found them. */
	readonly size: number
	/** Modification time, milliseconds since the epoch (for `Last-Modified`, whole seconds on the wire). */
	readonly mtimeMs: number
	/** Strong validator of this version, quoted (`"…"`), for `ETag` and `If-Range`. */
	readonly etag: string
	/**
	 * A body of bytes `[start, end)` the runtime sends without copying them
	 * through JavaScript (disk: a slice of the checked descriptor, sent with
	 * sendfile), or null where bytes have to be streamed (a bucket). The caller
	 * then calls `closeSoon`, not `close`.
	 */
	zeroCopy(start: number, end: number): Blob | null
	/**
	 * Starts reading bytes `[start, end)`. When it resolves, the source has
	 * answered and was confirmed to be this very version (a bucket's answer
	 * carries the checked ETag and length), so headers may be sent. Rejects
	 * with `ObjectChangedError` when the version changed since the check, and
	 * `StorageUnavailableError` when the storage fails or is too slow. A disk
	 * answers without waiting.
	 */
	openRange(start: number, end: number): RangeReader | Promise<RangeReader>
	/**
	 * A URL from which a client may fetch this file itself for `seconds`, with
	 * `Content-Disposition` and `Content-Type` as given, or null where the
	 * storage has none (a directory).
	 */
	presignedUrl(seconds: number, disposition: string, contentType: string): string | null
	/** Releases what the check holds (a descriptor, a cache reference); safe to call more than once. */
	close(): void
	/** Closes once the runtime has taken over a `zeroCopy` body (after this turn of the event loop). */
	closeSoon(): void
}

/** Bytes of one range, pulled as the client takes them (backpressure reaches the source). */
export interface RangeReader {
	/**
	 * The next bytes, at most `max`; null once the whole range was read.
	 * Rejects when the source ends before the range does (a file that shrank)
	 * or fails; the reader is finished then.
	 */
	read(max: number): Promise<Uint8Array | null>
	/**
	 * Where the source can, the next bytes written into `target` (at most its
	 * length): resolves with how many, 0 once the whole range was read; rejects
	 * as `read`. A body reusing one buffer reads through this.
	 */
	readInto?(target: Uint8Array): Promise<number>
	/** Stops reading at once (the client went away): an upstream request is cancelled, not drained. */
	cancel(): void
}

/** Where files live: `<root>/<user_id>/<filename>` on disk, `<prefix><user_id>/<filename>` in a bucket. */
export interface Storage {
	/** For logs, metrics and `/ready`. */
	readonly kind: 'disk' | 'bucket'
	/**
	 * The check without waiting, where the storage can answer at once (a local
	 * disk); absent where every check waits on the network. Same answers as `open`.
	 */
	readonly openNow?: (userId: string, filename: string) => CheckedFile | null
	/**
	 * Checks the file and pins it: null when it does not exist, is not a
	 * regular file, or lies outside the storage. Rejects with
	 * `StorageUnavailableError` when the storage cannot say. Callers validate the names first.
	 */
	open(userId: string, filename: string): Promise<CheckedFile | null>
	/** The size `open` would find (for issuance), or null when `open` would find nothing. Rejects as `open`. */
	size(userId: string, filename: string): Promise<number | null>
	/** Resolves when the storage is reachable and readable; rejects (with why) otherwise. */
	check(): Promise<void>
	/** Releases what the storage holds (cached descriptors, timers). */
	close(): Promise<void>
}
