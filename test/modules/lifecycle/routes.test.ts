import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { SignJWT } from 'jose'
import { API_KEY, bearer, downloadPath, makeTestApp, type StoreKind, type TestApp } from '../../support/helpers'

const USER_SECRET = 'app-user-token-secret-0123456789abcdef'
const key = { 'X-API-Key': API_KEY }
type Listed = {
	jti: string
	filename: string
	issued_at: string
	expires_at: string
	max_uses: number | null
	bytes_left: number | null
	not_before: string | null
	ip: string[] | null
	rate: number | null
}

describe.each<StoreKind>(['redis', 'memory'])('token lifecycle (%s store)', (store) => {
	let t: TestApp
	const userToken = (sub: string) =>
		new SignJWT({ sub })
			.setProtectedHeader({ alg: 'HS256' })
			.setExpirationTime(Math.floor(t.clock.now() / 1000) + 600)
			.sign(new TextEncoder().encode(USER_SECRET))
	const errorOf = async (res: Response) => ((await res.json()) as { error: string }).error
	const download = (user: string, file: string, token: string) =>
		t.request(downloadPath(user, file), { headers: bearer(token) })

	beforeAll(async () => {
		t = await makeTestApp({
			store,
			env: {
				API_KEYS: API_KEY,
				AUTH_JWT_SECRET: USER_SECRET,
				RATE_LIMIT_ISSUE: '1000/min',
				RATE_LIMIT_DENIED: '1000/min',
			},
		})
		for (const user of ['alice', 'bob']) {
			await t.putFile(user, 'a.mp4', 'aaaa')
			await t.putFile(user, 'b.mp4', 'bbbbbbbb')
		}
	})
	afterAll(() => t.close())

	describe('POST /api/tokens/revoke', () => {
		const revoke = (body: string) =>
			t.request('/api/tokens/revoke', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })

		test('possession is enough: the presented token is revoked everywhere', async () => {
			const { token } = await t.issue('alice', 'a.mp4')
			expect((await download('alice', 'a.mp4', token)).status).toBe(200)
			const res = await revoke(JSON.stringify({ token }))
			expect(res.status).toBe(200)
			expect(await res.json()).toEqual({ revoked: true })
			const after = await download('alice', 'a.mp4', token)
			expect(after.status).toBe(401)
			expect(await errorOf(after)).toBe('token_revoked')
		})

		test('200 even for a token that was never valid, and nothing is touched', async () => {
			for (const token of ['garbage', 'a.b.c']) {
				const res = await revoke(JSON.stringify({ token }))
				expect(res.status).toBe(200)
				expect(await res.json()).toEqual({ revoked: false })
			}
		})

		test('an expired token: 200, nothing to do', async () => {
			const { token } = await t.issue('alice', 'a.mp4', '?ttl=5')
			t.clock.advance(6000)
			expect(await (await revoke(JSON.stringify({ token }))).json()).toEqual({ revoked: false })
		})

		test('the form encoding of RFC 7009 revokes too (token=<JWT>)', async () => {
			const { token } = await t.issue('alice', 'a.mp4')
			const res = await t.request('/api/tokens/revoke', {
				method: 'POST',
				headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8' },
				body: new URLSearchParams({ token }).toString(),
			})
			expect(res.status).toBe(200)
			expect(await res.json()).toEqual({ revoked: true })
			expect(await errorOf(await download('alice', 'a.mp4', token))).toBe('token_revoked')
		})

		test('JSON with parameters and any case of the media type is JSON', async () => {
			const { token } = await t.issue('alice', 'a.mp4')
			const res = await t.request('/api/tokens/revoke', {
				method: 'POST',
				headers: { 'Content-Type': 'Application/JSON; charset=utf-8' },
				body: JSON.stringify({ token }),
			})
			expect(await res.json()).toEqual({ revoked: true })
		})

		// A cross-site <form> posts text/plain without a CORS preflight: such a body must never revoke.
		test.each([
			['text/plain'],
			['application/xml'],
			['text/plain; charset=utf-8'],
			['multipart/form-data; boundary=x'],
			['application/jsonx'],
			[null],
		])('a JSON body sent as %p → 415 unsupported_media_type, and the token still works', async (type) => {
			const { token } = await t.issue('alice', 'a.mp4')
			const res = await t.request('/api/tokens/revoke', {
				method: 'POST',
				headers: type === null ? {} : { 'Content-Type': type },
				body: new Blob([JSON.stringify({ token })]),
			})
			expect(res.status).toBe(415)
			expect(res.headers.get('cache-control')).toBe('no-store')
			expect(await res.json()).toEqual({
				error: 'unsupported_media_type',
				message: 'Send the body as application/json or application/x-www-form-urlencoded.',
			})
			expect((await download('alice', 'a.mp4', token)).status).toBe(200)
		})

		test('a form that names the token twice → 400, nothing revoked', async () => {
			const { token } = await t.issue('alice', 'a.mp4')
			const res = await t.request('/api/tokens/revoke', {
				method: 'POST',
				headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
				body: `token=${token}&token=${token}`,
			})
			expect(res.status).toBe(400)
			expect((await download('alice', 'a.mp4', token)).status).toBe(200)
		})

		test.each([['{}'], ['{"token": 5}'], ['not json'], ['']])('body %p → 400 invalid_request', async (body) => {
			const res = await revoke(body)
			expect(res.status).toBe(400)
			expect(await errorOf(res)).toBe('invalid_request')
		})
	})

	describe('GET /api/users/:user_id/tokens', () => {
		test('lists exactly the live tokens, with bytes_left', async () => {
			await t.request('/api/users/carol/tokens', { method: 'DELETE', headers: key })
			await t.putFile('carol', 'c.mp4', '0123456789')
			const one = await t.issue('carol', 'c.mp4', '?ttl=60')
			const two = await t.issue('carol', 'c.mp4', '?ttl=600&max_uses=2')
			const revoked = await t.issue('carol', 'c.mp4')
			const short = await t.issue('carol', 'c.mp4', '?ttl=1')
			await t.request(`/api/users/carol/tokens/${revoked.jti}`, { method: 'DELETE', headers: key })
			await t.request(downloadPath('carol', 'c.mp4'), { headers: { ...bearer(two.token), Range: 'bytes=0-3' } })
			t.clock.advance(2000) // `short` expires
			const res = await t.request('/api/users/carol/tokens', { headers: key })
			expect(res.status).toBe(200)
			expect(res.headers.get('cache-control')).toBe('no-store')
			const { tokens } = (await res.json()) as { tokens: Listed[] }
			expect(tokens.map((x) => x.jti).sort()).toEqual([one.jti, two.jti].sort())
			expect(tokens.find((x) => x.jti === two.jti)).toEqual({
				jti: two.jti,
				filename: 'c.mp4',
				issued_at: expect.stringMatching(/Z$/),
				expires_at: two.expires_at,
				max_uses: 2,
				bytes_left: 16,
				not_before: null,
				ip: null,
				rate: null,
			})
			expect(tokens.find((x) => x.jti === one.jti)?.bytes_left).toBeNull()
			expect(tokens.some((x) => x.jti === short.jti)).toBe(false)
		})

		test('the user may list their own tokens, not someone else’s; no credentials → 401', async () => {
			expect((await t.request('/api/users/alice/tokens', { headers: bearer(await userToken('alice')) })).status).toBe(
				200,
			)
			const other = await t.request('/api/users/alice/tokens', { headers: bearer(await userToken('bob')) })
			expect(other.status).toBe(403)
			expect(await errorOf(other)).toBe('forbidden')
			const none = await t.request('/api/users/alice/tokens')
			expect(none.status).toBe(401)
			expect(await errorOf(none)).toBe('unauthorized')
			expect(
				(await t.request('/api/users/alice/tokens', { headers: { 'X-API-Key': 'wrong-key-0123456789' } })).status,
			).toBe(401)
		})
	})

	describe('DELETE /api/users/:user_id/tokens/:jti', () => {
		test('204, the token answers token_revoked (not token_used_up) until it expires', async () => {
			const { token, jti } = await t.issue('alice', 'a.mp4', '?max_uses=1')
			const res = await t.request(`/api/users/alice/tokens/${jti}`, { method: 'DELETE', headers: key })
			expect(res.status).toBe(204)
			expect(await res.text()).toBe('')
			expect(await errorOf(await download('alice', 'a.mp4', token))).toBe('token_revoked')

			const used = await t.issue('alice', 'a.mp4', '?max_uses=1')
			expect((await download('alice', 'a.mp4', used.token)).status).toBe(200)
			expect(await errorOf(await download('alice', 'a.mp4', used.token))).toBe('token_used_up')
		})

		test('404 not_found for an unknown jti or another user’s jti; 400 for a malformed one', async () => {
			const { jti } = await t.issue('bob', 'a.mp4')
			for (const path of ['/api/users/alice/tokens/unknownjti', `/api/users/alice/tokens/${jti}`]) {
				const res = await t.request(path, { method: 'DELETE', headers: key })
				expect(res.status).toBe(404)
				expect(await errorOf(res)).toBe('not_found')
			}
			expect((await t.request('/api/users/alice/tokens/bad%20jti', { method: 'DELETE', headers: key })).status).toBe(
				400,
			)
		})

		test('refused without the right credentials', async () => {
			const { jti, token } = await t.issue('alice', 'a.mp4')
			expect((await t.request(`/api/users/alice/tokens/${jti}`, { method: 'DELETE' })).status).toBe(401)
			const asBob = await t.request(`/api/users/alice/tokens/${jti}`, {
				method: 'DELETE',
				headers: bearer(await userToken('bob')),
			})
			expect(asBob.status).toBe(403)
			expect((await download('alice', 'a.mp4', token)).status).toBe(200)
			const asAlice = await t.request(`/api/users/alice/tokens/${jti}`, {
				method: 'DELETE',
				headers: bearer(await userToken('alice')),
			})
			expect(asAlice.status).toBe(204)
		})
	})

	describe('revoke all', () => {
		test('DELETE /api/users/:user_id/tokens revokes every live token of that user only', async () => {
			const a1 = await t.issue('alice', 'a.mp4')
			const a2 = await t.issue('alice', 'b.mp4', '?max_uses=3')
			const b1 = await t.issue('bob', 'a.mp4')
			const res = await t.request('/api/users/alice/tokens', { method: 'DELETE', headers: key })
			expect(res.status).toBe(200)
			const { revoked } = (await res.json()) as { revoked: number }
			expect(revoked).toBeGreaterThanOrEqual(2)
			for (const [file, tok] of [
				['a.mp4', a1.token],
				['b.mp4', a2.token],
			] as const)
				expect(await errorOf(await download('alice', file, tok))).toBe('token_revoked')
			expect((await download('bob', 'a.mp4', b1.token)).status).toBe(200)
			expect(await (await t.request('/api/users/alice/tokens', { headers: key })).json()).toEqual({
				tokens: [],
				next_cursor: null,
			})
			expect(await (await t.request('/api/users/alice/tokens', { method: 'DELETE', headers: key })).json()).toEqual({
				revoked: 0,
			})
		})

		test('DELETE /api/users/:user_id/files/:filename/tokens revokes only that file’s tokens', async () => {
			const a = await t.issue('bob', 'a.mp4')
			const b = await t.issue('bob', 'b.mp4')
			const res = await t.request('/api/users/bob/files/a.mp4/tokens', { method: 'DELETE', headers: key })
			expect(res.status).toBe(200)
			expect(((await res.json()) as { revoked: number }).revoked).toBeGreaterThanOrEqual(1)
			expect(await errorOf(await download('bob', 'a.mp4', a.token))).toBe('token_revoked')
			expect((await download('bob', 'b.mp4', b.token)).status).toBe(200)
			expect((await t.request('/api/users/bob/files/a.mp4/tokens', { method: 'DELETE' })).status).toBe(401)
			expect((await t.request('/api/users/bob/files/.env/tokens', { method: 'DELETE', headers: key })).status).toBe(400)
		})
	})
})
