import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose'
import { API_KEY, bearer, makeTestApp, REPO_ROOT, TEST_SECRET, type TestApp, uniquePrefix } from '../support/helpers'

// Who may ask for tokens (ISSUE_AUTH): API keys, users' own access tokens (HS256
// secret or a JWKS), or anyone.

const TOKEN = (user: string) => `/api/get-download-token/${user}/v.mp4`
const USER_SECRET = 'app-user-token-secret-0123456789abcdef'
type Signer = (sub: string, opts?: { expS?: number; issuer?: string; audience?: string }) => Promise<string>

async function seed(t: TestApp) {
	await t.putFile('123', 'v.mp4', 'video')
	await t.putFile('124', 'v.mp4', 'video')
}

const errorOf = async (res: Response) => ((await res.json()) as { error: string }).error

// A JWKS endpoint of our own on loopback, with one RS256 and one ES256 key.
let jwksServer: ReturnType<typeof Bun.serve>
let jwksHits = 0
const signers: Record<'RS256' | 'ES256' | 'HS256', Signer> = {} as Record<'RS256' | 'ES256' | 'HS256', Signer>
let strangerRs: Signer

function signerFor(alg: string, key: CryptoKey | Uint8Array, kid?: string): Signer {
	return (sub, opts = {}) => {
		const now = Math.floor(Date.now() / 1000)
		let jwt = new SignJWT({ sub })
			.setProtectedHeader({ alg, ...(kid ? { kid } : {}) })
			.setIssuedAt(now)
			.setExpirationTime(now + (opts.expS ?? 600))
		if (opts.issuer) jwt = jwt.setIssuer(opts.issuer)
		if (opts.audience) jwt = jwt.setAudience(opts.audience)
		return jwt.sign(key)
	}
}

beforeAll(async () => {
	const rs = await generateKeyPair('RS256', { extractable: true })
	const es = await generateKeyPair('ES256', { extractable: true })
	const stranger = await generateKeyPair('RS256', { extractable: true })
	const keys: JWK[] = [
		{ ...(await exportJWK(rs.publicKey)), kid: 'rs-1', alg: 'RS256', use: 'sig' },
		{ ...(await exportJWK(es.publicKey)), kid: 'es-1', alg: 'ES256', use: 'sig' },
	]
	jwksServer = Bun.serve({
		hostname: '127.0.0.1',
		port: 0,
		fetch() {
			jwksHits++
			return Response.json({ keys })
		},
	})
	signers.RS256 = signerFor('RS256', rs.privateKey, 'rs-1')
	signers.ES256 = signerFor('ES256', es.privateKey, 'es-1')
	signers.HS256 = signerFor('HS256', new TextEncoder().encode(USER_SECRET))
	strangerRs = signerFor('RS256', stranger.privateKey, 'rs-1')
})
afterAll(() => jwksServer.stop(true))

const jwksUrl = () => `http://127.0.0.1:${jwksServer.port}/.well-known/jwks.json`

describe.each([
	['api-key', { ISSUE_AUTH: 'api-key', API_KEYS: API_KEY }],
	['any (keys + HS256 user tokens)', { ISSUE_AUTH: 'any', API_KEYS: API_KEY, AUTH_JWT_SECRET: USER_SECRET }],
	['auto with keys (= any)', { API_KEYS: API_KEY }],
])('ISSUE_AUTH=%s: API keys', (_mode, env) => {
	let t: TestApp
	beforeAll(async () => {
		t = await makeTestApp({ env })
		await seed(t)
	})
	afterAll(() => t.close())

	test('no credentials → 401; a wrong key → 401; a valid key → 200 for any user', async () => {
		expect(await errorOf(await t.request(TOKEN('123')))).toBe('unauthorized')
		const wrong = await t.request(TOKEN('123'), { headers: { 'X-API-Key': 'wrong-key-0123456789abc' } })
		expect(wrong.status).toBe(401)
		for (const user of ['123', '124'])
			expect((await t.request(TOKEN(user), { headers: { 'X-API-Key': API_KEY } })).status).toBe(200)
	})
})

describe.each([
	['user-jwt with AUTH_JWT_SECRET (HS256)', 'HS256', () => ({ ISSUE_AUTH: 'user-jwt', AUTH_JWT_SECRET: USER_SECRET })],
	[
		'any with AUTH_JWT_SECRET (HS256)',
		'HS256',
		() => ({ ISSUE_AUTH: 'any', API_KEYS: API_KEY, AUTH_JWT_SECRET: USER_SECRET }),
	],
	['user-jwt with AUTH_JWKS_URL (RS256)', 'RS256', () => ({ ISSUE_AUTH: 'user-jwt', AUTH_JWKS_URL: jwksUrl() })],
	['user-jwt with AUTH_JWKS_URL (ES256)', 'ES256', () => ({ ISSUE_AUTH: 'user-jwt', AUTH_JWKS_URL: jwksUrl() })],
] as const)('ISSUE_AUTH=%s: user access tokens', (_mode, alg, env) => {
	let t: TestApp
	beforeAll(async () => {
		t = await makeTestApp({ env: env() })
		await seed(t)
	})
	afterAll(() => t.close())
	const as = async (token: string, user = '123') => t.request(TOKEN(user), { headers: bearer(token) })

	test('no credentials → 401 unauthorized', async () => {
		const res = await t.request(TOKEN('123'))
		expect(res.status).toBe(401)
		expect(await errorOf(res)).toBe('unauthorized')
	})

	test('a user token for 123 → 200 for 123 and 403 for 124', async () => {
		const token = await signers[alg]('123')
		expect((await as(token)).status).toBe(200)
		const other = await as(token, '124')
		expect(other.status).toBe(403)
		expect(await errorOf(other)).toBe('forbidden')
	})

	test('an expired or forged user token → 401', async () => {
		expect((await as(await signers[alg]('123', { expS: -30 }))).status).toBe(401)
		const forged =
			alg === 'HS256'
				? await signerFor('HS256', new TextEncoder().encode('z'.repeat(40)))('123')
				: await strangerRs('123')
		const res = await as(forged)
		expect(res.status).toBe(401)
		expect(await errorOf(res)).toBe('unauthorized')
		expect((await as('not.a.jwt')).status).toBe(401)
	})

	test('the download token itself is not accepted as a user access token', async () => {
		const issued = (await (await as(await signers[alg]('123'))).json()) as { token: string }
		expect((await as(issued.token)).status).toBe(401)
	})
})

describe('user access token options', () => {
	test('AUTH_JWT_ISSUER / AUTH_JWT_AUDIENCE are enforced; AUTH_USER_CLAIM picks the claim', async () => {
		const t = await makeTestApp({
			store: 'memory',
			env: {
				ISSUE_AUTH: 'user-jwt',
				AUTH_JWT_SECRET: USER_SECRET,
				AUTH_JWT_ISSUER: 'https://auth.example.com',
				AUTH_JWT_AUDIENCE: 'download-gate',
			},
		})
		await seed(t)
		const good = await signers.HS256('123', { issuer: 'https://auth.example.com', audience: 'download-gate' })
		const badIss = await signers.HS256('123', { issuer: 'https://evil.example.com', audience: 'download-gate' })
		const noAud = await signers.HS256('123', { issuer: 'https://auth.example.com' })
		expect((await t.request(TOKEN('123'), { headers: bearer(good) })).status).toBe(200)
		expect((await t.request(TOKEN('123'), { headers: bearer(badIss) })).status).toBe(401)
		expect((await t.request(TOKEN('123'), { headers: bearer(noAud) })).status).toBe(401)
		await t.close()

		const c = await makeTestApp({
			store: 'memory',
			env: { ISSUE_AUTH: 'user-jwt', AUTH_JWT_SECRET: USER_SECRET, AUTH_USER_CLAIM: 'uid' },
		})
		await seed(c)
		const withUid = await new SignJWT({ sub: '999', uid: 123 })
			.setProtectedHeader({ alg: 'HS256' })
			.setExpirationTime('10m')
			.sign(new TextEncoder().encode(USER_SECRET))
		expect((await c.request(TOKEN('123'), { headers: bearer(withUid) })).status).toBe(200)
		expect((await c.request(TOKEN('999'), { headers: bearer(withUid) })).status).toBe(403)
		await c.close()
	})

	test('the JWKS is fetched once and cached across requests', async () => {
		const t = await makeTestApp({ env: { ISSUE_AUTH: 'user-jwt', AUTH_JWKS_URL: jwksUrl() } })
		await seed(t)
		const before = jwksHits
		for (let i = 0; i < 5; i++)
			expect((await t.request(TOKEN('123'), { headers: bearer(await signers.RS256('123')) })).status).toBe(200)
		expect(jwksHits - before).toBe(1)
		await t.close()
	})
})

describe('ISSUE_AUTH=none', () => {
	test('anyone may issue; credentials are not needed', async () => {
		const t = await makeTestApp({ env: { ISSUE_AUTH: 'none' } })
		await seed(t)
		expect((await t.request(TOKEN('123'))).status).toBe(200)
		await t.close()
	})

	test('production refuses to start with no way to authenticate, and warns when none is explicit', async () => {
		const base = {
			PATH: process.env.PATH ?? '',
			NODE_ENV: 'production',
			JWT_SECRET: TEST_SECRET,
			REDIS_URL: process.env.TEST_REDIS_URL ?? '',
		}
		const refused = Bun.spawnSync([process.execPath, '--no-env-file', 'src/index.ts'], {
			cwd: REPO_ROOT,
			env: base,
		})
		expect(refused.exitCode).toBe(1)
		expect(refused.stderr.toString()).toContain('ISSUE_AUTH')
		const proc = Bun.spawn([process.execPath, '--no-env-file', 'src/index.ts'], {
			cwd: REPO_ROOT,
			env: { ...base, ISSUE_AUTH: 'none', PORT: '0', HOST: '127.0.0.1', REDIS_KEY_PREFIX: uniquePrefix() },
			stdout: 'pipe',
		})
		let out = ''
		const reader = proc.stdout.getReader()
		while (!out.includes('"listening"')) {
			const { value, done } = await reader.read()
			if (done) break
			out += new TextDecoder().decode(value)
		}
		proc.kill('SIGTERM')
		await proc.exited
		expect(out).toContain('ISSUE_AUTH=none: anyone may ask for a token')
	})
})
