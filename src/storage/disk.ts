import { realpathSync, type Stats, statSync } from 'node:fs'

import { sep } from 'node:path'
import { CheckedDescriptor, identityOf } from './disk-descriptor'
import { type FileSystem, nodeFileSystem } from './file-system'

export { type FileSystem, nodeFileSystem } from './file-system'

import type { CheckedFile, Storage } from './types'

/** One path segment that names an entry of its directory: no separator, NUL, `.` or `..`. */
const plainSegment = (name: string) =>
	name !== '' && name !== '.' && name !== '..' && !name.includes(sep) && !name.includes('\0')

const NOT_FOUND = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG', 'EACCES', 'EINVAL', 'ENXIO'])

function isNotFound(err: unknown): boolean {
	return typeof err === 'object' && err !== null && NOT_FOUND.has(String((err as { code?: unknown }).code))
}

/** The open-file cache: how long a checked descriptor is trusted without a look at its path, and how many are kept. */
export interface OpenFileCache {
	/** 0 turns the cache off: every lookup opens and checks the file. */
	readonly validMs: number
	/** The least recently used descriptor is closed past this many. */
	readonly maxEntries?: number
	/** Milliseconds, for the validity window (tests move it by hand). */
	readonly now?: () => number
}

const DEFAULT_MAX_ENTRIES = 1024

interface CacheEntry {
	readonly file: CheckedDescriptor
	/** When the path was last seen to still name this file. */
	checkedAt: number
}

/**
 * Disk storage rooted at `rootDir`. A lookup opens the path once (following
 * symlinks, as the kernel resolves them at that instant), then checks the
 * opened file itself: a regular file whose real path lies inside the root.
 * Synchronous on purpose: on a local disk these calls take microseconds,
 * while the async versions hop through a thread pool and halved throughput.
 *
 * With an open-file cache (as nginx's `open_file_cache`), a checked
 * descriptor serves later requests for the same file: within `validMs` of
 * its last check a request makes no system call of its own; after it, one
 * `stat` of the path must still show the same device, inode, size and times,
 * or the descriptor is dropped and the file opened and checked afresh. A file
 * swapped in within the window is not seen until then: the checked inode is
 * what is served, never the new path's.
 */
export function createDiskStorage(
	rootDir: string,
	fs: FileSystem = nodeFileSystem(),
	cacheOptions: OpenFileCache = { validMs: 0 },
): Storage & {
	readonly openNow: (userId: string, filename: string) => CheckedFile | null
} {
	let rootReal: string | null = null
	const root = () => {
		rootReal ??= realpathSync.native(rootDir)
		return rootReal
	}
	const validMs = cacheOptions.validMs
	const maxEntries = cacheOptions.maxEntries ?? DEFAULT_MAX_ENTRIES
	const now = cacheOptions.now ?? (() => performance.now())
	// Insertion order is recency: a hit moves its entry to the end, the first one is evicted.
	const cache = new Map<string, CacheEntry>()

	// Where /proc cannot name the opened file, the path is resolved now and
	// must still be the same inode: an escape swapped in between shows as another inode.
	function confinedElsewhere(path: string, st: Stats, base: string): boolean {
		const real = realpathSync.native(path)
		if (!real.startsWith(base + sep)) return false
		const again = statSync(real)
		return again.ino === st.ino && again.dev === st.dev
	}

	/** Opens and checks `path` (below `base`): the checked descriptor, or null. */
	function openChecked(path: string, base: string): CheckedDescriptor | null {
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
			if (inside) return new CheckedDescriptor(fs, fd, st, real !== null)
		} catch (err) {
			fs.close(fd)
			if (isNotFound(err)) return null
			throw err
		}
		fs.close(fd)
		return null
	}

	/** A cached descriptor for `key` that still names the file at `path`, or null (a stale one is dropped). */
	function cached(key: string, path: string): CheckedDescriptor | null {
		const entry = cache.get(key)
		if (entry === undefined) return null
		const at = now()
		if (at - entry.checkedAt >= validMs) {
			let current: Stats | null = null
			try {
				current = fs.stat(path)
			} catch {}
			if (current === null || identityOf(current) !== entry.file.identity) {
				cache.delete(key)
				entry.file.drop()
				return null
			}
			entry.checkedAt = at
		}
		cache.delete(key)
		cache.set(key, entry)
		return entry.file
	}

	function remember(key: string, file: CheckedDescriptor): void {
		cache.set(key, { file, checkedAt: now() })
		if (cache.size <= maxEntries) return
		const [oldest, entry] = cache.entries().next().value ?? []
		if (oldest === undefined || entry === undefined) return
		cache.delete(oldest)
		entry.file.drop()
	}

	function openNow(userId: string, filename: string): CheckedFile | null {
		const base = root()
		// Callers validate names; anything that is not two plain segments below the root is refused here too.
		if (!plainSegment(userId) || !plainSegment(filename)) return null
		const path = `${base}${sep}${userId}${sep}${filename}`
		if (validMs <= 0) {
			const file = openChecked(path, base)
			if (file === null) return null
			const view = file.acquire()
			file.drop()
			return view
		}
		const key = `${userId}/${filename}`
		const hit = cached(key, path)
		if (hit !== null) return hit.acquire()
		const file = openChecked(path, base)
		if (file === null) return null
		remember(key, file)
		return file.acquire()
	}

	function size(userId: string, filename: string): number | null {
		const base = root()
		if (!plainSegment(userId) || !plainSegment(filename)) return null
		// A file downloaded a moment ago is still checked: its size costs no system call.
		if (validMs > 0) {
			const hit = cached(`${userId}/${filename}`, `${base}${sep}${userId}${sep}${filename}`)
			if (hit !== null) return hit.size
		}
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
		async close() {
			// Bodies still in flight keep their descriptors until they end.
			for (const entry of cache.values()) entry.file.drop()
			cache.clear()
		},
	}
}
