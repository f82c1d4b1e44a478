import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { countedStream } from '../../src/http/file-stream'
import { createDiskStorage } from '../../src/storage/disk'
import type { CheckedFile } from '../../src/storage/types'
import { openDescriptors } from '../support/descriptors'
import { randomBytesOf } from '../support/helpers'

// The counted stream behind budgeted downloads, reading the file storage
// opened at the check. Every way a body can end reports it once, so its owner
// closes the file: these tests close it in onEnd, as the download route does.

let dir: string
let path: string
let data: Uint8Array<ArrayBuffer>
const SIZE = 1024 * 1024 + 17

/** Opens `name` through storage, as the download route does. */
function opened(name = 'v.mp4'): CheckedFile {
	const file = createDiskStorage(dir).openNow('u', name)
	if (!file) throw new Error(`${name} did not open`)
	return file
}

/** A stream over `file` whose end closes it and is recorded in `ends`. */
function counted(file: CheckedFile, start: number, end: number, ends: [number, boolean][] = []) {
	const reader = file.openRange(start, end)
	if (reader instanceof Promise) throw new Error('a disk answers without waiting')
	return countedStream(reader, end - start, (w, c) => {
		file.close()
		ends.push([w, c])
	})
}

/** Lets pending opens, reads and closes finish. No GC here: it would close leaked handles and hide them. */
async function settle() {
	await Bun.sleep(50)
}

beforeAll(async () => {
	dir = await mkdtemp(join(tmpdir(), 'dlg-stream-'))
	await mkdir(join(dir, 'u'))
	path = join(dir, 'u', 'v.mp4')
	data = randomBytesOf(SIZE)
	await writeFile(path, data)
})
afterAll(() => rm(dir, { recursive: true, force: true }))

describe('countedStream over a checked file', () => {
	test('streams exactly [start, end) and reports a complete body', async () => {
		const ends: [number, boolean][] = []
		const { stream } = counted(opened(), 100, SIZE - 5, ends)
		const body = new Uint8Array(await new Response(stream).arrayBuffer())
		expect(body).toEqual(data.slice(100, SIZE - 5))
		expect(ends).toEqual([[SIZE - 105, true]])
		await settle()
		expect(openDescriptors(path)).toEqual([])
	})

	test('a client gone before the first read: onEnd(0, false), the file is closed', async () => {
		const ends: [number, boolean][] = []
		const { stream } = counted(opened(), 0, SIZE, ends)
		await stream.getReader().cancel()
		await settle()
		expect(ends).toEqual([[0, false]])
		expect(openDescriptors(path)).toEqual([])
	})

	test('a file that grew since the check is cut at the checked length', async () => {
		const growing = join(dir, 'u', 'grows.mp4')
		await writeFile(growing, data.slice(0, 1000))
		const file = opened('grows.mp4')
		await writeFile(growing, data) // now SIZE bytes, after the check said 1000
		const ends: [number, boolean][] = []
		const body = new Uint8Array(await new Response(counted(file, 0, file.size, ends).stream).arrayBuffer())
		expect(body).toEqual(data.slice(0, 1000))
		expect(ends).toEqual([[1000, true]])
	})

	test('cut halfway: onEnd gets the bytes handed over and complete=false, the file is closed', async () => {
		const ends: [number, boolean][] = []
		const { stream } = counted(opened(), 0, SIZE, ends)
		const reader = stream.getReader()
		let got = 0
		while (got < SIZE / 2) got += (await reader.read()).value?.byteLength ?? 0
		await reader.cancel()
		await settle()
		expect(ends).toHaveLength(1)
		expect(ends[0]?.[1]).toBe(false)
		expect(ends[0]?.[0]).toBe(got)
		expect(openDescriptors(path)).toEqual([])
	})

	test('abort() (the request signal) ends it the same way, once', async () => {
		const ends: [number, boolean][] = []
		const { stream, abort } = counted(opened(), 0, SIZE, ends)
		const reader = stream.getReader()
		await reader.read()
		abort()
		abort()
		await reader.cancel()
		await settle()
		expect(ends).toHaveLength(1)
		expect(openDescriptors(path)).toEqual([])
	})

	test('a file that shrinks mid-body errors the stream instead of sending short', async () => {
		const shrinking = join(dir, 'u', 'shrinks.mp4')
		await writeFile(shrinking, data)
		const ends: [number, boolean][] = []
		const { stream } = counted(opened('shrinks.mp4'), 0, SIZE, ends)
		const reader = stream.getReader()
		await reader.read()
		await truncate(shrinking, 1000)
		let failed = false
		try {
			for (;;) if ((await reader.read()).done) break
		} catch {
			failed = true
		}
		expect(failed).toBe(true)
		expect(ends[0]?.[1]).toBe(false)
		await settle()
		expect(openDescriptors(shrinking)).toEqual([])
	})

	test('500 streams cancelled at random moments leave no descriptor open (the race the benchmark hit)', async () => {
		const runs = Array.from({ length: 500 }, async (_, i) => {
			const { stream } = counted(opened(), 0, SIZE)
			const reader = stream.getReader()
			const reads = i % 4
			for (let r = 0; r < reads; r++) await reader.read()
			if (i % 2) void reader.read().catch(() => undefined)
			await reader.cancel()
		})
		await Promise.all(runs)
		await settle()
		await settle()
		expect(openDescriptors(path)).toEqual([])
	})
})
