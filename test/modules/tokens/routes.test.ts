import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { decodeProtectedHeader, jwtVerify, SignJWT } from 'jose'
import { listAll } from '../../store/contract'
import { API_KEY, makeTestApp, type StoreKind, TEST_SECRET, type TestApp } from '../../support/helpers'

const TOKEN_ROUTE = '/api/get-download-token'

describe.each<StoreKind>(['redis', 'memory'])('GET /api/get-download-token (%s store)', (store) => {
	let t: TestApp
	beforeAll(async () => {
		t = await makeTestApp({ store })
		await t.putFile('123', 'myvideo.mp4', 'x'.repeat(1000))
		await t.putFile('123', 'vidéo été.mp4', 'y')
	})
	afterAll(() => t.close())

	test('200 with the original fields, the added ones and Cache-Control: no-store', async () => {
		const res = await t.request(`${TOKEN_ROUTE}/123/myvideo.mp4?ttl=900`)
		expect(res.status).toBe(200)
		expect(res.headers.get('cache-control')).toBe('no-store')
		expect(res.headers.get('content-type')).toContain('application/json')
		const body = (await res.json()) as Record<string, unknown>
		expect(Object.keys(body).sort()).toEqual(
			[
				'download_url',
				'expires_at',
				'expires_in',
				'ip',
				'jti',
				'max_uses',
				'not_before',
				'rate',
				'size',
				'token',
			].sort(),
		)
		// No policy asked for: each policy field says so with null.
		expect([body.not_before, body.ip, body.rate]).toEqual([null, null, null])
		expect(body.expires_in).toBe(900)
		expect(body.size).toBe(1000) // the file's bytes at issuance
		expect(body.download_url).toBe(`${t.baseUrl}/api/download/123/myvideo.mp4`)
		expect(body.max_uses).toBeNull()
		const iat = Math.floor(t.clock.now() / 1000)
		expect(body.expires_at).toBe(new Date((iat + 900) * 1000).toISOString().replace('.000Z', 'Z'))
		expect(body.expires_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
	})

	test('the token is HS256 with a kid and the claims of docs/contract.md §3.1', async () => {
		const body = await t.issue('123', 'myvideo.mp4', '?ttl=60')
		const header = decodeProtectedHeader(body.token)
		expect(header.alg).toBe('HS256')
		expect(typeof header.kid).toBe('string')
		const { payload } = await jwtVerify(body.token, new TextEncoder().encode(TEST_SECRET), {
			currentDate: new Date(t.clock.now()),
		})
		expect(payload).toEqual({
			user_id: '123',
			filename: 'myvideo.mp4',
			action: 'download',
			jti: body.jti,
			iat: Math.floor(t.clock.now() / 1000),
			exp: Math.floor(t.clock.now() / 1000) + 60,
		})
	})

	test('the jti record exists in the store by the time the response is received', async () => {
		const body = await t.issue('123', 'myvideo.mp4', '?max_uses=3')
		expect(await t.deps.store.take('123', body.jti, 0)).toEqual({ status: 'ok', budgeted: true, bytesLeft: 3000 })
		expect(body.max_uses).toBe(3)
	})

	test('default ttl comes from DEFAULT_TTL', async () => {
		expect((await t.issue('123', 'myvideo.mp4')).expires_in).toBe(900)
	})

	test('a non-ASCII filename is accepted and percent-encoded in download_url', async () => {
		const body = await t.issue('123', 'vidéo été.mp4')
		expect(body.download_url).toBe(`${t.baseUrl}/api/download/123/vid%C3%A9o%20%C3%A9t%C3%A9.mp4`)
	})

	test.each([
		['ttl=0', 'ttl'],
		['ttl=-5', 'ttl'],
		['ttl=86401', 'ttl'],
		['ttl=abc', 'ttl'],
		['ttl=1.5', 'ttl'],
		['ttl=1e3', 'ttl'],
		['ttl=', 'ttl'],
		['ttl=%20900', 'ttl'],
		['max_uses=0', 'max_uses'],
		['max_uses=-1', 'max_uses'],
		['max_uses=two', 'max_uses'],
		['max_uses=1000001', 'max_uses'],
	])('400 invalid_request for %s', async (query, name) => {
		const res = await t.request(`${TOKEN_ROUTE}/123/myvideo.mp4?${query}`)
		expect(res.status).toBe(400)
		const body = (await res.json()) as { error: string; message: string }
		expect(body.error).toBe('invalid_request')
		expect(body.message).toContain(name)
	})

	test.each([
		['user id with a space', '12%203', 'myvideo.mp4'],
		['user id of 129 characters', 'a'.repeat(129), 'myvideo.mp4'],
		['dot-file', '123', '.env'],
		['encoded slash', '123', '..%2F..%2Fetc%2Fpasswd'],
		['backslash', '123', '..%5C..%5Cwin.ini'],
		['NUL', '123', 'a%00.mp4'],
		['control character', '123', 'a%0A.mp4'],
		['256-byte name', '123', `${'é'.repeat(126)}.mp4`],
	])('400 invalid_request for a bad path: %s', async (_name, user, file) => {
		const res = await t.request(`${TOKEN_ROUTE}/${user}/${file}`)
		expect(res.status).toBe(400)
		expect(((await res.json()) as { error: string }).error).toBe('invalid_request')
	})

	test('404 file_not_found when the file does not exist, with nothing written to the store', async () => {
		const res = await t.request(`${TOKEN_ROUTE}/123/missing.mp4`)
		expect(res.status).toBe(404)
		expect(await res.json()).toEqual({ error: 'file_not_found', message: 'No such file for this user.' })
		expect(await listAll(t.deps.store, '123').then((l) => l.filter((x) => x.filename === 'missing.mp4'))).toEqual([])
	})

	test('404 file_not_found for a directory or another user', async () => {
		await t.putFile('123', 'sub-placeholder.mp4', 'x')
		expect((await t.request(`${TOKEN_ROUTE}/124/myvideo.mp4`)).status).toBe(404)
	})

	test('unknown routes get a JSON 404 not_found', async () => {
		const res = await t.request('/api/nope')
		expect(res.status).toBe(404)
		expect(((await res.json()) as { error: string }).error).toBe('not_found')
	})
})

describe('download_url base', () => {
	test('PUBLIC_BASE_URL wins over the request', async () => {
		const t = await makeTestApp({ store: 'memory', env: { PUBLIC_BASE_URL: 'https://files.example.com/' } })
		await t.putFile('7', 'a.mp4', 'a')
		expect((await t.issue('7', 'a.mp4')).download_url).toBe('https://files.example.com/api/download/7/a.mp4')
		await t.close()
	})

	test('X-Forwarded-* is honoured only with TRUST_PROXY', async () => {
		const headers = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'cdn.example.com' }
		for (const [trust, expected] of [
			['false', null],
			['true', 'https://cdn.example.com/api/download/7/a.mp4'],
		] as const) {
			const t = await makeTestApp({ store: 'memory', env: { TRUST_PROXY: trust } })
			await t.putFile('7', 'a.mp4', 'a')
			const res = await t.request(`${TOKEN_ROUTE}/7/a.mp4`, { headers })
			expect(((await res.json()) as { download_url: string }).download_url).toBe(
				expected ?? `${t.baseUrl}/api/download/7/a.mp4`,
			)
			await t.close()
		}
	})

	test('a forwarded host that is not a host name is ignored', async () => {
		const t = await makeTestApp({ store: 'memory', env: { TRUST_PROXY: 'true' } })
		await t.putFile('7', 'a.mp4', 'a')
		const res = await t.request(`${TOKEN_ROUTE}/7/a.mp4`, { headers: { 'X-Forwarded-Host': 'evil.com/phish?' } })
		expect(((await res.json()) as { download_url: string }).download_url).toBe(`${t.baseUrl}/api/download/7/a.mp4`)
		await t.close()
	})
})

describe('ISSUE_AUTH', () => {
	let t: TestApp
	beforeAll(async () => {
		t = await makeTestApp({ env: { ISSUE_AUTH: 'api-key', API_KEYS: `other-key-0123456789abcdef,${API_KEY}` } })
		await t.putFile('123', 'myvideo.mp4', 'abc')
		await t.putFile('124', 'myvideo.mp4', 'abc')
	})
	afterAll(() => t.close())

	test('api-key: no key → 401 unauthorized with a Bearer challenge', async () => {
		const res = await t.request(`${TOKEN_ROUTE}/123/myvideo.mp4`)
		expect(res.status).toBe(401)
		expect(((await res.json()) as { error: string }).error).toBe('unauthorized')
		expect(res.headers.get('www-authenticate')).toContain('Bearer')
	})

	test('api-key: a wrong key (also a prefix of a right one) → 401', async () => {
		for (const key of ['wrong-key-0123456789abcdef', API_KEY.slice(0, -1), `${API_KEY}x`, '']) {
			const res = await t.request(`${TOKEN_ROUTE}/123/myvideo.mp4`, { headers: { 'X-API-Key': key } })
			expect(res.status).toBe(401)
		}
	})

	test('api-key: any configured key may act for any user', async () => {
		for (const [user, key] of [
			['123', API_KEY],
			['124', 'other-key-0123456789abcdef'],
		] as const) {
			const res = await t.request(`${TOKEN_ROUTE}/${user}/myvideo.mp4`, { headers: { 'X-API-Key': key } })
			expect(res.status).toBe(200)
		}
	})

	test('api-key: authentication is checked before the file (no existence oracle)', async () => {
		expect((await t.request(`${TOKEN_ROUTE}/123/missing.mp4`)).status).toBe(401)
	})
})

describe('ISSUE_AUTH=user-jwt (HS256 user access tokens)', () => {
	const userSecret = new TextEncoder().encode('app-user-token-secret-0123456789abcdef')
	let t: TestApp
	const userToken = (sub: string, expS = 600, key = userSecret) =>
		new SignJWT({ sub })
			.setProtectedHeader({ alg: 'HS256' })
			.setIssuedAt(Math.floor(t.clock.now() / 1000))
			.setExpirationTime(Math.floor(t.clock.now() / 1000) + expS)
			.sign(key)
	beforeAll(async () => {
		t = await makeTestApp({
			env: { ISSUE_AUTH: 'user-jwt', AUTH_JWT_SECRET: 'app-user-token-secret-0123456789abcdef' },
		})
		await t.putFile('123', 'myvideo.mp4', 'abc')
		await t.putFile('124', 'myvideo.mp4', 'abc')
	})
	afterAll(() => t.close())

	test('a user token for 123 → 200 for 123', async () => {
		const res = await t.request(`${TOKEN_ROUTE}/123/myvideo.mp4`, {
			headers: { Authorization: `Bearer ${await userToken('123')}` },
		})
		expect(res.status).toBe(200)
	})

	test('a user token for 123 acting for 124 → 403 forbidden', async () => {
		const res = await t.request(`${TOKEN_ROUTE}/124/myvideo.mp4`, {
			headers: { Authorization: `Bearer ${await userToken('123')}` },
		})
		expect(res.status).toBe(403)
		expect(((await res.json()) as { error: string }).error).toBe('forbidden')
	})

	test('an expired or forged user token → 401 unauthorized; an API key is not accepted in this mode', async () => {
		const forged = await userToken('123', 600, new TextEncoder().encode('x'.repeat(40)))
		const expired = await userToken('123', -10)
		for (const token of [forged, expired, 'garbage']) {
			const res = await t.request(`${TOKEN_ROUTE}/123/myvideo.mp4`, { headers: { Authorization: `Bearer ${token}` } })
			expect(res.status).toBe(401)
			expect(((await res.json()) as { error: string }).error).toBe('unauthorized')
		}
		expect((await t.request(`${TOKEN_ROUTE}/123/myvideo.mp4`, { headers: { 'X-API-Key': API_KEY } })).status).toBe(401)
	})
})
