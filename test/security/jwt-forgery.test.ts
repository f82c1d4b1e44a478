import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { generateKeyPair, SignJWT } from 'jose'
import { bearer, downloadPath, makeTestApp, type TestApp } from '../support/helpers'
import { downloadClaims, expectError, forge, handSigned, nowS, SECRET_KEY, TEST_KID } from './helpers'

// docs/contract.md §3.2 check 2: signature valid with an accepted key, alg HS256,
// well-formed → else 401 invalid_token; token_expired only for an authentic
// expired token. Every forgery below carries the jti of a live record, so the
// signature check is the only thing standing between it and the file.

const b64u = (data: string) => Buffer.from(data).toString('base64url')

describe('JWT forgeries on the download route', () => {
	let t: TestApp
	let jti: string
	let real: string
	let claims: Record<string, unknown>
	const header = { alg: 'HS256', typ: 'JWT', kid: TEST_KID }

	beforeAll(async () => {
		t = await makeTestApp({ env: { RATE_LIMIT_DENIED: '1000000/min' } })
		await t.putFile('123', 'a.mp4', 'the file')
		await t.putFile('124', 'a.mp4', 'another user')
		await t.putFile('123', 'b.mp4', 'another file')
		;({ jti, token: real } = await t.issue('123', 'a.mp4'))
		claims = downloadClaims('123', 'a.mp4', jti, nowS(t.clock))
	})
	afterAll(() => t.close())

	const without = (name: string) => Object.fromEntries(Object.entries(claims).filter(([k]) => k !== name))
	/** An authentic token whose signature has a - or _ (so its standard-base64 spelling differs in alphabet, not just padding). */
	const signedWithDashOrUnderscore = async () => {
		for (let n = 0; ; n++) {
			const token = await forge({ ...claims, n })
			if (/[-_]/.test(token.split('.')[2] ?? '')) return token
		}
	}
	const parts = () => real.split('.') as [string, string, string]

	test('the baseline: the same claims signed as the service signs are served', async () => {
		const res = await t.request(downloadPath('123', 'a.mp4'), { headers: bearer(await forge(claims)) })
		expect(res.status).toBe(200)
		expect(await res.text()).toBe('the file')
	})

	const forgeries: [string, () => Promise<string> | string][] = [
		[
			'alg none, empty signature',
			() => `${b64u(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64u(JSON.stringify(claims))}.`,
		],
		[
			'alg None with the kid',
			() => `${b64u(JSON.stringify({ alg: 'None', kid: TEST_KID }))}.${b64u(JSON.stringify(claims))}.`,
		],
		[
			'alg NONE, real signature kept',
			() => `${b64u(JSON.stringify({ alg: 'NONE', kid: TEST_KID }))}.${b64u(JSON.stringify(claims))}.${parts()[2]}`,
		],
		['alg HS384 with the right secret', () => handSigned({ ...header, alg: 'HS384' }, claims, SECRET_KEY, 'sha384')],
		['alg HS512 with the right secret', () => handSigned({ ...header, alg: 'HS512' }, claims, SECRET_KEY, 'sha512')],
		['alg HS256 spelled hs256', () => handSigned({ ...header, alg: 'hs256' }, claims)],
		[
			'alg RS256 with an attacker key',
			async () => {
				const { privateKey } = await generateKeyPair('RS256')
				return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: TEST_KID }).sign(privateKey)
			},
		],
		[
			'alg ES256 with an attacker key',
			async () => {
				const { privateKey } = await generateKeyPair('ES256')
				return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: TEST_KID }).sign(privateKey)
			},
		],
		[
			'alg RS256 header over an HMAC of the secret (key confusion)',
			() => handSigned({ ...header, alg: 'RS256' }, claims),
		],
		['a wrong key', () => handSigned(header, claims, 'another-secret-that-is-long-enough-0123456789')],
		['an empty key', () => handSigned(header, claims, '')],
		['the secret with a trailing byte', () => handSigned(header, claims, `${new TextDecoder().decode(SECRET_KEY)}x`)],
		[
			'a tampered payload (exp + 1 day), signature kept',
			() => `${parts()[0]}.${b64u(JSON.stringify({ ...claims, exp: Number(claims.exp) + 86400 }))}.${parts()[2]}`,
		],
		[
			'a tampered header (typ changed), signature kept',
			() => `${b64u(JSON.stringify({ ...header, typ: 'at+jwt' }))}.${parts()[1]}.${parts()[2]}`,
		],
		['the signature truncated by one character', () => real.slice(0, -1)],
		[
			'the signature of another token',
			async () => `${parts()[0]}.${parts()[1]}.${(await t.issue('123', 'b.mp4')).token.split('.')[2]}`,
		],
		...(['user_id', 'filename', 'action', 'jti', 'iat', 'exp'] as const).map(
			(name): [string, () => Promise<string>] => [`claim ${name} missing`, () => forge(without(name))],
		),
		['user_id as a number', () => forge({ ...claims, user_id: 123 })],
		['filename as an array', () => forge({ ...claims, filename: ['a.mp4'] })],
		['action as a boolean', () => forge({ ...claims, action: true })],
		['jti as a number', () => forge({ ...claims, jti: 42 })],
		['jti as an empty string', () => forge({ ...claims, jti: '' })],
		['iat as a string', () => forge({ ...claims, iat: String(claims.iat) })],
		['exp as a string', () => forge({ ...claims, exp: String(claims.exp) })],
		['exp as null', () => forge({ ...claims, exp: null })],
		['the payload a JSON array', () => handSigned(header, JSON.stringify([claims]))],
		['the payload not JSON', () => handSigned(header, 'user_id=123')],
		['kid unknown', () => handSigned({ ...header, kid: 'someone-elses-key' }, claims)],
		['kid a number', () => handSigned({ ...header, kid: 1234 }, claims)],
		['kid an array', () => handSigned({ ...header, kid: [TEST_KID] }, claims)],
		['kid huge (3,000 characters)', () => handSigned({ ...header, kid: 'k'.repeat(3000) }, claims)],
		['crit naming an unknown extension', () => handSigned({ ...header, crit: ['x-ext'], 'x-ext': true }, claims)],
		['crit naming a registered claim', () => handSigned({ ...header, crit: ['exp'] }, claims)],
		['b64: false (unencoded payload)', () => handSigned({ ...header, b64: false, crit: ['b64'] }, claims)],
		['2 parts', () => `${parts()[0]}.${parts()[1]}`],
		['4 parts', () => `${real}.${parts()[2]}`],
		['5 parts (JWE shape)', () => `${parts()[0]}.${parts()[1]}.a.b.${parts()[2]}`],
		[
			'the signature in the standard base64 alphabet (+ and / for - and _)',
			async () => {
				const [h, p, sig] = (await signedWithDashOrUnderscore()).split('.') as [string, string, string]
				return `${h}.${p}.${sig.replaceAll('-', '+').replaceAll('_', '/')}`
			},
		],
		['the signature with = padding appended', () => `${real}=`],
		['padding = after the payload', () => `${parts()[0]}.${parts()[1]}==.${parts()[2]}`],
		['non-ASCII bytes in the payload part', () => `${parts()[0]}.${parts()[1]}é.${parts()[2]}`],
		[
			'a 4 KiB + 1 token',
			() => `${parts()[0]}.${parts()[1]}.${'A'.repeat(4097 - parts()[0].length - parts()[1].length - 2)}`,
		],
		[
			'an expired token signed with the wrong key',
			() => handSigned(header, { ...claims, exp: nowS(t.clock) - 10 }, 'wrong-key-that-is-long-enough-0123456789'),
		],
		[
			'an expired token with alg none',
			() => `${b64u(JSON.stringify({ alg: 'none' }))}.${b64u(JSON.stringify({ ...claims, exp: nowS(t.clock) - 10 }))}.`,
		],
	]

	test.each(forgeries)('%s → 401 invalid_token with a Bearer challenge', async (_name, make) => {
		const token = await make()
		const res = await t.request(downloadPath('123', 'a.mp4'), { headers: bearer(token) })
		const challenge = res.headers.get('www-authenticate') ?? ''
		await expectError(res, 401, 'invalid_token')
		expect(challenge).toContain('Bearer')
	})

	test.each([
		['action "upload"', () => forge({ ...claims, action: 'upload' }), '123', 'a.mp4'],
		['action "Download"', () => forge({ ...claims, action: 'Download' }), '123', 'a.mp4'],
		['claims for user 123 on user 124', () => forge(claims), '124', 'a.mp4'],
		['claims for a.mp4 on b.mp4', () => forge(claims), '123', 'b.mp4'],
		['an issued token on another user', () => real, '124', 'a.mp4'],
	])('%s → 403 token_mismatch, nothing served', async (_name, make, user, file) => {
		const res = await t.request(downloadPath(user, file), { headers: bearer(await make()) })
		await expectError(res, 403, 'token_mismatch')
	})
})

describe('token_expired only for an authentic expired token', () => {
	let t: TestApp
	beforeAll(async () => {
		t = await makeTestApp({ env: { RATE_LIMIT_DENIED: '1000000/min' } })
		await t.putFile('123', 'a.mp4', 'the file')
	})
	afterAll(() => t.close())

	test('an issued token past its exp → 401 token_expired; the same expired claims forged → 401 invalid_token', async () => {
		const { token } = await t.issue('123', 'a.mp4', '?ttl=30')
		t.clock.advance(31_000)
		await expectError(await t.request(downloadPath('123', 'a.mp4'), { headers: bearer(token) }), 401, 'token_expired')
		const [h, p] = token.split('.')
		const forged = `${h}.${p}.${handSigned({}, {}, 'wrong-key-that-is-long-enough-0123456789').split('.')[2]}`
		await expectError(await t.request(downloadPath('123', 'a.mp4'), { headers: bearer(forged) }), 401, 'invalid_token')
	})
})

describe('the signature segment is strict base64url wherever a token arrives', () => {
	let t: TestApp
	let real: string
	beforeAll(async () => {
		t = await makeTestApp({ env: { ALLOW_QUERY_TOKEN: 'true', RATE_LIMIT_DENIED: '1000000/min' } })
		await t.putFile('123', 'a.mp4', 'the file')
		real = (await t.issue('123', 'a.mp4')).token
	})
	afterAll(() => t.close())

	test('the issued token itself is served through ?token= (the baseline)', async () => {
		expect((await t.request(`${downloadPath('123', 'a.mp4')}?token=${real}`)).status).toBe(200)
	})

	test.each([
		['a space inside the signature', (tok: string) => `${tok.slice(0, -10)}%20${tok.slice(-10)}`],
		['a + (a space once decoded) inside the signature', (tok: string) => `${tok.slice(0, -10)}+${tok.slice(-10)}`],
		['a newline inside the signature', (tok: string) => `${tok.slice(0, -10)}%0A${tok.slice(-10)}`],
		['= padding after the signature', (tok: string) => `${tok}%3D`],
	])('%s (?token=) → 401 invalid_token', async (_name, mangle) => {
		await expectError(await t.request(`${downloadPath('123', 'a.mp4')}?token=${mangle(real)}`), 401, 'invalid_token')
	})
})
