import type { Stats } from 'node:fs'
import type { FileSystem } from './file-system'
import type { CheckedFile, RangeReader } from './types'

const PROC_FD = '/proc/self/fd'

/**
 * A file opened and checked once: the descriptor every body for it is read
 * from, shared by the requests that use it (each holds a reference) and by the
 * open-file cache. Closed once it is dropped and no request holds it.
 */
export class CheckedDescriptor {
	readonly size: number
	readonly mtimeMs: number
	readonly etag: string
	/** A path that reopens exactly this file (`/proc/self/fd/N`), or null where the platform has none. */
	readonly reopenPath: string | null
	/** What the path must still show for the descriptor to be its file (device, inode, size, times). */
	readonly identity: string
	#readable: number | null = null
	#refs = 0
	#dropped = false
	#closed = false

	constructor(
		private readonly fs: FileSystem,
		private readonly fd: number,
		st: Stats,
		reopenable: boolean,
	) {
		this.size = st.size
		this.mtimeMs = st.mtimeMs
		// mtime to the microsecond: a rewrite within the same millisecond still changes the validator.
		this.etag = `"${st.size.toString(36)}-${Math.round(st.mtimeMs * 1000).toString(36)}-${st.ino.toString(36)}"`
		this.reopenPath = reopenable ? `${PROC_FD}/${fd}` : null
		this.identity = identityOf(st)
	}

	/** A request's view of this file; it holds a reference until closed. */
	acquire(): CheckedFile {
		this.#refs++
		return new Handle(this)
	}

	/** Reads up to `length` bytes at `position` into `buffer`; resolves with the count (0 at end of file). */
	readAt(buffer: Uint8Array, length: number, position: number): Promise<number> {
		if (this.#closed) return Promise.resolve(0)
		this.#readable ??= this.fs.openReadable(this.fd)
		return this.fs.read(this.#readable, buffer, length, position)
	}

	/** One request let go of it. */
	release(): void {
		this.#refs--
		this.#closeIfUnused()
	}

	/** Nothing hands it out any more (evicted, changed, or never cached): closed once the last request lets go. */
	drop(): void {
		this.#dropped = true
		this.#closeIfUnused()
	}

	#closeIfUnused(): void {
		if (!this.#dropped || this.#refs > 0 || this.#closed) return
		this.#closed = true
		if (this.#readable !== null && this.#readable !== this.fd) this.fs.close(this.#readable)
		this.fs.close(this.fd)
	}
}

/** What a `stat` of the path must match for a cached descriptor to still be the file at that path. */
export const identityOf = (st: Stats): string => `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`

// Views whose body the runtime reopens by path let go one macrotask later, in
// one batch: Bun opens `/proc/self/fd/N` while it renders the response, which
// happens in the microtasks that follow the handler, so by the next macrotask
// its own descriptor is open and ours may go. Letting go earlier could close
// the number and let another open reuse it before Bun reads it.
const closingSoon: Handle[] = []
function closeLater(handle: Handle): void {
	if (closingSoon.push(handle) === 1)
		setImmediate(() => {
			for (const h of closingSoon.splice(0)) h.close()
		})
}

/** A request's view of a checked descriptor (a class, not a closure per request: the download path allocates as little as it can). */
class Handle implements CheckedFile {
	#closed = false

	constructor(private readonly file: CheckedDescriptor) {}

	get size(): number {
		return this.file.size
	}
	get mtimeMs(): number {
		return this.file.mtimeMs
	}
	get etag(): string {
		return this.file.etag
	}

	zeroCopy(start: number, end: number): Blob | null {
		// The slice caps the body at the checked size even if the file grows; Bun
		// opens its own descriptor on the same inode while rendering, then ours goes (closeSoon).
		const path = this.file.reopenPath
		return path === null ? null : Bun.file(path).slice(start, end)
	}

	openRange(start: number, end: number): RangeReader {
		return new HandleReader(this, start, end)
	}

	presignedUrl(): null {
		return null
	}

	/** Reads through the shared descriptor, or nothing once this view is closed. */
	readAt(buffer: Uint8Array, length: number, position: number): Promise<number> {
		return this.#closed ? Promise.resolve(0) : this.file.readAt(buffer, length, position)
	}

	close(): void {
		if (this.#closed) return
		this.#closed = true
		this.file.release()
	}

	closeSoon(): void {
		closeLater(this)
	}
}

/** Reads one range of a checked file through its descriptor, one pull at a time. */
class HandleReader implements RangeReader {
	#position: number
	#done = false

	constructor(
		private readonly file: Handle,
		start: number,
		private readonly end: number,
	) {
		this.#position = start
	}

	async read(max: number): Promise<Uint8Array | null> {
		const want = Math.min(max, this.end - this.#position)
		if (this.#done || want <= 0) {
			this.#done = true
			return null
		}
		const buffer = Buffer.allocUnsafe(want)
		const n = await this.readInto(buffer)
		return n === 0 ? null : buffer.subarray(0, n)
	}

	async readInto(target: Uint8Array): Promise<number> {
		const want = Math.min(target.length, this.end - this.#position)
		if (this.#done || want <= 0) {
			this.#done = true
			return 0
		}
		const n = await this.file.readAt(target, want, this.#position)
		if (this.#done) return 0
		if (n === 0) {
			// The file shrank under us: the promised length can no longer be met.
			this.#done = true
			throw new Error('file ended before the promised length')
		}
		this.#position += n
		return n
	}

	cancel(): void {
		this.#done = true
	}
}
