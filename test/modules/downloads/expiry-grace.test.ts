import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import {
	bearer,
	downloadPath,
	makeTestApp,
	randomBytesOf,
	type StoreKind,
	sha256,
	type TestApp,
} from '../../support/helpers'
import { query } from '../../support/resp'

// EXPIRY_GRACE_S (docs/contract.md §3.2 check 3): a download that started
// before its token's exp is not cut in half by the expiry. The app runs on the
// injected clock; the Redis record's TTL runs on Redis's own clock, so it is
// read back with PTTL rather than waited for.

const MiB = 1024 * 1024
const SIZE = 24 * MiB
const TTL_S = 10
const GRACE_S = 60

const errorOf = async (res: Response) => ((await res.json()) as { error: string }).error

/** Moves the app's clock to `epochMs`. */
const setClock = (t: TestApp, epochMs: number) => t.clock.advance(epochMs - t.clock.now())

/** Starts a GET of the whole file, reads at least `atLeast` bytes of its body, then the client goes away. */
async function cutDownload(t: TestApp, token: string, atLeast: number): Promise<Uint8Array> {
	const aborter = new AbortController()
	const res = await t.request(downloadPath('u', 'big.mp4'), { headers: bearer(token), signal: aborter.signal })
	expect(res.status).toBe(200)
	const reader = res.body?.getReader()
	if (!reader) throw new Error('no body')
	const parts: Uint8Array[] = []
	let received = 0
	while (received < atLeast) {
		const { value, done } = await reader.read()
		if (done) break
		parts.push(value)
		received += value.byteLength
	}
	aborter.abort()
	await reader.cancel().catch(() => {})
	return Buffer.concat(parts)
}

/** GETs the rest of the file from `from` on; the status and, for a 206, the bytes. */
async function resume(t: TestApp, token: string, from: number): Promise<{ status: string; body: Uint8Array }> {
	const res = await t.request(downloadPath('u', 'big.mp4'), {
		headers: { ...bearer(token), Range: `bytes=${from}-` },
	})
	if (res.status !== 206) return { status: `${res.status} ${await errorOf(res)}`, body: new Uint8Array() }
	expect(res.headers.get('content-range')).toBe(`bytes ${from}-${SIZE - 1}/${SIZE}`)
	return { status: '206', body: new Uint8Array(await res.arrayBuffer()) }
}

const status = async (res: Response) => (res.ok ? String(res.status) : `${res.status} ${await errorOf(res)}`)

for (const store of ['memory', 'redis'] as const satisfies readonly StoreKind[]) {
	describe(`EXPIRY_GRACE_S=${GRACE_S} (${store} store${store === 'redis' ? ', per-process token cache on' : ''})`, () => {
		let t: TestApp
		let file: Uint8Array<ArrayBuffer>
		beforeAll(async () => {
			t = await makeTestApp({
				store,
				env: { EXPIRY_GRACE_S: String(GRACE_S), RATE_LIMIT_ISSUE: '100000/min', RATE_LIMIT_DENIED: '100000/min' },
			})
			file = await t.putFile('u', 'big.mp4', randomBytesOf(SIZE))
		})
		afterAll(() => t.close())

		/** Issues a token expiring TTL_S from now; its exp in epoch ms. */
		async function issue(query = '') {
			const issued = await t.issue('u', 'big.mp4', `?ttl=${TTL_S}${query}`)
			const expMs = Date.parse(issued.expires_at)
			expect(expMs - t.clock.now()).toBeGreaterThan((TTL_S - 1) * 1000)
			return { ...issued, expMs }
		}

		for (const [kind, policy] of [
			['zero-copy (unlimited token)', ''],
			['counted (max_uses=2)', '&max_uses=2'],
		] as const)
			test(`${kind}: started 1 s before exp and cut, it resumes with Range within the grace (206), not after it`, async () => {
				const { token, expMs } = await issue(policy)
				setClock(t, expMs - 1000)
				const head = await cutDownload(t, token, 2 * MiB)
				expect(head.byteLength).toBeGreaterThanOrEqual(2 * MiB)
				expect(head.byteLength).toBeLessThan(SIZE)

				setClock(t, expMs + 1000)
				const rest = await resume(t, token, head.byteLength)
				expect(rest.status).toBe('206')
				// The resumed bytes complete the file exactly.
				expect(sha256(Buffer.concat([head, rest.body]))).toBe(sha256(file))

				// Up to the last second of the grace it still resumes; at exp + grace it is expired for good.
				setClock(t, expMs + GRACE_S * 1000 - 1000)
				expect((await resume(t, token, SIZE - MiB)).status).toBe('206')
				setClock(t, expMs + GRACE_S * 1000)
				expect((await resume(t, token, SIZE - MiB)).status).toBe('401 token_expired')
			})

		test('an unused token past exp: 401 token_expired, within the grace too', async () => {
			const { token, expMs } = await issue()
			setClock(t, expMs)
			expect((await resume(t, token, 0)).status).toBe('401 token_expired')
			setClock(t, expMs + 1000)
			const res = await t.request(downloadPath('u', 'big.mp4'), { headers: bearer(token) })
			expect(await status(res)).toBe('401 token_expired')
		})

		test('a token whose only requests before exp had no body (HEAD, 416) does not get the grace', async () => {
			const { token, expMs } = await issue()
			setClock(t, expMs - 1000)
			const head = await t.request(downloadPath('u', 'big.mp4'), { method: 'HEAD', headers: bearer(token) })
			expect(head.status).toBe(200)
			const unsatisfiable = await t.request(downloadPath('u', 'big.mp4'), {
				headers: { ...bearer(token), Range: `bytes=${SIZE}-` },
			})
			expect(unsatisfiable.status).toBe(416)
			await unsatisfiable.arrayBuffer()
			setClock(t, expMs + 1000)
			expect((await resume(t, token, 0)).status).toBe('401 token_expired')
			const late = await t.request(downloadPath('u', 'big.mp4'), { method: 'HEAD', headers: bearer(token) })
			expect(late.status).toBe(401)
		})

		test('HEAD, then a body, before exp: the body opens the grace (a HEAD must not let the body skip recording its start)', async () => {
			const { token, jti, expMs } = await issue()
			setClock(t, expMs - 2000)
			const head = await t.request(downloadPath('u', 'big.mp4'), { method: 'HEAD', headers: bearer(token) })
			expect(head.status).toBe(200)
			// What this process remembers of the token (the Redis token cache, or the memory store's own
			// record) may not answer a body on its own until a first body was recorded.
			expect(t.deps.store.peek('u', jti, 'big.mp4')).toBe(false)
			setClock(t, expMs - 1000)
			// Twice: the second is answered from what this process remembers of the token.
			for (let i = 0; i < 2; i++) {
				const res = await t.request(downloadPath('u', 'big.mp4'), {
					headers: { ...bearer(token), Range: 'bytes=0-999' },
				})
				expect(res.status).toBe(206)
				expect((await res.arrayBuffer()).byteLength).toBe(1000)
			}
			expect(t.deps.store.peek('u', jti, 'big.mp4')).toBe(true)
			setClock(t, expMs + 5000)
			const rest = await resume(t, token, 1000)
			expect(rest.status).toBe('206')
			expect(rest.body.byteLength).toBe(SIZE - 1000)
		})

		test('download once, then (past exp, within the grace) download again: 206', async () => {
			const { token, expMs } = await issue()
			setClock(t, expMs - 5000)
			const first = await t.request(downloadPath('u', 'big.mp4'), {
				headers: { ...bearer(token), Range: 'bytes=0-65535' },
			})
			expect(first.status).toBe(206)
			await first.arrayBuffer()
			setClock(t, expMs + 30_000)
			const again = await resume(t, token, SIZE - 65536)
			expect(again.status).toBe('206')
			expect(again.body).toEqual(file.subarray(SIZE - 65536))
		})

		if (store === 'redis')
			test('the Redis record outlives exp by the grace (PTTL on Redis’s own clock)', async () => {
				const { jti } = await issue()
				const url = new URL(process.env.TEST_REDIS_URL ?? '')
				const pttl = await query({ host: url.hostname, port: Number(url.port) }, [
					'PTTL',
					`${t.config.redisKeyPrefix}t:{u}:${jti}`,
				])
				expect(typeof pttl).toBe('number')
				expect(pttl).toBeGreaterThan((TTL_S + GRACE_S) * 1000 - 2000)
				expect(pttl).toBeLessThanOrEqual((TTL_S + GRACE_S) * 1000)
			})
	})
}
