import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { REPO_ROOT, randomBytesOf, sha256, uniquePrefix } from '../support/helpers'
import { pollUntil } from '../support/poll'
import { type ServerProcess, startServerProcess } from '../support/server-process'

const MiB = 1024 * 1024
let storage: string
let data: Uint8Array<ArrayBuffer>

beforeAll(async () => {
	storage = await mkdtemp(join(tmpdir(), 'dlg-proc-'))
	await mkdir(join(storage, '123'))
	data = randomBytesOf(24 * MiB)
	await writeFile(join(storage, '123', 'v.mp4'), data)
})
afterAll(() => rm(storage, { recursive: true, force: true }))

/** Whether `pid` is a running process; a zombie (exited, not yet reaped) is not. */
function isRunning(pid: number): boolean {
	try {
		return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
	} catch {
		return false
	}
}

const env = (extra: Record<string, string>) => ({
	REDIS_URL: process.env.TEST_REDIS_URL ?? '',
	REDIS_KEY_PREFIX: uniquePrefix(),
	STORAGE_DIR: storage,
	ISSUE_AUTH: 'none',
	LOG_LEVEL: 'info',
	...extra,
})

/** The "listening" lines of a WORKERS=2 instance, once both workers wrote theirs (bounded wait). */
async function listening(server: ServerProcess): Promise<{ pid: number; worker: boolean }[]> {
	await pollUntil(
		() => (server.output().match(/"msg":"listening"/g) ?? []).length,
		(n) => n >= 2,
		2500,
	)
	return server
		.output()
		.split('\n')
		.filter((line) => line.includes('"msg":"listening"'))
		.map((line) => JSON.parse(line) as { pid: number; worker: boolean })
}

describe('WORKERS', () => {
	test('WORKERS=2 starts two processes on one port sharing a generated development secret', async () => {
		// No JWT_SECRET: each process would otherwise make its own and reject the other's tokens.
		const server = await startServerProcess(env({ WORKERS: '2' }))
		const pids = (await listening(server)).map((l) => l.pid)
		expect(new Set(pids).size).toBe(2)
		// Fresh connections land on either process; every token verifies on both.
		for (let i = 0; i < 20; i++) {
			const issued = await fetch(`${server.url}/api/get-download-token/123/v.mp4`, { headers: { Connection: 'close' } })
			const { token } = (await issued.json()) as { token: string }
			const res = await fetch(`${server.url}/api/download/123/v.mp4`, {
				headers: { Authorization: `Bearer ${token}`, Range: 'bytes=0-99', Connection: 'close' },
			})
			expect(res.status).toBe(206)
			await res.arrayBuffer()
		}
		expect(await server.stop()).toBe(0)
	})

	test('a supervisor killed outright (SIGKILL) takes its workers down within 2 s: no orphan keeps the port', async () => {
		const server = await startServerProcess(env({ WORKERS: '2' }))
		const workers = (await listening(server)).map((l) => l.pid)
		// The supervisor serves nothing itself: both listeners are workers.
		expect(workers).toHaveLength(2)
		expect(workers).not.toContain(server.pid)
		process.kill(server.pid, 'SIGKILL')
		const started = performance.now()
		const stillRunning = await pollUntil(
			() => workers.filter(isRunning),
			(running) => running.length === 0,
			5000,
		)
		// An orphan left by a failure here must not outlive the test.
		for (const pid of stillRunning) process.kill(pid, 'SIGKILL')
		expect(stillRunning).toEqual([])
		expect(performance.now() - started).toBeLessThan(2000)
		expect(
			await fetch(`${server.url}/health`).then(
				(r) => r.status,
				() => 'refused',
			),
		).toBe('refused')
	})

	test('WORKERS=2 with the in-memory store is refused at start-up', async () => {
		const proc = Bun.spawnSync(['bun', 'src/index.ts'], {
			cwd: REPO_ROOT,
			env: { PATH: process.env.PATH ?? '', WORKERS: '2' },
		})
		expect(proc.exitCode).toBe(1)
		expect(proc.stderr.toString().trim()).toStartWith('download-gate: configuration error: WORKERS:')
	})
})

test('SIGTERM: an in-flight download still finishes whole', async () => {
	const server = await startServerProcess(
		env({ NODE_ENV: 'production', JWT_SECRET: 'p'.repeat(40), SHUTDOWN_GRACE_S: '20' }),
	)
	const issued = (await (await fetch(`${server.url}/api/get-download-token/123/v.mp4`)).json()) as { token: string }
	const res = await fetch(`${server.url}/api/download/123/v.mp4`, {
		headers: { Authorization: `Bearer ${issued.token}` },
	})
	expect(res.status).toBe(200)
	const reader = (res.body as ReadableStream<Uint8Array>).getReader()
	const first = await reader.read()
	const stopped = server.stop()
	// A slow reader: the server must wait for it rather than cut it off.
	const hasher = new Bun.CryptoHasher('sha256')
	let bytes = first.value?.byteLength ?? 0
	if (first.value) hasher.update(first.value)
	for (;;) {
		await Bun.sleep(5)
		const { value, done } = await reader.read()
		if (done) break
		hasher.update(value)
		bytes += value.byteLength
	}
	expect(bytes).toBe(data.length)
	expect(hasher.digest('hex')).toBe(sha256(data))
	expect(await stopped).toBe(0)
})
