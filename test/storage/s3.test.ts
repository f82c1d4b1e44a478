import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { StorageUnavailableError } from '../../src/errors'
import {
	type BucketOperation,
	type BucketOutcome,
	type BucketStorageOptions,
	createBucketStorage,
	verifyBucket,
} from '../../src/storage/s3'
import { ObjectChangedError } from '../../src/storage/types'
import { type FakeBucket, s3Error, startFakeBucket } from '../support/fake-bucket'
import { freePort } from '../support/redis-server'
import { type BucketTarget, contractBucket, type S3Server, startS3Server } from '../support/s3-server'
import { patternBytes, readRange, storageContract } from './contract'

// The bucket storage against a real S3-protocol server (s3rver, or the bucket
// S3_TEST_* names for the contract). A fake HTTP bucket answers only what
// s3rver cannot be made to: 5xx, 412, and error codes it never sends.

const optionsFor = (target: BucketTarget, extra: Partial<BucketStorageOptions> = {}): BucketStorageOptions => ({
	bucket: target.bucket,
	endpoint: target.endpoint,
	region: target.region,
	accessKeyId: target.accessKeyId,
	secretAccessKey: target.secretAccessKey,
	timeoutMs: 2000,
	...extra,
})

storageContract('bucket', async () => {
	const { target, release } = await contractBucket()
	// A prefix of its own: a shared bucket (S3_TEST_ENDPOINT) keeps other objects apart and gets back what it had.
	const prefix = `dlg-contract-${crypto.randomUUID().slice(0, 8)}/`
	const written = new Set<string>()
	return {
		storage: createBucketStorage(optionsFor(target, { prefix })),
		pinsBytes: 'etag',
		zeroCopy: false,
		presigns: true,
		async put(userId, filename, data) {
			// The key spelled out here, not by the storage: the contract then proves the layout.
			const key = `${prefix}${userId}/${filename}`
			written.add(key)
			await target.put(key, data)
		},
		remove: (userId, filename) => target.remove(`${prefix}${userId}/${filename}`),
		async close() {
			await Promise.all([...written].map((key) => target.remove(key).catch(() => {})))
			await release()
		},
	}
})

let server: S3Server
beforeAll(async () => {
	server = await startS3Server()
})
afterAll(async () => {
	await server.destroy()
})

describe('bucket storage: the checked version is what is read', () => {
	test('s3rver ignores If-Match (so the ETag comparison must hold on its own)', async () => {
		await server.put('u/im.mp4', 'if-match')
		const response = await fetch(server.client.presign('u/im.mp4'), {
			headers: { 'If-Match': '"not-this-version"', Range: 'bytes=0-1' },
		})
		expect({ status: response.status, body: await response.text() }).toEqual({ status: 206, body: 'if' })
	})

	test('an object replaced between open and openRange (same size) is refused, not a byte of it read', async () => {
		const storage = createBucketStorage(optionsFor(server))
		await server.put('u/swap.mp4', patternBytes(100_000, 1))
		const file = await storage.open('u', 'swap.mp4')
		await server.put('u/swap.mp4', patternBytes(100_000, 2))
		await expect(file?.openRange(0, 100_000)).rejects.toBeInstanceOf(ObjectChangedError)
		await expect(file?.openRange(5, 6)).rejects.toBeInstanceOf(ObjectChangedError)
	})

	test('an object deleted between open and openRange is refused as changed', async () => {
		const storage = createBucketStorage(optionsFor(server))
		await server.put('u/del.mp4', patternBytes(1000))
		const file = await storage.open('u', 'del.mp4')
		await server.remove('u/del.mp4')
		await expect(file?.openRange(0, 1000)).rejects.toBeInstanceOf(ObjectChangedError)
	})

	test('the GET carries the range and If-Match of the checked version; a 412 is a change', async () => {
		const etag = '"v1-etag"'
		const fake = startFakeBucket((request) =>
			request.method === 'HEAD'
				? new Response(null, {
						headers: { 'Content-Length': '10', ETag: etag, 'Last-Modified': 'Sun, 06 Dec 2026 03:46:40 GMT' },
					})
				: s3Error(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold'),
		)
		try {
			const storage = createBucketStorage({ ...optionsFor(server), endpoint: fake.endpoint })
			const file = await storage.open('u', 'f.mp4')
			await expect(file?.openRange(2, 7)).rejects.toBeInstanceOf(ObjectChangedError)
			expect(fake.requests.map((r) => [r.method, r.path, r.headers.range, r.headers['if-match']])).toEqual([
				['HEAD', `/${server.bucket}/u/f.mp4`, undefined, undefined],
				['GET', `/${server.bucket}/u/f.mp4`, 'bytes=2-6', etag],
			])
		} finally {
			await fake.stop()
		}
	})

	test('an answer of other bytes than asked (a server ignoring Range on a part) is refused as unavailable', async () => {
		const body = 'abcdefghij'
		const headers = { ETag: '"e"', 'Last-Modified': 'Sun, 06 Dec 2026 03:46:40 GMT' }
		const fake = startFakeBucket((request) =>
			request.method === 'HEAD'
				? new Response(null, { headers: { ...headers, 'Content-Length': '10' } })
				: new Response(body, { status: 200, headers }),
		)
		try {
			const storage = createBucketStorage({ ...optionsFor(server), endpoint: fake.endpoint })
			const file = await storage.open('u', 'f.mp4')
			await expect(file?.openRange(2, 7)).rejects.toBeInstanceOf(StorageUnavailableError)
			// The whole object may come as a plain 200.
			expect(file && Buffer.from(await readRange(file, 0, 10)).toString()).toBe(body)
		} finally {
			await fake.stop()
		}
	})
})

describe('bucket storage: keys, URLs and reports', () => {
	test('the object of a file is <prefix><user_id>/<filename>, nothing else', async () => {
		const storage = createBucketStorage(optionsFor(server, { prefix: 'videos/2026/' }))
		await server.put('videos/2026/alice@example.com/a b+c%.mp4', 'prefixed')
		await server.put('alice@example.com/a b+c%.mp4', 'unprefixed')
		const file = await storage.open('alice@example.com', 'a b+c%.mp4')
		expect(file && Buffer.from(await readRange(file, 0, file.size)).toString()).toBe('prefixed')
		expect(await storage.open('2026', 'alice@example.com/a b+c%.mp4')).toBeNull()
	})

	test('a presigned URL names the file, the disposition, the type and the validity asked', async () => {
		const storage = createBucketStorage(optionsFor(server, { prefix: 'p/' }))
		await server.put('p/u/clip 1.mp4', patternBytes(10))
		const file = await storage.open('u', 'clip 1.mp4')
		const url = new URL(file?.presignedUrl(120, 'inline; filename="clip 1.mp4"', 'video/mp4') ?? 'http://none/')
		expect({
			path: url.pathname,
			expires: url.searchParams.get('X-Amz-Expires'),
			disposition: url.searchParams.get('response-content-disposition'),
			type: url.searchParams.get('response-content-type'),
			method: file?.zeroCopy(0, 10),
		}).toEqual({
			path: `/${server.bucket}/p/u/clip%201.mp4`,
			expires: '120',
			disposition: 'inline; filename="clip 1.mp4"',
			type: 'video/mp4',
			method: null,
		})
	})

	test('URLs are signed for the region and carry a session token when one is given', async () => {
		const storage = createBucketStorage(optionsFor(server, { region: 'eu-west-1', sessionToken: 'the-session' }))
		await server.put('u/t.mp4', 'token')
		const file = await storage.open('u', 't.mp4')
		const url = new URL(file?.presignedUrl(60, 'inline', 'video/mp4') ?? 'http://none/')
		expect(url.searchParams.get('X-Amz-Credential')).toMatch(/^S3RVER\/\d{8}\/eu-west-1\/s3\/aws4_request$/)
		expect(url.searchParams.get('X-Amz-Security-Token')).toBe('the-session')
	})

	test('a range outside the checked object is a caller bug (RangeError), not a request', async () => {
		const storage = createBucketStorage(optionsFor(server))
		await server.put('u/ten.mp4', '0123456789')
		const file = await storage.open('u', 'ten.mp4')
		const errors = await Promise.all(
			[
				[5, 2],
				[0, 11],
				[-1, 3],
				[0.5, 3],
			].map(([start = 0, end = 0]) =>
				Promise.resolve()
					.then(() => file?.openRange(start, end))
					.then(
						() => 'none',
						(err: unknown) => (err as Error).name,
					),
			),
		)
		expect(errors).toEqual(['RangeError', 'RangeError', 'RangeError', 'RangeError'])
	})

	test('virtual-hosted style puts the bucket in the host name of the endpoint', async () => {
		const vhost = await startS3Server({ serviceEndpoint: 'localhost' })
		try {
			await vhost.put('u/v.mp4', 'by host')
			const storage = createBucketStorage(
				optionsFor(vhost, { endpoint: `http://s3.localhost:${vhost.port}`, virtualHostedStyle: true }),
			)
			const file = await storage.open('u', 'v.mp4')
			expect(file && Buffer.from(await readRange(file, 0, file.size)).toString()).toBe('by host')
			expect(new URL(file?.presignedUrl(60, 'inline', 'video/mp4') ?? 'http://none/').host).toBe(
				`${vhost.bucket}.s3.localhost:${vhost.port}`,
			)
			expect(await storage.check()).toBeUndefined()
		} finally {
			await vhost.destroy()
		}
	})

	test('every request is reported with its operation, outcome and duration', async () => {
		const seen: [BucketOperation, BucketOutcome][] = []
		let negative = 0
		const storage = createBucketStorage(
			optionsFor(server, {
				observe: (operation, outcome, seconds) => {
					seen.push([operation, outcome])
					if (!(seconds >= 0 && seconds < 10)) negative++
				},
			}),
		)
		await server.put('u/o.mp4', 'observed')
		const file = await storage.open('u', 'o.mp4')
		await storage.open('u', 'missing.mp4')
		if (!file) throw new Error('o.mp4 was not found')
		await readRange(file, 0, 8)
		await server.put('u/o.mp4', 'observed again')
		await Promise.resolve(file.openRange(0, 8)).catch(() => {})
		await storage.check()
		expect(seen).toEqual([
			['head', 'ok'],
			['head', 'not_found'],
			['get', 'ok'],
			['get', 'changed'],
			['check', 'ok'],
		])
		expect(negative).toBe(0)
	})
})

describe('verifyBucket: one clear line for what is wrong at start-up', () => {
	let fake: FakeBucket
	let fakeAnswer: () => Response
	beforeAll(() => {
		fake = startFakeBucket(() => fakeAnswer())
	})
	afterAll(() => fake.stop())

	const failure = (options: BucketStorageOptions) =>
		verifyBucket(options).then(
			() => ({ problem: 'none', message: '' }),
			(err: { problem: string; message: string }) => ({ problem: err.problem, message: err.message }),
		)

	test('a reachable bucket with good credentials passes', async () => {
		expect(await verifyBucket(optionsFor(server))).toBeUndefined()
	})

	test('a missing bucket', async () => {
		const { problem, message } = await failure(optionsFor(server, { bucket: 'no-such-bucket' }))
		expect(problem).toBe('no_bucket')
		expect(message).toContain('bucket "no-such-bucket" does not exist')
		expect(message).not.toContain('\n')
	})

	test('an access key the bucket does not know', async () => {
		const { problem, message } = await failure(optionsFor(server, { accessKeyId: 'NOT-A-KEY' }))
		expect(problem).toBe('credentials')
		expect(message).toContain('InvalidAccessKeyId')
		expect(message).not.toContain('\n')
	})

	test.each([
		['SignatureDoesNotMatch', 'credentials'],
		['InvalidAccessKeyId', 'credentials'],
		['ExpiredToken', 'credentials'],
		['AccessDenied', 'access_denied'],
	])('a 403 %s (from a bucket that checks signatures) is %s', async (code, expected) => {
		fakeAnswer = () => s3Error(403, code, 'The request\nwas refused.')
		const { problem, message } = await failure({ ...optionsFor(server), endpoint: fake.endpoint })
		expect(problem).toBe(expected)
		expect(message).toContain(`403 ${code}: The request was refused.`)
		expect(message).not.toContain('\n')
	})

	test('an endpoint where nothing listens', async () => {
		const { problem, message } = await failure({ ...optionsFor(server), endpoint: `http://127.0.0.1:${freePort()}` })
		expect(problem).toBe('unreachable')
		expect(message).toMatch(/^cannot reach the bucket endpoint http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)$/)
	})

	test('an endpoint that accepts connections and never answers', async () => {
		const silent = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
		try {
			const started = performance.now()
			const { problem, message } = await failure({
				...optionsFor(server),
				endpoint: `http://127.0.0.1:${silent.port}`,
				timeoutMs: 300,
			})
			expect(performance.now() - started).toBeLessThan(1300)
			expect(problem).toBe('timeout')
			expect(message).toBe(`the bucket endpoint http://127.0.0.1:${silent.port} did not answer within 300 ms`)
		} finally {
			silent.stop(true)
		}
	})

	test('a bucket in another region (301 PermanentRedirect) is named with its code', async () => {
		fakeAnswer = () =>
			s3Error(
				301,
				'PermanentRedirect',
				'The bucket you are attempting to access must be addressed using the specified endpoint.',
			)
		const { problem, message } = await failure({ ...optionsFor(server), endpoint: fake.endpoint })
		expect(problem).toBe('refused')
		expect(message).toContain('answered 301 PermanentRedirect: The bucket you are attempting')
	})

	test('a failing bucket (503) is named with its code', async () => {
		fakeAnswer = () => s3Error(503, 'SlowDown', 'Please reduce your request rate.')
		const { problem, message } = await failure({ ...optionsFor(server), endpoint: fake.endpoint })
		expect(problem).toBe('refused')
		expect(message).toContain('answered 503 SlowDown: Please reduce your request rate.')
	})
})

describe('bucket storage: the remembered version (OPEN_FILE_CACHE_VALID)', () => {
	const counting = () => {
		const calls: string[] = []
		return {
			calls,
			observe: (operation: BucketOperation, outcome: BucketOutcome) => calls.push(`${operation}:${outcome}`),
		}
	}

	test('within the window an open asks the bucket nothing; the read still carries and checks the ETag', async () => {
		const { calls, observe } = counting()
		const storage = createBucketStorage(optionsFor(server, { observe, metadataValidMs: 60_000 }))
		await server.put('u/hot.mp4', patternBytes(5000, 3))
		for (let i = 0; i < 5; i++) await storage.open('u', 'hot.mp4')
		expect(calls).toEqual(['head:ok'])
		const file = await storage.open('u', 'hot.mp4')
		expect(await readRange(file ?? fail(), 0, 5000)).toEqual(patternBytes(5000, 3))
		expect(calls).toEqual(['head:ok', 'get:ok'])
	})

	test('a version replaced within the window is refused at its read and forgotten: the next open checks afresh', async () => {
		const { calls, observe } = counting()
		const storage = createBucketStorage(optionsFor(server, { observe, metadataValidMs: 60_000 }))
		await server.put('u/swapped.mp4', patternBytes(4000, 4))
		await storage.open('u', 'swapped.mp4')
		await server.put('u/swapped.mp4', patternBytes(4000, 5))
		const stale = await storage.open('u', 'swapped.mp4')
		// Never a byte of the new version under the remembered one's headers.
		await expect(stale?.openRange(0, 4000)).rejects.toBeInstanceOf(ObjectChangedError)
		const fresh = await storage.open('u', 'swapped.mp4')
		expect(fresh?.etag).not.toBe(stale?.etag)
		expect(await readRange(fresh ?? fail(), 0, 4000)).toEqual(patternBytes(4000, 5))
		expect(calls).toEqual(['head:ok', 'get:changed', 'head:ok', 'get:ok'])
	})

	test('an object deleted within the window: its read is refused, then it is missing', async () => {
		const storage = createBucketStorage(optionsFor(server, { metadataValidMs: 60_000 }))
		await server.put('u/gone.mp4', patternBytes(100))
		await storage.open('u', 'gone.mp4')
		await server.remove('u/gone.mp4')
		await expect((await storage.open('u', 'gone.mp4'))?.openRange(0, 100)).rejects.toBeInstanceOf(ObjectChangedError)
		expect(await storage.open('u', 'gone.mp4')).toBeNull()
	})

	test('past the window, a HEAD again, however often the version was used within it', async () => {
		const { calls, observe } = counting()
		const storage = createBucketStorage(optionsFor(server, { observe, metadataValidMs: 100 }))
		await server.put('u/short.mp4', 'x')
		const started = performance.now()
		await storage.open('u', 'short.mp4')
		// Used every 20 ms: each use must not restart the window.
		while (performance.now() - started < 80) {
			await storage.size('u', 'short.mp4')
			await Bun.sleep(20)
		}
		await Bun.sleep(Math.max(0, 110 - (performance.now() - started)))
		await storage.open('u', 'short.mp4')
		expect(calls).toEqual(['head:ok', 'head:ok'])
	})
})

function fail(): never {
	throw new Error('expected a checked file')
}
