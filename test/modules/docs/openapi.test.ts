import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Validator } from '@seriousme/openapi-schema-validator'
import pkg from '../../../package.json' with { type: 'json' }
import { ERROR_CODES } from '../../../src/errors'
import { listQueryRules } from '../../../src/modules/lifecycle/model'
import { API_KEY, makeTestApp, type TestApp } from '../../support/helpers'

type Json = Record<string, unknown>
type Operation = {
	summary?: string
	description?: string
	tags?: string[]
	security?: Record<string, string[]>[]
	parameters?: { name: string; in: string; schema: Json }[]
	responses: Record<string, { description: string; content?: Record<string, { schema: Json }> }>
}

// Every route of docs/contract.md §3 and the statuses each must document.
const ROUTES: [string, string, string[]][] = [
	['get', '/api/get-download-token/{user_id}/{filename}', ['200', '400', '401', '403', '404', '429', '503']],
	['get', '/api/download/{user_id}/{filename}', ['200', '206', '304', '400', '401', '403', '404', '416', '429', '503']],
	['head', '/api/download/{user_id}/{filename}', ['200', '206', '304', '401', '403', '404', '503']],
	['post', '/api/tokens/revoke', ['200', '400', '503']],
	['get', '/api/users/{user_id}/tokens', ['200', '400', '401', '403', '503']],
	['delete', '/api/users/{user_id}/tokens/{jti}', ['204', '401', '403', '404', '503']],
	['delete', '/api/users/{user_id}/tokens', ['200', '401', '403', '503']],
	['delete', '/api/users/{user_id}/files/{filename}/tokens', ['200', '401', '403', '503']],
	['get', '/health', ['200']],
	['get', '/ready', ['200', '503']],
]

describe('the OpenAPI document', () => {
	let t: TestApp
	let doc: {
		openapi: string
		info: Json
		servers?: { url: string }[]
		paths: Record<string, Record<string, Operation>>
		components: Json
	}
	const op = (method: string, path: string): Operation => {
		const found = doc.paths[path]?.[method]
		if (!found) throw new Error(`${method.toUpperCase()} ${path} is missing`)
		return found
	}

	beforeAll(async () => {
		t = await makeTestApp({
			env: {
				API_KEYS: API_KEY,
				AUTH_JWT_SECRET: 'app-user-token-secret-0123456789abcdef',
				PUBLIC_BASE_URL: 'https://files.example.com',
			},
		})
		const res = await t.request('/swagger/json')
		expect(res.status).toBe(200)
		doc = (await res.json()) as typeof doc
	})
	afterAll(() => t.close())

	test('is valid OpenAPI 3 according to a schema validator', async () => {
		const validator = new Validator()
		const result = await validator.validate(structuredClone(doc))
		if (!result.valid) console.error(JSON.stringify(result.errors, null, 1).slice(0, 2000))
		expect(result.valid).toBe(true)
		expect(doc.openapi).toMatch(/^3\./)
	})

	test('title, version from package.json, server from PUBLIC_BASE_URL', () => {
		expect(doc.info.title).toBe('download-gate')
		expect(doc.info.version).toBe(pkg.version)
		expect(doc.servers).toEqual([{ url: 'https://files.example.com' }])
	})

	test('both security schemes exist', () => {
		expect((doc.components.securitySchemes as Json).bearerAuth).toMatchObject({
			type: 'http',
			scheme: 'bearer',
			bearerFormat: 'JWT',
		})
		expect((doc.components.securitySchemes as Json).apiKey).toMatchObject({
			type: 'apiKey',
			in: 'header',
			name: 'X-API-Key',
		})
	})

	test.each(ROUTES)('%s %s: summary, description, tag and every status with a schema', (method, path, statuses) => {
		const operation = op(method, path)
		expect(operation.summary?.length).toBeGreaterThan(5)
		expect(operation.description?.length).toBeGreaterThan(10)
		expect(operation.tags?.length).toBe(1)
		for (const status of statuses) {
			const response = operation.responses[status]
			expect(response).toBeDefined()
			if (status === '204' || status === '304') continue
			const media = Object.values(response?.content ?? {})
			expect(media.length).toBeGreaterThan(0)
			for (const { schema } of media) expect(schema).toBeDefined()
		}
	})

	test('security is applied per route', () => {
		const both: Record<string, string[]>[] = [{ apiKey: [] }, { bearerAuth: [] }]
		expect(op('get', '/api/get-download-token/{user_id}/{filename}').security).toEqual(both)
		expect(op('get', '/api/download/{user_id}/{filename}').security).toEqual([{ bearerAuth: [] }])
		expect(op('get', '/api/users/{user_id}/tokens').security).toEqual(both)
		expect(op('delete', '/api/users/{user_id}/tokens/{jti}').security).toEqual(both)
		expect(op('post', '/api/tokens/revoke').security).toEqual([])
	})

	test('every stable error code of docs/contract.md §3 is documented with an example', () => {
		const codes = new Set<string>()
		for (const item of Object.values(doc.paths))
			for (const operation of Object.values(item))
				for (const [status, response] of Object.entries(operation.responses)) {
					if (Number(status) < 400) continue
					const schema = response.content?.['application/json']?.schema as
						| { properties?: { error?: { enum?: string[] } }; examples?: unknown[] }
						| undefined
					expect(schema?.examples?.length).toBeGreaterThan(0)
					for (const code of schema?.properties?.error?.enum ?? []) codes.add(code)
				}
		// Every code a client may see, but the one for a bug (500 internal_error: never documented as an answer).
		const documented = ERROR_CODES.filter((code) => code !== 'internal_error')
		expect([...documented].filter((code) => !codes.has(code))).toEqual([])
	})

	test.each([
		['get', '/api/get-download-token/{user_id}/{filename}'],
		['get', '/api/download/{user_id}/{filename}'],
		['head', '/api/download/{user_id}/{filename}'],
	])('%s %s: 503 is the store or the file storage (a bucket), with Retry-After', (method, path) => {
		const unavailable = op(method, path).responses['503'] as
			| { description: string; headers?: Json; content?: Record<string, { schema: Json }> }
			| undefined
		const schema = unavailable?.content?.['application/json']?.schema as
			| { properties?: { error?: { enum?: string[] } } }
			| undefined
		expect(schema?.properties?.error?.enum).toEqual(['store_unavailable', 'storage_unavailable'])
		expect(Object.keys(unavailable?.headers ?? {})).toEqual(['retry-after'])
		expect(unavailable?.description).toContain('storage_unavailable')
	})

	test('routes that never touch the file storage keep 503 to the store alone', () => {
		const revoke = op('post', '/api/tokens/revoke').responses['503']?.content?.['application/json']?.schema as
			| { properties?: { error?: { enum?: string[] } } }
			| undefined
		expect(revoke?.properties?.error?.enum).toEqual(['store_unavailable'])
	})

	test('parameters carry their constraints', () => {
		const params = Object.fromEntries(
			(op('get', '/api/get-download-token/{user_id}/{filename}').parameters ?? []).map((p) => [
				`${p.in}:${p.name}`,
				p.schema,
			]),
		)
		expect(String(params['path:user_id']?.pattern)).toBe('^[A-Za-z0-9_.@-]{1,128}$')
		expect(Number(params['path:filename']?.maxLength)).toBe(255)
		expect(params['query:ttl']?.type).toBe('integer')
		expect(params['query:ttl']?.minimum).toBe(1)
		expect(params['query:ttl']?.maximum).toBe(86400)
		expect(params['query:max_uses']?.maximum).toBe(1_000_000)
		expect(String(params['query:ttl']?.description)).toContain('86400')
		expect(params['query:max_uses']).toBeDefined()
		// The policy parameters, with their examples.
		expect(params['query:rate']?.minimum).toBe(65536)
		expect(params['query:rate']?.examples).toEqual([1048576])
		expect(params['query:ip']?.examples).toEqual(['203.0.113.0/24,2001:db8::/32'])
		expect(params['query:not_before']?.examples).toEqual(['2026-12-24T18:00:00Z'])
		const download = (op('get', '/api/download/{user_id}/{filename}').parameters ?? []).map((p) => `${p.in}:${p.name}`)
		expect(download).toEqual(
			expect.arrayContaining(['path:user_id', 'path:filename', 'header:range', 'header:if-range']),
		)
	})

	test('the listing documents limit and cursor with examples the route accepts, and next_cursor', () => {
		const listing = op('get', '/api/users/{user_id}/tokens')
		const params = Object.fromEntries((listing.parameters ?? []).map((p) => [`${p.in}:${p.name}`, p.schema]))
		expect(Object.keys(params).sort()).toEqual(['path:user_id', 'query:cursor', 'query:limit'])
		expect(params['query:limit']).toMatchObject({ type: 'integer', minimum: 1, maximum: 1000 })
		expect(String(params['query:limit']?.description)).toContain('default 100')
		expect(String(params['query:cursor']?.description)).toContain('next_cursor')
		const examples = (name: 'limit' | 'cursor') => (params[`query:${name}`]?.examples ?? []) as unknown[]
		expect(examples('limit').length).toBeGreaterThan(0)
		expect(examples('cursor').length).toBeGreaterThan(0)
		// Each example is spelled as the route takes it: one that would be refused documents nothing.
		for (const name of ['limit', 'cursor'] as const)
			for (const example of examples(name)) expect(String(example)).toMatch(listQueryRules[name].pattern)
		const page = listing.responses['200']?.content?.['application/json']?.schema as {
			properties?: Record<string, unknown>
			examples?: { next_cursor: string }[]
		}
		expect(Object.keys(page.properties ?? {}).sort()).toEqual(['next_cursor', 'tokens'])
		expect(page.examples?.[0]?.next_cursor).toMatch(listQueryRules.cursor.pattern)
	})

	test('the token route’s 429 is rate_limited or too_many_live_tokens, each with an example', () => {
		const tooMany = op('get', '/api/get-download-token/{user_id}/{filename}').responses['429']
		const schema = tooMany?.content?.['application/json']?.schema as {
			properties?: { error?: { enum?: string[] } }
			examples?: { error: string; message: string }[]
		}
		expect(schema.properties?.error?.enum).toEqual(['rate_limited', 'too_many_live_tokens'])
		expect(schema.examples?.map((e) => e.error)).toEqual(['rate_limited', 'too_many_live_tokens'])
		expect(schema.examples?.[1]?.message).toContain('revoke some')
		expect(tooMany?.description).toContain('MAX_LIVE_TOKENS_PER_USER')
	})

	test('file bodies are binary video/* or octet-stream, with their headers', () => {
		const ok = op('get', '/api/download/{user_id}/{filename}').responses['206']
		expect(Object.keys(ok?.content ?? {}).sort()).toEqual(['application/octet-stream', 'video/*'])
		expect(ok?.content?.['video/*']?.schema.format).toBe('binary')
		expect(Object.keys((ok as { headers?: Json }).headers ?? {})).toEqual(
			expect.arrayContaining(['content-disposition', 'content-range', 'etag', 'accept-ranges']),
		)
	})
})

describe('Swagger UI', () => {
	test('is served with its assets from this service, not a CDN', async () => {
		const t = await makeTestApp({ store: 'memory' })
		const page = await t.request('/swagger')
		expect(page.status).toBe(200)
		const html = await page.text()
		const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '')
		expect(urls.length).toBeGreaterThan(1)
		for (const url of urls) {
			expect(url).toStartWith('/swagger/assets/')
			expect((await t.request(url)).status).toBe(200)
		}
		expect((await t.request('/swagger/assets/package.json')).status).toBe(404)
		expect((await t.request('/swagger/assets/..%2F..%2Fpackage.json')).status).toBe(404)
		await t.close()
	})

	test('SWAGGER_ENABLED=false turns both the UI and the document off', async () => {
		const t = await makeTestApp({ store: 'memory', env: { SWAGGER_ENABLED: 'false' } })
		expect((await t.request('/swagger')).status).toBe(404)
		expect((await t.request('/swagger/json')).status).toBe(404)
		expect((await t.request('/swagger/assets/swagger-ui.css')).status).toBe(404)
		await t.close()
	})
})
