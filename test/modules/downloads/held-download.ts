import { connect, type Socket } from 'node:net'
import { waitFor } from '../../support/poll'

// A download on a raw socket that the test holds in its hand: it can keep the
// body in flight (the socket stops reading, so the kernel buffers fill and the
// server's stream waits), read it slowly, read it all, or go away mid-body.
// fetch cannot say "stop reading" to the server, and buffers ahead.

/** One download request whose response head has arrived; its body is the test's to drive. */
export interface HeldDownload {
	readonly status: number
	/** A response header (name in any case), or null. */
	header(name: string): string | null
	/** Body bytes received so far (chunk framing included when the body is chunked). */
	readonly received: number
	/** The connection closed (the response ended, or either side went away). */
	readonly ended: boolean
	/** Stops reading: the body stays in flight once the socket buffers are full. */
	hold(): void
	/** Reads about `bytesPerSecond` on average from now on (in bursts: the runtime hands over up to 512 KiB at once). */
	sip(bytesPerSecond: number): void
	/** Reads everything as it comes until the server ends the response; resolves with the body bytes received. */
	finish(timeoutMs?: number): Promise<number>
	/**
	 * Reads until at least `bytes` of the body arrived, then stops reading (as `hold`): what a
	 * client "cut after its first bytes" has read stays near `bytes`, not whatever the socket
	 * delivered before the test looked (a poll apart, on loopback, can be most of a 64 MiB body).
	 */
	readAtLeast(bytes: number, timeoutMs?: number): Promise<void>
	/** The client goes away mid-body (the connection is reset). */
	abort(): void
}

/**
 * Sends `GET` (or `HEAD`) `path` to `baseUrl` with `headers` and
 * `Connection: close` on a fresh connection, and resolves once the response
 * head arrived, the body reading (call `hold` to stop). Rejects when the
 * connection fails or no head arrives within `timeoutMs`.
 */
export function openDownload(
	baseUrl: string,
	path: string,
	headers: Record<string, string>,
	options: { method?: 'GET' | 'HEAD'; timeoutMs?: number } = {},
): Promise<HeldDownload> {
	const url = new URL(baseUrl)
	const socket: Socket = connect(Number(url.port), url.hostname)
	const lines = [
		`${options.method ?? 'GET'} ${path} HTTP/1.1`,
		`Host: ${url.host}`,
		'Connection: close',
		...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
	]
	socket.write(`${lines.join('\r\n')}\r\n\r\n`)
	let head: Buffer = Buffer.alloc(0)
	let received = 0
	let ended = false
	let sipper: ReturnType<typeof setInterval> | undefined
	// Bytes the test lets the socket read before it stops again; a burst past it is paid back later.
	let credit = Number.POSITIVE_INFINITY
	socket.on('close', () => {
		ended = true
		clearInterval(sipper)
	})
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => {
			socket.destroy()
			reject(new Error(`no response head from ${path} within ${options.timeoutMs ?? 5000} ms`))
		}, options.timeoutMs ?? 5000)
		socket.on('error', (err) => {
			clearTimeout(timer)
			reject(err)
		})
		let parsed: { status: number; headers: Map<string, string> } | null = null
		socket.on('data', (chunk: Buffer) => {
			if (parsed !== null) {
				received += chunk.byteLength
				credit -= chunk.byteLength
				if (credit <= 0) socket.pause()
				return
			}
			head = Buffer.concat([head, chunk])
			const end = head.indexOf('\r\n\r\n')
			if (end < 0) return
			const [statusLine = '', ...rest] = head.subarray(0, end).toString('latin1').split('\r\n')
			const fields = new Map<string, string>()
			for (const line of rest) {
				const colon = line.indexOf(':')
				fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
			}
			parsed = { status: Number(statusLine.split(' ')[1]), headers: fields }
			received = head.byteLength - end - 4
			clearTimeout(timer)
			const { status, headers: found } = parsed
			const download: HeldDownload = {
				status,
				header: (name) => found.get(name.toLowerCase()) ?? null,
				get received() {
					return received
				},
				get ended() {
					return ended
				},
				hold() {
					clearInterval(sipper)
					credit = 0
					socket.pause()
				},
				sip(bytesPerSecond) {
					clearInterval(sipper)
					credit = Math.min(credit, 0)
					sipper = setInterval(() => {
						credit += bytesPerSecond / 10
						if (credit > 0) socket.resume()
					}, 100)
				},
				async finish(timeoutMs = 30_000) {
					clearInterval(sipper)
					credit = Number.POSITIVE_INFINITY
					socket.resume()
					await waitFor(`the end of ${path}`, timeoutMs, async () => (ended ? true : `${received} bytes so far`))
					return received
				},
				async readAtLeast(bytes, timeoutMs = 10_000) {
					clearInterval(sipper)
					// The data handler pauses the socket once the credit is spent.
					credit = bytes - received
					if (credit > 0) socket.resume()
					await waitFor(`${bytes} bytes of ${path}`, timeoutMs, async () =>
						received >= bytes ? true : `${received} bytes so far`,
					)
				},
				abort() {
					clearInterval(sipper)
					socket.resetAndDestroy()
				},
			}
			resolve(download)
		})
	})
}
