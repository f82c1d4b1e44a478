import { afterAll, beforeAll, expect, test } from 'bun:test'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tracked } from '../support/child-processes'
import { REPO_ROOT } from '../support/helpers'
import { pollUntil } from '../support/poll'
import { freePort } from '../support/redis-server'

// A person running `bun run start` at a terminal reads lines, not JSON; every
// other destination (a pipe, a file, a log collector) keeps getting JSON lines.
// `script` (util-linux, in every Debian) gives the service a real pseudo-terminal.

let storage: string
beforeAll(async () => {
	storage = await mkdtemp(join(tmpdir(), 'dlg-tty-'))
})
afterAll(() => rm(storage, { recursive: true, force: true }))

/** Runs the service under a pseudo-terminal with `env`, asks /health once, and returns what it printed. */
async function runAtTerminal(env: Record<string, string>): Promise<string> {
	const port = freePort()
	const child = tracked(
		Bun.spawn(['script', '-qec', `${process.execPath} src/index.ts`, '/dev/null'], {
			cwd: REPO_ROOT,
			env: {
				PATH: process.env.PATH ?? '',
				HOME: process.env.HOME ?? '/tmp',
				TERM: 'xterm',
				NO_COLOR: '1',
				PORT: String(port),
				HOST: '127.0.0.1',
				STORAGE_DIR: storage,
				...env,
			},
			stdin: 'pipe',
			stdout: 'pipe',
			stderr: 'pipe',
		}),
	)
	let out = ''
	void (async () => {
		for await (const chunk of child.stdout) out += new TextDecoder().decode(chunk)
	})()
	const healthy = await pollUntil(
		() =>
			fetch(`http://127.0.0.1:${port}/health`, { headers: { 'X-Request-Id': 'tty-1' } }).then(
				(r) => r.ok,
				() => false,
			),
		(ok) => ok,
		10_000,
	)
	expect(healthy).toBe(true)
	await pollUntil(
		() => out.includes('tty-1'),
		(seen) => seen,
		3000,
	)
	child.kill('SIGTERM')
	await child.exited
	return out
}

test('at a terminal in development, log lines are for people, and an access line is one line', async () => {
	const out = await runAtTerminal({ JWT_SECRET: 'j'.repeat(40) })
	const lines = out.split(/\r?\n/).filter((l) => l.trim() !== '')
	expect(lines.some((l) => l.trimStart().startsWith('{'))).toBe(false)
	expect(lines.some((l) => /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO.*: listening /.test(l))).toBe(true)
	const access = lines.filter((l) => l.includes('"request_id":"tty-1"'))
	expect(access).toHaveLength(1)
	expect(access[0]).toMatch(/INFO.*: request \{.*"route":"\/health".*"status":200/)
})

test('at a terminal in production, log lines stay JSON', async () => {
	const out = await runAtTerminal({
		NODE_ENV: 'production',
		JWT_SECRET: 'j'.repeat(40),
		REDIS_URL: process.env.TEST_REDIS_URL ?? '',
		REDIS_KEY_PREFIX: `tty${crypto.randomUUID().slice(0, 6)}:`,
		API_KEYS: 'k'.repeat(32),
	})
	const lines = out.split(/\r?\n/).filter((l) => l.trim() !== '')
	expect(lines.length).toBeGreaterThan(0)
	for (const line of lines) expect(() => JSON.parse(line)).not.toThrow()
	expect(lines.some((l) => l.includes('"request_id":"tty-1"'))).toBe(true)
})
