import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StorageUnavailableError } from '../../src/errors'
import { type BucketStorageOptions, createBucketStorage } from '../../src/storage/s3'
import type { CheckedFile, RangeReader } from '../../src/storage/types'
import { s3Error, startFakeBucket } from '../support/fake-bucket'
import { pollUntil } from '../support/poll'
import { freePort } from '../support/redis-server'
import { type S3Server, startS3Server } from '../support/s3-server'
import { startTcpProxy } from '../support/tcp-proxy'
import { patternBytes, readRange } from './contract'

// The bucket at its worst: frozen (SIGSTOP), killed, failing, and a client
// that leaves or reads slowly. Every wait is bounded; the timeout is short.

const TIMEOUT_MS = 500
// Scheduling on a shared machine: how late a timeout may fire and still count as prompt.
const MARGIN_MS = 700

const optionsFor = (server: S3Server, endpoint = server.endpoint): BucketStorageOptions => ({
	bucket: server.bucket,
	endpoint,
	region: server.region,
	accessKeyId: server.accessKeyId,
	secretAccessKey: server.secretAccessKey,
	timeoutMs: TIMEOUT_MS,
})

/** How a promise settled, and after how many milliseconds. */
async function settled(work: Promise<unknown> | unknown): Promise<{ error: string; ms: number }> {
	const started = performance.now()
	const error = await Promise.resolve(work).then(
		() => 'none',
		(err: unknown) => (err instanceof Error ? err.constructor.name : String(err)),
	)
	return { error, ms: performance.now() - started }
}

/** Reads a range to its end, or until it fails. */
async function drain(reader: { read(max: number): Promise<Uint8Array | null> }): Promise<number> {
	let total = 0
	for (let chunk = await reader.read(1 << 20); chunk; chunk = await reader.read(1 << 20)) total += chunk.length
	return total
}

const MIB = 1 << 20
const LARGE = 32 * MIB
const large = patternBytes(LARGE, 9)

let server: S3Server
beforeAll(async () => {
	server = await startS3Server()
	await server.put('u/small.mp4', patternBytes(100_000, 5))
	await server.put('u/large.mp4', large)
})
afterAll(async () => {
	await server.destroy()
})

describe('a bucket that stops answering', () => {
	test('frozen (SIGSTOP): open, size, openRange and check fail within the timeout; thawed, the same storage works', async () => {
		const storage = createBucketStorage(optionsFor(server))
		const file = await storage.open('u', 'small.mp4')
		server.pause()
		let frozen: { error: string; ms: number }[]
		try {
			frozen = await Promise.all([
				settled(storage.open('u', 'small.mp4')),
				settled(storage.size('u', 'small.mp4')),
				settled(file?.openRange(0, 100_000)),
				settled(storage.check()),
			])
		} finally {
			server.resume()
		}
		expect(frozen.map((f) => f.error)).toEqual([
			'StorageUnavailableError',
			'StorageUnavailableError',
			'StorageUnavailableError',
			'BucketCheckError',
		])
		expect(Math.max(...frozen.map((f) => f.ms))).toBeLessThan(TIMEOUT_MS + MARGIN_MS)
		const again = await storage.open('u', 'small.mp4')
		expect(again && Buffer.from(await readRange(again, 0, again.size))).toEqual(Buffer.from(patternBytes(100_000, 5)))
		expect(file && Buffer.from(await readRange(file, 99_000, 100_000))).toEqual(
			Buffer.from(patternBytes(100_000, 5).subarray(99_000)),
		)
	})

	test('frozen mid-body: the read waiting on it fails within the timeout once the buffered bytes are read', async () => {
		const storage = createBucketStorage(optionsFor(server))
		const file = (await storage.open('u', 'large.mp4')) as CheckedFile
		const reader = await file.openRange(0, LARGE)
		await reader.read(MIB)
		server.pause()
		let outcome: { error: string; ms: number }
		try {
			outcome = await settled(drain(reader))
		} finally {
			server.resume()
		}
		expect(outcome.error).toBe('StorageUnavailableError')
		// The few MiB buffered on the way are read in milliseconds; then the wait is the timeout.
		expect(outcome.ms).toBeGreaterThanOrEqual(TIMEOUT_MS)
		expect(outcome.ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS)
	})

	test('a slow client is not a slow bucket: pauses between reads longer than the timeout are fine', async () => {
		const storage = createBucketStorage(optionsFor(server))
		const file = (await storage.open('u', 'large.mp4')) as CheckedFile
		const reader = await file.openRange(MIB, 9 * MIB)
		const chunks: Uint8Array[] = []
		let total = 0
		let pauses = 0
		for (let chunk = await reader.read(2 * MIB); chunk; chunk = await reader.read(2 * MIB)) {
			chunks.push(chunk)
			total += chunk.length
			// Twice, each three timeouts long: after the first bytes, and halfway.
			if (pauses < 2 && total >= pauses * 4 * MIB) {
				pauses++
				await Bun.sleep(3 * TIMEOUT_MS)
			}
		}
		expect(pauses).toBe(2)
		expect(Buffer.concat(chunks).equals(large.subarray(MIB, 9 * MIB))).toBe(true)
	}, 20_000)

	test('killed: requests fail at once as unavailable; restarted, the same storage works', async () => {
		const storage = createBucketStorage(optionsFor(server))
		const file = (await storage.open('u', 'large.mp4')) as CheckedFile
		const midBody = await file.openRange(0, LARGE)
		await midBody.read(MIB)
		await server.kill()
		try {
			const down = await Promise.all([
				settled(drain(midBody)),
				settled(storage.open('u', 'small.mp4')),
				settled(file.openRange(0, 10)),
				settled(storage.check()),
			])
			expect(down.map((d) => d.error)).toEqual([
				'StorageUnavailableError',
				'StorageUnavailableError',
				'StorageUnavailableError',
				'BucketCheckError',
			])
			expect(Math.max(...down.map((d) => d.ms))).toBeLessThan(TIMEOUT_MS)
		} finally {
			await server.start()
		}
		expect((await storage.open('u', 'small.mp4'))?.size).toBe(100_000)
		expect(Buffer.from(await readRange(file, LARGE - 10, LARGE))).toEqual(Buffer.from(large.subarray(LARGE - 10)))
		expect(await storage.check()).toBeUndefined()
	})
})

describe('a bucket that fails or refuses', () => {
	const headers = { 'Content-Length': '10', ETag: '"e"', 'Last-Modified': 'Sun, 06 Dec 2026 03:46:40 GMT' }

	test.each([
		['503 SlowDown', 503, 'SlowDown'],
		['500 InternalError', 500, 'InternalError'],
		['403 AccessDenied', 403, 'AccessDenied'],
	])('%s to HEAD: open and size reject as unavailable (not as absent)', async (_, status, code) => {
		const fake = startFakeBucket((request) => s3Error(status, code, 'no', request.method))
		try {
			const storage = createBucketStorage({ ...optionsFor(server), endpoint: fake.endpoint })
			expect(await Promise.all([settled(storage.open('u', 'f.mp4')), settled(storage.size('u', 'f.mp4'))])).toEqual([
				{ error: 'StorageUnavailableError', ms: expect.any(Number) },
				{ error: 'StorageUnavailableError', ms: expect.any(Number) },
			])
		} finally {
			await fake.stop()
		}
	})

	test.each([
		['503 SlowDown', 503, 'SlowDown'],
		['500 InternalError', 500, 'InternalError'],
		['403 AccessDenied', 403, 'AccessDenied'],
	])('%s to GET: openRange rejects as unavailable', async (_, status, code) => {
		const fake = startFakeBucket((request) =>
			request.method === 'HEAD' ? new Response(null, { headers }) : s3Error(status, code, 'no'),
		)
		try {
			const storage = createBucketStorage({ ...optionsFor(server), endpoint: fake.endpoint })
			const file = await storage.open('u', 'f.mp4')
			expect(await settled(file?.openRange(0, 10))).toEqual({
				error: 'StorageUnavailableError',
				ms: expect.any(Number),
			})
		} finally {
			await fake.stop()
		}
	})

	test('a redirect (a bucket in another region) is not followed: unavailable', async () => {
		const elsewhere = startFakeBucket(() => new Response('not ours', { headers }))
		const fake = startFakeBucket(
			() => new Response(null, { status: 307, headers: { Location: `${elsewhere.endpoint}/somewhere` } }),
		)
		try {
			const storage = createBucketStorage({ ...optionsFor(server), endpoint: fake.endpoint })
			expect(await settled(storage.open('u', 'f.mp4'))).toEqual({
				error: 'StorageUnavailableError',
				ms: expect.any(Number),
			})
			expect(elsewhere.requests).toEqual([])
		} finally {
			await fake.stop()
			await elsewhere.stop()
		}
	})

	test('a body that ends before its length fails the read as unavailable', async () => {
		// A raw socket: an HTTP server would not send fewer bytes than its Content-Length says.
		const head = 'Content-Length: 10\r\nETag: "e"\r\nLast-Modified: Sun, 06 Dec 2026 03:46:40 GMT'
		const raw = Bun.listen({
			hostname: '127.0.0.1',
			port: 0,
			socket: {
				data(socket, data) {
					const request = data.toString()
					if (request.startsWith('HEAD')) socket.write(`HTTP/1.1 200 OK\r\n${head}\r\n\r\n`)
					else {
						socket.write(`HTTP/1.1 206 Partial Content\r\n${head}\r\nContent-Range: bytes 0-9/10\r\n\r\n01234`)
						socket.end()
					}
				},
			},
		})
		try {
			const storage = createBucketStorage({ ...optionsFor(server), endpoint: `http://127.0.0.1:${raw.port}` })
			const file = (await storage.open('u', 'f.mp4')) as CheckedFile
			const reader = await file.openRange(0, 10)
			expect(await settled(drain(reader))).toEqual({ error: 'StorageUnavailableError', ms: expect.any(Number) })
		} finally {
			raw.stop(true)
		}
	})

	test('errors never carry a signed URL (a log line would leak a link that fetches the object)', async () => {
		const nobody = createBucketStorage({ ...optionsFor(server), endpoint: `http://127.0.0.1:${freePort()}` })
		const cut = Bun.listen({
			hostname: '127.0.0.1',
			port: 0,
			socket: {
				data(socket, data) {
					const head = 'Content-Length: 10\r\nETag: "e"\r\nLast-Modified: Sun, 06 Dec 2026 03:46:40 GMT'
					if (data.toString().startsWith('HEAD')) socket.write(`HTTP/1.1 200 OK\r\n${head}\r\n\r\n`)
					else socket.end(`HTTP/1.1 206 Partial Content\r\n${head}\r\nContent-Range: bytes 0-9/10\r\n\r\n0123`)
				},
			},
		})
		try {
			const cutShort = createBucketStorage({ ...optionsFor(server), endpoint: `http://127.0.0.1:${cut.port}` })
			const file = (await cutShort.open('u', 'f.mp4')) as CheckedFile
			const errors = await Promise.all([
				nobody.open('u', 'f.mp4').catch((err: unknown) => err),
				Promise.resolve(file.openRange(0, 10))
					.then(drain)
					.catch((err: unknown) => err),
				nobody.check().catch((err: unknown) => err),
			])
			expect(errors.map((err) => (err as Error).name)).toEqual(['AppError', 'AppError', 'BucketCheckError'])
			expect(errors.map((err) => [Bun.inspect(err), Bun.inspect((err as Error).cause)].join())).toEqual(
				errors.map(() => expect.not.stringContaining('X-Amz-')),
			)
			expect(String((errors[0] as Error).cause)).toContain('HEAD u/f.mp4: ECONNREFUSED')
		} finally {
			cut.stop(true)
		}
	})

	test('an unavailable bucket keeps the reason as the cause', async () => {
		const fake = startFakeBucket(() => s3Error(503, 'SlowDown', 'no', 'HEAD'))
		try {
			const storage = createBucketStorage({ ...optionsFor(server), endpoint: fake.endpoint })
			const err = await storage.open('u', 'f.mp4').catch((e: unknown) => e)
			expect(err).toBeInstanceOf(StorageUnavailableError)
			expect(String((err as Error).cause)).toContain('503')
		} finally {
			await fake.stop()
		}
	})
})

describe('a client that leaves or reads slowly', () => {
	test('cancel mid-body closes the bucket connection at once; the transfer stops far short of the object', async () => {
		const proxy = await startTcpProxy(server.port)
		try {
			const storage = createBucketStorage(optionsFor(server, `http://127.0.0.1:${proxy.port}`))
			const file = (await storage.open('u', 'large.mp4')) as CheckedFile
			const reader = await file.openRange(0, LARGE)
			for (let i = 0; i < 16; i++) await reader.read(64 * 1024)
			const connection = proxy.connections.at(-1)
			const cancelledAt = performance.now()
			reader.cancel()
			await pollUntil(
				() => connection?.closed,
				(closed) => closed === true,
				1000,
				10,
			)
			const atClose = connection?.bytesDown ?? 0
			await Bun.sleep(300)
			expect({
				closedWithinASecond: (connection?.closedAt ?? Number.POSITIVE_INFINITY) - cancelledAt < 1000,
				open: proxy.openCount(),
				grewAfterClose: (connection?.bytesDown ?? 0) - atClose,
			}).toEqual({ closedWithinASecond: true, open: 0, grewAfterClose: 0 })
			// What the bucket sent before the close is what Bun's fetch and the socket buffers took ahead of
			// the reader (1 MiB read): under 8 MiB in every run but one loaded CI run's 8.9 MB; never near the object.
			expect(atClose).toBeLessThan(LARGE / 2)
		} finally {
			await proxy.close()
		}
	})

	test('a wider answer than asked (s3rver sends the whole object for bytes=0-0) is read as asked, then closed', async () => {
		const proxy = await startTcpProxy(server.port)
		try {
			const storage = createBucketStorage(optionsFor(server, `http://127.0.0.1:${proxy.port}`))
			const file = (await storage.open('u', 'large.mp4')) as CheckedFile
			expect(Buffer.from(await readRange(file, 0, 1))).toEqual(Buffer.from(large.subarray(0, 1)))
			const connection = proxy.connections.at(-1)
			await pollUntil(
				() => connection?.closed,
				(closed) => closed === true,
				1000,
				10,
			)
			expect(connection?.closed).toBe(true)
			expect(connection?.bytesDown ?? LARGE).toBeLessThan(LARGE / 4)
		} finally {
			await proxy.close()
		}
	})
})

describe('a slow reader of a 256 MiB object', () => {
	const SIZE = 256 * MIB
	let dir: string
	beforeAll(async () => {
		// Written from a file, so this process never holds the object itself.
		dir = await mkdtemp(join(tmpdir(), 'dlg-s3-big-'))
		const path = join(dir, 'big')
		const sink = Bun.file(path).writer()
		const block = patternBytes(MIB, 77)
		for (let i = 0; i < SIZE / MIB; i++) sink.write(block)
		await sink.end()
		await server.put('u/huge.mp4', Bun.file(path))
	}, 60_000)
	afterAll(async () => {
		// The object goes with the server's data directory; the local copy must go even if the server died.
		await rm(dir, { recursive: true, force: true })
	})

	/** Reads 64 KiB every 5 ms for `ms`; calls `sample` after a collection every 20 reads. Returns the bytes read. */
	async function readSlowly(reader: RangeReader, ms: number, sample: () => void): Promise<number> {
		let read = 0
		const until = performance.now() + ms
		for (let i = 1; performance.now() < until; i++) {
			read += (await reader.read(64 * 1024))?.length ?? 0
			await Bun.sleep(5)
			// What is held, not the garbage of chunks already passed on: sampled after a collection.
			if (i % 20 === 0) {
				Bun.gc(true)
				sample()
			}
		}
		return read
	}

	test('holds a few MiB of this process, not the object', async () => {
		const storage = createBucketStorage(optionsFor(server))
		const file = (await storage.open('u', 'huge.mp4')) as CheckedFile
		Bun.gc(true)
		const before = process.memoryUsage.rss()
		let peak = before
		const reader = await file.openRange(0, SIZE)
		const read = await readSlowly(reader, 3000, () => {
			peak = Math.max(peak, process.memoryUsage.rss())
		})
		reader.cancel()
		expect(read).toBeGreaterThan(8 * MIB)
		expect((peak - before) / MIB).toBeLessThan(32)
	}, 20_000)

	test('the bucket sends only a little ahead of the reader: backpressure reaches it', async () => {
		const proxy = await startTcpProxy(server.port)
		try {
			const storage = createBucketStorage(optionsFor(server, `http://127.0.0.1:${proxy.port}`))
			const file = (await storage.open('u', 'huge.mp4')) as CheckedFile
			const reader = await file.openRange(0, SIZE)
			const read = await readSlowly(reader, 2000, () => {})
			const sent = proxy.connections.at(-1)?.bytesDown ?? SIZE
			reader.cancel()
			expect(read).toBeGreaterThan(8 * MIB)
			// Bytes in flight sit in kernel socket buffers too (Linux autotunes a receive
			// buffer up to tcp_rmem's maximum, 32 MiB on some hosts); without backpressure
			// nearly all 256 MiB would be sent within these two seconds.
			expect((sent - read) / MIB).toBeLessThan(64)
		} finally {
			await proxy.close()
		}
	}, 20_000)
})
