import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { createIn, listAll } from '../store/contract'
import { makeTestApp, type TestApp } from '../support/helpers'
import {
	downloadClaims,
	expectClientError,
	expectOneOf,
	expectRaw4xxJson,
	firstResponse,
	forge,
	nowS,
	type RawResponse,
	rawGet,
	refusalKind,
	sendRaw,
} from './helpers'

// docs/contract.md §3.1/§3.2: names are single segments validated before any lookup, and
// nothing outside <STORAGE_DIR>/<user_id>/ is ever served. Every route with a
// path parameter gets the same hostile bytes on a raw socket (so no client
// normalises them); every answer must be a JSON 4xx carrying none of the files
// planted where an escape would land.

const MARKERS = ['USER-124-SECRET', 'STORAGE-ROOT-FILE', 'OUTSIDE-STORAGE', 'HIDDEN-DOTFILE']
const A_BODY = 'file A of 123'

/** Filename segments, exactly as they appear in the request target. */
function filenamePayloads(outsideDir: string): [string, string][] {
	const out = basename(outsideDir)
	return [
		['..', '..'],
		['%2e%2e', '%2e%2e'],
		['.%2e', '.%2e'],
		['%2E%2e%2f to another user', '%2E%2e%2f124%2fsecret.mp4'],
		['..%2f to another user', '..%2f124%2fsecret.mp4'],
		['..%2f to the storage root', '..%2froot.mp4'],
		['..%2f..%2f out of storage', `..%2f..%2f${out}%2foutside.mp4`],
		['%2f alone', '%2f'],
		['an absolute %2f path', '%2fetc%2fpasswd'],
		['..%5c to another user', '..%5c124%5csecret.mp4'],
		['%5c alone', '%5c'],
		['%00 alone', '%00'],
		['a NUL before the extension', 'a.mp4%00.txt'],
		['a trailing NUL', 'a.mp4%00'],
		['double-encoded %252e%252e%252f', '%252e%252e%252f124%252fsecret.mp4'],
		['overlong UTF-8 %c0%ae%c0%ae%c0%af', '%c0%ae%c0%ae%c0%af124%c0%afsecret.mp4'],
		['overlong UTF-8 %e0%80%ae', '%e0%80%ae%e0%80%ae%c0%af124%c0%afsecret.mp4'],
		['invalid UTF-8 %ff', '%ff'],
		['invalid UTF-8 after a name', 'a.mp4%ff'],
		['an encoded lone surrogate', '%ed%a0%80.mp4'],
		['256 bytes of ASCII', 'x'.repeat(252).concat('.mp4')],
		['256 bytes of é', '%C3%A9'.repeat(128)],
		['a 4,000 character segment', 'y'.repeat(4000)],
		['a leading dot file', '.hidden'],
		['an encoded leading dot', '%2ehidden'],
		['a CR LF', 'a.mp4%0d%0aSet-Cookie:%20x=y'],
		['a DEL', 'a%7f.mp4'],
		['a C1 control (NEL)', 'a%c2%85.mp4'],
		['a semicolon path parameter', '..;%2f124%2fsecret.mp4'],
	]
}

/** user_id segments, exactly as they appear in the request target. */
const USER_PAYLOADS: [string, string][] = [
	['..', '..'],
	['.', '.'],
	['%2e%2e', '%2e%2e'],
	['..%2f124', '..%2f124'],
	['%2f', '%2f'],
	['%5c', '%5c'],
	['%00', '%00'],
	['123%00', '123%00'],
	['double-encoded %252e%252e', '%252e%252e'],
	['overlong UTF-8 %c0%ae%c0%ae', '%c0%ae%c0%ae'],
	['invalid UTF-8 %ff', '%ff'],
	['129 characters', 'u'.repeat(129)],
	['123%2f..%2f124', '123%2f..%2f124'],
	['a glob *', '*'],
	['a glob 12*', '12%2A'],
	['a Redis hash tag {123}', '%7B123%7D'],
]

describe('raw-byte path attacks on every route with a path parameter', () => {
	let t: TestApp
	let outside: string
	let token: string

	beforeAll(async () => {
		t = await makeTestApp({ env: { RATE_LIMIT_DENIED: '1000000/min', RATE_LIMIT_ISSUE: '1000000/min' } })
		await t.putFile('123', 'a.mp4', A_BODY)
		await t.putFile('123', '.hidden', 'HIDDEN-DOTFILE')
		await t.putFile('124', 'secret.mp4', 'USER-124-SECRET')
		await writeFile(join(t.storageDir, 'root.mp4'), 'STORAGE-ROOT-FILE')
		outside = await mkdtemp(join(tmpdir(), 'dlg-outside-'))
		await mkdir(outside, { recursive: true })
		await writeFile(join(outside, 'outside.mp4'), 'OUTSIDE-STORAGE')
		token = (await t.issue('123', 'a.mp4')).token
	})
	afterAll(async () => {
		await t.close()
		await rm(outside, { recursive: true, force: true })
	})

	/** Sends a raw request; asserts it leaks none of the planted files. */
	async function expectNoLeak(request: string, head = false): Promise<RawResponse> {
		const ex = await sendRaw(t.baseUrl, request, { headIndexes: head ? [0] : [] })
		expect({ request: request.split('\r\n')[0], leaked: MARKERS.filter((m) => ex.raw.includes(m)) }).toEqual({
			request: request.split('\r\n')[0],
			leaked: [],
		})
		return firstResponse(ex)
	}

	/** Sends a raw request; asserts a JSON 4xx that leaks no planted file. */
	const leaksNothing = async (request: string) =>
		expectRaw4xxJson(await expectNoLeak(request), request.split('\r\n')[0])

	test('the token route: every hostile filename or user_id → JSON 4xx, no token issued', async () => {
		for (const [, file] of filenamePayloads(outside)) await leaksNothing(rawGet(`/api/get-download-token/123/${file}`))
		for (const [, user] of USER_PAYLOADS) await leaksNothing(rawGet(`/api/get-download-token/${user}/a.mp4`))
		const issued = (await listAll(t.deps.store, '123')).map((x) => x.filename)
		expect(issued.filter((f) => f !== 'a.mp4')).toEqual([])
	})

	test('the download route with a valid token for 123/a.mp4: every hostile filename or user_id → JSON 4xx', async () => {
		const auth = { Authorization: `Bearer ${token}` }
		for (const [, file] of filenamePayloads(outside)) await leaksNothing(rawGet(`/api/download/123/${file}`, auth))
		for (const [, user] of USER_PAYLOADS) await leaksNothing(rawGet(`/api/download/${user}/a.mp4`, auth))
		// HEAD answers carry no body: a 4xx is all there is to see.
		for (const [, file] of filenamePayloads(outside)) {
			const res = await expectNoLeak(rawGet(`/api/download/123/${file}`, auth, 'HEAD'), true)
			expectClientError(res.status, `HEAD /api/download/123/${file}`)
		}
	})

	test('the download route with a validly signed token naming the hostile file, and a live record for it: still JSON 4xx', async () => {
		// The worst case: a bug elsewhere minted a token (and a record) for the hostile name itself.
		const now = nowS(t.clock)
		for (const [name, file] of filenamePayloads(outside)) {
			const decoded = (() => {
				try {
					return decodeURIComponent(file)
				} catch {
					return file
				}
			})()
			const jti = `forged${Bun.hash(name).toString(16)}`
			await createIn(t.deps.store, {
				jti,
				userId: '123',
				filename: decoded,
				issuedAtS: now,
				expiresAtS: now + 600,
				maxUses: null,
				budgetBytes: null,
				allowanceBytes: 0,
				sizeBytes: 0,
				policy: {},
				graceS: 0,
			})
			const forged = await forge(downloadClaims('123', decoded, jti, now))
			await leaksNothing(rawGet(`/api/download/123/${file}`, { Authorization: `Bearer ${forged}` }))
		}
	})

	test("raw dot segments (which Bun resolves before routing) serve at most the token's own file", async () => {
		const auth = { Authorization: `Bearer ${token}` }
		for (const path of [
			'/api/download/123/../124/secret.mp4',
			'/api/download/123/./a.mp4',
			'/api/download/123/./../124/secret.mp4',
			'/api/download/124/../123/a.mp4',
			'/api/download/123/a.mp4/..',
			'/api/download/123/../../../root.mp4',
			'/api/download/./123/a.mp4',
			'/api/download/123//a.mp4',
		]) {
			const res = await expectNoLeak(rawGet(path, auth))
			const kind = res.status === 200 && res.text() === A_BODY ? 'the token file' : refusalKind(res)
			expectOneOf(kind, ['the token file', 'a JSON client error'], path)
		}
	})

	test('the lifecycle routes: every hostile user_id, jti or filename → JSON 4xx', async () => {
		for (const [, user] of USER_PAYLOADS) {
			await leaksNothing(rawGet(`/api/users/${user}/tokens`))
			await leaksNothing(rawGet(`/api/users/${user}/tokens`, {}, 'DELETE'))
			await leaksNothing(rawGet(`/api/users/${user}/tokens/abc`, {}, 'DELETE'))
			await leaksNothing(rawGet(`/api/users/${user}/files/a.mp4/tokens`, {}, 'DELETE'))
		}
		for (const [, jti] of [...USER_PAYLOADS, ['a 65-character jti', 'j'.repeat(65)]])
			await leaksNothing(rawGet(`/api/users/123/tokens/${jti}`, {}, 'DELETE'))
		// Some payloads decode to a name that is merely odd (a literal "%2e%2e%2f…" is a valid
		// filename): revoking the tokens of such a file is a harmless 200 { revoked: n }.
		for (const [, file] of filenamePayloads(outside)) {
			const res = await expectNoLeak(rawGet(`/api/users/123/files/${file}/tokens`, {}, 'DELETE'))
			const kind = res.status === 200 && /^\{"revoked":\d+\}$/.test(res.text()) ? 'a revocation' : refusalKind(res)
			expectOneOf(kind, ['a JSON client error', 'a revocation'], `DELETE /api/users/123/files/${file}/tokens`)
		}
		// None of that revoked the live token.
		const res = await t.request('/api/download/123/a.mp4', { headers: { Authorization: `Bearer ${token}` } })
		expect(res.status).toBe(200)
	})

	test('glob characters in a filename revoke only tokens for that literal name', async () => {
		const live = await t.issue('123', 'a.mp4')
		for (const glob of ['%2A', 'a%2A', '%3F.mp4', '%5Ba%5D.mp4', 'a.mp%5B0-9%5D']) {
			const res = await sendRaw(t.baseUrl, rawGet(`/api/users/123/files/${glob}/tokens`, {}, 'DELETE'))
			const answer = firstResponse(res)
			expect({ glob, status: answer.status, body: answer.json() }).toEqual({ glob, status: 200, body: { revoked: 0 } })
		}
		const res = await t.request('/api/download/123/a.mp4', { headers: { Authorization: `Bearer ${live.token}` } })
		expect(res.status).toBe(200)
		expect(await res.text()).toBe(A_BODY)
	})
})
