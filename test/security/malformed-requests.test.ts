import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { listAll } from '../store/contract'
import { makeTestApp, type TestApp } from '../support/helpers'
import {
	expectClientError,
	expectOneOf,
	expectRaw4xxJson,
	expectRawError,
	firstResponse,
	type RawResponse,
	rawGet,
	refusalKind,
	sendRaw,
} from './helpers'

// docs/contract.md §3: "No request, however malformed (no Host, a bad Host, an oversized
// token or body), gets a 5xx other than 503 store_unavailable", every error
// body is { error, message }, and every response carries X-Request-Id.
// Requests go out on raw sockets, so nothing normalises the bytes.

const TOKEN_PATH = '/api/get-download-token/123/a.mp4'
const FILE_BODY = 'the file bytes'

/** A request line plus header lines exactly as given (no Host added), ending the head. */
const raw = (requestLine: string, headers: string[]) =>
	`${requestLine}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`

/** The Host variants of the brief; `null` is HTTP/1.0 with no Host line at all. */
const BAD_HOSTS: [string, string | null][] = [
	['no Host (HTTP/1.0)', null],
	['an empty Host', ''],
	['a Host with userinfo (a@evil.example)', 'a@evil.example'],
	['a Host with a space (a b)', 'a b'],
	['a Host with a path and query (evil.example/x?)', 'evil.example/x?'],
	['a Host with a fragment (evil.example#)', 'evil.example#'],
]

const withHost = (method: string, path: string, host: string | null, extra: string[] = []) =>
	host === null
		? raw(`${method} ${path} HTTP/1.0`, extra)
		: raw(`${method} ${path} HTTP/1.1`, [`Host: ${host}`, 'Connection: close', ...extra])

/** What a download answer was: the file, a JSON client error, or something else (which fails the test). */
const classify = (res: RawResponse) => (res.status === 200 && res.text() === FILE_BODY ? 'the file' : refusalKind(res))

describe('a bad or missing Host on the token route', () => {
	let t: TestApp
	let pinned: TestApp
	beforeAll(async () => {
		t = await makeTestApp({ store: 'memory' })
		pinned = await makeTestApp({ store: 'memory', env: { PUBLIC_BASE_URL: 'https://files.example.com' } })
		for (const app of [t, pinned]) await app.putFile('123', 'a.mp4', FILE_BODY)
	})
	afterAll(async () => {
		await t.close()
		await pinned.close()
	})

	test.each(BAD_HOSTS)('%s, PUBLIC_BASE_URL unset → 400 invalid_request JSON and no token issued', async (_n, host) => {
		const before = (await listAll(t.deps.store, '123')).length
		const ex = await sendRaw(t.baseUrl, withHost('GET', TOKEN_PATH, host))
		expectRawError(firstResponse(ex), 400, 'invalid_request')
		expect((await listAll(t.deps.store, '123')).length).toBe(before)
	})

	test.each(BAD_HOSTS)('%s, PUBLIC_BASE_URL set → served normally with the configured base', async (_n, host) => {
		const ex = await sendRaw(pinned.baseUrl, withHost('GET', TOKEN_PATH, host))
		const res = firstResponse(ex)
		expect(res.status).toBe(200)
		expect((res.json() as { download_url: string }).download_url).toBe(
			'https://files.example.com/api/download/123/a.mp4',
		)
	})
})

describe.each([
	['Authorization header', 'false'],
	['ALLOW_QUERY_TOKEN=true', 'true'],
])('a bad or missing Host on the download route (%s)', (_mode, allowQuery) => {
	let t: TestApp
	let token: string
	beforeAll(async () => {
		// Each case below comes from its own (forwarded) address, so the denial windows do not mix.
		t = await makeTestApp({
			store: 'memory',
			env: { ALLOW_QUERY_TOKEN: allowQuery, RATE_LIMIT_DENIED: '3/min', TRUST_PROXY: 'true' },
		})
		await t.putFile('123', 'a.mp4', FILE_BODY)
		token = (await t.issue('123', 'a.mp4')).token
	})
	afterAll(() => t.close())

	const request = (host: string | null, tok: string, ip: string) =>
		allowQuery === 'true'
			? withHost('GET', `/api/download/123/a.mp4?token=${tok}`, host, [`X-Forwarded-For: ${ip}`])
			: withHost('GET', '/api/download/123/a.mp4', host, [`Authorization: Bearer ${tok}`, `X-Forwarded-For: ${ip}`])

	test.each(BAD_HOSTS.map(([name, host], i) => [name, host, i] as const))(
		'%s with a valid token: the file or a JSON 4xx, never a 5xx',
		async (_n, host, i) => {
			const ex = await sendRaw(t.baseUrl, request(host, token, `10.1.0.${i}`))
			expectOneOf(classify(firstResponse(ex)), ['the file', 'a JSON client error'])
		},
	)

	test.each(BAD_HOSTS.map(([name, host], i) => [name, host, i] as const))(
		'%s with a forged token: JSON 4xx refusals that count, the 4th from one address is 429 rate_limited',
		async (_n, host, i) => {
			const answers: RawResponse[] = []
			for (let k = 0; k < 4; k++)
				answers.push(firstResponse(await sendRaw(t.baseUrl, request(host, 'forged.token.x', `10.2.0.${i}`))))
			for (const res of answers.slice(0, 3)) expectRaw4xxJson(res)
			expectRawError(answers[3] as RawResponse, 429, 'rate_limited')
		},
	)
})

describe('every error is JSON { error, message } and every response has an X-Request-Id', () => {
	let t: TestApp
	let token: string
	beforeAll(async () => {
		t = await makeTestApp({ store: 'memory', env: { RATE_LIMIT_DENIED: '1000000/min' } })
		await t.putFile('123', 'a.mp4', FILE_BODY)
		token = (await t.issue('123', 'a.mp4')).token
	})
	afterAll(() => t.close())

	const post = (path: string, contentType: string | null, body: string) =>
		raw(`POST ${path} HTTP/1.1`, [
			'Host: localhost',
			'Connection: close',
			...(contentType ? [`Content-Type: ${contentType}`] : []),
			`Content-Length: ${Buffer.byteLength(body, 'latin1')}`,
		]) + body

	const ODD_REQUESTS: [string, string][] = [
		['an unknown route', rawGet('/nope')],
		['an unknown route under /api', rawGet('/api/download')],
		['POST on the download route', rawGet('/api/download/123/a.mp4', {}, 'POST')],
		['DELETE on the token route', rawGet(TOKEN_PATH, {}, 'DELETE')],
		['PUT /health', rawGet('/health', {}, 'PUT')],
		['a bad user_id on the token route', rawGet('/api/get-download-token/a%20b/a.mp4')],
		['a download without a token', rawGet('/api/download/123/a.mp4')],
		['a download with a junk token', rawGet('/api/download/123/a.mp4', { Authorization: 'Bearer junk' })],
		['a download with a non-Bearer scheme', rawGet('/api/download/123/a.mp4', { Authorization: 'Digest x' })],
		['a download path with a broken percent-escape', rawGet('/api/download/123/%zz.mp4')],
		['a token route query with a broken percent-escape', rawGet(`${TOKEN_PATH}?ttl=%zz`)],
		['a revoke with invalid JSON', post('/api/tokens/revoke', 'application/json', '{"token":')],
		['a revoke with no body', post('/api/tokens/revoke', 'application/json', '')],
		['a revoke with a JSON array', post('/api/tokens/revoke', 'application/json', '[1,2]')],
		['a revoke with a number token', post('/api/tokens/revoke', 'application/json', '{"token":5}')],
		['a revoke as text/plain', post('/api/tokens/revoke', 'text/plain', 'token')],
		['a revoke as a form', post('/api/tokens/revoke', 'application/x-www-form-urlencoded', 'token=a&token=b')],
		['a revoke as multipart junk', post('/api/tokens/revoke', 'multipart/form-data; boundary=x', '--x\r\njunk')],
		['a revoke with latin1 junk', post('/api/tokens/revoke', 'application/json', '{"token":"\xff\xfe"')],
		['a listing for a bad user_id', rawGet('/api/users/a%20b/tokens')],
		['a lone percent sign in the path', rawGet('/api/download/123/%')],
		['an invalid UTF-8 escape in the path', rawGet('/api/download/123/%c3%28.mp4')],
		['a lone percent sign in the query', rawGet(`${TOKEN_PATH}?max_uses=%`)],
		['a revoke-one with a bad jti', rawGet('/api/users/123/tokens/%2A%2A', {}, 'DELETE')],
	]

	test.each(ODD_REQUESTS)('%s → 4xx JSON { error, message }', async (_n, request) => {
		expectRaw4xxJson(firstResponse(await sendRaw(t.baseUrl, request)))
	})

	test('each of those answers carries an X-Request-Id', async () => {
		const missing: string[] = []
		for (const [name, request] of ODD_REQUESTS) {
			const id = firstResponse(await sendRaw(t.baseUrl, request)).header('x-request-id') ?? ''
			if (!/^[A-Za-z0-9._:-]{1,128}$/.test(id)) missing.push(name)
		}
		expect(missing).toEqual([])
	})

	const ID_128 = `${'a'.repeat(100)}.B_9:-${'z'.repeat(22)}`

	test.each([
		['a simple id', 'req-123'],
		['every allowed character', 'AZaz09._:-'],
		['exactly 128 characters', ID_128],
	])('a valid caller id (%s) is echoed on success, on errors, on HEAD, 304 and 416', async (_n, id) => {
		expect(ID_128.length).toBe(128)
		const auth = { Authorization: `Bearer ${token}`, 'X-Request-Id': id }
		const head = firstResponse(
			await sendRaw(t.baseUrl, rawGet('/api/download/123/a.mp4', auth, 'HEAD'), {
				headIndexes: [0],
			}),
		)
		const etag = head.header('etag') ?? ''
		const requests = [
			rawGet('/health', { 'X-Request-Id': id }),
			rawGet(TOKEN_PATH, { 'X-Request-Id': id }),
			rawGet('/api/download/123/a.mp4', auth),
			rawGet('/api/download/123/a.mp4', { ...auth, 'If-None-Match': etag }),
			rawGet('/api/download/123/a.mp4', { ...auth, Range: 'bytes=999-' }),
			rawGet('/api/download/123/a.mp4', { 'X-Request-Id': id, Authorization: 'Bearer junk' }),
			rawGet('/nope', { 'X-Request-Id': id }),
			rawGet('/api/download/123/a.mp4', { 'X-Request-Id': id, Origin: 'https://app.example' }, 'OPTIONS'),
		]
		const ids = [head.header('x-request-id')]
		for (const request of requests) ids.push(firstResponse(await sendRaw(t.baseUrl, request)).header('x-request-id'))
		expect(ids).toEqual(ids.map(() => id))
	})

	test('a 429 rate_limited answer carries the X-Request-Id too', async () => {
		const limited = await makeTestApp({ store: 'memory', env: { RATE_LIMIT_DENIED: '1/min' } })
		try {
			const send = (id: string) =>
				sendRaw(limited.baseUrl, rawGet('/api/download/123/a.mp4', { Authorization: 'Bearer x', 'X-Request-Id': id }))
			firstResponse(await send('first-refusal'))
			const res = firstResponse(await send('second-refusal'))
			expect({ status: res.status, id: res.header('x-request-id') }).toEqual({ status: 429, id: 'second-refusal' })
		} finally {
			await limited.close()
		}
	})

	test.each([
		['129 characters', 'a'.repeat(129)],
		['a space', 'a b'],
		['angle brackets', '<script>'],
		['a slash', 'a/b'],
		['a latin1 byte', 'caf\xe9'],
		['a quote', 'a"b'],
		['an empty value', ''],
	])('a caller id with %s is replaced by a generated one (on a 200 and on a 401)', async (_n, bad) => {
		const ok = firstResponse(await sendRaw(t.baseUrl, rawGet('/health', { 'X-Request-Id': bad })))
		const refused = firstResponse(
			await sendRaw(t.baseUrl, rawGet('/api/download/123/a.mp4', { 'X-Request-Id': bad, Authorization: 'Bearer x' })),
		)
		for (const res of [ok, refused]) {
			const id = res.header('x-request-id') ?? ''
			expect(id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/)
			expect(id).not.toBe(bad)
		}
		expect(ok.header('x-request-id')).not.toBe(refused.header('x-request-id'))
	})
})

describe("what Bun's own parser refuses: a 4xx, and nothing smuggled behind it is processed", () => {
	let t: TestApp
	beforeAll(async () => {
		t = await makeTestApp({ store: 'memory' })
		await t.putFile('smuggled', 'a.mp4', FILE_BODY)
	})
	afterAll(() => t.close())

	// Would issue a token if it were ever processed.
	const behind = 'GET /api/get-download-token/smuggled/a.mp4 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'

	test.each([
		['a garbage request line', 'GARBAGE\r\n\r\n'],
		['HTTP/1.1 without Host', 'GET /health HTTP/1.1\r\n\r\n'],
		['a space before the colon', 'GET /health HTTP/1.1\r\nHost : x\r\n\r\n'],
		['an invalid header name', 'GET /health HTTP/1.1\r\nHost: x\r\nBad(Name): y\r\n\r\n'],
		['a NUL in a header value', 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n'],
		['an obs-fold continuation line', 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n'],
		['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n'],
		['a 70 KB request target', `GET /${'a'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`],
		['300 header lines', `GET /health HTTP/1.1\r\nHost: x\r\n${'X-N: v\r\n'.repeat(300)}\r\n`],
	])('%s', async (_n, request) => {
		const ex = await sendRaw(t.baseUrl, request + behind, { expect: 2 })
		expect(ex.responses).toHaveLength(1)
		expectClientError(firstResponse(ex).status, ex.raw.slice(0, 200))
		expect(ex.raw).not.toContain('"token"')
		expect(await listAll(t.deps.store, 'smuggled')).toEqual([])
	})

	test('and the app answers the next connection normally', async () => {
		const res = firstResponse(await sendRaw(t.baseUrl, rawGet('/health')))
		expect(res.status).toBe(200)
	})
})
