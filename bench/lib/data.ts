// Data files, generated once under bench/.data/storage (gitignored): random
// bytes for u0, and u1…u99 seeing u0's small file through a symlink.

import { mkdir, readdir, stat, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { KiB, log, MiB, STORAGE, USERS } from './context'
import { sh } from './proc'
import { fmt } from './report'

/** The files, by the name scenarios ask for. */
export const FILES = {
	small: { name: 'small.mp4', bytes: 64 * KiB },
	mid: { name: 'mid.mp4', bytes: 20 * MiB },
	big: { name: 'big.mp4', bytes: 1024 * MiB },
	huge: { name: 'huge.mp4', bytes: 4096 * MiB },
} as const

/** A file scenarios can ask for. */
export type FileKind = keyof typeof FILES

async function ensureFile(path: string, bytes: number): Promise<void> {
	if ((await stat(path).catch(() => null))?.size === bytes) return
	log(`writing ${path} (${fmt(bytes / MiB, bytes < MiB ? 2 : 0)} MiB of random bytes)`)
	await sh(['sh', '-c', `head -c ${bytes} /dev/urandom > "$0.tmp" && mv "$0.tmp" "$0"`, path])
}

/** Creates the small file, every user's link to it, and the `kinds` asked for. */
export async function prepareData(kinds: Iterable<FileKind>): Promise<void> {
	await mkdir(join(STORAGE, 'u0'), { recursive: true })
	for (const kind of new Set<FileKind>(['small', ...kinds])) {
		const f = FILES[kind]
		await ensureFile(join(STORAGE, 'u0', f.name), f.bytes)
	}
	for (let i = 1; i < USERS; i++) {
		const dir = join(STORAGE, `u${i}`)
		await mkdir(dir, { recursive: true })
		if (!(await readdir(dir)).includes(FILES.small.name))
			await symlink(`../u0/${FILES.small.name}`, join(dir, FILES.small.name))
	}
}
