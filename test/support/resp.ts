import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'

// A one-shot RESP2 client for fixtures: every question about Redis's own view
// (roles, slots, sentinel state) goes through it, never through ioredis, so the
// tests judge the client under test against something that does not share its bugs.

/** An error reply from Redis (`-ERR …`). */
export class ReplyError extends Error {
	override readonly name = 'ReplyError'
}

/** A decoded RESP2 reply. */
export type Reply = string | number | null | Reply[]

/** How to reach and authenticate to one Redis or Sentinel process. */
export interface Access {
	readonly host: string
	readonly port: number
	/** PEM CA bundle when the process speaks TLS. */
	readonly ca?: string
	/** `[user, password]` or `[password]` sent with AUTH first. */
	readonly auth?: readonly [string] | readonly [string, string]
}

type Parsed = { value: Reply | ReplyError; end: number } | null

/** Parses one RESP2 value at `at` of `buf`; null when it is not complete yet. */
export function parse(buf: Buffer, at: number): Parsed {
	const eol = buf.indexOf('\r\n', at)
	if (eol < 0) return null
	const line = buf.toString('utf8', at + 1, eol)
	const next = eol + 2
	switch (String.fromCharCode(buf[at] ?? 0)) {
		case '+':
			return { value: line, end: next }
		case '-':
			return { value: new ReplyError(line), end: next }
		case ':':
			return { value: Number(line), end: next }
		case '$': {
			const len = Number(line)
			if (len < 0) return { value: null, end: next }
			if (buf.length < next + len + 2) return null
			return { value: buf.toString('utf8', next, next + len), end: next + len + 2 }
		}
		case '*': {
			const count = Number(line)
			if (count < 0) return { value: null, end: next }
			const items: Reply[] = []
			let pos = next
			for (let i = 0; i < count; i++) {
				const item = parse(buf, pos)
				if (!item) return null
				if (item.value instanceof ReplyError) return { value: item.value, end: item.end }
				items.push(item.value)
				pos = item.end
			}
			return { value: items, end: pos }
		}
		default:
			throw new Error(`unexpected RESP type byte ${buf[at]}`)
	}
}

/** A command (or any array of strings) in RESP2. */
export const encode = (args: readonly (string | number)[]): string =>
	`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`

/**
 * Sends one command on a fresh connection and returns its reply, or rejects
 * (ReplyError for `-ERR`, a timeout error when nothing answers within `timeoutMs`,
 * as with a paused process).
 */
export function query(target: Access, args: readonly (string | number)[], timeoutMs = 500): Promise<Reply> {
	return new Promise<Reply>((resolve, reject) => {
		const payload = (target.auth ? encode(['AUTH', ...target.auth]) : '') + encode(args)
		let expect = target.auth ? 2 : 1
		let buf = Buffer.alloc(0)
		let socket: Socket
		const done = (err: Error | null, value?: Reply) => {
			clearTimeout(timer)
			socket.destroy()
			if (err) reject(err)
			else resolve(value ?? null)
		}
		const timer = setTimeout(
			() => done(new Error(`${target.host}:${target.port} did not answer ${args[0]} within ${timeoutMs} ms`)),
			timeoutMs,
		)
		const onConnect = () => socket.write(payload)
		socket = target.ca
			? tlsConnect({ host: target.host, port: target.port, ca: target.ca, servername: 'localhost' }, onConnect)
			: netConnect({ host: target.host, port: target.port }, onConnect)
		socket.on('error', (err) => done(err))
		socket.on('data', (chunk: Buffer) => {
			buf = Buffer.concat([buf, chunk])
			for (;;) {
				const parsed = parse(buf, 0)
				if (!parsed) return
				buf = buf.subarray(parsed.end)
				expect -= 1
				if (parsed.value instanceof ReplyError) return done(parsed.value)
				if (expect === 0) return done(null, parsed.value)
			}
		})
	})
}

/** `field:value` lines of INFO (or CLUSTER INFO) as a map. */
export function infoFields(reply: Reply): Map<string, string> {
	const out = new Map<string, string>()
	for (const line of String(reply).split('\r\n')) {
		const i = line.indexOf(':')
		if (i > 0) out.set(line.slice(0, i), line.slice(i + 1))
	}
	return out
}

/** A flat `[k1, v1, k2, v2, …]` reply (SENTINEL MASTER, …) as a map. */
export function pairs(reply: Reply): Map<string, string> {
	const out = new Map<string, string>()
	if (!Array.isArray(reply)) return out
	for (let i = 0; i + 1 < reply.length; i += 2) out.set(String(reply[i]), String(reply[i + 1]))
	return out
}
