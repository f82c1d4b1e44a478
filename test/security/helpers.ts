import { expect } from 'bun:test'
import { createHmac } from 'node:crypto'
import { SignJWT } from 'jose'
import { keyIdFor } from '../../src/modules/tokens/download-token'
import { TEST_SECRET } from '../support/helpers'
import { patternByte } from './churn'

// Shared tools of the adversarial suite: a raw HTTP/1.1 client that sends
// bytes exactly as written and parses what comes back itself, token forgery,
// error-shape checks and bounded reads (open descriptors: ../support/descriptors,
// polling: ../support/poll).

export type ErrorBody = { error: string; message: string }

export const SECRET_KEY = new TextEncoder().encode(TEST_SECRET)
export const TEST_KID = keyIdFor(TEST_SECRET)

/** Every error body of docs/contract.md §3: JSON with exactly a string `error` and a non-empty string `message`. */
export function expectErrorShape(body: unknown): ErrorBody {
	expect(body).toEqual({ error: expect.any(String), message: expect.any(String) })
	const shaped = body as ErrorBody
	expect(shaped.message.length).toBeGreaterThan(0)
	return shaped
}

/** Asserts `value` is one of `allowed`, showing `context` when it is not. */
export function expectOneOf<T>(value: T, allowed: readonly T[], context: unknown = null): void {
	expect({ value, allowed: allowed.includes(value), context }).toEqual({ value, allowed: true, context })
}

/** Asserts a 4xx status, showing `context` when it is not. */
export function expectClientError(status: number, context: unknown = null): void {
	expect({ status, clientError: status >= 400 && status < 500, context }).toEqual({
		status,
		clientError: true,
		context,
	})
}

/** Asserts status, a JSON content type, the `{ error, message }` shape and the code; returns the body. */
export async function expectError(res: Response, status: number, code: string): Promise<ErrorBody> {
	const text = await res.text()
	expect({ status: res.status, body: text.slice(0, 300) }).toEqual({ status, body: expect.any(String) })
	expect(res.headers.get('content-type') ?? '').toContain('application/json')
	const body = expectErrorShape(JSON.parse(text))
	expect(body.error).toBe(code)
	return body
}

/** Seconds since the epoch on a test app's fake clock. */
export const nowS = (clock: { now: () => number }) => Math.floor(clock.now() / 1000)

// ---------------------------------------------------------------------------
// Raw HTTP

/** One response as parsed from the wire. */
export interface RawResponse {
	readonly httpVersion: string
	readonly status: number
	readonly reason: string
	/** Header lines in order, names lower-cased, values as sent (latin1). */
	readonly headers: readonly (readonly [string, string])[]
	/** The first value of a header, or null. */
	header(name: string): string | null
	/** Every value of a header. */
	all(name: string): string[]
	/** The body (de-chunked when chunked). */
	readonly body: Uint8Array
	/** Bytes of the body as they arrived on the wire (chunk framing included). */
	readonly wireBodyLength: number
	/** False when the connection ended before the framing said the body was complete. */
	readonly complete: boolean
	text(): string
	json(): unknown
}

/** What came back on one connection. */
export interface RawExchange {
	readonly responses: RawResponse[]
	/** Bytes received after the last complete response's framing (a body longer than announced lands here). */
	readonly trailing: number
	/** Everything received, as latin1 text (for `not.toContain` checks). */
	readonly raw: string
	readonly bytes: Uint8Array
	/** The peer closed (or reset) the connection. */
	readonly closed: boolean
	/** The overall deadline passed before close or quiet. */
	readonly timedOut: boolean
	readonly ms: number
}

const latin1 = new TextDecoder('latin1')
const utf8 = new TextDecoder()

function indexOfCrlfCrlf(buf: Uint8Array, from: number): number {
	for (let i = from; i + 3 < buf.length; i++)
		if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i
	return -1
}

function indexOfCrlf(buf: Uint8Array, from: number): number {
	for (let i = from; i + 1 < buf.length; i++) if (buf[i] === 13 && buf[i + 1] === 10) return i
	return -1
}

function makeResponse(head: string, body: Uint8Array, wireBodyLength: number, complete: boolean): RawResponse | null {
	const [statusLine = '', ...lines] = head.split('\r\n')
	const m = /^(HTTP\/\d(?:\.\d)?) (\d{3})(?: (.*))?$/.exec(statusLine)
	if (!m) return null
	const headers = lines.map((line) => {
		const colon = line.indexOf(':')
		return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as const
	})
	return {
		httpVersion: m[1] ?? '',
		status: Number(m[2]),
		reason: m[3] ?? '',
		headers,
		header: (name) => headers.find(([k]) => k === name.toLowerCase())?.[1] ?? null,
		all: (name) => headers.filter(([k]) => k === name.toLowerCase()).map(([, v]) => v),
		body,
		wireBodyLength,
		complete,
		text: () => utf8.decode(body),
		json: () => JSON.parse(utf8.decode(body)),
	}
}

/**
 * Splits a byte stream into responses. `bodiless(i)` says whether the i-th
 * response has no body whatever its headers (a HEAD request's answer).
 * `ended` says the connection closed, so a body without framing runs to the end.
 */
export function parseResponses(
	buf: Uint8Array,
	ended: boolean,
	bodiless: (i: number) => boolean,
): { responses: RawResponse[]; consumed: number } {
	const out: RawResponse[] = []
	let pos = 0
	while (pos < buf.length) {
		const headEnd = indexOfCrlfCrlf(buf, pos)
		if (headEnd < 0) break
		const head = latin1.decode(buf.subarray(pos, headEnd))
		const bodyStart = headEnd + 4
		const probe = makeResponse(head, new Uint8Array(), 0, true)
		if (!probe) break
		const status = probe.status
		const noBody = bodiless(out.length) || status < 200 || status === 204 || status === 304
		const te = (probe.header('transfer-encoding') ?? '').toLowerCase()
		const cl = probe.header('content-length')
		if (noBody) {
			out.push(makeResponse(head, new Uint8Array(), 0, true) as RawResponse)
			pos = bodyStart
			continue
		}
		if (te.includes('chunked')) {
			const parts: Uint8Array[] = []
			let p = bodyStart
			let done = false
			for (;;) {
				const lineEnd = indexOfCrlf(buf, p)
				if (lineEnd < 0) break
				const size = Number.parseInt(latin1.decode(buf.subarray(p, lineEnd)).split(';')[0] ?? '', 16)
				if (!Number.isFinite(size)) break
				const dataStart = lineEnd + 2
				if (size === 0) {
					// Trailers (none expected) end with an empty line.
					const trailerEnd = indexOfCrlf(buf, dataStart)
					if (trailerEnd < 0) break
					p = trailerEnd + 2
					done = true
					break
				}
				if (dataStart + size + 2 > buf.length) break
				parts.push(buf.subarray(dataStart, dataStart + size))
				p = dataStart + size + 2
			}
			const body = concatBytes(parts)
			if (!done && !ended) break
			out.push(makeResponse(head, body, (done ? p : buf.length) - bodyStart, done) as RawResponse)
			if (!done) return { responses: out, consumed: buf.length }
			pos = p
			continue
		}
		if (cl !== null) {
			const length = Number(cl)
			const available = buf.length - bodyStart
			if (available < length && !ended) break
			const body = buf.slice(bodyStart, bodyStart + Math.min(length, available))
			out.push(makeResponse(head, body, body.length, available >= length) as RawResponse)
			pos = bodyStart + Math.min(length, available)
			continue
		}
		// No framing: the body runs until the connection closes.
		if (!ended) break
		const body = buf.slice(bodyStart)
		out.push(makeResponse(head, body, body.length, true) as RawResponse)
		pos = buf.length
	}
	return { responses: out, consumed: pos }
}

export interface RawOptions {
	/** Hard deadline for the whole exchange (default 3000 ms, inside bun test's 5 s per test). */
	readonly timeoutMs?: number
	/** Stop once the line was quiet this long with at least `expect` complete responses (default 300 ms). */
	readonly quietMs?: number
	/** How many complete responses end the wait early (after `quietMs`); default 1. */
	readonly expect?: number
	/** Indexes of responses that answer HEAD requests (no body). */
	readonly headIndexes?: readonly number[]
	/** Written after the first chunk, each after `gapMs` (for slow senders). */
	readonly more?: readonly (string | Uint8Array)[]
	readonly gapMs?: number
}

/**
 * Sends `request` exactly as given (a string goes out as latin1, one byte per
 * character, so `\xff` is the byte 0xff) on a fresh TCP connection and collects what
 * comes back until the server closes, the expected responses arrived and the
 * line went quiet, or the deadline passed. Never rejects for a reset.
 */
export function sendRaw(baseUrl: string, request: string | Uint8Array, options: RawOptions = {}): Promise<RawExchange> {
	const { hostname, port } = new URL(baseUrl)
	const timeoutMs = options.timeoutMs ?? 3000
	const quietMs = options.quietMs ?? 300
	const want = options.expect ?? 1
	const heads = new Set(options.headIndexes ?? [])
	const started = performance.now()
	const chunks: Uint8Array[] = []
	let length = 0
	const gather = () => {
		const buf = new Uint8Array(length)
		let o = 0
		for (const c of chunks) {
			buf.set(c, o)
			o += c.length
		}
		return buf
	}
	return new Promise((resolve) => {
		let settled = false
		let quietTimer: ReturnType<typeof setTimeout> | undefined
		let sendTimer: ReturnType<typeof setTimeout> | undefined
		let sock: { end(): void } | null = null
		// Bun's socket.write may take only part of a large buffer; the rest waits for 'drain'.
		const pending: Uint8Array[] = []
		let write: (data: string | Uint8Array) => void = () => {}
		const flush = (socket: { write(data: Uint8Array): number }) => {
			while (pending.length > 0 && !settled) {
				const head = pending[0] as Uint8Array
				const n = socket.write(head)
				if (n < 0) return
				if (n < head.length) {
					pending[0] = head.subarray(n)
					return
				}
				pending.shift()
			}
		}
		const finish = (closed: boolean, timedOut: boolean) => {
			if (settled) return
			settled = true
			clearTimeout(deadline)
			clearTimeout(quietTimer)
			clearTimeout(sendTimer)
			try {
				sock?.end()
			} catch {}
			const bytes = gather()
			const parsed = parseResponses(bytes, true, (i) => heads.has(i))
			resolve({
				responses: parsed.responses,
				trailing: bytes.length - parsed.consumed,
				raw: latin1.decode(bytes),
				bytes,
				closed,
				timedOut,
				ms: performance.now() - started,
			})
		}
		const deadline = setTimeout(() => finish(false, true), timeoutMs)
		// Parsing only when the line goes quiet keeps large bodies linear.
		const onQuiet = () => {
			if (parseResponses(gather(), false, (i) => heads.has(i)).responses.length >= want) finish(false, false)
		}
		const checkQuiet = () => {
			clearTimeout(quietTimer)
			quietTimer = setTimeout(onQuiet, quietMs)
		}
		Bun.connect({
			hostname,
			port: Number(port),
			socket: {
				open(socket) {
					sock = socket
					write = (data) => {
						pending.push(typeof data === 'string' ? Buffer.from(data, 'latin1') : data)
						flush(socket)
					}
					write(request)
					const more = [...(options.more ?? [])]
					const next = () => {
						const piece = more.shift()
						if (piece === undefined || settled) return
						write(piece)
						sendTimer = setTimeout(next, options.gapMs ?? 0)
					}
					if (more.length > 0) sendTimer = setTimeout(next, options.gapMs ?? 0)
				},
				drain(socket) {
					flush(socket)
				},
				data(_socket, data) {
					chunks.push(new Uint8Array(data))
					length += data.length
					checkQuiet()
				},
				close() {
					finish(true, false)
				},
				end() {
					finish(true, false)
				},
				error() {
					finish(true, false)
				},
				connectError() {
					finish(true, false)
				},
			},
		}).catch(() => finish(true, false))
	})
}

/** The first response of an exchange; fails the test with what arrived when there is none. */
export function firstResponse(exchange: RawExchange): RawResponse {
	const res = exchange.responses[0]
	expect({ gotResponse: res !== undefined, raw: exchange.raw.slice(0, 200) }).toEqual({
		gotResponse: true,
		raw: expect.any(String),
	})
	return res as RawResponse
}

/** Asserts a raw response is the JSON error `code` with `status`. */
export function expectRawError(res: RawResponse, status: number, code: string): ErrorBody {
	expect({ status: res.status, body: res.text().slice(0, 300) }).toEqual({ status, body: expect.any(String) })
	expect(res.header('content-type') ?? '').toContain('application/json')
	const body = expectErrorShape(res.json())
	expect(body.error).toBe(code)
	return body
}

/** `text` parsed as JSON, or null when it is not JSON (a refusal must not throw inside the assertion that reports it). */
function parseJsonOrNull(text: string): unknown {
	try {
		return JSON.parse(text) as unknown
	} catch {
		return null
	}
}

/** True when `body` is exactly `{ error: string, message: non-empty string }`. */
export function isErrorShape(body: unknown): body is ErrorBody {
	if (body === null || typeof body !== 'object' || Array.isArray(body)) return false
	const keys = Object.keys(body).sort()
	const { error, message } = body as Record<string, unknown>
	return keys.join() === 'error,message' && typeof error === 'string' && typeof message === 'string' && message !== ''
}

/** 'a JSON client error' for a 4xx with a JSON `{ error, message }` body, else a short description of the answer. */
export function refusalKind(res: RawResponse): string {
	const text = res.text()
	const body = parseJsonOrNull(text)
	const json = (res.header('content-type') ?? '').includes('application/json')
	if (res.status >= 400 && res.status < 500 && json && isErrorShape(body)) return 'a JSON client error'
	return `${res.status} ${res.header('content-type')} ${text.slice(0, 80)}`
}

/**
 * Asserts a raw response is a 4xx with a JSON `{ error, message }` body;
 * `context` (what was sent) is shown when it is not.
 */
export function expectRaw4xxJson(res: RawResponse, context: unknown = null): ErrorBody {
	const text = res.text()
	const body = parseJsonOrNull(text)
	const seen = {
		context,
		status: res.status,
		clientError: res.status >= 400 && res.status < 500,
		json: (res.header('content-type') ?? '').includes('application/json'),
		errorShape: isErrorShape(body),
		body: text.slice(0, 200),
	}
	expect(seen).toEqual({ ...seen, clientError: true, json: true, errorShape: true })
	return body as ErrorBody
}

/** `GET <path> HTTP/1.1` with the given header lines (Host added unless given), `Connection: close`. */
export function rawGet(path: string, headers: Record<string, string> = {}, method = 'GET'): string {
	const lines = Object.entries({ Host: 'localhost', Connection: 'close', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`)
	return `${method} ${path} HTTP/1.1\r\n${lines.join('')}\r\n`
}

// ---------------------------------------------------------------------------
// Tokens

/** The claims the service signs, for a user and file, valid for ten minutes from `now` (seconds). */
export function downloadClaims(
	userId: string,
	filename: string,
	jti: string,
	now: number,
	extra: Record<string, unknown> = {},
) {
	return { user_id: userId, filename, action: 'download', jti, iat: now, exp: now + 600, ...extra }
}

/** Signs claims as the service does (HS256, the test secret, its kid) with jose. */
export function forge(claims: Record<string, unknown>, header: { alg?: string; kid?: string } = {}): Promise<string> {
	return new SignJWT(claims)
		.setProtectedHeader({ alg: header.alg ?? 'HS256', kid: header.kid ?? TEST_KID, typ: 'JWT' })
		.sign(SECRET_KEY)
}

const b64u = (data: string | Uint8Array) => Buffer.from(data).toString('base64url')

/**
 * A compact JWS built by hand, for headers and payloads jose refuses to
 * produce: any header JSON (or raw string), any payload, HMAC with any key.
 */
export function handSigned(
	header: Record<string, unknown> | string,
	payload: Record<string, unknown> | string,
	key: Uint8Array | string = SECRET_KEY,
	hash: 'sha256' | 'sha384' | 'sha512' = 'sha256',
): string {
	const h = b64u(typeof header === 'string' ? header : JSON.stringify(header))
	const p = b64u(typeof payload === 'string' ? payload : JSON.stringify(payload))
	const sig = createHmac(hash, key).update(`${h}.${p}`).digest('base64url')
	return `${h}.${p}.${sig}`
}

// ---------------------------------------------------------------------------
// Processes, files and time

/** Rejects after `ms`, so no await in a test can hang past its budget. */
export async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
	let timer: ReturnType<typeof setTimeout> | undefined
	const timeout = new Promise<never>((_, reject) => {
		timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)
	})
	try {
		return await Promise.race([work, timeout])
	} finally {
		clearTimeout(timer)
	}
}

/** Reads a whole response body, failing (not hanging) after `ms`; returns the bytes or the error. */
export async function readBody(res: Response, ms = 5000): Promise<{ bytes: Uint8Array; error: string | null }> {
	const parts: Uint8Array[] = []
	let error: string | null = null
	const reader = (res.body ?? new ReadableStream<Uint8Array>()).getReader()
	const deadline = performance.now() + ms
	try {
		for (;;) {
			const left = deadline - performance.now()
			if (left <= 0) throw new Error(`body stalled for ${ms} ms`)
			const { value, done } = await within(left, 'body read', reader.read())
			if (done) break
			parts.push(value)
		}
	} catch (err) {
		error = err instanceof Error ? err.message : String(err)
		await reader.cancel().catch(() => {})
	}
	const bytes = concatBytes(parts)
	return { bytes, error }
}

/** True when `body` is exactly the byte pattern starting at offset `from`. */
export function isPattern(body: Uint8Array, from: number): boolean {
	for (let i = 0; i < body.length; i++) if (body[i] !== patternByte(from + i)) return false
	return true
}

/** A running churn.ts child; `done` resolves with its JSON report, `stop()` kills it if still running. */
export interface Churn {
	readonly done: Promise<Record<string, number>>
	stop(): Promise<void>
}

/** Starts test/security/churn.ts with `args` (see that file); killed after `hardLimitMs` whatever happens. */
export function startChurn(args: string[], hardLimitMs: number): Churn {
	const child = Bun.spawn(['bun', `${import.meta.dir}/churn.ts`, ...args], {
		stdout: 'pipe',
		stderr: 'inherit',
	})
	const killer = setTimeout(() => child.kill('SIGKILL'), hardLimitMs)
	const done = (async () => {
		const out = await new Response(child.stdout).text()
		await child.exited
		clearTimeout(killer)
		return JSON.parse(out || '{}') as Record<string, number>
	})()
	return {
		done,
		async stop() {
			clearTimeout(killer)
			if (child.exitCode === null) child.kill('SIGKILL')
			await child.exited
		},
	}
}

/** The chunks joined into one array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
	const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
	let offset = 0
	for (const p of parts) {
		out.set(p, offset)
		offset += p.length
	}
	return out
}
