import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { exitCodeFor, formatSize, formatTokens, parseCommandLine, requestFor, shellQuote, UsageError } from '../src/cli'
import { API_KEY, bearer, downloadPath, makeTestApp, type TestApp } from './helpers'

const ROOT = new URL('..', import.meta.url).pathname
const NON_ASCII = 'vidéo d’été 🎬.mp4'

interface Outcome {
	code: number
	stdout: string
	stderr: string
}

/** Runs the CLI as a subprocess with only the environment given (no inherited DOWNLOAD_GATE_*). */
async function cli(args: string[], env: Record<string, string> = {}): Promise<Outcome> {
	const proc = Bun.spawn([process.execPath, 'src/cli.ts', ...args], {
		cwd: ROOT,
		env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
		stdout: 'pipe',
		stderr: 'pipe',
	})
	const [stdout, stderr, code] = await Promise.all([
		new Response(proc.stdout).text(),
		new Response(proc.stderr).text(),
		proc.exited,
	])
	return { code, stdout, stderr }
}

/** A port nothing listens on: bound by us, then released. */
function closedPort(): number {
	const server = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
	const { port } = server
	server.stop(true)
	return port
}

describe('download-gate CLI', () => {
	let t: TestApp
	const admin = (...args: string[]) => cli(['--url', t.baseUrl, '--api-key', API_KEY, ...args])
	const download = (user: string, file: string, token: string) =>
		t.request(downloadPath(user, file), { headers: bearer(token) })
	const errorOf = async (res: Response) => ((await res.json()) as { error: string }).error
	const tokenOf = (stdout: string) => /^token {2,}(\S+)$/m.exec(stdout)?.[1] ?? ''
	const jtiOf = (stdout: string) => /^jti {2,}(\S+)$/m.exec(stdout)?.[1] ?? ''

	beforeAll(async () => {
		t = await makeTestApp({
			env: { API_KEYS: API_KEY, ISSUE_AUTH: 'api-key', RATE_LIMIT_ISSUE: '1000/min', RATE_LIMIT_DENIED: '1000/min' },
		})
		for (const user of ['alice', 'carol', 'dave']) {
			await t.putFile(user, 'a.mp4', 'aaaa')
			await t.putFile(user, 'b.mp4', 'bbbbbbbb')
		}
		await t.putFile('alice', NON_ASCII, 'été')
	})
	afterAll(() => t.close())

	describe('usage', () => {
		test('--help and help print the usage with the exit codes on stdout, exit 0', async () => {
			for (const args of [['--help'], ['help'], ['list', 'alice', '-h']]) {
				const r = await cli(args)
				expect(r.code).toBe(0)
				expect(r.stdout).toStartWith('Usage: download-gate <command>')
				expect(r.stdout).toContain('Exit codes:')
				expect(r.stdout).toContain('5  unavailable or rate limited')
				expect(r.stderr).toBe('')
			}
		})

		test('no arguments: the usage on stdout, exit 2', async () => {
			const r = await cli([])
			expect(r.code).toBe(2)
			expect(r.stdout).toStartWith('Usage: download-gate')
		})

		test.each([
			[['frobnicate', 'alice'], 'unknown command "frobnicate"'],
			[['list', 'alice', '--verbose'], "Unknown option '--verbose'"],
			[['issue', 'alice'], 'issue takes <user_id> <filename>'],
			[['revoke', 'alice', 'x', 'y'], 'revoke takes <user_id> <jti>'],
			[['issue', 'alice', '..'], 'an argument must not be . or ..'],
			[['list', 'alice', '--ttl', '60'], '--ttl and --max-uses only apply to issue'],
			[['list', 'alice', '--url', 'ftp://example.com'], '--url must be an http(s) URL'],
			[['list', 'alice', '--timeout', 'soon'], '--timeout must be a number of seconds > 0'],
		])('%p → exit 2, says why on stderr', async (args, why) => {
			const r = await cli(args)
			expect(r.code).toBe(2)
			expect(r.stdout).toBe('')
			expect(r.stderr).toContain(`error: ${why}`)
			expect(r.stderr).toContain('download-gate --help')
		})
	})

	describe('issue', () => {
		test('readable: token, download_url, jti, expiry, max_uses and a curl line; the token downloads', async () => {
			const r = await admin('issue', 'alice', 'a.mp4')
			expect(r.code).toBe(0)
			expect(r.stderr).toBe('')
			const token = tokenOf(r.stdout)
			expect(token.split('.')).toHaveLength(3)
			const url = `${t.baseUrl}/api/download/alice/a.mp4`
			expect(r.stdout).toMatch(new RegExp(`^download_url {2,}${url}$`, 'm'))
			expect(jtiOf(r.stdout)).toMatch(/^[A-Za-z0-9_-]+$/)
			expect(r.stdout).toMatch(/^expires_at {2,}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m)
			expect(r.stdout).toMatch(/^max_uses {2,}unlimited$/m)
			expect(r.stdout).toContain(`curl -H "Authorization: Bearer ${token}" -OJL "${url}"\n`)
			expect(r.stdout).not.toContain(API_KEY)
			const res = await download('alice', 'a.mp4', token)
			expect(res.status).toBe(200)
			expect(await res.text()).toBe('aaaa')
		})

		test('--json: the response body on one line, with --ttl and --max-uses passed through', async () => {
			const r = await admin('issue', 'alice', 'b.mp4', '--json', '--ttl', '60', '--max-uses', '2')
			expect(r.code).toBe(0)
			expect(r.stdout.trimEnd().split('\n')).toHaveLength(1)
			const body = JSON.parse(r.stdout) as { token: string; expires_in: number; max_uses: number; jti: string }
			expect(body.expires_in).toBe(60)
			expect(body.max_uses).toBe(2)
			expect(body.jti).toBeString()
			const res = await download('alice', 'b.mp4', body.token)
			expect(res.status).toBe(200)
			expect(await res.text()).toBe('bbbbbbbb')
		})

		test('a non-ASCII filename is percent-encoded in the request and the download_url', async () => {
			const r = await admin('issue', 'alice', NON_ASCII, '--max-uses', '1')
			expect(r.code).toBe(0)
			const url = `${t.baseUrl}/api/download/alice/${encodeURIComponent(NON_ASCII)}`
			expect(r.stdout).toContain(`download_url  ${url}\n`)
			expect(r.stdout).toMatch(/^max_uses {2,}1$/m)
			expect(r.stdout).toContain(`-OJL "${url}"`)
			const res = await download('alice', NON_ASCII, tokenOf(r.stdout))
			expect(res.status).toBe(200)
			expect(await res.text()).toBe('été')
		})

		test('shows the file size, readable and in --json', async () => {
			const r = await admin('issue', 'alice', 'b.mp4')
			expect(r.code).toBe(0)
			expect(r.stdout).toMatch(/^size {2,}8 bytes$/m)
			const json = await admin('issue', 'alice', 'b.mp4', '--json')
			expect((JSON.parse(json.stdout) as { size: number }).size).toBe(8)
		})

		test('a missing file → exit 4 with the service message', async () => {
			const r = await admin('issue', 'alice', 'nope.mp4')
			expect(r.code).toBe(4)
			expect(r.stdout).toBe('')
			expect(r.stderr).toBe('error: No such file for this user. (file_not_found)\n')
		})

		test('--json on an error: the error JSON on stdout too', async () => {
			const r = await admin('issue', 'alice', 'nope.mp4', '--json')
			expect(r.code).toBe(4)
			expect(JSON.parse(r.stdout)).toEqual({ error: 'file_not_found', message: 'No such file for this user.' })
			expect(r.stderr).toContain('(file_not_found)')
		})

		test('--ttl that is not a whole number is refused locally: exit 2, nothing issued', async () => {
			for (const ttl of ['abc', '0', '1.5', '-5']) {
				const r = await admin('issue', 'dave', 'a.mp4', `--ttl=${ttl}`)
				expect(r.code).toBe(2)
				expect(r.stderr).toContain(`--ttl must be a whole number ≥ 1, got "${ttl}"`)
			}
			const bad = await admin('issue', 'dave', 'a.mp4', '--max-uses', 'two')
			expect(bad.code).toBe(2)
			expect(bad.stderr).toContain('--max-uses must be a whole number')
			expect((await admin('list', 'dave')).stdout).toBe('no live tokens\n')
		})

		test('--ttl above MAX_TTL is refused by the service: exit 1, 400 invalid_request', async () => {
			const r = await admin('issue', 'alice', 'a.mp4', '--ttl', '999999', '--json')
			expect(r.code).toBe(1)
			const body = JSON.parse(r.stdout) as { error: string; message: string }
			expect(body.error).toBe('invalid_request')
			expect(r.stderr).toBe(`error: ${body.message} (invalid_request)\n`)
			expect(body.message).toContain('ttl')
		})
	})

	describe('list', () => {
		test('readable: an aligned table holding the jti; --json parses', async () => {
			const issued = await admin('issue', 'alice', NON_ASCII, '--max-uses', '3', '--json')
			const { jti } = JSON.parse(issued.stdout) as { jti: string }

			const r = await admin('list', 'alice')
			expect(r.code).toBe(0)
			const lines = r.stdout.trimEnd().split('\n')
			expect(lines[0]).toMatch(/^JTI {2,}FILENAME {2,}ISSUED_AT {2,}EXPIRES_AT {2,}MAX_USES {2,}BYTES_LEFT$/)
			const row = lines.find((line) => line.startsWith(jti)) ?? ''
			expect(row).toContain(NON_ASCII)
			expect(row).toMatch(new RegExp(` 3 {2,}${3 * Buffer.byteLength('été')}$`)) // budget: 3 × the file's bytes
			// Columns line up: every row's FILENAME starts under the header's.
			const col = lines[0]?.indexOf('FILENAME') ?? -1
			for (const line of lines.slice(1)) expect(line[col - 1]).toBe(' ')
			expect(lines.slice(1).every((line) => line[col] !== ' ')).toBe(true)

			const json = await admin('list', 'alice', '--json')
			expect(json.code).toBe(0)
			const body = JSON.parse(json.stdout) as { tokens: { jti: string; filename: string; max_uses: number }[] }
			expect(body.tokens.find((x) => x.jti === jti)).toMatchObject({ filename: NON_ASCII, max_uses: 3 })
		})

		test('a user with no tokens: "no live tokens"; with --json an empty list', async () => {
			expect(await admin('list', 'nobody')).toEqual({ code: 0, stdout: 'no live tokens\n', stderr: '' })
			expect(JSON.parse((await admin('list', 'nobody', '--json')).stdout)).toEqual({ tokens: [] })
		})
	})

	describe('revoke', () => {
		test('revokes one token: it then answers 401 token_revoked', async () => {
			const issued = await admin('issue', 'alice', 'a.mp4')
			const token = tokenOf(issued.stdout)
			const jti = jtiOf(issued.stdout)
			const r = await admin('revoke', 'alice', jti)
			expect(r).toEqual({ code: 0, stdout: `revoked ${jti}\n`, stderr: '' })
			const res = await download('alice', 'a.mp4', token)
			expect(res.status).toBe(401)
			expect(await errorOf(res)).toBe('token_revoked')
			expect((await admin('list', 'alice')).stdout).not.toContain(jti)
		})

		test('--json prints {"revoked":true}', async () => {
			const { jti } = JSON.parse((await admin('issue', 'alice', 'a.mp4', '--json')).stdout) as { jti: string }
			expect(await admin('--json', 'revoke', 'alice', jti)).toEqual({
				code: 0,
				stdout: '{"revoked":true}\n',
				stderr: '',
			})
		})

		test('an unknown jti → exit 4 not_found', async () => {
			const r = await admin('revoke', 'alice', 'no-such-jti')
			expect(r.code).toBe(4)
			expect(r.stdout).toBe('')
			expect(r.stderr).toBe('error: This user has no unexpired token with that jti. (not_found)\n')
		})

		test('revoke-all: counts, and other users keep their tokens', async () => {
			const carol = [await admin('issue', 'carol', 'a.mp4'), await admin('issue', 'carol', 'b.mp4')]
			const dave = await admin('issue', 'dave', 'a.mp4')
			const r = await admin('revoke-all', 'carol')
			expect(r).toEqual({ code: 0, stdout: 'revoked 2 tokens\n', stderr: '' })
			for (const [file, out] of [
				['a.mp4', carol[0]],
				['b.mp4', carol[1]],
			] as const)
				expect((await download('carol', file, tokenOf(out?.stdout ?? ''))).status).toBe(401)
			expect((await download('dave', 'a.mp4', tokenOf(dave.stdout))).status).toBe(200)
			expect(JSON.parse((await admin('revoke-all', 'carol', '--json')).stdout)).toEqual({ revoked: 0 })
			await admin('revoke-all', 'dave')
		})

		test('revoke-file: only that file of that user', async () => {
			const a1 = await admin('issue', 'carol', 'a.mp4')
			await admin('issue', 'carol', 'a.mp4')
			const b = await admin('issue', 'carol', 'b.mp4')
			const daveA = await admin('issue', 'dave', 'a.mp4')
			const r = await admin('revoke-file', 'carol', 'a.mp4', '--json')
			expect(r.code).toBe(0)
			expect(r.stdout).toBe('{"revoked":2}\n')
			expect((await download('carol', 'a.mp4', tokenOf(a1.stdout))).status).toBe(401)
			expect((await download('carol', 'b.mp4', tokenOf(b.stdout))).status).toBe(200)
			expect((await download('dave', 'a.mp4', tokenOf(daveA.stdout))).status).toBe(200)
			expect(await admin('revoke-file', 'carol', 'b.mp4')).toEqual({
				code: 0,
				stdout: 'revoked 1 token\n',
				stderr: '',
			})
		})

		test('revoke-file with a non-ASCII filename', async () => {
			await admin('issue', 'alice', NON_ASCII)
			const r = await admin('revoke-file', 'alice', NON_ASCII)
			expect(r.code).toBe(0)
			expect(r.stdout).toMatch(/^revoked [1-9]\d* tokens?\n$/)
			expect((await admin('list', 'alice')).stdout).not.toContain(NON_ASCII)
		})
	})

	describe('failures', () => {
		test('a wrong API key → exit 3, message on stderr, the key never printed', async () => {
			const key = 'wrong-key-that-must-stay-secret-42'
			const plain = await cli(['list', 'alice', '--url', t.baseUrl, '--api-key', key])
			const json = await cli(['list', 'alice', '--url', t.baseUrl, '--api-key', key, '--json'])
			for (const r of [plain, json]) {
				expect(r.code).toBe(3)
				expect(r.stderr).toMatch(/^error: .+ \(unauthorized\)\n$/)
				expect(r.stdout + r.stderr).not.toContain(key)
			}
			expect(plain.stdout).toBe('')
			expect((JSON.parse(json.stdout) as { error: string }).error).toBe('unauthorized')
		})

		test('no API key at all → exit 3', async () => {
			const r = await cli(['issue', 'alice', 'a.mp4', '--url', t.baseUrl])
			expect(r.code).toBe(3)
			expect(r.stderr).toContain('(unauthorized)')
		})

		test('service unreachable (a closed port) → exit 5', async () => {
			const url = `http://127.0.0.1:${closedPort()}`
			const r = await cli(['list', 'alice', '--url', url, '--api-key', API_KEY])
			expect(r.code).toBe(5)
			expect(r.stdout).toBe('')
			expect(r.stderr).toStartWith(`error: cannot reach ${url}: `)
			expect(r.stderr).toEndWith('(unreachable)\n')
			expect(r.stderr).not.toContain(API_KEY)
		})

		test('no answer within --timeout → exit 5', async () => {
			const hung = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Promise<Response>(() => {}) })
			try {
				const r = await cli(['list', 'alice', '--url', `http://127.0.0.1:${hung.port}`, '--timeout', '0.3', '--json'])
				expect(r.code).toBe(5)
				expect(JSON.parse(r.stdout)).toMatchObject({ error: 'timeout' })
				expect(r.stderr).toContain('within 0.3 s (timeout)')
			} finally {
				hung.stop(true)
			}
		})

		test('answers that are not the service’s: an HTML 502, broken or off-schema JSON, a body that never ends', async () => {
			const proxy = Bun.serve({
				hostname: '127.0.0.1',
				port: 0,
				fetch(req) {
					const path = new URL(req.url).pathname
					if (path.startsWith('/html/'))
						return new Response('<html>Bad gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } })
					if (path.startsWith('/broken/'))
						return new Response('{"tokens": [', { headers: { 'content-type': 'application/json' } })
					if (path.startsWith('/off-schema/')) return Response.json({ items: [] })
					const stalled = new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode('{"tok')) })
					return new Response(stalled, { headers: { 'content-type': 'application/json' } })
				},
			})
			const at = (prefix: string) => `http://127.0.0.1:${proxy.port}/${prefix}`
			try {
				const html = await cli(['list', 'alice', '--url', at('html')])
				expect(html.code).toBe(5)
				expect(html.stderr).toBe('error: HTTP 502: <html>Bad gateway</html> (http_502)\n')
				const broken = await cli(['list', 'alice', '--url', at('broken')])
				expect(broken.code).toBe(1)
				expect(broken.stderr).toContain('(bad_response)')
				const offSchema = await cli(['list', 'alice', '--url', at('off-schema')])
				expect(offSchema.code).toBe(1)
				expect(offSchema.stderr).toBe(
					'error: expected JSON from /api/users/alice/tokens, got HTTP 200 (bad_response)\n',
				)
				const stalled = await cli(['list', 'alice', '--url', at('stalled'), '--timeout', '0.3'])
				expect(stalled.code).toBe(5)
				expect(stalled.stderr).toContain('within 0.3 s (timeout)')
			} finally {
				proxy.stop(true)
			}
		})

		test('rate limited (429) → exit 5 with the retry hint', async () => {
			const limited = await makeTestApp({
				env: { API_KEYS: API_KEY, ISSUE_AUTH: 'api-key', RATE_LIMIT_ISSUE: '1/min' },
			})
			try {
				await limited.putFile('erin', 'a.mp4', 'a')
				const args = ['issue', 'erin', 'a.mp4', '--url', limited.baseUrl, '--api-key', API_KEY]
				expect((await cli(args)).code).toBe(0)
				const r = await cli(args)
				expect(r.code).toBe(5)
				expect(r.stderr).toMatch(/^error: Too many requests; retry in \d+ s\. \(rate_limited\)\n$/)
			} finally {
				await limited.close()
			}
		})
	})

	describe('environment defaults', () => {
		test('DOWNLOAD_GATE_URL and DOWNLOAD_GATE_API_KEY are used when no option is given', async () => {
			const r = await cli(['issue', 'alice', 'a.mp4'], {
				DOWNLOAD_GATE_URL: `${t.baseUrl}/`,
				DOWNLOAD_GATE_API_KEY: API_KEY,
			})
			expect(r.code).toBe(0)
			expect(r.stdout).toContain(`download_url  ${t.baseUrl}/api/download/alice/a.mp4\n`)
			expect((await download('alice', 'a.mp4', tokenOf(r.stdout))).status).toBe(200)
		})

		test('options win over the environment', async () => {
			const env = {
				DOWNLOAD_GATE_URL: `http://127.0.0.1:${closedPort()}`,
				DOWNLOAD_GATE_API_KEY: 'wrong-key-0123456789',
			}
			expect((await cli(['list', 'alice'], env)).code).toBe(5)
			expect((await cli(['list', 'alice', '--url', t.baseUrl], env)).code).toBe(3)
			expect((await cli(['list', 'alice', '--url', t.baseUrl, '--api-key', API_KEY], env)).code).toBe(0)
		})
	})
})

describe('pure helpers', () => {
	test('parseCommandLine: defaults, environment, trailing slash, encoded request', () => {
		const inv = parseCommandLine(['issue', 'u', 'a b/é.mp4', '--ttl', '60'], {})
		expect(inv).toMatchObject({ baseUrl: 'http://localhost:3000', apiKey: undefined, json: false, timeoutMs: 10_000 })
		if (inv === 'help') throw new Error('unexpected help')
		expect(requestFor(inv)).toEqual({ method: 'GET', path: '/api/get-download-token/u/a%20b%2F%C3%A9.mp4?ttl=60' })
		const env = { DOWNLOAD_GATE_URL: 'https://gate.example/base/', DOWNLOAD_GATE_API_KEY: 'k' }
		expect(parseCommandLine(['list', 'u'], env)).toMatchObject({ baseUrl: 'https://gate.example/base', apiKey: 'k' })
		expect(parseCommandLine(['list', 'u', '--api-key', 'x', '--timeout', '0.5'], env)).toMatchObject({
			apiKey: 'x',
			timeoutMs: 500,
		})
		expect(() => parseCommandLine(['list', ''], {})).toThrow(UsageError)
	})

	test('requestFor: each command’s route through the typed client, every path segment encoded', () => {
		const request = (...argv: string[]) => {
			const inv = parseCommandLine(argv, {})
			if (inv === 'help') throw new Error('unexpected help')
			return requestFor(inv)
		}
		expect(request('issue', 'u', 'a.mp4', '--max-uses', '2', '--ttl', '60')).toEqual({
			method: 'GET',
			path: '/api/get-download-token/u/a.mp4?ttl=60&max_uses=2',
		})
		expect(request('list', 'u@x')).toEqual({ method: 'GET', path: '/api/users/u%40x/tokens' })
		expect(request('revoke', 'u', 'j1')).toEqual({ method: 'DELETE', path: '/api/users/u/tokens/j1' })
		expect(request('revoke-all', 'u')).toEqual({ method: 'DELETE', path: '/api/users/u/tokens' })
		expect(request('revoke-file', 'u', '#1 100%.mp4')).toEqual({
			method: 'DELETE',
			path: '/api/users/u/files/%231%20100%25.mp4/tokens',
		})
	})

	test('formatSize: exact bytes, with a readable size past 1 KiB', () => {
		expect([0, 1023, 1024, 73_400_320, 5 * 1024 ** 4, null].map(formatSize)).toEqual([
			'0 bytes',
			'1023 bytes',
			'1024 bytes (1.0 KiB)',
			'73400320 bytes (70.0 MiB)',
			'5497558138880 bytes (5.0 TiB)',
			'-',
		])
	})

	test('exitCodeFor maps statuses to the documented codes', () => {
		expect([400, 401, 403, 404, 409, 429, 500, 502, 503, 504].map(exitCodeFor)).toEqual([1, 3, 3, 4, 1, 5, 1, 5, 5, 5])
	})

	test('shellQuote: double quotes when safe, single quotes around $, `, ", \\ and !', () => {
		expect(shellQuote('http://h/api/download/1/a%20b.mp4')).toBe('"http://h/api/download/1/a%20b.mp4"')
		expect(shellQuote("http://h/it's!.mp4")).toBe(`'http://h/it'\\''s!.mp4'`)
		expect(shellQuote('$HOME')).toBe("'$HOME'")
	})

	test('formatTokens aligns by display width, so wide characters keep columns straight', () => {
		const out = formatTokens([
			{ jti: 'j1', filename: '🎬🎬.mp4', issued_at: 'i', expires_at: 'e', max_uses: null, bytes_left: null },
			{ jti: 'j2', filename: 'abcdefgh.mp4', issued_at: 'i', expires_at: 'e', max_uses: 2, bytes_left: 10 },
		]).split('\n')
		expect(out).toEqual([
			'JTI  FILENAME      ISSUED_AT  EXPIRES_AT  MAX_USES   BYTES_LEFT',
			'j1   🎬🎬.mp4      i          e           unlimited  -',
			'j2   abcdefgh.mp4  i          e           2          10',
		])
	})
})
