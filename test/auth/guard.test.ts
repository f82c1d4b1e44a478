import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { SignJWT } from 'jose'
import { API_KEY, makeTestApp, type TestApp } from '../support/helpers'

// The guard is declared per route (`{ auth: 'issuer' | 'owner' }`), not called
// by hand. These tests walk the app's own route table, so a route added later
// with a :user_id and no guard fails here, whatever its handler does.

const USER_SECRET = 'guard-test-user-token-secret-0123456789'

/** Every route that acts for a :user_id, except the download (its token is the credential). */
const actsForUser = (t: TestApp) =>
	t.app.routes
		.filter((r) => r.path.includes(':user_id') && !r.path.startsWith('/api/download/'))
		.map((r) => ({
			method: r.method,
			route: r.path,
			path: r.path.replace(':user_id', '123').replace(':filename', 'a.mp4').replace(':jti', 'j123'),
		}))

const userToken = (sub: string) =>
	new SignJWT({ sub })
		.setProtectedHeader({ alg: 'HS256' })
		.setIssuedAt()
		.setExpirationTime('5m')
		.sign(new TextEncoder().encode(USER_SECRET))

describe('the auth guard on every route that acts for a user', () => {
	let t: TestApp
	beforeAll(async () => {
		t = await makeTestApp({
			store: 'memory',
			env: { ISSUE_AUTH: 'any', API_KEYS: API_KEY, AUTH_JWT_SECRET: USER_SECRET },
		})
		await t.putFile('123', 'a.mp4', 'video')
	})
	afterAll(() => t.close())

	const answers = (headers: Record<string, string>) => answersFor(t, headers)

	test('the table holds the token route and the four lifecycle routes', () => {
		expect(actsForUser(t).map((r) => `${r.method} ${r.route}`)).toEqual([
			'GET /api/get-download-token/:user_id/:filename',
			'GET /api/users/:user_id/tokens',
			'DELETE /api/users/:user_id/tokens/:jti',
			'DELETE /api/users/:user_id/tokens',
			'DELETE /api/users/:user_id/files/:filename/tokens',
		])
	})

	test('an anonymous caller gets 401 unauthorized on each', async () => {
		expect(await answers({})).toEqual(actsForUser(t).map((r) => `${r.method} ${r.route} → 401 unauthorized`))
	})

	test('another user’s access token gets 403 forbidden on each', async () => {
		const other = await userToken('124')
		expect(await answers({ Authorization: `Bearer ${other}` })).toEqual(
			actsForUser(t).map((r) => `${r.method} ${r.route} → 403 forbidden`),
		)
	})

	test('the user’s own access token and a service key pass the guard on each', async () => {
		const own = await userToken('123')
		for (const headers of [{ Authorization: `Bearer ${own}` }, { 'X-API-Key': API_KEY }] as Record<string, string>[]) {
			const refused = (await answers(headers)).filter((line) => / → 40[13] /.test(line))
			expect(refused).toEqual([])
		}
	})
})

describe('owner routes under ISSUE_AUTH=none', () => {
	test('with API_KEYS configured, anyone may issue but only a key may list and revoke', async () => {
		const t = await makeTestApp({ store: 'memory', env: { ISSUE_AUTH: 'none', API_KEYS: API_KEY } })
		try {
			await t.putFile('123', 'a.mp4', 'video')
			expect((await t.request('/api/get-download-token/123/a.mp4')).status).toBe(200)
			const anonymous = await answersFor(t, {})
			expect(anonymous).toEqual([
				'GET /api/get-download-token/:user_id/:filename → 200',
				'GET /api/users/:user_id/tokens → 401 unauthorized',
				'DELETE /api/users/:user_id/tokens/:jti → 401 unauthorized',
				'DELETE /api/users/:user_id/tokens → 401 unauthorized',
				'DELETE /api/users/:user_id/files/:filename/tokens → 401 unauthorized',
			])
			const keyed = (await answersFor(t, { 'X-API-Key': API_KEY })).filter((line) => / → 40[13] /.test(line))
			expect(keyed).toEqual([])
			// The OpenAPI document says the same.
			const doc = (await (await t.request('/swagger/json')).json()) as {
				paths: Record<string, Record<string, { security?: unknown }>>
			}
			expect(doc.paths['/api/get-download-token/{user_id}/{filename}']?.get?.security).toEqual([])
			expect(doc.paths['/api/users/{user_id}/tokens']?.get?.security).toEqual([{ apiKey: [] }])
		} finally {
			await t.close()
		}
	})

	test('with no credentials configured at all (the development default), both are open', async () => {
		const t = await makeTestApp({ store: 'memory', env: { ISSUE_AUTH: 'none' } })
		try {
			await t.putFile('123', 'a.mp4', 'video')
			const refused = (await answersFor(t, {})).filter((line) => / → 40[13] /.test(line))
			expect(refused).toEqual([])
		} finally {
			await t.close()
		}
	})
})

/** `METHOD route → status [error]` for each guarded route of `t`, called with `headers`. */
async function answersFor(t: TestApp, headers: Record<string, string>): Promise<string[]> {
	return Promise.all(
		actsForUser(t).map(async ({ method, route, path }) => {
			const res = await t.request(path, { method, headers })
			const body = (await res.json().catch(() => null)) as { error?: string } | null
			return `${method} ${route} → ${res.status} ${body?.error ?? ''}`.trim()
		}),
	)
}
