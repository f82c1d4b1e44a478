import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { openDescriptors } from '../support/descriptors'
import { bearer, downloadPath, makeTestApp, randomBytesOf, sha256, type TestApp } from '../support/helpers'

// Zero-copy bodies are Bun.file('/proc/self/fd/N') on the descriptor opened at
// the check; that descriptor is closed one macrotask later, once Bun has opened
// its own. Were it closed before, N could be reused by another request's open
// and Bun would send that file instead. Under heavy concurrency over many
// distinct files, every body must be its own file's, and no descriptor into
// storage may stay open.

const FILES = 40
const ROUNDS = 6

// Three ways: no open-file cache (every request opens its file), the default
// cache, and a cache far smaller than the files, evicting all the time while
// bodies of evicted descriptors are still being sent.
const CACHES = [
	['no open-file cache', { OPEN_FILE_CACHE_VALID: '0' }, 0],
	['the open-file cache', { OPEN_FILE_CACHE_VALID: '1' }, FILES],
	['an open-file cache of 4 for 40 files', { OPEN_FILE_CACHE_VALID: '1', OPEN_FILE_CACHE_MAX: '4' }, 4],
] as const

describe.each(CACHES)('what was checked is what is sent, with %s', (_name, env, kept) => {
	let t: TestApp
	const digests = new Map<string, string>()
	const tokens = new Map<string, string>()

	/** Descriptors into storage beyond `before`: at most the cache's two per file it keeps, only what it keeps. */
	function expectOnlyTheCache(before: readonly string[]) {
		const extra = [...openDescriptors(t.storageDir)]
		for (const fd of before) extra.splice(extra.indexOf(fd), 1)
		expect(extra.length).toBeLessThanOrEqual(2 * kept)
		const perFile = new Map<string, number>()
		for (const path of extra) perFile.set(path, (perFile.get(path) ?? 0) + 1)
		for (const n of perFile.values()) expect(n).toBeLessThanOrEqual(2)
	}

	beforeAll(async () => {
		t = await makeTestApp({ store: 'memory', env })
		for (let i = 0; i < FILES; i++) {
			// Sizes straddle the 64 KiB single-read limit so both body kinds run.
			const name = `f${i}.mp4`
			const bytes = await t.putFile('u', name, randomBytesOf(1000 + i * 3001))
			digests.set(name, sha256(bytes))
			tokens.set(name, (await t.issue('u', name, i % 3 === 0 ? '?max_uses=1000' : '')).token)
		}
	})
	afterAll(() => t.close())

	test(`${FILES} files × ${ROUNDS} rounds in parallel: every body is its own file's, nothing stays open`, async () => {
		const before = openDescriptors(t.storageDir)
		for (let round = 0; round < ROUNDS; round++) {
			const results = await Promise.all(
				[...tokens].map(async ([name, token]) => {
					const res = await t.request(downloadPath('u', name), { headers: bearer(token) })
					return { name, status: res.status, digest: sha256(new Uint8Array(await res.arrayBuffer())) }
				}),
			)
			for (const r of results) {
				expect(r.status).toBe(200)
				expect(r.digest).toBe(digests.get(r.name) ?? '')
			}
		}
		await Bun.sleep(50)
		expectOnlyTheCache(before)
	})

	test('HEAD, 304, 416, refusals and aborted bodies leave no descriptor open', async () => {
		const before = openDescriptors(t.storageDir)
		const [name, token] = [...tokens][FILES - 1] ?? ['', '']
		const path = downloadPath('u', name)
		const etag = (await t.request(path, { method: 'HEAD', headers: bearer(token) })).headers.get('etag') ?? ''
		const answers = await Promise.all([
			t.request(path, { method: 'HEAD', headers: bearer(token) }),
			t.request(path, { headers: { ...bearer(token), 'If-None-Match': etag } }),
			t.request(path, { headers: { ...bearer(token), Range: 'bytes=999999999-' } }),
			t.request(path, { headers: bearer('not.a.token') }),
			t.request(downloadPath('u', 'f0.mp4'), { headers: bearer(token) }),
		])
		expect(answers.map((r) => r.status)).toEqual([200, 304, 416, 401, 403])
		for (const r of answers) await r.arrayBuffer()
		for (let i = 0; i < 20; i++) {
			const aborter = new AbortController()
			const res = await t.request(path, { headers: bearer(token), signal: aborter.signal })
			await res.body?.getReader().read()
			aborter.abort()
		}
		await Bun.sleep(100)
		expectOnlyTheCache(before)
	})

	test('shutting the storage down closes every descriptor it kept', async () => {
		const before = openDescriptors(t.storageDir).filter((path) => !path.includes('/u/'))
		await t.deps.storage.close()
		await Bun.sleep(50)
		expect(openDescriptors(t.storageDir)).toEqual(before)
	})
})
