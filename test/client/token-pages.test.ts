import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createClient, type DownloadGateClient, ListingError, tokenPages } from '../../src/client'
import type { TokenList } from '../../src/modules/lifecycle/model'
import { newestFirst, seedTokens } from '../modules/lifecycle/seed'
import { record } from '../store/contract'
import { API_KEY, makeTestApp, type TestApp } from '../support/helpers'

// tokenPages against a real service: what it sends (limit and cursor in the query, a request only when
// the next page is asked for), what it yields, and what it throws.

let app: TestApp
/** The query string of every listing request the client sent. */
const sent: string[] = []
let client: DownloadGateClient
let expected: string[]

beforeAll(async () => {
	app = await makeTestApp({ env: { API_KEYS: API_KEY } })
	client = createClient(app.baseUrl, {
		apiKey: API_KEY,
		fetch: (input, init) => {
			sent.push(new URL(input instanceof Request ? input.url : String(input)).search)
			return fetch(input, init)
		},
	})
	const base = Math.floor(app.clock.now() / 1000)
	const { records } = await seedTokens(app.deps.store, 250, (i) =>
		record(app.clock, { userId: 'u@1', issuedAtS: base - 250 + i, expiresAtS: base + 3600 }),
	)
	expected = newestFirst(records).map((r) => r.jti)
})
afterAll(() => app.close())

/** Every page `tokenPages` yields, and the queries it sent for them. */
async function collect(userId: string, options: Parameters<typeof tokenPages>[2] = {}) {
	sent.length = 0
	const pages: TokenList[] = []
	for await (const page of tokenPages(client, userId, options)) pages.push(page)
	return { pages, queries: [...sent] }
}

/** What a listing throws. */
async function thrown(pages: AsyncGenerator<TokenList>): Promise<unknown> {
	try {
		for await (const _ of pages) {
		}
	} catch (err) {
		return err
	}
	throw new Error('the listing did not throw')
}

describe('tokenPages', () => {
	test('yields every page, newest first, passing limit and each next_cursor as the query', async () => {
		const { pages, queries } = await collect('u@1', { limit: 100 })
		expect(pages.map((p) => p.tokens.length)).toEqual([100, 100, 50])
		expect(pages.flatMap((p) => p.tokens.map((t) => t.jti))).toEqual(expected)
		expect(pages.map((p) => p.next_cursor === null)).toEqual([false, false, true])
		expect(queries).toEqual([
			'?limit=100',
			`?limit=100&cursor=${pages[0]?.next_cursor}`,
			`?limit=100&cursor=${pages[1]?.next_cursor}`,
		])
	})

	test('without a limit: the service’s 100 a page, and no query for the first', async () => {
		const { pages, queries } = await collect('u@1')
		expect(pages.map((p) => p.tokens.length)).toEqual([100, 100, 50])
		expect(queries[0]).toBe('')
		expect(queries[1]).toBe(`?cursor=${pages[0]?.next_cursor}`)
	})

	test('asks for a page only when the one before was taken: stopping after the first sends one request', async () => {
		sent.length = 0
		const pages = tokenPages(client, 'u@1', { limit: 10 })
		const first = await pages.next()
		expect(first.done).toBe(false)
		expect(sent).toHaveLength(1)
		await pages.return()
		expect(sent).toHaveLength(1)
	})

	test('resumes after a cursor given', async () => {
		const first = await collect('u@1', { limit: 200 })
		const rest = await collect('u@1', { limit: 200, cursor: first.pages[0]?.next_cursor ?? '' })
		expect(rest.pages.flatMap((p) => p.tokens.map((t) => t.jti))).toEqual(expected.slice(200))
	})

	test('a user with no tokens: one empty page', async () => {
		expect((await collect('nobody')).pages).toEqual([{ tokens: [], next_cursor: null }])
	})

	test.each([
		['limit 0', { limit: 0 }, 'limit must be a whole number from 1 to 1000'],
		['limit 1001', { limit: 1001 }, 'limit must be a whole number from 1 to 1000'],
		['a cursor it never gave out', { cursor: 'not-a-cursor' }, 'cursor must be a next_cursor this listing gave out'],
	])('%s → ListingError invalid_request (400) with the service’s message', async (_, options, message) => {
		const err = await thrown(tokenPages(client, 'u@1', options))
		expect(err).toBeInstanceOf(ListingError)
		expect(err).toMatchObject({ code: 'invalid_request', status: 400, message })
	})

	test('another user’s cursor → invalid_request', async () => {
		const { pages } = await collect('u@1', { limit: 100 })
		const err = await thrown(tokenPages(client, 'other', { cursor: pages[0]?.next_cursor ?? '' }))
		expect(err).toMatchObject({ code: 'invalid_request', status: 400 })
	})

	test('no credentials → unauthorized (401)', async () => {
		const err = await thrown(tokenPages(createClient(app.baseUrl), 'u@1'))
		expect(err).toMatchObject({ name: 'ListingError', code: 'unauthorized', status: 401 })
	})

	test('no answer → network_error, with what was thrown as the cause', async () => {
		const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
		const closed = `http://127.0.0.1:${probe.port}`
		probe.stop(true)
		const err = await thrown(tokenPages(createClient(closed, { apiKey: API_KEY }), 'u@1'))
		expect(err).toMatchObject({ code: 'network_error', status: null })
		expect((err as ListingError).cause).toBeInstanceOf(Error)
	})

	test('an aborted signal throws its reason', async () => {
		const reason = new Error('stop')
		const err = await thrown(tokenPages(client, 'u@1', { requestInit: () => ({ signal: AbortSignal.abort(reason) }) }))
		expect(err).toBe(reason)
	})

	test('answers that are not pages → unexpected_response; a cursor repeated is not followed for ever; no next_cursor ends it', async () => {
		let reply: () => Response = () => Response.json({ items: [] })
		let requests = 0
		const standIn = Bun.serve({
			hostname: '127.0.0.1',
			port: 0,
			fetch: () => {
				requests++
				return reply()
			},
		})
		try {
			const other = createClient(`http://127.0.0.1:${standIn.port}`)
			expect(await thrown(tokenPages(other, 'u'))).toMatchObject({ code: 'unexpected_response', status: 200 })
			reply = () => new Response('{"tokens": [', { headers: { 'content-type': 'application/json' } })
			expect(await thrown(tokenPages(other, 'u'))).toMatchObject({ code: 'unexpected_response', status: null })
			reply = () => new Response('<html>Bad gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } })
			expect(await thrown(tokenPages(other, 'u'))).toMatchObject({
				code: 'unexpected_response',
				status: 502,
				message: 'HTTP 502: <html>Bad gateway</html>',
			})
			reply = () => Response.json({ tokens: [], next_cursor: 'same' })
			requests = 0
			expect(await thrown(tokenPages(other, 'u', { cursor: 'first' }))).toMatchObject({
				code: 'unexpected_response',
				message: 'the listing gave the same cursor twice',
			})
			expect(requests).toBe(2)

			// A service from before paging sends no next_cursor: its one answer is the whole listing.
			reply = () => Response.json({ tokens: [] })
			requests = 0
			const pages: unknown[] = []
			for await (const page of tokenPages(other, 'u')) pages.push(page)
			expect(pages).toEqual([{ tokens: [], next_cursor: null }])
			expect(requests).toBe(1)
		} finally {
			standIn.stop(true)
		}
	})
})
