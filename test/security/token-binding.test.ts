import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { listAll } from '../store/contract'
import { bearer, downloadPath, makeTestApp, type TestApp } from '../support/helpers'
import { downloadClaims, expectError, expectOneOf, forge, nowS } from './helpers'

// docs/contract.md §3.2 check 5: the jti record "names the same user and file as the
// claims", else 401 (invalid_token when it names another file). These tokens
// are validly signed (as if the key had leaked, or a bug minted them): only
// the record stands between them and the file.

describe('the jti record binds the token to its user and file', () => {
	let t: TestApp
	const get = (user: string, file: string, token: string) =>
		t.request(downloadPath(user, file), { headers: bearer(token) })

	beforeAll(async () => {
		t = await makeTestApp({ env: { RATE_LIMIT_DENIED: '1000000/min' } })
		await t.putFile('123', 'a.mp4', 'file A of 123')
		await t.putFile('123', 'b.mp4', 'file B of 123')
		await t.putFile('124', 'a.mp4', 'file A of 124')
		await t.putFile('124', 'b.mp4', 'file B of 124')
	})
	afterAll(() => t.close())

	test("claims naming file B with the live jti of file A (same user) → 401 invalid_token, and A's record still works", async () => {
		const a = await t.issue('123', 'a.mp4', '?max_uses=1')
		const forged = await forge(downloadClaims('123', 'b.mp4', a.jti, nowS(t.clock)))
		const res = await get('123', 'b.mp4', forged)
		await expectError(res, 401, 'invalid_token')
		// Nothing was charged to A for the refused request.
		const ok = await get('123', 'a.mp4', a.token)
		expect(ok.status).toBe(200)
		expect(await ok.text()).toBe('file A of 123')
	})

	test("claims naming another user's files with the live jti of user 123 → 401, never served", async () => {
		const a = await t.issue('123', 'a.mp4')
		for (const file of ['a.mp4', 'b.mp4']) {
			const res = await get('124', file, await forge(downloadClaims('124', file, a.jti, nowS(t.clock))))
			const text = await res.text()
			expect({ file, status: res.status, leaked: text.includes('of 124') }).toEqual({
				file,
				status: 401,
				leaked: false,
			})
			// The record lives under user 123's keys; under 124 it may read as unknown (token_revoked) or as a mismatch.
			expectOneOf((JSON.parse(text) as { error: string }).error, ['invalid_token', 'token_revoked'], { file })
		}
	})

	test('a token issued one hour in the future (iat = now + 3600) → 401 invalid_token', async () => {
		const { jti } = await t.issue('123', 'a.mp4')
		const now = nowS(t.clock)
		const forged = await forge(downloadClaims('123', 'a.mp4', jti, now, { iat: now + 3600, exp: now + 4200 }))
		await expectError(await get('123', 'a.mp4', forged), 401, 'invalid_token')
	})

	test('a token issued 5 s ahead (clock skew between instances) is accepted', async () => {
		const { jti } = await t.issue('123', 'a.mp4')
		const now = nowS(t.clock)
		const forged = await forge(downloadClaims('123', 'a.mp4', jti, now, { iat: now + 5 }))
		const res = await get('123', 'a.mp4', forged)
		expect(res.status).toBe(200)
		expect(await res.text()).toBe('file A of 123')
	})
})

describe('the token route refuses unknown or repeated query parameters', () => {
	let t: TestApp
	beforeAll(async () => {
		t = await makeTestApp({ env: { RATE_LIMIT_ISSUE: '1000000/min' } })
		await t.putFile('123', 'a.mp4', 'file A of 123')
	})
	afterAll(() => t.close())

	test.each([
		['max_uses[]=1'],
		['Max_Uses=1'],
		['MAX_USES=1'],
		['max_uses =1'],
		['ttl=1&ttl=2'],
		['ttl=60&ttl=60'],
		['max_uses=1&max_uses=2'],
		['max_uses=1&max_uses=1'],
		['foo=1'],
		['max_uses=1&foo=1'],
		['token=x'],
		['max_uses.x=1'],
	])('?%s → 400 invalid_request and no token issued', async (query) => {
		const before = (await listAll(t.deps.store, '123')).length
		const res = await t.request(`/api/get-download-token/123/a.mp4?${query}`)
		await expectError(res, 400, 'invalid_request')
		expect((await listAll(t.deps.store, '123')).length).toBe(before)
	})

	test('the well-formed query is still served (ttl and max_uses once each)', async () => {
		const res = await t.request('/api/get-download-token/123/a.mp4?ttl=60&max_uses=1')
		expect(res.status).toBe(200)
		expect(await res.json()).toMatchObject({ expires_in: 60, max_uses: 1 })
	})
})
