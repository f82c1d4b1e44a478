import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtemp, open, readdir, readlink, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileStream } from '../src/http/file-stream'
import { randomBytesOf } from './helpers'

// The counted stream behind budgeted downloads. Every way a body can end must
// close its file: Bun kills the process when the GC finds an open FileHandle.

let dir: string
let path: string
let data: Uint8Array<ArrayBuffer>
const SIZE = 1024 * 1024 + 17

async function openDescriptorsOf(file: string): Promise<number> {
	let n = 0
	for (const fd of await readdir('/proc/self/fd')) {
		const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '')
		if (target === file) n++
	}
	return n
}

/** Lets pending opens, reads and closes finish. No GC here: it would close leaked handles and hide them. */
async function settle() {
	await Bun.sleep(50)
}

beforeAll(async () => {
	dir = await mkdtemp(join(tmpdir(), 'dlg-stream-'))
	path = join(dir, 'v.mp4')
	data = randomBytesOf(SIZE)
	await writeFile(path, data)
})
afterAll(() => rm(dir, { recursive: true, force: true }))

describe('fileStream', () => {
	test('streams exactly [start, end) and reports a complete body', async () => {
		const ends: [number, boolean][] = []
		const { stream } = fileStream(path, 100, SIZE - 5, (w, c) => ends.push([w, c]))
		const body = new Uint8Array(await new Response(stream).arrayBuffer())
		expect(body).toEqual(data.slice(100, SIZE - 5))
		expect(ends).toEqual([[SIZE - 105, true]])
		await settle()
		expect(await openDescriptorsOf(path)).toBe(0)
	})

	test('a client gone while the file is still opening: the file is closed, nothing leaks', async () => {
		// Opening a FIFO for reading blocks until a writer appears, which holds
		// open() in flight for as long as the test needs.
		const fifo = join(dir, 'slow-open.fifo')
		expect(Bun.spawnSync(['mkfifo', fifo]).exitCode).toBe(0)
		const ends: [number, boolean][] = []
		const { stream } = fileStream(fifo, 0, SIZE, (w, c) => ends.push([w, c]))
		const reader = stream.getReader()
		const pending = reader.read().catch(() => undefined)
		await Bun.sleep(20) // pull() is now waiting in open()
		await reader.cancel()
		const writer = await open(fifo, 'w') // lets the reader's open() complete, after the cancel
		await pending
		await writer.close()
		await settle()
		expect(ends).toEqual([[0, false]])
		expect(await openDescriptorsOf(fifo)).toBe(0)
	})

	test('cut halfway: onEnd gets the bytes handed over and complete=false, the file is closed', async () => {
		const ends: [number, boolean][] = []
		const { stream } = fileStream(path, 0, SIZE, (w, c) => ends.push([w, c]))
		const reader = stream.getReader()
		let got = 0
		while (got < SIZE / 2) got += (await reader.read()).value?.byteLength ?? 0
		await reader.cancel()
		await settle()
		expect(ends).toHaveLength(1)
		expect(ends[0]?.[1]).toBe(false)
		expect(ends[0]?.[0]).toBe(got)
		expect(await openDescriptorsOf(path)).toBe(0)
	})

	test('abort() (the request signal) ends it the same way, once', async () => {
		const ends: [number, boolean][] = []
		const { stream, abort } = fileStream(path, 0, SIZE, (w, c) => ends.push([w, c]))
		const reader = stream.getReader()
		await reader.read()
		abort()
		abort()
		await reader.cancel()
		await settle()
		expect(ends).toHaveLength(1)
		expect(await openDescriptorsOf(path)).toBe(0)
	})

	test('a file that shrinks mid-body errors the stream instead of sending short', async () => {
		const shrinking = join(dir, 'shrinks.mp4')
		await writeFile(shrinking, data)
		const ends: [number, boolean][] = []
		const { stream } = fileStream(shrinking, 0, SIZE, (w, c) => ends.push([w, c]))
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
		expect(await openDescriptorsOf(shrinking)).toBe(0)
	})

	test('500 streams cancelled at random moments leave no descriptor open (the race the benchmark hit)', async () => {
		const runs = Array.from({ length: 500 }, async (_, i) => {
			const { stream } = fileStream(path, 0, SIZE, () => {})
			const reader = stream.getReader()
			const reads = i % 4
			for (let r = 0; r < reads; r++) await reader.read()
			if (i % 2) void reader.read().catch(() => undefined)
			await reader.cancel()
		})
		await Promise.all(runs)
		await settle()
		await settle()
		expect(await openDescriptorsOf(path)).toBe(0)
	})
})
