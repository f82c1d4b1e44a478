import { type BigIntStats, lstatSync, realpathSync, statSync } from 'node:fs'
import { dirname, join, sep } from 'node:path'

/** A regular file inside storage, with what the HTTP layer needs of it. */
export interface StoredFile {
	/** The real path (symlinks resolved), the only one ever opened. */
	readonly path: string
	readonly size: number
	readonly mtimeMs: number
	/** Strong validator: changes when size, mtime (ns) or inode change. */
	readonly etag: string
}

/** Finds `<root>/<user_id>/<filename>`; callers validate the two names first. */
export interface Storage {
	/** The file, or null when absent, not a regular file, or resolving outside the root. */
	find(userId: string, filename: string): Promise<StoredFile | null>
	/** Resolves when the root is a readable directory; rejects otherwise. */
	check(): Promise<void>
}

const NOT_FOUND = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG', 'EACCES', 'EINVAL'])

function isNotFound(err: unknown): boolean {
	return typeof err === 'object' && err !== null && NOT_FOUND.has(String((err as { code?: unknown }).code))
}

/**
 * Disk storage rooted at `rootDir`. Every lookup checks, at that moment, that
 * the path is real (or resolves it) and refuses anything that lands outside the
 * root, so symlinks and `..` can never escape. The lookups are synchronous on
 * purpose: on a local disk lstat and realpath take microseconds, while the
 * async versions hop through a thread pool and halved throughput on the
 * benchmark (10.5k vs 17.8k req/s).
 */
export function createDiskStorage(rootDir: string): Storage {
	// Paths are checked on every lookup, never cached: a cached path can
	// become a symlink (or gain a symlinked parent) and stat would follow it
	// out of the root. The test that swaps a file for an escaping symlink
	// caught exactly that.
	let rootReal: string | null = null
	const root = () => {
		rootReal ??= realpathSync.native(rootDir)
		return rootReal
	}

	const storedFile = (path: string, st: BigIntStats): StoredFile => ({
		path,
		size: Number(st.size),
		mtimeMs: Number(st.mtimeMs),
		etag: `"${st.size.toString(36)}-${st.mtimeNs.toString(36)}-${st.ino.toString(36)}"`,
	})

	// Follows symlinks, then refuses a real path outside the root.
	function findResolved(path: string, base: string): StoredFile | null {
		const real = realpathSync.native(path)
		if (!real.startsWith(base + sep)) return null
		const st = statSync(real, { bigint: true })
		return st.isFile() ? storedFile(real, st) : null
	}

	return {
		async find(userId, filename) {
			try {
				const base = root()
				const dir = join(base, userId)
				const path = join(dir, filename)
				// Fast path, two lstat calls instead of realpath's four syscalls: when both
				// names are single segments and neither the user directory nor the file is a
				// symlink, the path is already real and inside the root. Names that are not
				// single segments (callers should have refused them) take the realpath path.
				if (dirname(dir) !== base || dirname(path) !== dir) return findResolved(path, base)
				const dirSt = lstatSync(dir, { throwIfNoEntry: false })
				if (dirSt === undefined) return null
				if (dirSt.isSymbolicLink()) return findResolved(path, base)
				if (!dirSt.isDirectory()) return null
				const st = lstatSync(path, { bigint: true, throwIfNoEntry: false })
				if (st === undefined) return null
				if (st.isSymbolicLink()) return findResolved(path, base)
				return st.isFile() ? storedFile(path, st) : null
			} catch (err) {
				if (isNotFound(err)) return null
				throw err
			}
		},

		async check() {
			const st = statSync(root())
			if (!st.isDirectory()) throw new Error(`${rootDir} is not a directory`)
		},
	}
}
