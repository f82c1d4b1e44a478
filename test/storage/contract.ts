import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { type CheckedFile, ObjectChangedError, type Storage } from '../../src/storage/types'

/** A storage under test and how the test changes what it holds, by its own means (never through the storage). */
export interface StorageFixture {
	readonly storage: Storage
	/**
	 * What keeps a checked file's bytes: the descriptor opened at the check
	 * (disk: a file replaced or removed afterwards is still read as checked) or
	 * the ETag every read must carry (bucket: another version is refused).
	 */
	readonly pinsBytes: 'descriptor' | 'etag'
	/** Whether checked files give zero-copy bodies (disk). */
	readonly zeroCopy: boolean
	/** Whether checked files give presigned URLs (bucket). */
	readonly presigns: boolean
	/** Writes `<user>/<file>` where the storage keeps it, or replaces it at once by a new version. */
	put(userId: string, filename: string, data: Uint8Array): Promise<void>
	/** Deletes `<user>/<file>`. */
	remove(userId: string, filename: string): Promise<void>
	/** Deletes what the fixture wrote and releases the storage. */
	close(): Promise<void>
}

/** Bytes where every position differs from its neighbours, so an off-by-one shows. */
export function patternBytes(length: number, seed = 1): Uint8Array {
	const out = new Uint8Array(length)
	let x = seed
	for (let i = 0; i < length; i++) {
		x = (x * 1103515245 + 12345) >>> 0
		out[i] = x >>> 24
	}
	return out
}

/** Reads `[start, end)` through a range reader with `max` per read; every chunk is checked against `max`. */
export async function readRange(file: CheckedFile, start: number, end: number, max = 65536): Promise<Uint8Array> {
	const reader = await file.openRange(start, end)
	const chunks: Uint8Array[] = []
	let oversized = 0
	for (let chunk = await reader.read(max); chunk !== null; chunk = await reader.read(max)) {
		if (chunk.length > max || chunk.length === 0) oversized++
		chunks.push(chunk)
	}
	expect(oversized).toBe(0)
	return Buffer.concat(chunks)
}

/** How reading a range ended: its bytes, or that the version had changed, or another failure. */
async function outcomeOf(
	read: Promise<Uint8Array>,
): Promise<{ bytes: Uint8Array } | { changed: true } | { failed: string }> {
	try {
		return { bytes: await read }
	} catch (err) {
		return err instanceof ObjectChangedError ? { changed: true } : { failed: String(err) }
	}
}

const user = () => `u-${crypto.randomUUID().slice(0, 8)}`

/**
 * The contract every Storage meets (docs/contract.md §3 and §6), run against a
 * directory and a bucket alike. Where they differ by design, the fixture says how.
 */
export function storageContract(name: string, makeFixture: () => Promise<StorageFixture>): void {
	describe(`Storage contract (${name})`, () => {
		let fx: StorageFixture
		beforeAll(async () => {
			fx = await makeFixture()
		})
		afterAll(async () => {
			await fx.close()
		})

		test('check resolves for a storage that is there', async () => {
			expect(await fx.storage.check()).toBeUndefined()
		})

		test('a present file is found with its size, a quoted strong ETag and its modification time', async () => {
			const u = user()
			const data = patternBytes(1234)
			await fx.put(u, 'a.mp4', data)
			const file = await fx.storage.open(u, 'a.mp4')
			expect(file?.size).toBe(1234)
			expect(file?.etag).toMatch(/^"[^"]+"$/)
			expect(Math.abs((file?.mtimeMs ?? 0) - Date.now())).toBeLessThan(10 * 60_000)
			expect(await fx.storage.size(u, 'a.mp4')).toBe(1234)
			file?.close()
			file?.close()
		})

		test('an absent file, or a user with no files, is null for open and size', async () => {
			const u = user()
			await fx.put(u, 'here.mp4', patternBytes(10))
			expect(await fx.storage.open(u, 'not-here.mp4')).toBeNull()
			expect(await fx.storage.size(u, 'not-here.mp4')).toBeNull()
			expect(await fx.storage.open(user(), 'here.mp4')).toBeNull()
			expect(await fx.storage.size(user(), 'here.mp4')).toBeNull()
		})

		test('an empty file is found, and its empty range reads as nothing', async () => {
			const u = user()
			await fx.put(u, 'empty.mp4', new Uint8Array(0))
			const file = await fx.storage.open(u, 'empty.mp4')
			expect(file?.size).toBe(0)
			expect(file && (await readRange(file, 0, 0))).toEqual(Buffer.alloc(0))
		})

		const names = [
			'my movie.mp4',
			'my+movie.mp4',
			'my%20movie.mp4',
			'100%.mp4',
			'a#b.mp4',
			'a?b=c&d.mp4',
			"it's (1) [final] {x} ~!@$^*,;=.mp4",
			'vidéo 😀 ünïcödé.mp4',
			'vide\u0301o.mp4', // NFD: another name than NFC 'vidéo.mp4'
			'vidéo.mp4',
			'日本語の動画.mkv',
		]
		test('names are taken exactly: spaces, + % # ? and Unicode (NFC and NFD apart) each name their own file', async () => {
			const u = user()
			await Promise.all(names.map((n, i) => fx.put(u, n, patternBytes(100 + i, i + 7))))
			const found = await Promise.all(
				names.map(async (n) => {
					const file = await fx.storage.open(u, n)
					return file && readRange(file, 0, file.size)
				}),
			)
			expect(found).toEqual(names.map((_, i) => Buffer.from(patternBytes(100 + i, i + 7))))
			expect(await Promise.all(names.map((n) => fx.storage.size(u, n)))).toEqual(names.map((_, i) => 100 + i))
		})

		test.each([
			['.. as the filename', 'OTHER', '..'],
			['. as the filename', 'OTHER', '.'],
			['.. as the user', '..', 'secret.mp4'],
			['. as the user', '.', 'secret.mp4'],
			['an empty user', '', 'secret.mp4'],
			['an empty filename', 'OTHER', ''],
			['a path as the filename', 'SELF', '../OTHER/secret.mp4'],
			['a path as the user', 'SELF/../OTHER', 'secret.mp4'],
			['backslashes in the filename', 'SELF', '..\\OTHER\\secret.mp4'],
			['a nested filename', 'SELF', 'OTHER/secret.mp4'],
		])('nothing outside <user>/<file> is reachable: %s', async (_, userTemplate, fileTemplate) => {
			const self = user()
			const other = user()
			await fx.put(other, 'secret.mp4', patternBytes(10))
			await fx.put(self, 'mine.mp4', patternBytes(10))
			const u = userTemplate.replace('SELF', self).replace('OTHER', other)
			const f = fileTemplate.replace('SELF', self).replace('OTHER', other)
			expect(await fx.storage.open(u, f)).toBeNull()
			expect(await fx.storage.size(u, f)).toBeNull()
		})

		test('openRange gives exactly the bytes of many ranges, never more than asked per read', async () => {
			const u = user()
			const size = 300_000 // several network chunks
			const data = patternBytes(size, 3)
			await fx.put(u, 'r.mp4', data)
			const file = await fx.storage.open(u, 'r.mp4')
			if (!file) throw new Error('r.mp4 was not found')
			const cases: [number, number, number][] = [
				[0, 1, 1],
				[size - 1, size, 1],
				[0, size, 65536],
				[0, size, 1 << 20],
				[0, size, 7000],
				[150_000, 150_001, 4096],
				[1000, 1017, 1],
				[12_345, 200_000, 4096],
				[size - 70_000, size, 65535],
				[1, size - 1, 100_000],
			]
			const read = await Promise.all(cases.map(([start, end, max]) => readRange(file, start, end, max)))
			expect(read.map((bytes) => Buffer.from(bytes).toString('base64'))).toEqual(
				cases.map(([start, end]) => Buffer.from(data.subarray(start, end)).toString('base64')),
			)
			file.close()
		})

		test('a range reader says null once, after exactly the bytes of its range', async () => {
			const u = user()
			await fx.put(u, 'n.mp4', patternBytes(5000))
			const file = await fx.storage.open(u, 'n.mp4')
			const reader = await file?.openRange(10, 4010)
			const sizes: number[] = []
			for (let chunk = await reader?.read(1500); chunk; chunk = await reader?.read(1500)) sizes.push(chunk.length)
			expect(sizes.reduce((a, b) => a + b, 0)).toBe(4000)
			expect(sizes.every((n) => n <= 1500)).toBe(true)
		})

		test('a file replaced after the check is never read as another version', async () => {
			const u = user()
			const first = patternBytes(200_000, 11)
			await fx.put(u, 'v.mp4', first)
			const file = await fx.storage.open(u, 'v.mp4')
			// Same size on purpose: only the version, not the length, tells them apart.
			await fx.put(u, 'v.mp4', patternBytes(200_000, 12))
			const outcome = await outcomeOf(file ? readRange(file, 0, 200_000) : Promise.reject(new Error('not found')))
			expect(outcome).toEqual(fx.pinsBytes === 'etag' ? { changed: true } : { bytes: Buffer.from(first) })
		})

		test('a file replaced by a longer one after the check is never read as another version', async () => {
			const u = user()
			const first = patternBytes(10_000, 21)
			await fx.put(u, 'w.mp4', first)
			const file = await fx.storage.open(u, 'w.mp4')
			await fx.put(u, 'w.mp4', patternBytes(20_000, 22))
			const outcome = await outcomeOf(file ? readRange(file, 5000, 10_000) : Promise.reject(new Error('not found')))
			expect(outcome).toEqual(
				fx.pinsBytes === 'etag' ? { changed: true } : { bytes: Buffer.from(first.subarray(5000)) },
			)
		})

		test('a file removed after the check is read as checked (descriptor) or refused as changed (etag)', async () => {
			const u = user()
			const first = patternBytes(50_000, 31)
			await fx.put(u, 'gone.mp4', first)
			const file = await fx.storage.open(u, 'gone.mp4')
			await fx.remove(u, 'gone.mp4')
			const outcome = await outcomeOf(file ? readRange(file, 0, 50_000) : Promise.reject(new Error('not found')))
			expect(outcome).toEqual(fx.pinsBytes === 'etag' ? { changed: true } : { bytes: Buffer.from(first) })
			expect(await fx.storage.open(u, 'gone.mp4')).toBeNull()
		})

		test('cancel mid-range stops the reader; the storage and the file stay usable', async () => {
			const u = user()
			const data = patternBytes(2_000_000, 41)
			await fx.put(u, 'c.mp4', data)
			const file = await fx.storage.open(u, 'c.mp4')
			if (!file) throw new Error('c.mp4 was not found')
			const reader = await file.openRange(0, data.length)
			const first = await reader.read(4096)
			reader.cancel()
			reader.cancel()
			const after = await reader.read(4096).catch(() => null)
			expect({ first: first?.length, after }).toEqual({ first: 4096, after: null })
			expect(Buffer.from(await readRange(file, 1_000_000, 1_000_100))).toEqual(
				Buffer.from(data.subarray(1_000_000, 1_000_100)),
			)
		})

		test('a zero-copy body, where the storage gives one, is exactly the range', async () => {
			const u = user()
			const data = patternBytes(70_000, 51)
			await fx.put(u, 'z.mp4', data)
			const file = await fx.storage.open(u, 'z.mp4')
			const body = file?.zeroCopy(100, 60_100) ?? null
			const bytes = body === null ? null : Buffer.from(await body.bytes())
			file?.closeSoon()
			expect(bytes).toEqual(fx.zeroCopy ? Buffer.from(data.subarray(100, 60_100)) : null)
		})

		test('a presigned URL, where the storage gives one, serves the bytes with the disposition and type asked', async () => {
			const u = user()
			const data = patternBytes(3000, 61)
			await fx.put(u, 'p p#1.mp4', data)
			const file = await fx.storage.open(u, 'p p#1.mp4')
			const disposition = `attachment; filename="p p#1.mp4"; filename*=UTF-8''p%20p%231.mp4`
			const url = file?.presignedUrl(60, disposition, 'video/mp4') ?? null
			const response = url === null ? null : await fetch(url)
			const served = response && {
				status: response.status,
				disposition: response.headers.get('content-disposition'),
				type: response.headers.get('content-type'),
				bytes: Buffer.from(await response.arrayBuffer()),
			}
			expect(served).toEqual(
				fx.presigns ? { status: 200, disposition, type: 'video/mp4', bytes: Buffer.from(data) } : null,
			)
		})
	})
}
