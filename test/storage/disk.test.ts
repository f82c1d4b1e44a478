import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDiskStorage, type FileSystem, nodeFileSystem } from '../../src/storage/disk'
import type { CheckedFile } from '../../src/storage/types'
import { openDescriptors } from '../support/descriptors'
import { storageContract } from './contract'

// Disk storage on its own. The routes validate names before a lookup; these
// cases check that the lookup stays inside the root even when a caller
// forgets, and that what was checked is the file later read.

/** Everything the handle reads, through the handle (never the path). */
async function contentOf(file: CheckedFile | null): Promise<string | null> {
	if (!file) return null
	const reader = await file.openRange(0, file.size)
	const chunks: Uint8Array[] = []
	for (let chunk = await reader.read(1 << 20); chunk !== null; chunk = await reader.read(1 << 20)) chunks.push(chunk)
	file.close()
	return Buffer.concat(chunks).toString()
}

let base: string
let root: string
let outside: string
let storage: ReturnType<typeof createDiskStorage>

beforeAll(async () => {
	base = await mkdtemp(join(tmpdir(), 'dlg-storage-'))
	root = join(base, 'root')
	outside = join(base, 'outside')
	await mkdir(join(root, 'u1'), { recursive: true })
	await mkdir(join(root, 'u2'), { recursive: true })
	await mkdir(outside)
	await writeFile(join(root, 'u1', 'v.mp4'), 'inside')
	await writeFile(join(root, 'u2', 'w.mp4'), 'other user')
	await writeFile(join(outside, 'secret.mp4'), 'outside')
	await symlink(outside, join(root, 'u1', 'sub'))
	await symlink(join(root, 'u2'), join(root, 'linked'))
	storage = createDiskStorage(root)
})
afterAll(() => rm(base, { recursive: true, force: true }))

describe('disk storage', () => {
	test('a plain file is opened, with size and a strong ETag from the handle', async () => {
		const file = storage.openNow('u1', 'v.mp4')
		expect(file?.size).toBe(6)
		expect(file?.etag).toMatch(/^"[0-9a-z]+-[0-9a-z]+-[0-9a-z]+"$/)
		// The zero-copy body is the checked descriptor itself, reopened through /proc.
		const blob = file?.zeroCopy(0, 6)
		expect(await blob?.text()).toBe('inside')
		expect(await file?.zeroCopy(1, 3)?.text()).toBe('ns')
		expect(file?.presignedUrl(60, 'attachment', 'video/mp4')).toBeNull()
		expect(await contentOf(file)).toBe('inside')
	})

	test('a user directory that is a symlink inside the root is followed', async () => {
		expect(await contentOf(storage.openNow('linked', 'w.mp4'))).toBe('other user')
	})

	test.each([
		['a multi-segment filename through a symlinked folder', 'u1', 'sub/secret.mp4'],
		['.. in the filename', 'u1', '../../outside/secret.mp4'],
		['.. as the user', '..', 'outside/secret.mp4'],
		['a missing file', 'u1', 'nope.mp4'],
		['a missing user', 'nobody', 'v.mp4'],
		['a directory', 'u1', 'sub'],
	])('%s → not found', async (_name, userId, filename) => {
		expect(storage.openNow(userId, filename)).toBeNull()
	})

	test('a symlink to a file outside the root → not found, and nothing stays open', async () => {
		await symlink(join(outside, 'secret.mp4'), join(root, 'u1', 'escape.mp4'))
		expect(storage.openNow('u1', 'escape.mp4')).toBeNull()
	})

	test('a FIFO is refused without blocking', async () => {
		expect(Bun.spawnSync(['mkfifo', join(root, 'u1', 'pipe.mp4')]).exitCode).toBe(0)
		expect(storage.openNow('u1', 'pipe.mp4')).toBeNull()
	})

	test('the handle keeps serving the checked file after the path is swapped for an escaping symlink', async () => {
		await writeFile(join(root, 'u1', 'swap.mp4'), 'checked')
		const file = storage.openNow('u1', 'swap.mp4')
		await symlink(join(outside, 'secret.mp4'), join(root, 'u1', 'swap.tmp'))
		await rename(join(root, 'u1', 'swap.tmp'), join(root, 'u1', 'swap.mp4'))
		expect(await file?.zeroCopy(0, 7)?.text()).toBe('checked')
		expect(await contentOf(file)).toBe('checked')
	})

	test('a swap between the open and the check is caught: the opened file is what is checked', async () => {
		// The path is swapped for an escaping symlink right after open(): the
		// check looks at the opened descriptor, which is the outside file.
		await writeFile(join(root, 'u1', 'race.mp4'), 'inside')
		const real = nodeFileSystem()
		let swapped = false
		const racing: FileSystem = {
			...real,
			openPath(path) {
				if (!swapped) {
					swapped = true
					return real.openPath(join(outside, 'secret.mp4'))
				}
				return real.openPath(path)
			},
		}
		const raced = createDiskStorage(root, racing)
		expect(raced.openNow('u1', 'race.mp4')).toBeNull()
		expect(await contentOf(await raced.open('u1', 'race.mp4'))).toBe('inside')
	})

	test('size() agrees with open() without opening: plain, symlinked inside, escaping, missing, not a file', async () => {
		expect(await storage.size('u1', 'v.mp4')).toBe(6)
		expect(await storage.size('linked', 'w.mp4')).toBe(10)
		await symlink(join(outside, 'secret.mp4'), join(root, 'u1', 'escape-size.mp4'))
		expect(await storage.size('u1', 'escape-size.mp4')).toBeNull()
		expect(await storage.size('u1', 'nope.mp4')).toBeNull()
		expect(await storage.size('nobody', 'v.mp4')).toBeNull()
		expect(await storage.size('u1', 'sub')).toBeNull()
		expect(await storage.size('..', 'outside')).toBeNull()
		expect(await storage.size('u1', '../u2/w.mp4')).toBeNull()
	})

	test('close is idempotent and nothing of storage stays open', async () => {
		const before = openDescriptors(root)
		for (let i = 0; i < 50; i++) {
			const file = storage.openNow('u1', 'v.mp4')
			file?.close()
			file?.close()
			expect(storage.openNow('u1', 'nope.mp4')).toBeNull()
		}
		expect(openDescriptors(root)).toEqual(before)
	})
})

// The same contract the bucket meets (test/storage/s3.test.ts), against a directory.
storageContract('disk', async () => {
	const dir = await mkdtemp(join(tmpdir(), 'dlg-contract-'))
	const storage = createDiskStorage(dir)
	let n = 0
	return {
		storage,
		pinsBytes: 'descriptor',
		zeroCopy: true,
		presigns: false,
		async put(userId, filename, data) {
			// Replaced at once, as a deploy does: written aside, then renamed over the name.
			await mkdir(join(dir, userId), { recursive: true })
			const aside = join(dir, userId, `.incoming-${n++}`)
			await writeFile(aside, data)
			await rename(aside, join(dir, userId, filename))
		},
		remove: (userId, filename) => rm(join(dir, userId, filename), { force: true }),
		async close() {
			await storage.close()
			await rm(dir, { recursive: true, force: true })
		},
	}
})

describe('the open-file cache', () => {
	let base: string
	let dir: string
	let clockMs = 0
	const calls: string[] = []
	const real = nodeFileSystem()
	// Every file-system call the storage makes, recorded: a cached request must make none.
	const counting: FileSystem = {
		...real,
		lstat: (p) => {
			calls.push('lstat')
			return real.lstat(p)
		},
		stat: (p) => {
			calls.push('stat')
			return real.stat(p)
		},
		openPath: (p) => {
			calls.push('open')
			return real.openPath(p)
		},
		openReadable: (fd) => {
			calls.push('openReadable')
			return real.openReadable(fd)
		},
		fstat: (fd) => {
			calls.push('fstat')
			return real.fstat(fd)
		},
		pathOf: (fd) => {
			calls.push('readlink')
			return real.pathOf(fd)
		},
		close: (fd) => {
			calls.push('close')
			real.close(fd)
		},
	}
	const make = (maxEntries = 16) => createDiskStorage(dir, counting, { validMs: 1000, maxEntries, now: () => clockMs })
	const contentOfView = async (file: CheckedFile | null) => {
		if (!file) return null
		const reader = await file.openRange(0, file.size)
		const chunks: Uint8Array[] = []
		for (let c = await reader.read(1 << 20); c !== null; c = await reader.read(1 << 20)) chunks.push(c)
		file.close()
		return Buffer.concat(chunks).toString()
	}
	/** Replaces `name` at once by new content (written aside, renamed over), as a deploy does. */
	const replace = async (name: string, content: string) => {
		await writeFile(join(dir, 'u', `.${name}.new`), content)
		await rename(join(dir, 'u', `.${name}.new`), join(dir, 'u', name))
	}

	beforeAll(async () => {
		base = await mkdtemp(join(tmpdir(), 'dlg-cache-'))
		dir = join(base, 'root')
		await mkdir(join(dir, 'u'), { recursive: true })
		await mkdir(join(base, 'outside'))
		await writeFile(join(base, 'outside', 'secret.mp4'), 'SECRET')
	})
	afterAll(() => rm(base, { recursive: true, force: true }))

	test('within the window a request makes no file-system call of its own; after it, one stat', async () => {
		await writeFile(join(dir, 'u', 'a.mp4'), 'alpha')
		const storage = make()
		expect(await contentOfView(storage.openNow('u', 'a.mp4'))).toBe('alpha')
		calls.length = 0
		for (let i = 0; i < 5; i++) storage.openNow('u', 'a.mp4')?.close()
		expect(calls).toEqual([])
		clockMs += 1000
		storage.openNow('u', 'a.mp4')?.close()
		storage.openNow('u', 'a.mp4')?.close()
		expect(calls).toEqual(['stat'])
		await storage.close()
	})

	test('the size of a cached file (issuing a token for it) costs no system call within the window', async () => {
		await writeFile(join(dir, 'u', 'sz.mp4'), 'sized')
		const storage = make()
		storage.openNow('u', 'sz.mp4')?.close()
		calls.length = 0
		expect(await storage.size('u', 'sz.mp4')).toBe(5)
		expect(calls).toEqual([])
		clockMs += 1000
		await writeFile(join(dir, 'u', 'sz.mp4'), 'resized file')
		expect(await storage.size('u', 'sz.mp4')).toBe(12)
		expect(calls[0]).toBe('stat')
		await storage.close()
	})

	test('a file replaced within the window is still the checked inode; after it, the new file, checked afresh', async () => {
		await writeFile(join(dir, 'u', 'b.mp4'), 'first')
		const storage = make()
		expect(await contentOfView(storage.openNow('u', 'b.mp4'))).toBe('first')
		const etag = storage.openNow('u', 'b.mp4')?.etag
		await replace('b.mp4', 'second version')
		// Within the window: the bytes and validators of what was checked, never the new path's.
		const stale = storage.openNow('u', 'b.mp4')
		expect(stale?.etag).toBe(etag)
		expect(stale?.size).toBe(5)
		expect(await contentOfView(stale)).toBe('first')
		clockMs += 1000
		calls.length = 0
		const fresh = storage.openNow('u', 'b.mp4')
		expect(calls).toEqual(['stat', 'open', 'fstat', 'readlink'])
		expect(fresh?.etag).not.toBe(etag)
		expect(await contentOfView(fresh)).toBe('second version')
		await storage.close()
	})

	test('a symlink out of storage swapped in: the checked inode until the window ends, then refused', async () => {
		await writeFile(join(dir, 'u', 'c.mp4'), 'inside')
		const storage = make()
		expect(await contentOfView(storage.openNow('u', 'c.mp4'))).toBe('inside')
		await symlink(join(base, 'outside', 'secret.mp4'), join(dir, 'u', '.c.link'))
		await rename(join(dir, 'u', '.c.link'), join(dir, 'u', 'c.mp4'))
		expect(await contentOfView(storage.openNow('u', 'c.mp4'))).toBe('inside')
		clockMs += 1000
		expect(storage.openNow('u', 'c.mp4')).toBeNull()
		await storage.close()
	})

	test('grown, shrunk, touched or deleted in place: seen at the next look, never served past the checked size', async () => {
		await writeFile(join(dir, 'u', 'd.mp4'), '12345')
		const storage = make()
		const checked = storage.openNow('u', 'd.mp4')
		await writeFile(join(dir, 'u', 'd.mp4'), '1234567890') // the same inode, grown
		// A view handed out before keeps its size; the zero-copy slice is capped at it.
		expect(await checked?.zeroCopy(0, checked.size)?.text()).toBe('12345')
		checked?.close()
		clockMs += 1000
		expect(storage.openNow('u', 'd.mp4')?.size).toBe(10)
		await rm(join(dir, 'u', 'd.mp4'))
		expect(await contentOfView(storage.openNow('u', 'd.mp4'))).toBe('1234567890')
		clockMs += 1000
		expect(storage.openNow('u', 'd.mp4')).toBeNull()
		await storage.close()
	})

	test('least recently used descriptors are closed past the bound, but only once no request holds them', async () => {
		for (const name of ['e1.mp4', 'e2.mp4', 'e3.mp4']) await writeFile(join(dir, 'u', name), name)
		const before = openDescriptors(join(dir, 'u'))
		const storage = make(2)
		const held = storage.openNow('u', 'e1.mp4') // held across its eviction
		storage.openNow('u', 'e2.mp4')?.close()
		storage.openNow('u', 'e3.mp4')?.close() // evicts e1 from the cache
		expect(openDescriptors(join(dir, 'u')).filter((p) => p.endsWith('e1.mp4'))).toHaveLength(1)
		expect(await contentOfView(held)).toBe('e1.mp4')
		// Released: nothing of e1 stays open; e2 and e3 are the cache's.
		const open = openDescriptors(join(dir, 'u'))
		expect(open.filter((p) => p.endsWith('e1.mp4'))).toEqual([])
		expect(open.length - before.length).toBeLessThanOrEqual(4)
		calls.length = 0
		storage.openNow('u', 'e1.mp4')?.close() // opened and checked again
		expect(calls).toContain('open')
		await storage.close()
		expect(openDescriptors(join(dir, 'u'))).toEqual(before)
	})
})
