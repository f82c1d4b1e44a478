import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDiskStorage, type Storage } from '../src/storage/disk'

// Disk storage on its own. The routes validate names before a lookup; these
// cases check that the lookup stays inside the root even when a caller forgets.

let base: string
let root: string
let outside: string
let storage: Storage

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
	test('a plain file is found at its own path, with size and a strong ETag', async () => {
		const file = await storage.find('u1', 'v.mp4')
		expect(file?.path).toBe(join(root, 'u1', 'v.mp4'))
		expect(file?.size).toBe(6)
		expect(file?.etag).toMatch(/^"[0-9a-z]+-[0-9a-z]+-[0-9a-z]+"$/)
	})

	test('a user directory that is a symlink inside the root is followed to its real path', async () => {
		expect((await storage.find('linked', 'w.mp4'))?.path).toBe(join(root, 'u2', 'w.mp4'))
	})

	test.each([
		['a multi-segment filename through a symlinked folder', 'u1', 'sub/secret.mp4'],
		['.. in the filename', 'u1', '../../outside/secret.mp4'],
		['.. as the user', '..', 'outside/secret.mp4'],
		['a missing file', 'u1', 'nope.mp4'],
		['a missing user', 'nobody', 'v.mp4'],
		['a directory', 'u1', 'sub'],
	])('%s → not found', async (_name, userId, filename) => {
		expect(await storage.find(userId, filename)).toBeNull()
	})
})
