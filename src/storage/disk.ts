import {
	closeSync,
	constants,
	existsSync,
	fstatSync,
	lstatSync,
	openSync,
	read,
	readlinkSync,
	realpathSync,
	type Stats,
	statSync,
} from 'node:fs'

import { sep } from 'node:path'
import type { CheckedFile, RangeReader, Storage } from './types'

/** The file-system calls storage makes, injectable so tests can swap files between them. */
export interface FileSystem {
	/** lstat; null when nothing is there. */
	lstat(path: string): Stats | null
	/** Opens `path` for inspection only (Linux `O_PATH`: no read, no device side effects, FIFOs do not block). */
	openPath(path: string): number
	/** Opens a readable descriptor on the file behind `fd`. */
	openReadable(fd: number): number
	fstat(fd: number): Stats
	/** The real path the kernel holds for `fd`, or null when it cannot say. */
	pathOf(fd: number): string | null
	read(fd: number, buffer: Uint8Array, length: number, position: number): Promise<number>
	close(fd: number): void
}

const O_PATH = 0o10000000 // Linux; node:fs does not export it
const PROC_FD = '/proc/self/fd'

/** The real file system (Linux: `O_PATH` and `/proc/self/fd`; elsewhere a read-only open and `realpath`). */
export function nodeFileSystem(): FileSystem {
	const linux = process.platform === 'linux' && existsSync(PROC_FD)
	return {
		lstat: (path) => lstatSync(path, { throwIfNoEntry: false }) ?? null,
		openPath: (path) => openSync(path, linux ? O_PATH : constants.O_RDONLY | constants.O_NONBLOCK),
		openReadable: (fd) => (linux ? openSync(`${PROC_FD}/${fd}`, 'r') : fd),
		fstat: (fd) => fstatSync(fd),
		pathOf: (fd) => (linux ? readlinkSync(`${PROC_FD}/${fd}`) : null),
		read: (fd, buffer, length, position) =>
			new Promise((resolve, reject) =>
				read(fd, buffer, 0, length, position, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead))),
			),
		close: (fd) => closeSync(fd),
	}
}

/** One path segment that names an entry of its directory: no separator, NUL, `.` or `..`. */
const plainSegment = (name: string) =>
	name !== '' && name !== '.' && name !== '..' && !name.includes(sep) && !name.includes('\0')

const NOT_FOUND = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG', 'EACCES', 'EINVAL', 'ENXIO'])

function isNotFound(err: unknown): boolean {
	return typeof err === 'object' && err !== null && NOT_FOUND.has(String((err as { code?: unknown }).code))
}

// Descriptors whose body the runtime reopens by path are closed one macrotask
// later, in one batch: Bun opens `/proc/self/fd/N` while it renders the
// response, which happens in the microtasks that follow the handler, so by the
// next macrotask its own descriptor is open and ours may go. Closing earlier
// could let the number be reused by another open before Bun reads it.
const closingSoon: Handle[] = []
function closeLater(handle: Handle): void {
	if (closingSoon.push(handle) === 1)
		setImmediate(() => {
			for (const h of closingSoon.splice(0)) h.close()
		})
}

/** An opened file (a class, not a closure per request: the download path allocates as little as it can). */
class Handle implements CheckedFile {
	readonly size: number
	readonly mtimeMs: number
	readonly etag: string
	/** A path that reopens exactly this file (`/proc/self/fd/N`), or null where the platform has none. */
	readonly reopenPath: string | null
	#readable: number | null = null
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
	}

	zeroCopy(start: number, end: number): Blob | null {
		// The slice caps the body at the checked size even if the file grows; Bun
		// opens its own descriptor on the same inode while rendering, then ours goes (closeSoon).
		return this.reopenPath === null ? null : Bun.file(this.reopenPath).slice(start, end)
	}

	openRange(start: number, end: number): RangeReader {
		return new HandleReader(this, start, end)
	}

	presignedUrl(): null {
		return null
	}

	/** Reads up to `length` bytes at `position` into `buffer`; resolves with the count (0 at end of file). */
	readAt(buffer: Uint8Array, length: number, position: number): Promise<number> {
		if (this.#closed) return Promise.resolve(0)
		this.#readable ??= this.fs.openReadable(this.fd)
		return this.fs.read(this.#readable, buffer, length, position)
	}

	close(): void {
		if (this.#closed) return
		this.#closed = true
		if (this.#readable !== null && this.#readable !== this.fd) this.fs.close(this.#readable)
		this.fs.close(this.fd)
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
		const n = await this.file.readAt(buffer, want, this.#position)
		if (this.#done) return null
		if (n === 0) {
			// The file shrank under us: the promised length can no longer be met.
			this.#done = true
			throw new Error('file ended before the promised length')
		}
		this.#position += n
		return buffer.subarray(0, n)
	}

	cancel(): void {
		this.#done = true
	}
}

/**
 * Disk storage rooted at `rootDir`. A lookup opens the path once (following
 * symlinks, as the kernel resolves them at that instant), then checks the
 * opened file itself: a regular file whose real path lies inside the root.
 * Synchronous on purpose: on a local disk these calls take microseconds,
 * while the async versions hop through a thread pool and halved throughput.
 */
export function createDiskStorage(
	rootDir: string,
	fs: FileSystem = nodeFileSystem(),
): Storage & {
	readonly openNow: (userId: string, filename: string) => CheckedFile | null
} {
	let rootReal: string | null = null
	const root = () => {
		rootReal ??= realpathSync.native(rootDir)
		return rootReal
	}

	// Where /proc cannot name the opened file, the path is resolved now and
	// must still be the same inode: an escape swapped in between shows as another inode.
	function confinedElsewhere(path: string, st: Stats, base: string): boolean {
		const real = realpathSync.native(path)
		if (!real.startsWith(base + sep)) return false
		const again = statSync(real)
		return again.ino === st.ino && again.dev === st.dev
	}

	function openNow(userId: string, filename: string): CheckedFile | null {
		const base = root()
		// Callers validate names; anything that is not two plain segments below the root is refused here too.
		if (!plainSegment(userId) || !plainSegment(filename)) return null
		const path = `${base}${sep}${userId}${sep}${filename}`
		let fd: number
		try {
			fd = fs.openPath(path)
		} catch (err) {
			if (isNotFound(err)) return null
			throw err
		}
		try {
			const st = fs.fstat(fd)
			const real = st.isFile() ? fs.pathOf(fd) : null
			const inside = st.isFile() && (real === null ? confinedElsewhere(path, st, base) : real.startsWith(base + sep))
			if (inside) return new Handle(fs, fd, st, real !== null)
		} catch (err) {
			fs.close(fd)
			if (isNotFound(err)) return null
			throw err
		}
		fs.close(fd)
		return null
	}

	function size(userId: string, filename: string): number | null {
		const base = root()
		if (!plainSegment(userId) || !plainSegment(filename)) return null
		try {
			const dir = fs.lstat(`${base}${sep}${userId}`)
			if (dir?.isDirectory()) {
				const file = fs.lstat(`${base}${sep}${userId}${sep}${filename}`)
				if (file === null) return null
				if (file.isFile()) return file.size
				if (!file.isSymbolicLink()) return null
			} else if (dir === null || !dir.isSymbolicLink()) return null
		} catch (err) {
			if (isNotFound(err)) return null
			throw err
		}
		// A symlink on the way: the same check as a download.
		const opened = openNow(userId, filename)
		opened?.close()
		return opened?.size ?? null
	}

	return {
		kind: 'disk',
		openNow,
		open: async (userId, filename) => openNow(userId, filename),
		size: async (userId, filename) => size(userId, filename),
		async check() {
			const st = statSync(root())
			if (!st.isDirectory()) throw new Error(`${rootDir} is not a directory`)
		},
		async close() {},
	}
}
