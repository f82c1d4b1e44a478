import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Socket } from 'bun'
import { bearer, randomBytesOf, serviceEnv, sha256 } from '../support/helpers'
import { pollUntil } from '../support/poll'
import { type ServerProcess, startServerProcess } from '../support/server-process'

// Slow-loris: many connections that dribble their headers one byte a second
// must not hold up anyone else. The service runs as deployed (its own
// process), so the slow sockets and the measured download share nothing but
// the server.

const SLOW_CONNECTIONS = 200

describe('slow-loris', () => {
	let storage: string
	let server: ServerProcess
	let video: Uint8Array<ArrayBuffer>
	const sockets: Socket<undefined>[] = []
	let dribble: ReturnType<typeof setInterval> | undefined
	let closed = 0

	beforeAll(async () => {
		storage = await mkdtemp(join(tmpdir(), 'dlg-loris-'))
		await mkdir(join(storage, '123'))
		video = randomBytesOf(1024 * 1024 + 7)
		await writeFile(join(storage, '123', 'a.mp4'), video)
		server = await startServerProcess(serviceEnv(storage))
	})
	afterAll(async () => {
		clearInterval(dribble)
		for (const socket of sockets) socket.terminate()
		await server.stop()
		await rm(storage, { recursive: true, force: true })
	})

	test(`${SLOW_CONNECTIONS} connections sending headers a byte a second do not delay a normal download (< 1 s)`, async () => {
		const { hostname, port } = new URL(server.url)
		const token = ((await (await fetch(`${server.url}/api/get-download-token/123/a.mp4`)).json()) as { token: string })
			.token

		const opened = await Promise.all(
			Array.from({ length: SLOW_CONNECTIONS }, () =>
				Bun.connect({
					hostname,
					port: Number(port),
					socket: {
						open(socket) {
							socket.write(`GET /api/download/123/a.mp4 HTTP/1.1\r\nHost: ${hostname}\r\nX-Slow: `)
						},
						data() {},
						close() {
							closed++
						},
					},
				}),
			),
		)
		sockets.push(...opened)
		dribble = setInterval(() => {
			for (const socket of sockets) socket.write('a')
		}, 1000)
		expect(sockets).toHaveLength(SLOW_CONNECTIONS)

		// Long enough for every slow connection to be parked mid-header, each having sent bytes since.
		await Bun.sleep(2500)

		const started = performance.now()
		const res = await fetch(`${server.url}/api/download/123/a.mp4`, {
			headers: bearer(token),
			signal: AbortSignal.timeout(5000),
		})
		const body = await res.arrayBuffer()
		const elapsed = performance.now() - started
		expect(res.status).toBe(200)
		expect(sha256(body)).toBe(sha256(video))
		expect(elapsed).toBeLessThan(1000)

		const issueStarted = performance.now()
		const issued = await fetch(`${server.url}/api/get-download-token/123/a.mp4`, { signal: AbortSignal.timeout(5000) })
		expect(issued.status).toBe(200)
		expect(performance.now() - issueStarted).toBeLessThan(1000)

		// Cleanup closes every slow connection, promptly.
		clearInterval(dribble)
		for (const socket of sockets) socket.end()
		expect(
			await pollUntil(
				() => closed,
				(n) => n >= SLOW_CONNECTIONS,
				3000,
			),
		).toBe(SLOW_CONNECTIONS)
	}, 20_000)
})
