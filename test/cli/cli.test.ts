import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { parseCommandLine, USAGE, UsageError } from '../../src/cli/args'
import { API_KEY, bearer, downloadPath, makeTestApp, REPO_ROOT, type TestApp } from '../support/helpers'
import { pollUntil } from '../support/poll'

// The CLI is tested as a user runs it: its package.json entry as a child process, against a real
// service (or, to see the exact bytes it sends and how it reads answers, a stand-in on a real port).

const ROOT = REPO_ROOT
const packageJson = (await Bun.file(`${REPO_ROOT}/package.json`).json()) as {
	bin: Record<string, string>
	scripts: Record<string, string>
}
const ENTRY = packageJson.bin['download-gate'] ?? ''
const NON_ASCII = 'vidéo d’été 🎬.mp4'
const SHELL_HOSTILE = "it's!.mp4"

interface Outcome {
	code: number
	stdout: string
	stderr: string
}

/** Runs `command` in the repository with only the environment given (no inherited DOWNLOAD_GATE_*). */
async function spawn(command: string[], env: Record<string, string> = {}): Promise<Outcome> {
	const proc = Bun.spawn(command, {
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

/** Runs the CLI's entry (the `download-gate` bin) with `args`. */
const cli = (args: string[], env: Record<string, string> = {}) => spawn([process.execPath, ENTRY, ...args], env)

/** A port nothing listens on: bound by us, then released. */
function closedPort(): number {
	const server = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
	const { port } = server
	server.stop(true)
	return port
}

/** One request as the stand-in received it: method, path and query exactly as sent, and the API key header. */
interface Seen {
	readonly method: string
	readonly target: string
	readonly apiKey: string | null
}

/** A stand-in for the service on a real port: answers with `reply` (set by each test) and records what it was sent. */
interface StandIn {
	readonly url: string
	readonly seen: Seen[]
	reply: (req: Request) => Response | Promise<Response>
	stop(): void
}

function startStandIn(): StandIn {
	const seen: Seen[] = []
	const standIn: StandIn = {
		url: '',
		seen,
		reply: () => new Response('no reply scripted', { status: 500 }),
		stop: () => server.stop(true),
	}
	const server = Bun.serve({
		hostname: '127.0.0.1',
		port: 0,
		fetch(req) {
			const target = req.url.slice(new URL(req.url).origin.length)
			seen.push({ method: req.method, target, apiKey: req.headers.get('x-api-key') })
			return standIn.reply(req)
		},
	})
	return Object.assign(standIn, { url: `http://127.0.0.1:${server.port}` })
}

/** A token answer as the service sends it (docs/contract.md §3.1), with `fields` replacing or removing its own. */
function issuedBody(fields: Record<string, unknown> = {}): Record<string, unknown> {
	return {
		token: 'aaa.bbb.ccc',
		expires_in: 900,
		download_url: 'http://h/api/download/1/a%20b.mp4',
		jti: 'j1',
		expires_at: '2030-01-01T00:00:00Z',
		max_uses: null,
		size: 8,
		...fields,
	}
}

/** The words a POSIX shell passes to `curl` when `line` is pasted into it. */
async function curlWords(line: string): Promise<string[]> {
	const r = await spawn(['sh', '-c', `curl() { printf '%s\\n' "$@"; }\n${line}`])
	expect(r).toMatchObject({ code: 0, stderr: '' })
	return r.stdout.trimEnd().split('\n')
}

const curlLineOf = (stdout: string) => stdout.trimEnd().split('\n').at(-1) ?? ''

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
		await t.putFile('alice', '-dash.mp4', 'dash')
		await t.putFile('alice', SHELL_HOSTILE, 'quoted')
	})
	afterAll(() => t.close())

	describe('usage', () => {
		test('--help and help print the usage with the exit codes on stdout, exit 0', async () => {
			for (const args of [['--help'], ['help'], ['list', 'alice', '-h']]) {
				const r = await cli(args)
				expect(r).toEqual({ code: 0, stdout: USAGE, stderr: '' })
				expect(r.stdout).toStartWith('Usage: download-gate <command>')
				expect(r.stdout).toContain('Exit codes:')
				expect(r.stdout).toContain('5  unavailable or rate limited')
			}
		})

		test('the bin is src/cli/index.ts, and `bun run cli` runs it', async () => {
			expect(ENTRY).toBe('src/cli/index.ts')
			expect(packageJson.scripts.cli).toBe(`bun ${ENTRY}`)
			const r = await spawn([process.execPath, 'run', 'cli', 'help'])
			expect(r.code).toBe(0)
			expect(r.stdout).toBe(USAGE)
		})

		test('no arguments: the usage on stdout, exit 2', async () => {
			expect(await cli([])).toEqual({ code: 2, stdout: USAGE, stderr: '' })
		})

		test.each([
			[['frobnicate', 'alice'], 'unknown command "frobnicate"'],
			[['list', 'alice', '--verbose'], "Unknown option '--verbose'"],
			[
				['revoke', 'alice', '-j1'],
				"Unknown option 'j'. To specify a positional argument starting with a '-', place it at the end of the command after '--'",
			],
			[['issue', 'alice'], 'issue takes <user_id> <filename>'],
			[['revoke', 'alice', 'x', 'y'], 'revoke takes <user_id> <jti>'],
			[['list', ''], 'list takes <user_id>'],
			[['issue', 'alice', '..'], 'an argument must not be . or ..'],
			[['issue', 'alice', '.'], 'an argument must not be . or ..'],
			[['list', '..'], 'an argument must not be . or ..'],
			[['revoke', '.', 'j1'], 'an argument must not be . or ..'],
			[['revoke-file', 'alice', '--', '..'], 'an argument must not be . or ..'],
			[['list', 'alice', '--ttl', '60'], '--ttl and --max-uses only apply to issue'],
			[['revoke-all', 'alice', '--max-uses', '2'], '--ttl and --max-uses only apply to issue'],
			[['list', 'alice', '--url', 'ftp://example.com'], '--url must be an http(s) URL'],
			[['list', 'alice', '--timeout', 'soon'], '--timeout must be a number of seconds > 0'],
			[['list', 'alice', '--timeout', '0'], '--timeout must be a number of seconds > 0'],
			[['issue', 'alice', 'a.mp4', '--limit', '5'], '--limit, --cursor and --all only apply to list'],
			[['revoke-all', 'alice', '--all'], '--limit, --cursor and --all only apply to list'],
			[['revoke', 'alice', 'j1', '--cursor', 'c'], '--limit, --cursor and --all only apply to list'],
			[['list', 'alice', '--limit', '0'], '--limit must be a whole number ≥ 1, got "0"'],
			[['list', 'alice', '--limit', 'ten'], '--limit must be a whole number ≥ 1, got "ten"'],
			[['list', 'alice', '--cursor', ''], '--cursor must be a next_cursor, got ""'],
		])('%p → exit 2, says why on stderr', async (args, why) => {
			const r = await cli(args)
			expect(r.code).toBe(2)
			expect(r.stdout).toBe('')
			expect(r.stderr).toStartWith(`error: ${why}`)
			expect(r.stderr).toEndWith('\nRun "download-gate --help" for usage.\n')
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

		test('after --, a filename may start with -', async () => {
			const r = await admin('issue', 'alice', '--', '-dash.mp4')
			expect(r.code).toBe(0)
			expect(r.stdout).toContain(`download_url  ${t.baseUrl}/api/download/alice/-dash.mp4\n`)
			expect(await (await download('alice', '-dash.mp4', tokenOf(r.stdout))).text()).toBe('dash')
		})

		test('the curl line, pasted into a shell, sends the token and the URL a file with quote and ! needs', async () => {
			const r = await admin('issue', 'alice', SHELL_HOSTILE)
			expect(r.code).toBe(0)
			const url = `${t.baseUrl}/api/download/alice/${SHELL_HOSTILE}`
			expect(curlLineOf(r.stdout)).toEndWith(` -OJL '${url.replace("'", `'\\''`)}'`)
			const [h, header, ojl, pastedUrl] = await curlWords(curlLineOf(r.stdout))
			expect([h, header, ojl, pastedUrl]).toEqual(['-H', `Authorization: Bearer ${tokenOf(r.stdout)}`, '-OJL', url])
			const res = await fetch(pastedUrl ?? '', {
				headers: { authorization: header?.slice('Authorization: '.length) ?? '' },
			})
			expect(res.status).toBe(200)
			expect(await res.text()).toBe('quoted')
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
			expect(r.stdout).toBe('{"error":"file_not_found","message":"No such file for this user."}\n')
			expect(r.stderr).toBe('error: No such file for this user. (file_not_found)\n')
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
			expect(await admin('list', 'nobody', '--json')).toEqual({
				code: 0,
				stdout: '{"tokens":[],"next_cursor":null}\n',
				stderr: '',
			})
			expect(await admin('list', 'nobody', '--all')).toEqual({ code: 0, stdout: 'no live tokens\n', stderr: '' })
			expect(await admin('list', 'nobody', '--all', '--json')).toEqual({ code: 0, stdout: '', stderr: '' })
		})

		describe('paged', () => {
			/** erin's five tokens, newest first (issued a second apart on the service's clock). */
			const newest: string[] = []
			const rowJtis = (table: string) =>
				table
					.trimEnd()
					.split('\n')
					.slice(1)
					.map((line) => line.split(' ')[0] ?? '')
			beforeAll(async () => {
				await t.putFile('erin', 'a.mp4', 'eeee')
				for (let i = 0; i < 5; i++) {
					newest.unshift((JSON.parse((await admin('issue', 'erin', 'a.mp4', '--json')).stdout) as { jti: string }).jti)
					t.clock.advance(1000)
				}
			})

			test('--limit: one page, and how to ask for the next; --cursor gets it, until the last', async () => {
				const seen: string[] = []
				let cursor: string | null = null
				for (let pages = 0; pages < 3; pages++) {
					const r = await admin('list', 'erin', '--limit', '2', ...(cursor === null ? [] : ['--cursor', cursor]))
					expect(r.code).toBe(0)
					expect(r.stderr).toBe('')
					const [table = '', more] = r.stdout.split('\n\n')
					expect(table).toMatch(/^JTI {2,}FILENAME {2,}ISSUED_AT/)
					seen.push(...rowJtis(table))
					cursor =
						/^more: add --cursor (\S+) for the next page, or --all for every page\n$/.exec(more ?? '')?.[1] ?? null
					expect(cursor === null).toBe(pages === 2)
				}
				expect(seen).toEqual(newest)
			})

			test('--limit with --json: the page as the service sent it, next_cursor included', async () => {
				const first = await admin('list', 'erin', '--limit', '3', '--json')
				const page = JSON.parse(first.stdout) as { tokens: { jti: string }[]; next_cursor: string }
				expect(page.tokens.map((x) => x.jti)).toEqual(newest.slice(0, 3))
				const rest = await admin('list', 'erin', '--limit', '3', '--json', '--cursor', page.next_cursor)
				expect(JSON.parse(rest.stdout)).toMatchObject({ next_cursor: null })
				expect((JSON.parse(rest.stdout) as typeof page).tokens.map((x) => x.jti)).toEqual(newest.slice(3))
			})

			test('--all: every page, each as its own table, then the count', async () => {
				const r = await admin('list', 'erin', '--all', '--limit', '2')
				expect(r.code).toBe(0)
				expect(r.stderr).toBe('')
				const blocks = r.stdout.split('\n\n')
				expect(blocks.at(-1)).toBe('5 live tokens\n')
				expect(blocks.slice(0, -1).map(rowJtis)).toEqual([newest.slice(0, 2), newest.slice(2, 4), newest.slice(4)])
			})

			test('--all --json: one JSON line per token, newest first; from a --cursor, the rest', async () => {
				const r = await admin('list', 'erin', '--all', '--json', '--limit', '2')
				expect(r.code).toBe(0)
				const lines = r.stdout.trimEnd().split('\n')
				const tokens = lines.map((line) => JSON.parse(line) as { jti: string; filename: string })
				expect(tokens.map((x) => x.jti)).toEqual(newest)
				expect(tokens.every((x) => x.filename === 'a.mp4')).toBe(true)
				const first = JSON.parse((await admin('list', 'erin', '--limit', '2', '--json')).stdout) as {
					next_cursor: string
				}
				const rest = await admin('list', 'erin', '--all', '--json', '--cursor', first.next_cursor)
				expect(
					rest.stdout
						.trimEnd()
						.split('\n')
						.map((line) => (JSON.parse(line) as { jti: string }).jti),
				).toEqual(newest.slice(2))
			})

			test.each([
				[['--limit', '1001'], 'limit must be a whole number from 1 to 1000'],
				[['--cursor', 'not-a-cursor'], 'cursor must be a next_cursor this listing gave out'],
			])('%p → exit 1, the service’s invalid_request', async (extra, message) => {
				expect(await admin('list', 'erin', ...extra)).toEqual({
					code: 1,
					stdout: '',
					stderr: `error: ${message} (invalid_request)\n`,
				})
			})

			test('another user’s cursor → exit 1, start over', async () => {
				const { next_cursor } = JSON.parse((await admin('list', 'erin', '--limit', '1', '--json')).stdout) as {
					next_cursor: string
				}
				const r = await admin('list', 'alice', '--all', '--cursor', next_cursor)
				expect(r).toEqual({
					code: 1,
					stdout: '',
					stderr:
						'error: cursor is not one this listing gave out for this user; start from the first page (invalid_request)\n',
				})
			})
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
			expect(await admin('revoke-all', 'carol', '--json')).toEqual({ code: 0, stdout: '{"revoked":0}\n', stderr: '' })
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
				const url = `http://127.0.0.1:${hung.port}`
				const r = await cli(['list', 'alice', '--url', url, '--timeout', '0.3', '--json'])
				expect(r.code).toBe(5)
				expect(JSON.parse(r.stdout)).toEqual({ error: 'timeout', message: `no answer from ${url} within 0.3 s` })
				expect(r.stderr).toBe(`error: no answer from ${url} within 0.3 s (timeout)\n`)
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
						return new Response('<html>Bad gateway</html>\n', { status: 502, headers: { 'content-type': 'text/html' } })
					if (path.startsWith('/broken-error/'))
						return new Response('{"err', { status: 502, headers: { 'content-type': 'application/json' } })
					if (path.startsWith('/broken/'))
						return new Response('{"tokens": [', { headers: { 'content-type': 'application/json' } })
					if (path.startsWith('/off-schema/')) return Response.json({ items: [] })
					if (path.startsWith('/not-ours/')) return Response.json({ detail: 'nope' }, { status: 500 })
					const stalled = new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode('{"tok')) })
					return new Response(stalled, { headers: { 'content-type': 'application/json' } })
				},
			})
			const at = (prefix: string) => `http://127.0.0.1:${proxy.port}/${prefix}`
			try {
				expect(await cli(['list', 'alice', '--url', at('html')])).toEqual({
					code: 5,
					stdout: '',
					stderr: 'error: HTTP 502: <html>Bad gateway</html> (unexpected_response)\n',
				})
				expect(await cli(['list', 'alice', '--url', at('broken-error')])).toEqual({
					code: 5,
					stdout: '',
					stderr: 'error: HTTP 502 (unexpected_response)\n',
				})
				expect(await cli(['list', 'alice', '--url', at('not-ours'), '--json'])).toEqual({
					code: 1,
					stdout: '{"error":"unexpected_response","message":"HTTP 500: {\\"detail\\":\\"nope\\"}"}\n',
					stderr: 'error: HTTP 500: {"detail":"nope"} (unexpected_response)\n',
				})
				expect(await cli(['list', 'alice', '--url', at('broken')])).toEqual({
					code: 1,
					stdout: '',
					stderr: 'error: expected JSON from /api/users/alice/tokens, got HTTP 200 (bad_response)\n',
				})
				expect(await cli(['list', 'alice', '--url', at('off-schema')])).toEqual({
					code: 1,
					stdout: '',
					stderr: 'error: expected JSON from /api/users/alice/tokens, got HTTP 200 (bad_response)\n',
				})
				const stalled = await cli(['list', 'alice', '--url', at('stalled'), '--timeout', '0.3'])
				expect(stalled.code).toBe(5)
				expect(stalled.stderr).toBe(`error: no answer from ${at('stalled')} within 0.3 s (timeout)\n`)
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

describe('download-gate CLI against a stand-in service', () => {
	let stand: StandIn
	beforeAll(() => {
		stand = startStandIn()
	})
	afterAll(() => stand.stop())

	/** Runs the CLI against the stand-in, which answers with `reply`; returns what it printed and the requests it made. */
	async function against(
		reply: (req: Request) => Response | Promise<Response>,
		...args: string[]
	): Promise<Outcome & { sent: Seen[] }> {
		stand.reply = reply
		stand.seen.length = 0
		const r = await cli(['--url', stand.url, '--api-key', 'k', ...args])
		return { ...r, sent: [...stand.seen] }
	}

	describe('requests', () => {
		const ok = (req: Request) => {
			const { pathname } = new URL(req.url)
			if (req.method === 'GET' && pathname.startsWith('/api/get-download-token/')) return Response.json(issuedBody())
			if (req.method === 'GET') return Response.json({ tokens: [] })
			if (pathname.split('/').length === 6) return new Response(null, { status: 204 }) // one jti
			return Response.json({ revoked: 0 })
		}

		test.each([
			[['issue', 'u', 'a b/é.mp4', '--ttl', '60'], 'GET', '/api/get-download-token/u/a%20b%2F%C3%A9.mp4?ttl=60'],
			[
				['issue', 'u', 'a.mp4', '--max-uses', '2', '--ttl', '60'],
				'GET',
				'/api/get-download-token/u/a.mp4?ttl=60&max_uses=2',
			],
			[['issue', 'u', 'a.mp4'], 'GET', '/api/get-download-token/u/a.mp4'],
			[['list', 'u@x'], 'GET', '/api/users/u%40x/tokens'],
			[['list', 'u', '--limit', '5', '--cursor', 'c-1'], 'GET', '/api/users/u/tokens?limit=5&cursor=c-1'],
			[['revoke', 'u', 'j1'], 'DELETE', '/api/users/u/tokens/j1'],
			[['revoke', 'u', '--', '-j1'], 'DELETE', '/api/users/u/tokens/-j1'],
			[['revoke-all', 'u'], 'DELETE', '/api/users/u/tokens'],
			[['revoke-file', 'u', '#1 100%.mp4'], 'DELETE', '/api/users/u/files/%231%20100%25.mp4/tokens'],
		])('%p → one %s %s with the API key, every path segment encoded', async (args, method, target) => {
			const r = await against(ok, ...args)
			expect(r.stderr).toBe('')
			expect(r.code).toBe(0)
			expect(r.sent).toEqual([{ method, target, apiKey: 'k' }])
		})

		test('a base URL with a path (and trailing slashes) is prefixed to every route; no key, no X-API-Key', async () => {
			stand.reply = ok
			stand.seen.length = 0
			const r = await cli(['list', 'u', '--url', `${stand.url}/base//`])
			expect(r).toEqual({ code: 0, stdout: 'no live tokens\n', stderr: '' })
			expect(stand.seen).toEqual([{ method: 'GET', target: '/base/api/users/u/tokens', apiKey: null }])
		})
	})

	describe('list --all', () => {
		const token = (jti: string) => ({
			jti,
			filename: 'a.mp4',
			issued_at: 'i',
			expires_at: 'e',
			max_uses: null,
			bytes_left: null,
			not_before: null,
			ip: null,
			rate: null,
		})
		const cursorOf = (req: Request) => new URL(req.url).searchParams.get('cursor')
		/** Three pages of one token each: j1 (then c1), j2 (then c2), j3 (the last). */
		const paged = (req: Request) => {
			const cursor = cursorOf(req)
			if (cursor === null) return Response.json({ tokens: [token('j1')], next_cursor: 'c1' })
			if (cursor === 'c1') return Response.json({ tokens: [token('j2')], next_cursor: 'c2' })
			return Response.json({ tokens: [token('j3')], next_cursor: null })
		}
		const jtisOf = (stdout: string) =>
			stdout
				.trimEnd()
				.split('\n')
				.map((line) => (JSON.parse(line) as { jti: string }).jti)

		test('asks for each page with the next_cursor of the one before, and the same limit', async () => {
			const r = await against(paged, 'list', 'u', '--all', '--json', '--limit', '1')
			expect(r).toMatchObject({ code: 0, stderr: '' })
			expect(jtisOf(r.stdout)).toEqual(['j1', 'j2', 'j3'])
			expect(r.sent.map((x) => x.target)).toEqual([
				'/api/users/u/tokens?limit=1',
				'/api/users/u/tokens?limit=1&cursor=c1',
				'/api/users/u/tokens?limit=1&cursor=c2',
			])
		})

		test('prints each page as it arrives: the first is on stdout while the second is still held back', async () => {
			let release = () => {}
			const held = new Promise<void>((resolve) => {
				release = resolve
			})
			stand.seen.length = 0
			stand.reply = async (req) => {
				if (cursorOf(req) === 'c1') await held
				return paged(req)
			}
			const proc = Bun.spawn([process.execPath, ENTRY, '--url', stand.url, 'list', 'u', '--all', '--json'], {
				cwd: ROOT,
				env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
				stdout: 'pipe',
				stderr: 'pipe',
			})
			const reader = proc.stdout.getReader()
			const decoder = new TextDecoder()
			let out = ''
			/** Reads stdout until it holds `text`, or 5 s passed, or it ended. */
			const readUntil = async (text: string) => {
				const deadline = performance.now() + 5000
				while (!out.includes(text) && performance.now() < deadline) {
					const chunk = await Promise.race([reader.read(), Bun.sleep(deadline - performance.now()).then(() => null)])
					if (chunk === null || chunk.done) return
					out += decoder.decode(chunk.value, { stream: true })
				}
			}
			try {
				await readUntil('"j1"')
				// The second page is asked for once the first is printed; it is held, so nothing more can be.
				await pollUntil(
					() => stand.seen.length,
					(n) => n >= 2,
					5000,
					10,
				)
				expect(stand.seen.map((x) => x.target)).toEqual(['/api/users/u/tokens', '/api/users/u/tokens?cursor=c1'])
				expect(jtisOf(out)).toEqual(['j1'])
			} finally {
				release()
			}
			await readUntil('"j3"')
			expect(await proc.exited).toBe(0)
			expect(jtisOf(out)).toEqual(['j1', 'j2', 'j3'])
		})

		test('a page that fails after others: they stay printed, then the error and where to go on from', async () => {
			const failing = (req: Request) =>
				cursorOf(req) === 'c1'
					? Response.json(
							{ error: 'store_unavailable', message: 'The token store is unavailable; try again shortly.' },
							{ status: 503 },
						)
					: paged(req)
			const r = await against(failing, 'list', 'u', '--all')
			expect(r.code).toBe(5)
			expect(r.stdout).toStartWith('JTI ')
			expect(r.stdout).toContain('\nj1 ')
			expect(r.stdout).not.toContain('live token')
			expect(r.stderr).toBe(
				'error: The token store is unavailable; try again shortly. (store_unavailable)\nlisted 1 token before this; to go on: --cursor c1\n',
			)
		})

		test('--timeout bounds each page, not the whole listing', async () => {
			const slow = async (req: Request) => {
				await Bun.sleep(200)
				return paged(req)
			}
			// Three pages of 0.2 s each take longer than the 0.5 s any one may.
			const r = await against(slow, 'list', 'u', '--all', '--json', '--timeout', '0.5')
			expect(r).toMatchObject({ code: 0, stderr: '' })
			expect(jtisOf(r.stdout)).toEqual(['j1', 'j2', 'j3'])

			const stalled = async (req: Request) => {
				if (cursorOf(req) === 'c1') await Bun.sleep(1500)
				return paged(req)
			}
			const cut = await against(stalled, 'list', 'u', '--all', '--json', '--timeout', '0.3')
			expect(cut.code).toBe(5)
			expect(jtisOf(cut.stdout.split('\n')[0] ?? '')).toEqual(['j1'])
			expect(cut.stderr).toBe(
				`error: no answer from ${stand.url} within 0.3 s (timeout)\nlisted 1 token before this; to go on: --cursor c1\n`,
			)
		})

		test('a service from before paging (no next_cursor): its one answer is the whole listing', async () => {
			const r = await against(
				() => Response.json({ tokens: [token('j1'), token('j2')] }),
				'list',
				'u',
				'--all',
				'--json',
			)
			expect(r).toMatchObject({ code: 0, stderr: '' })
			expect(jtisOf(r.stdout)).toEqual(['j1', 'j2'])
			expect(r.sent).toHaveLength(1)
		})
	})

	describe('error statuses', () => {
		test.each([
			[400, 1],
			[401, 3],
			[403, 3],
			[404, 4],
			[409, 1],
			[429, 5],
			[500, 1],
			[502, 5],
			[503, 5],
			[504, 5],
		])('HTTP %d with the service’s error body → exit %d, its code and message', async (status, code) => {
			const reply = () => Response.json({ error: `code_${status}`, message: `Refused with ${status}.` }, { status })
			expect(await against(reply, 'list', 'u')).toMatchObject({
				code,
				stdout: '',
				stderr: `error: Refused with ${status}. (code_${status})\n`,
			})
		})
	})

	describe('output', () => {
		test.each([
			[0, '0 bytes'],
			[1023, '1023 bytes'],
			[1024, '1024 bytes (1.0 KiB)'],
			[73_400_320, '73400320 bytes (70.0 MiB)'],
			[5 * 1024 ** 4, '5497558138880 bytes (5.0 TiB)'],
			[null, '-'],
			[undefined, '-'], // a service from before `size` leaves it out
		])('issue: size %p reads "%s"', async (size, shown) => {
			const r = await against(() => Response.json(issuedBody({ size })), 'issue', 'u', 'a.mp4')
			expect(r.code).toBe(0)
			expect(r.stdout.split('\n')).toContain(`size          ${shown}`)
		})

		test('issue: the whole readable answer, fields aligned, then a blank line and the curl line', async () => {
			const r = await against(() => Response.json(issuedBody({ max_uses: 3 })), 'issue', 'u', 'a.mp4')
			expect(r).toMatchObject({
				code: 0,
				stderr: '',
				stdout: [
					'token         aaa.bbb.ccc',
					'download_url  http://h/api/download/1/a%20b.mp4',
					'size          8 bytes',
					'jti           j1',
					'expires_at    2030-01-01T00:00:00Z',
					'max_uses      3',
					'',
					'curl -H "Authorization: Bearer aaa.bbb.ccc" -OJL "http://h/api/download/1/a%20b.mp4"',
					'',
				].join('\n'),
			})
		})

		test.each([
			[
				'aaa.bbb.ccc',
				'http://h/api/download/1/a%20b.mp4',
				'"Authorization: Bearer aaa.bbb.ccc"',
				'"http://h/api/download/1/a%20b.mp4"',
			],
			['aaa.bbb.ccc', "http://h/it's!.mp4", '"Authorization: Bearer aaa.bbb.ccc"', `'http://h/it'\\''s!.mp4'`],
			['$HOME', 'http://h/`id`', "'Authorization: Bearer $HOME'", "'http://h/`id`'"],
			['a"b\\c', 'http://h/x', `'Authorization: Bearer a"b\\c'`, '"http://h/x"'],
		])(
			'issue: the curl line quotes token %p and URL %p so a shell passes them unchanged',
			async (token, url, header, quotedUrl) => {
				const r = await against(() => Response.json(issuedBody({ token, download_url: url })), 'issue', 'u', 'a.mp4')
				const line = curlLineOf(r.stdout)
				expect(line).toBe(`curl -H ${header} -OJL ${quotedUrl}`)
				expect(await curlWords(line)).toEqual(['-H', `Authorization: Bearer ${token}`, '-OJL', url])
			},
		)

		test('list: columns aligned by display width, so wide characters keep them straight', async () => {
			const tokens = [
				{ jti: 'j1', filename: '🎬🎬.mp4', issued_at: 'i', expires_at: 'e', max_uses: null, bytes_left: null },
				{ jti: 'j2', filename: 'abcdefgh.mp4', issued_at: 'i', expires_at: 'e', max_uses: 2, bytes_left: 10 },
				{ jti: 'j3', filename: '日本語.mp4', issued_at: 'i', expires_at: 'e', max_uses: 1, bytes_left: 0 },
			]
			expect(await against(() => Response.json({ tokens }), 'list', 'u')).toMatchObject({
				code: 0,
				stderr: '',
				stdout: [
					'JTI  FILENAME      ISSUED_AT  EXPIRES_AT  MAX_USES   BYTES_LEFT',
					'j1   🎬🎬.mp4      i          e           unlimited  -',
					'j2   abcdefgh.mp4  i          e           2          10',
					'j3   日本語.mp4    i          e           1          0',
					'',
				].join('\n'),
			})
		})

		test.each([
			['a JSON array', () => Response.json([])],
			['text', () => new Response('hello')],
			['a number', () => Response.json(5)],
		])('a 200 whose body is %s, not a JSON object → exit 1 bad_response, with --json too', async (_, reply) => {
			const message = 'expected JSON from /api/users/u/tokens, got HTTP 200'
			expect(await against(reply, 'revoke-all', 'u')).toMatchObject({
				code: 1,
				stdout: '',
				stderr: `error: ${message} (bad_response)\n`,
			})
			expect(await against(reply, 'revoke-all', 'u', '--json')).toMatchObject({
				code: 1,
				stdout: `${JSON.stringify({ error: 'bad_response', message })}\n`,
				stderr: `error: ${message} (bad_response)\n`,
			})
		})

		test('an off-schema body for a list (tokens not a list) → exit 1 bad_response, no crash', async () => {
			expect(await against(() => Response.json({ tokens: 5 }), 'list', 'u')).toMatchObject({
				code: 1,
				stdout: '',
				stderr: 'error: expected JSON from /api/users/u/tokens, got HTTP 200 (bad_response)\n',
			})
		})
	})
})

describe('parseCommandLine', () => {
	test('defaults, environment, trailing slash, options over environment', () => {
		expect(parseCommandLine(['issue', 'u', 'a b/é.mp4', '--ttl', '60'], {})).toEqual({
			command: 'issue',
			args: ['u', 'a b/é.mp4'],
			ttl: 60,
			maxUses: undefined,
			limit: undefined,
			cursor: undefined,
			all: false,
			baseUrl: 'http://localhost:3000',
			apiKey: undefined,
			json: false,
			timeoutMs: 10_000,
		})
		const env = { DOWNLOAD_GATE_URL: 'https://gate.example/base/', DOWNLOAD_GATE_API_KEY: 'k' }
		expect(parseCommandLine(['list', 'u'], env)).toMatchObject({ baseUrl: 'https://gate.example/base', apiKey: 'k' })
		expect(parseCommandLine(['list', 'u', '--api-key', 'x', '--timeout', '0.5'], env)).toMatchObject({
			apiKey: 'x',
			timeoutMs: 500,
		})
		expect(parseCommandLine(['list', 'u', '--api-key', ''], env)).toMatchObject({ apiKey: 'k' })
		expect(parseCommandLine(['list', 'u'], { DOWNLOAD_GATE_API_KEY: '' })).toMatchObject({ apiKey: undefined })
	})

	test('help wins; -- ends the options, so later arguments may start with -', () => {
		expect(parseCommandLine(['revoke', 'u', 'j', '--help'], {})).toBe('help')
		expect(parseCommandLine(['--json', 'revoke', '--', 'u', '-j'], {})).toMatchObject({
			command: 'revoke',
			args: ['u', '-j'],
			json: true,
		})
		expect(parseCommandLine(['list', '--', '--help'], {})).toMatchObject({ command: 'list', args: ['--help'] })
	})

	test.each([[['list', '']], [['list']], [[]], [['issue', 'u', '..']], [['list', 'u', '--json=yes']]])(
		'%p throws UsageError',
		(argv) => {
			expect(() => parseCommandLine(argv, {})).toThrow(UsageError)
		},
	)
})
