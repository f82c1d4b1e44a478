import { afterAll, beforeAll, describe, expect, spyOn, test } from 'bun:test'
import { createApp } from '../src/app'
import { loadConfig } from '../src/config'
import { createDeps } from '../src/deps'
import { DOWNLOAD_PATH } from '../src/modules/downloads'
import { API_KEY, bearer, captureLogger, downloadPath, makeTestApp, TEST_SECRET, type TestApp } from './support/helpers'
import { pollUntil } from './support/poll'

// One renderer answers every error, whichever way the request came in: an
// Elysia route, the native download route, or Elysia's handling of the
// download route (app.handle). Each answer has the same shape and headers.

const ORIGIN = 'https://app.example.com'

describe('every error answer has one shape, on every route', () => {
	let t: TestApp
	let token: string
	beforeAll(async () => {
		t = await makeTestApp({
			store: 'memory',
			env: { API_KEYS: API_KEY, RATE_LIMIT_DENIED: '1000000/min' },
		})
		await t.putFile('123', 'a.mp4', '0123456789')
		token = (await t.issue('123', 'a.mp4')).token
	})
	afterAll(() => t.close())

	const key = { 'X-API-Key': API_KEY }
	const CASES: [string, string, RequestInit, number, string][] = [
		['an unknown route', '/nope', {}, 404, 'not_found'],
		['the token route without credentials', '/api/get-download-token/123/a.mp4', {}, 401, 'unauthorized'],
		['the token route, bad ttl', '/api/get-download-token/123/a.mp4?ttl=0', { headers: key }, 400, 'invalid_request'],
		['the token route, no such file', '/api/get-download-token/123/b.mp4', { headers: key }, 404, 'file_not_found'],
		['a listing for a bad user_id', '/api/users/a%20b/tokens', { headers: key }, 400, 'invalid_request'],
		[
			'a revoke in a foreign media type',
			'/api/tokens/revoke',
			{ method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{}' },
			415,
			'unsupported_media_type',
		],
		['a download without a token', downloadPath('123', 'a.mp4'), {}, 401, 'missing_token'],
		['a download with a junk token', downloadPath('123', 'a.mp4'), { headers: bearer('x.y.z') }, 401, 'invalid_token'],
		['a download of another file', downloadPath('123', 'b.mp4'), { headers: bearer('a.b.c') }, 401, 'invalid_token'],
		['a download with a bad filename', downloadPath('123', '.hidden'), {}, 400, 'invalid_request'],
	]

	test.each(CASES)('%s → %p JSON with no-store, a request id and CORS', async (_name, path, init, status, code) => {
		const res = await t.request(path, { ...init, headers: { Origin: ORIGIN, ...(init.headers ?? {}) } })
		expect(res.status).toBe(status)
		expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8')
		expect(res.headers.get('cache-control')).toBe('no-store')
		expect(res.headers.get('x-request-id')).toMatch(/^[A-Za-z0-9._:-]{1,128}$/)
		expect(res.headers.get('access-control-allow-origin')).toBe('*')
		const body = (await res.json()) as { error: string; message: string }
		expect(Object.keys(body).sort()).toEqual(['error', 'message'])
		expect(body.error).toBe(code)
	})

	test('the 416 of the download route is rendered like every other error', async () => {
		const res = await t.request(downloadPath('123', 'a.mp4'), {
			headers: { ...bearer(token), Range: 'bytes=99-', Origin: ORIGIN, 'X-Request-Id': 'r-416' },
		})
		expect(res.status).toBe(416)
		expect(res.headers.get('content-range')).toBe('bytes */10')
		expect(res.headers.get('cache-control')).toBe('no-store')
		expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8')
		expect(res.headers.get('x-request-id')).toBe('r-416')
		expect(res.headers.get('access-control-allow-origin')).toBe('*')
		expect(await res.json()).toEqual({
			error: 'range_not_satisfiable',
			message: 'The requested range is outside the file (10 bytes).',
		})
	})

	test('through app.handle (Elysia runs the download route) the answers are the same', async () => {
		const viaElysia = await t.app.handle(
			new Request(`http://localhost${downloadPath('123', 'a.mp4')}`, { headers: { 'X-Request-Id': 'r-1' } }),
		)
		const viaBun = await t.request(downloadPath('123', 'a.mp4'), { headers: { 'X-Request-Id': 'r-1' } })
		for (const res of [viaElysia, viaBun]) {
			expect(res.status).toBe(401)
			expect(res.headers.get('cache-control')).toBe('no-store')
			expect(res.headers.get('www-authenticate')).toBe('Bearer realm="download-gate"')
			expect(res.headers.get('x-request-id')).toBe('r-1')
			expect(await res.json()).toEqual({ error: 'missing_token', message: 'A download token is required.' })
		}
		// Elysia's own validation of the route's parameters is answered by the download endpoint too.
		const invalid = await t.app.handle(new Request(`http://localhost/api/download/a%20b/a.mp4`))
		expect(invalid.status).toBe(400)
		expect(invalid.headers.get('cache-control')).toBe('no-store')
		expect(((await invalid.json()) as { error: string }).error).toBe('invalid_request')
		const ok = await t.app.handle(
			new Request(`http://localhost${downloadPath('123', 'a.mp4')}`, { headers: bearer(token) }),
		)
		expect(ok.status).toBe(200)
		expect(await ok.text()).toBe('0123456789')
	})
})

describe('Elysia keeps mounting the native download route', () => {
	// The native route is handed to Elysia as `serve.routes`, which its Bun
	// adapter merges into what it passes to Bun.serve (under a @ts-ignore), and
	// again on the reload after modules load. If an Elysia release stopped
	// doing either, downloads would silently run through Elysia's lifecycle.
	test('Bun.serve and the later reload both get the download module’s own GET and HEAD', async () => {
		const config = loadConfig({ JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'silent' })
		const deps = await createDeps(config, { log: captureLogger().log })
		const app = createApp(deps)
		const ours = (app.config.serve as { routes: Record<string, Record<string, unknown>> }).routes[DOWNLOAD_PATH]
		expect(typeof ours?.GET).toBe('function')
		expect(typeof ours?.HEAD).toBe('function')

		const reloads: { routes?: Record<string, Record<string, unknown>> }[] = []
		const realServe = Bun.serve.bind(Bun)
		const serve = spyOn(Bun, 'serve').mockImplementation(((options: Parameters<typeof Bun.serve>[0]) => {
			const server = realServe(options)
			const reload = server.reload.bind(server)
			server.reload = ((next: Parameters<typeof server.reload>[0]) => {
				reloads.push(next as (typeof reloads)[number])
				return reload(next)
			}) as typeof server.reload
			return server
		}) as typeof Bun.serve)
		try {
			app.listen({ port: 0, hostname: '127.0.0.1' })
			const given =
				(serve.mock.calls[0]?.[0] as { routes?: Record<string, Record<string, unknown>> } | undefined)?.routes ?? {}
			expect(given[DOWNLOAD_PATH]?.GET).toBe(ours?.GET)
			expect(given[DOWNLOAD_PATH]?.HEAD).toBe(ours?.HEAD)
			await pollUntil(
				() => reloads.filter((reload) => reload.routes !== undefined).length,
				(n) => n > 0,
				1000,
				10,
			)
			// Elysia's compile() reloads with no route table (Bun keeps the one it has); every reload that sets one keeps ours.
			const withRoutes = reloads.filter((reload) => reload.routes !== undefined)
			expect(withRoutes.length).toBeGreaterThan(0)
			for (const reload of withRoutes) {
				expect(reload.routes?.[DOWNLOAD_PATH]?.GET).toBe(ours?.GET)
				expect(reload.routes?.[DOWNLOAD_PATH]?.HEAD).toBe(ours?.HEAD)
			}
		} finally {
			serve.mockRestore()
			await app.stop(true)
			await deps.close()
		}
	})
})
