import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdir, rm, symlink, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import { keyIdFor } from '../../../src/modules/tokens/download-token'
import { listAll } from '../../store/contract'
import {
	bearer,
	downloadPath,
	makeTestApp,
	randomBytesOf,
	type StoreKind,
	TEST_SECRET,
	type TestApp,
} from '../../support/helpers'

type ErrorBody = { error: string; message: string }

async function expectError(res: Response, status: number, code: string) {
	expect(res.status).toBe(status)
	expect(res.headers.get('content-type')).toContain('application/json')
	const body = (await res.json()) as ErrorBody
	expect(body.error).toBe(code)
	expect(body.message.length).toBeGreaterThan(5)
	return res
}

const secretKey = new TextEncoder().encode(TEST_SECRET)

function signRaw(claims: Record<string, unknown>, opts: { alg?: string; key?: Uint8Array; kid?: string } = {}) {
	return new SignJWT(claims)
		.setProtectedHeader({ alg: opts.alg ?? 'HS256', kid: opts.kid ?? keyIdFor(TEST_SECRET) })
		.sign(opts.key ?? secretKey)
}

describe.each<StoreKind>(['redis', 'memory'])('GET/HEAD /api/download (%s store)', (store) => {
	let t: TestApp
	let video: Uint8Array<ArrayBuffer>
	const path = downloadPath('123', 'myvideo.mp4')
	const get = (token: string | null, headers: Record<string, string> = {}, p = path) =>
		t.request(p, { headers: { ...(token ? bearer(token) : {}), ...headers } })
	const head = (token: string, headers: Record<string, string> = {}) =>
		t.request(path, { method: 'HEAD', headers: { ...bearer(token), ...headers } })

	beforeAll(async () => {
		// Dozens of refusals on purpose here; the denial limit is tested in rate-limit.test.ts.
		t = await makeTestApp({ store, env: { RATE_LIMIT_DENIED: '100000/min' } })
		video = await t.putFile('123', 'myvideo.mp4', randomBytesOf(64 * 1024 + 7))
		await t.putFile('124', 'myvideo.mp4', 'other user')
		await t.putFile('123', 'other.mp4', 'other file')
	})
	afterAll(() => t.close())

	describe('check 1: a token is present', () => {
		test('no Authorization → 401 missing_token with WWW-Authenticate: Bearer', async () => {
			const res = await expectError(await get(null), 401, 'missing_token')
			expect(res.headers.get('www-authenticate')).toBe('Bearer realm="download-gate"')
		})
		test('a non-Bearer scheme is no token', async () => {
			await expectError(await get(null, { Authorization: 'Basic dXNlcjpwYXNz' }), 401, 'missing_token')
		})
		test('?token= is refused when ALLOW_QUERY_TOKEN is off', async () => {
			const { token } = await t.issue('123', 'myvideo.mp4')
			await expectError(await get(null, {}, `${path}?token=${token}`), 401, 'missing_token')
		})
	})

	describe('check 2: signature, algorithm, shape', () => {
		test.each([
			['garbage', async () => 'not-a-jwt'],
			['three garbage parts', async () => 'a.b.c'],
			['another secret', async () => signRaw(claims(), { key: new TextEncoder().encode('x'.repeat(40)) })],
			['HS512 with the right secret', async () => signRaw(claims(), { alg: 'HS512' })],
			['an unknown kid', async () => signRaw(claims(), { kid: 'someone-else' })],
			[
				'alg none',
				async () => {
					const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
					return `${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims())}.`
				},
			],
			[
				'a tampered payload',
				async () => {
					const [h, , s] = (await t.issue('123', 'other.mp4')).token.split('.')
					return `${h}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}.${s}`
				},
			],
			['missing claims', async () => signRaw({ user_id: '123', exp: nowS() + 60 })],
		])('%s → 401 invalid_token', async (_name, make) => {
			const res = await expectError(await get(await make()), 401, 'invalid_token')
			expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"')
		})
	})

	const nowS = () => Math.floor(t.clock.now() / 1000)
	const claims = (o: Record<string, unknown> = {}) => ({
		user_id: '123',
		filename: 'myvideo.mp4',
		action: 'download',
		jti: 'j-unknown',
		iat: nowS(),
		exp: nowS() + 600,
		...o,
	})

	test('check 3: an expired token → 401 token_expired (clock moved past exp)', async () => {
		const { token } = await t.issue('123', 'myvideo.mp4', '?ttl=30')
		expect((await get(token)).status).toBe(200)
		t.clock.advance(31_000)
		const res = await expectError(await get(token), 401, 'token_expired')
		expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"')
	})

	test('check 2 before 3: a forged expired token is invalid, not expired', async () => {
		const forged = await signRaw(claims({ exp: nowS() - 10 }), { key: new TextEncoder().encode('y'.repeat(40)) })
		await expectError(await get(forged), 401, 'invalid_token')
	})

	describe('check 4: bound to user, file and action', () => {
		test('a token for user 123 used on user 124 → 403 token_mismatch', async () => {
			const { token } = await t.issue('123', 'myvideo.mp4')
			await expectError(await get(token, {}, downloadPath('124', 'myvideo.mp4')), 403, 'token_mismatch')
		})
		test('a token for another file → 403 token_mismatch', async () => {
			const { token } = await t.issue('123', 'other.mp4')
			await expectError(await get(token), 403, 'token_mismatch')
		})
		test('a validly signed token with another action → 403 token_mismatch', async () => {
			await expectError(await get(await signRaw(claims({ action: 'upload' }))), 403, 'token_mismatch')
		})
	})

	describe('check 5: the jti record', () => {
		test('revoked → 401 token_revoked', async () => {
			const { token, jti } = await t.issue('123', 'myvideo.mp4')
			await t.deps.store.revoke('123', jti)
			await expectError(await get(token), 401, 'token_revoked')
		})
		test('a signed token whose jti was never recorded → 401 token_revoked', async () => {
			await expectError(await get(await signRaw(claims())), 401, 'token_revoked')
		})
		test('revoked beats file-not-found (check 5 before 6)', async () => {
			await t.putFile('123', 'gone.mp4', 'soon gone')
			const { token, jti } = await t.issue('123', 'gone.mp4')
			await unlink(join(t.storageDir, '123', 'gone.mp4'))
			await expectError(await get(token, {}, downloadPath('123', 'gone.mp4')), 404, 'file_not_found')
			await t.deps.store.revoke('123', jti)
			await expectError(await get(token, {}, downloadPath('123', 'gone.mp4')), 401, 'token_revoked')
		})
	})

	describe('check 7: uses are whole downloads', () => {
		test('max_uses=1: one whole download, then 401 token_used_up', async () => {
			const { token } = await t.issue('123', 'myvideo.mp4', '?max_uses=1')
			const first = await get(token)
			expect(first.status).toBe(200)
			expect(new Uint8Array(await first.arrayBuffer())).toEqual(video)
			const res = await expectError(await get(token), 401, 'token_used_up')
			expect(res.headers.get('www-authenticate')).toContain('Bearer')
		})

		test('max_uses=3: three whole downloads, the fourth refused', async () => {
			const { token } = await t.issue('123', 'myvideo.mp4', '?max_uses=3')
			for (let i = 0; i < 3; i++) {
				const res = await get(token)
				expect(res.status).toBe(200)
				expect((await res.arrayBuffer()).byteLength).toBe(video.length)
			}
			await expectError(await get(token), 401, 'token_used_up')
		})

		test('ranges are paid by their length: halves of a one-use token both pass, a third part does not', async () => {
			const { token } = await t.issue('123', 'myvideo.mp4', '?max_uses=1')
			const half = Math.floor(video.length / 2)
			const a = await get(token, { Range: `bytes=0-${half - 1}` })
			const b = await get(token, { Range: `bytes=${half}-` })
			expect([a.status, b.status]).toEqual([206, 206])
			const joined = new Uint8Array([
				...new Uint8Array(await a.arrayBuffer()),
				...new Uint8Array(await b.arrayBuffer()),
			])
			expect(joined).toEqual(video)
			await expectError(await get(token, { Range: 'bytes=0-0' }), 401, 'token_used_up')
		})

		test('HEAD, 304 and 416 cost nothing', async () => {
			const { token, jti } = await t.issue('123', 'myvideo.mp4', '?max_uses=1')
			const etag = (await head(token)).headers.get('etag') ?? ''
			for (let i = 0; i < 3; i++) {
				expect((await head(token)).status).toBe(200)
				expect((await get(token, { 'If-None-Match': etag })).status).toBe(304)
				expect((await get(token, { Range: `bytes=${video.length}-` })).status).toBe(416)
			}
			expect(await listAll(t.deps.store, '123').then((l) => l.find((x) => x.jti === jti)?.bytesLeft)).toBe(video.length)
			expect((await get(token)).status).toBe(200)
			expect((await head(token)).status).toBe(200) // describing the file is free, even used up
			await expectError(await get(token), 401, 'token_used_up')
		})

		test('a small budgeted body (one read) is a plain file body with Content-Length, and is still paid for', async () => {
			const small = randomBytesOf(64 * 1024)
			await t.putFile('123', 'small.mp4', small)
			const { token, jti } = await t.issue('123', 'small.mp4', '?max_uses=2')
			for (let i = 0; i < 2; i++) {
				const res = await get(token, {}, downloadPath('123', 'small.mp4'))
				expect(res.status).toBe(200)
				expect(res.headers.get('content-length')).toBe(String(small.length))
				expect(res.headers.get('transfer-encoding')).toBeNull()
				expect(new Uint8Array(await res.arrayBuffer())).toEqual(small)
			}
			// Used up: it no longer counts among the user's live tokens.
			expect(await listAll(t.deps.store, '123').then((l) => l.find((x) => x.jti === jti))).toBeUndefined()
			await expectError(await get(token, {}, downloadPath('123', 'small.mp4')), 401, 'token_used_up')
		})

		test('errors cost nothing: a mismatched request does not touch the budget', async () => {
			const { token, jti } = await t.issue('123', 'myvideo.mp4', '?max_uses=1')
			await expectError(await get(token, {}, downloadPath('123', 'other.mp4')), 403, 'token_mismatch')
			expect(await listAll(t.deps.store, '123').then((l) => l.find((x) => x.jti === jti)?.bytesLeft)).toBe(video.length)
		})
	})

	describe('the response', () => {
		test('200 carries every header of docs/contract.md §3.2 and the exact bytes', async () => {
			const { token } = await t.issue('123', 'myvideo.mp4')
			const res = await get(token)
			expect(res.status).toBe(200)
			expect(res.headers.get('content-type')).toBe('video/mp4')
			expect(res.headers.get('content-disposition')).toBe(
				`attachment; filename="myvideo.mp4"; filename*=UTF-8''myvideo.mp4`,
			)
			expect(res.headers.get('x-content-type-options')).toBe('nosniff')
			expect(res.headers.get('cache-control')).toBe('private, no-store')
			expect(res.headers.get('accept-ranges')).toBe('bytes')
			expect(res.headers.get('etag')).toMatch(/^"[^"]+"$/)
			expect(res.headers.get('last-modified')).toMatch(/GMT$/)
			expect(res.headers.get('content-range')).toBeNull()
			// Set by the service (it saves send() calls), so it must not be doubled by Bun's own.
			const date = res.headers.get('date') ?? ''
			expect(date).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/)
			expect(Math.abs(Date.parse(date) - Date.now())).toBeLessThan(5000)
			expect(new Uint8Array(await res.arrayBuffer())).toEqual(video)
		})

		test.each([
			['bytes=0-9', 0, 9],
			['bytes=100-', 100, 64 * 1024 + 6],
			['bytes=-7', 64 * 1024, 64 * 1024 + 6],
			['bytes=65000-999999999', 65000, 64 * 1024 + 6],
		])('Range %s → 206 with exact bytes and Content-Range', async (range, start, end) => {
			for (const query of ['', '?max_uses=5']) {
				const { token } = await t.issue('123', 'myvideo.mp4', query)
				const res = await get(token, { Range: range })
				expect(res.status).toBe(206)
				expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${video.length}`)
				// Every range here is at most 64 KiB, which budgeted tokens also send as a file body with its length.
				expect(res.headers.get('content-length')).toBe(String(end - start + 1))
				expect(new Uint8Array(await res.arrayBuffer())).toEqual(video.slice(start, end + 1))
			}
		})

		test('unsatisfiable Range → 416 with Content-Range: bytes */size', async () => {
			const { token } = await t.issue('123', 'myvideo.mp4')
			const res = await get(token, { Range: `bytes=${video.length + 10}-` })
			expect(res.status).toBe(416)
			expect(res.headers.get('content-range')).toBe(`bytes */${video.length}`)
		})

		test('If-Range with the current ETag → 206, with a stale one → 200 whole file', async () => {
			const { token } = await t.issue('123', 'myvideo.mp4')
			const etag = (await head(token)).headers.get('etag') ?? ''
			expect((await get(token, { Range: 'bytes=0-9', 'If-Range': etag })).status).toBe(206)
			const stale = await get(token, { Range: 'bytes=0-9', 'If-Range': '"old"' })
			expect(stale.status).toBe(200)
			expect(new Uint8Array(await stale.arrayBuffer())).toEqual(video)
		})

		test('If-None-Match and If-Modified-Since → 304 with validators and no body', async () => {
			const { token } = await t.issue('123', 'myvideo.mp4')
			const first = await head(token)
			const etag = first.headers.get('etag') ?? ''
			const lastModified = first.headers.get('last-modified') ?? ''
			const conditionals: Record<string, string>[] = [
				{ 'If-None-Match': etag },
				{ 'If-None-Match': `"x", W/${etag}` },
				{ 'If-Modified-Since': lastModified },
			]
			for (const headers of conditionals) {
				const res = await get(token, headers)
				expect(res.status).toBe(304)
				expect(res.headers.get('etag')).toBe(etag)
				expect((await res.arrayBuffer()).byteLength).toBe(0)
			}
			expect((await get(token, { 'If-None-Match': '"nope"' })).status).toBe(200)
			expect((await get(token, { 'If-Modified-Since': 'Mon, 01 Jan 2001 00:00:00 GMT' })).status).toBe(200)
		})

		test('HEAD: the same headers as GET and no body', async () => {
			const { token } = await t.issue('123', 'myvideo.mp4')
			const res = await head(token)
			expect(res.status).toBe(200)
			expect(res.headers.get('content-length')).toBe(String(video.length))
			expect(res.headers.get('content-disposition')).toContain('myvideo.mp4')
			expect((await res.arrayBuffer()).byteLength).toBe(0)
		})

		test('a non-ASCII filename: RFC 6266 Content-Disposition and exact bytes', async () => {
			const name = 'vidéo 日本 "clip".mp4'
			const bytes = await t.putFile('123', name, randomBytesOf(999))
			const { token } = await t.issue('123', name)
			const res = await get(token, {}, downloadPath('123', name))
			expect(res.status).toBe(200)
			expect(res.headers.get('content-disposition')).toBe(
				`attachment; filename="video __ _clip_.mp4"; filename*=UTF-8''vid%C3%A9o%20%E6%97%A5%E6%9C%AC%20%22clip%22.mp4`,
			)
			expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes)
		})

		test('an unknown extension is served as application/octet-stream', async () => {
			await t.putFile('123', 'notes.bin', 'b')
			const { token } = await t.issue('123', 'notes.bin')
			expect((await get(token, {}, downloadPath('123', 'notes.bin'))).headers.get('content-type')).toBe(
				'application/octet-stream',
			)
		})

		test('the token never reaches the log; the jti does', async () => {
			const { token, jti } = await t.issue('123', 'myvideo.mp4')
			await get(token)
			await get(`${token}x`)
			const log = t.logLines.join('\n')
			expect(log).not.toContain(token.split('.')[2] ?? '')
			expect(log).toContain(jti)
		})
	})

	describe('paths are never trusted', () => {
		let outside: string
		beforeAll(async () => {
			outside = join(tmpdir(), `dlg-outside-${crypto.randomUUID()}`)
			await mkdir(outside, { recursive: true })
			await writeFile(join(outside, 'secret.mp4'), 'outside the storage root')
			await mkdir(join(t.storageDir, '123', 'folder.mp4'), { recursive: true })
			await symlink(join(outside, 'secret.mp4'), join(t.storageDir, '123', 'escape.mp4'))
			await symlink(join(t.storageDir, '123', 'other.mp4'), join(t.storageDir, '123', 'alias.mp4'))
			await symlink(outside, join(t.storageDir, 'linked-user'))
		})
		afterAll(() => rm(outside, { recursive: true, force: true }))

		test.each([
			['a symlink pointing outside STORAGE_DIR', '123', 'escape.mp4'],
			['a user directory that is a symlink outside', 'linked-user', 'secret.mp4'],
			['a directory', '123', 'folder.mp4'],
		])('%s → 404 file_not_found, both to issue and to download', async (_n, user, file) => {
			await expectError(await t.request(`/api/get-download-token/${user}/${file}`), 404, 'file_not_found')
			const forged = await signRaw(claims({ user_id: user, filename: file }))
			const res = await get(forged, {}, downloadPath(user, file))
			expect([401, 404]).toContain(res.status)
			expect(await res.text()).not.toContain('outside the storage root')
		})

		test('a file swapped for an escaping symlink after issue → 404', async () => {
			await t.putFile('123', 'swap.mp4', 'inside')
			const { token } = await t.issue('123', 'swap.mp4')
			await unlink(join(t.storageDir, '123', 'swap.mp4'))
			await symlink(join(outside, 'secret.mp4'), join(t.storageDir, '123', 'swap.mp4'))
			await expectError(await get(token, {}, downloadPath('123', 'swap.mp4')), 404, 'file_not_found')
		})

		test('a symlink that stays inside STORAGE_DIR is followed', async () => {
			const { token } = await t.issue('123', 'alias.mp4')
			const res = await get(token, {}, downloadPath('123', 'alias.mp4'))
			expect(res.status).toBe(200)
			expect(await res.text()).toBe('other file')
		})

		test.each([
			['encoded slash', '..%2F124%2Fmyvideo.mp4'],
			['backslash', '..%5C124%5Cmyvideo.mp4'],
			['NUL', 'myvideo.mp4%00.txt'],
			['dot file', '.hidden'],
		])('%s in the filename → 400 invalid_request', async (_n, raw) => {
			const { token } = await t.issue('123', 'myvideo.mp4')
			await expectError(await get(token, {}, `/api/download/123/${raw}`), 400, 'invalid_request')
		})
	})
})
