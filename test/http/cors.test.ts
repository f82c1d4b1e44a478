import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { bearer, downloadPath, makeTestApp, type TestApp } from '../support/helpers'

const preflight = (t: TestApp, path: string, origin: string, headers = 'authorization, x-api-key, range') =>
	t.request(path, {
		method: 'OPTIONS',
		headers: { Origin: origin, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': headers },
	})

describe('CORS with the default CORS_ORIGINS=*', () => {
	let t: TestApp
	beforeAll(async () => {
		t = await makeTestApp({ store: 'memory' })
		await t.putFile('123', 'myvideo.mp4', 'abc')
	})
	afterAll(() => t.close())

	test.each([downloadPath('123', 'myvideo.mp4'), '/api/get-download-token/123/myvideo.mp4'])(
		'OPTIONS preflight on %s allows Authorization and X-API-Key',
		async (path) => {
			const res = await preflight(t, path, 'https://app.example.com')
			expect(res.status).toBe(204)
			expect(res.headers.get('access-control-allow-origin')).toBe('*')
			const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase()
			for (const h of ['authorization', 'x-api-key', 'range']) expect(allowed).toContain(h)
			expect(res.headers.get('access-control-allow-methods')).toContain('GET')
		},
	)

	test('downloads and errors expose the headers a browser needs to read', async () => {
		const { token } = await t.issue('123', 'myvideo.mp4')
		for (const auth of [bearer(token), {}]) {
			const res = await t.request(downloadPath('123', 'myvideo.mp4'), {
				headers: { Origin: 'https://app.example.com', ...auth },
			})
			expect(res.headers.get('access-control-allow-origin')).toBe('*')
			const exposed = (res.headers.get('access-control-expose-headers') ?? '').toLowerCase()
			for (const h of ['content-disposition', 'content-length', 'content-range', 'etag']) expect(exposed).toContain(h)
			await res.arrayBuffer()
		}
	})
})

describe('CORS with a list of origins', () => {
	let t: TestApp
	beforeAll(async () => {
		t = await makeTestApp({
			store: 'memory',
			env: { CORS_ORIGINS: 'https://app.example.com, https://admin.example.com' },
		})
		await t.putFile('123', 'myvideo.mp4', 'abc')
	})
	afterAll(() => t.close())

	test('an allowed origin is echoed with Vary: Origin', async () => {
		const res = await preflight(t, downloadPath('123', 'myvideo.mp4'), 'https://admin.example.com')
		expect(res.status).toBe(204)
		expect(res.headers.get('access-control-allow-origin')).toBe('https://admin.example.com')
		expect(res.headers.get('vary')).toContain('Origin')
	})

	test('another origin gets no CORS headers', async () => {
		const res = await preflight(t, downloadPath('123', 'myvideo.mp4'), 'https://evil.example.net')
		expect(res.headers.get('access-control-allow-origin')).toBeNull()
		const get = await t.request(downloadPath('123', 'myvideo.mp4'), { headers: { Origin: 'https://evil.example.net' } })
		expect(get.headers.get('access-control-allow-origin')).toBeNull()
		expect(get.status).toBe(401)
	})
})
