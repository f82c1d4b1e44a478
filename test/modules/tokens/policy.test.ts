import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { decodeJwt } from 'jose'
import { bearer, downloadPath, type IssueBody, makeTestApp, randomBytesOf, type TestApp } from '../../support/helpers'

// The token policies of docs/contract.md §3.1 (not_before, ip, rate) and the
// download checks they add (§3.2 checks 3 and 4, and pacing).

type Issued = IssueBody & { not_before: string | null; ip: string[] | null; rate: number | null }

const errorOf = async (res: Response) => (await res.json()) as { error: string; message: string }

describe('issuing with a policy: validation', () => {
	let t: TestApp
	beforeAll(async () => {
		t = await makeTestApp({ store: 'memory', env: { RATE_LIMIT_ISSUE: '100000/min' } })
		await t.putFile('u1', 'v.mp4', 'video')
	})
	afterAll(() => t.close())

	const ask = (query: string) => t.request(`/api/get-download-token/u1/v.mp4?ttl=600&${query}`)

	test.each([
		['not_before=1700000000', { not_before: '2023-11-14T22:13:20Z' }],
		['not_before=2023-11-14T22:13:20Z', { not_before: '2023-11-14T22:13:20Z' }],
		['not_before=2023-11-14T23:13:20%2B01:00', { not_before: '2023-11-14T22:13:20Z' }],
		['not_before=2023-11-14T22:13:19.001Z', { not_before: '2023-11-14T22:13:20Z' }],
		['ip=10.0.0.0/8', { ip: ['10.0.0.0/8'] }],
		['ip=10.1.2.3/8', { ip: ['10.0.0.0/8'] }],
		['ip=192.0.2.7', { ip: ['192.0.2.7/32'] }],
		['ip=2001:db8::/32,192.0.2.0/24', { ip: ['2001:db8::/32', '192.0.2.0/24'] }],
		['ip=2001:DB8:0:0::1', { ip: ['2001:db8::1/128'] }],
		['ip=::ffff:10.0.0.0/104', { ip: ['::ffff:a00:0/104'] }],
		['ip=0.0.0.0/0', { ip: ['0.0.0.0/0'] }],
		[`ip=${Array.from({ length: 8 }, (_, i) => `10.0.${i}.0/24`).join(',')}`, { ip: expect.any(Array) }],
		['rate=65536', { rate: 65536 }],
		['rate=1048576', { rate: 1048576 }],
	])('%s → 200, echoed', async (query, echoed) => {
		const res = await ask(query)
		expect(res.status).toBe(200)
		const body = (await res.json()) as Issued
		expect(body).toMatchObject(echoed)
	})

	test.each([
		['not_before=tomorrow', 'not_before'],
		['not_before=2026-13-01T00:00:00Z', 'not_before'],
		['not_before=2026-02-30T00:00:00Z', 'not_before'],
		['not_before=2026-01-01T00:00:00', 'not_before'],
		['not_before=2026-01-01', 'not_before'],
		['not_before=-5', 'not_before'],
		['not_before=1e9', 'not_before'],
		['not_before=99999999999', 'not_before'],
		['ip=10.0.0.0/33', 'ip'],
		['ip=2001:db8::/129', 'ip'],
		['ip=10.0.0.0/', 'ip'],
		['ip=10.0.0.0/08', 'ip'],
		['ip=10.0.0', 'ip'],
		['ip=0x0a.0.0.1', 'ip'],
		['ip=10.0.0.256', 'ip'],
		['ip=fe80::1%25eth0', 'ip'],
		['ip=', 'ip'],
		['ip=10.0.0.1,,10.0.0.2', 'ip'],
		[`ip=${Array.from({ length: 9 }, (_, i) => `10.0.${i}.0/24`).join(',')}`, 'ip'],
		['rate=65535', 'rate'],
		['rate=1.5', 'rate'],
		['rate=0x10000', 'rate'],
		['rate=10000000001', 'rate'],
		['rate=', 'rate'],
	])('%s → 400 invalid_request naming %s', async (query, parameter) => {
		const res = await ask(query)
		expect(res.status).toBe(400)
		const { error, message } = await errorOf(res)
		expect(error).toBe('invalid_request')
		expect(message).toStartWith(parameter)
	})

	test('not_before at or after the expiry → 400 naming not_before', async () => {
		const nowS = Math.floor(t.clock.now() / 1000)
		for (const nbf of [nowS + 600, nowS + 601]) {
			const res = await ask(`not_before=${nbf}`)
			expect(res.status).toBe(400)
			expect((await errorOf(res)).message).toStartWith('not_before must lie before the token expires')
		}
		expect((await ask(`not_before=${nowS + 599}`)).status).toBe(200)
	})

	test('each policy parameter may be given once', async () => {
		for (const query of ['rate=65536&rate=65536', 'ip=10.0.0.1&ip=10.0.0.2', 'not_before=1&not_before=1']) {
			const res = await ask(query)
			expect(res.status).toBe(400)
			expect((await errorOf(res)).message).toContain('more than once')
		}
	})

	test('the policy is signed into the token as nbf, cidr and rate', async () => {
		const body = (await (await ask('not_before=1700000000&ip=10.1.2.3/8,::1&rate=65536')).json()) as Issued
		const claims = decodeJwt(body.token)
		expect(claims.nbf).toBe(1700000000)
		expect(claims.cidr).toEqual(['10.0.0.0/8', '::1/128'])
		expect(claims.rate).toBe(65536)
		// A token without a policy carries none of them.
		const plain = decodeJwt(((await (await ask('ttl=60'.slice(0, 0))).json()) as Issued).token)
		expect(['nbf', 'cidr', 'rate'].filter((c) => c in plain)).toEqual([])
	})
})

describe('not_before: refused before, served after', () => {
	let t: TestApp
	beforeAll(async () => {
		t = await makeTestApp({ store: 'memory' })
		await t.putFile('u1', 'v.mp4', 'video')
	})
	afterAll(() => t.close())

	test('403 token_not_yet_valid with the seconds left as Retry-After, then 200 once it starts', async () => {
		const nbf = Math.floor(t.clock.now() / 1000) + 120
		const { token } = await t.issue('u1', 'v.mp4', `?ttl=600&not_before=${nbf}`)
		const early = await t.request(downloadPath('u1', 'v.mp4'), { headers: bearer(token) })
		expect(early.status).toBe(403)
		expect(early.headers.get('retry-after')).toBe('120')
		expect((await errorOf(early)).error).toBe('token_not_yet_valid')
		t.clock.advance(100_000)
		const later = await t.request(downloadPath('u1', 'v.mp4'), { headers: bearer(token) })
		expect(later.headers.get('retry-after')).toBe('20')
		t.clock.advance(20_000)
		const started = await t.request(downloadPath('u1', 'v.mp4'), { headers: bearer(token) })
		expect(started.status).toBe(200)
		expect(await started.text()).toBe('video')
	})

	test('an expired token says expired, even when its nbf lies ahead (check 3: expiry first)', async () => {
		const nowS = Math.floor(t.clock.now() / 1000)
		const { token } = await t.issue('u1', 'v.mp4', `?ttl=10&not_before=${nowS + 5}`)
		t.clock.advance(11_000)
		const res = await t.request(downloadPath('u1', 'v.mp4'), { headers: bearer(token) })
		expect(res.status).toBe(401)
		expect((await errorOf(res)).error).toBe('token_expired')
	})

	test('not yet valid comes before token_mismatch (check 3 before check 4)', async () => {
		await t.putFile('u1', 'w.mp4', 'other')
		const nowS = Math.floor(t.clock.now() / 1000)
		const { token } = await t.issue('u1', 'v.mp4', `?ttl=600&not_before=${nowS + 60}`)
		const res = await t.request(downloadPath('u1', 'w.mp4'), { headers: bearer(token) })
		expect((await errorOf(res)).error).toBe('token_not_yet_valid')
	})
})

describe('ip: the client address must lie in the token’s ranges', () => {
	let direct: TestApp
	let proxied: TestApp
	let dual: TestApp
	beforeAll(async () => {
		direct = await makeTestApp({ store: 'memory', env: { RATE_LIMIT_DENIED: '100000/min' } })
		proxied = await makeTestApp({ store: 'memory', env: { TRUST_PROXY: 'true', RATE_LIMIT_DENIED: '100000/min' } })
		// A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6 addresses (::ffff:127.0.0.1).
		dual = await makeTestApp({ store: 'memory', hostname: '::', env: { RATE_LIMIT_DENIED: '100000/min' } })
		for (const t of [direct, proxied, dual]) await t.putFile('u1', 'v.mp4', 'video')
	})
	afterAll(async () => {
		for (const t of [direct, proxied, dual]) await t.close()
	})

	const status = async (t: TestApp, ip: string, headers: Record<string, string> = {}, base = t.baseUrl) => {
		const { token } = await t.issue('u1', 'v.mp4', `?ip=${encodeURIComponent(ip)}`)
		const res = await fetch(`${base}${downloadPath('u1', 'v.mp4')}`, { headers: { ...bearer(token), ...headers } })
		return res.status === 200 ? '200' : `${res.status} ${(await errorOf(res)).error}`
	}

	test('without TRUST_PROXY the socket address decides, and X-Forwarded-For is ignored', async () => {
		expect(await status(direct, '127.0.0.1')).toBe('200')
		expect(await status(direct, '127.0.0.0/8,10.0.0.0/8')).toBe('200')
		expect(await status(direct, '10.0.0.0/8')).toBe('403 ip_not_allowed')
		// A client cannot talk its way into a range by claiming an address.
		expect(await status(direct, '10.0.0.0/8', { 'X-Forwarded-For': '10.1.2.3' })).toBe('403 ip_not_allowed')
		expect(await status(direct, '127.0.0.1', { 'X-Forwarded-For': '10.1.2.3' })).toBe('200')
	})

	test('with TRUST_PROXY the first X-Forwarded-For hop decides: IPv4, IPv6 and IPv4-mapped', async () => {
		const via = (address: string) => ({ 'X-Forwarded-For': `${address}, 198.51.100.1` })
		expect(await status(proxied, '203.0.113.0/24', via('203.0.113.9'))).toBe('200')
		expect(await status(proxied, '203.0.113.0/24', via('203.0.114.9'))).toBe('403 ip_not_allowed')
		expect(await status(proxied, '2001:db8::/32', via('2001:db8:1::7'))).toBe('200')
		expect(await status(proxied, '2001:db8::/32', via('2001:db9::7'))).toBe('403 ip_not_allowed')
		expect(await status(proxied, '203.0.113.0/24', via('::ffff:203.0.113.9'))).toBe('200')
		expect(await status(proxied, '203.0.113.0/24', via('::ffff:203.0.114.9'))).toBe('403 ip_not_allowed')
		// Not an address at all matches nothing.
		expect(await status(proxied, '0.0.0.0/0', via('not-an-ip'))).toBe('403 ip_not_allowed')
		// Without the header, the socket address.
		expect(await status(proxied, '127.0.0.1')).toBe('200')
	})

	test('on a dual-stack socket: an IPv4 client (seen as ::ffff:127.0.0.1) matches IPv4 ranges; an IPv6 one IPv6 ranges', async () => {
		expect(await status(dual, '127.0.0.0/8')).toBe('200')
		expect(await status(dual, '10.0.0.0/8')).toBe('403 ip_not_allowed')
		const v6 = dual.baseUrl.replace('127.0.0.1', '[::1]')
		expect(await status(dual, '::1', {}, v6)).toBe('200')
		expect(await status(dual, '127.0.0.0/8', {}, v6)).toBe('403 ip_not_allowed')
	})

	test('ip_not_allowed comes after token_mismatch (both check 4, in this order)', async () => {
		await direct.putFile('u1', 'w.mp4', 'other')
		const { token } = await direct.issue('u1', 'v.mp4', '?ip=10.0.0.0/8')
		const res = await direct.request(downloadPath('u1', 'w.mp4'), { headers: bearer(token) })
		expect((await errorOf(res)).error).toBe('token_mismatch')
	})

	test('a forged token that widens its ranges fails its signature: 401 invalid_token', async () => {
		const { token } = await direct.issue('u1', 'v.mp4', '?ip=10.0.0.0/8')
		const [header, payload, signature] = token.split('.')
		const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as Record<string, unknown>
		claims.cidr = ['0.0.0.0/0']
		const forged = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`
		const res = await direct.request(downloadPath('u1', 'v.mp4'), { headers: bearer(forged) })
		expect(res.status).toBe(401)
		expect((await errorOf(res)).error).toBe('invalid_token')
		// Without the ranges at all: the same.
		delete claims.cidr
		const stripped = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`
		const res2 = await direct.request(downloadPath('u1', 'v.mp4'), { headers: bearer(stripped) })
		expect((await errorOf(res2)).error).toBe('invalid_token')
	})
})

describe('rate: every body of the token is paced', () => {
	let t: TestApp
	const MiB = 1024 * 1024
	beforeAll(async () => {
		t = await makeTestApp({ store: 'memory' })
		await t.putFile('u1', 'big.mp4', randomBytesOf(4 * MiB))
	})
	afterAll(() => t.close())

	test('a 4 MiB body at rate=1048576 takes 3.5-4.5 s, and arrives whole', async () => {
		const { token } = await t.issue('u1', 'big.mp4', '?rate=1048576')
		const started = performance.now()
		const res = await t.request(downloadPath('u1', 'big.mp4'), { headers: bearer(token) })
		expect(res.status).toBe(200)
		const bytes = (await res.arrayBuffer()).byteLength
		const seconds = (performance.now() - started) / 1000
		expect(bytes).toBe(4 * MiB)
		expect(seconds).toBeGreaterThan(3.5)
		expect(seconds).toBeLessThan(4.5)
	})

	test('a range of a paced token is paced too: 1 MiB at 2 MiB/s takes about half a second', async () => {
		const { token } = await t.issue('u1', 'big.mp4', `?rate=${2 * MiB}`)
		const started = performance.now()
		const res = await t.request(downloadPath('u1', 'big.mp4'), {
			headers: { ...bearer(token), Range: `bytes=${MiB}-${2 * MiB - 1}` },
		})
		expect(res.status).toBe(206)
		expect((await res.arrayBuffer()).byteLength).toBe(MiB)
		const seconds = (performance.now() - started) / 1000
		expect(seconds).toBeGreaterThan(0.35)
		expect(seconds).toBeLessThan(0.9)
	})
})
