import { realpath, stat } from 'node:fs/promises'
import { join, sep } from 'node:path'

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
 * Disk storage rooted at `rootDir`. The root is resolved once; every lookup
 * resolves the real path and refuses anything that lands outside it, so
 * symlinks and `..` can never escape.
 */
export function createDiskStorage(rootDir: string): Storage {
	let rootReal: Promise<string> | null = null
	const root = () => {
		rootReal ??= realpath(rootDir).catch((err: unknown) => {
			rootReal = null
			throw err
		})
		return rootReal
	}

	return {
		async find(userId, filename) {
			try {
				const base = await root()
				const real = await realpath(join(base, userId, filename))
				if (!real.startsWith(base + sep)) return null
				const st = await stat(real, { bigint: true })
				if (!st.isFile()) return null
				return {
					path: real,
					size: Number(st.size),
					mtimeMs: Number(st.mtimeMs),
					etag: `"${st.size.toString(36)}-${st.mtimeNs.toString(36)}-${st.ino.toString(36)}"`,
				}
			} catch (err) {
				if (isNotFound(err)) return null
				throw err
			}
		},

		async check() {
			const st = await stat(await root())
			if (!st.isDirectory()) throw new Error(`${rootDir} is not a directory`)
		},
	}
}
