#!/usr/bin/env bun
// download-gate admin CLI: issue, list and revoke download tokens on a running service, through the typed client.
import { parseArgs } from 'node:util'
import { createClient, type DownloadGateClient } from './client'

/** The CLI's exit codes, as documented in `USAGE`. */
export const EXIT = { ok: 0, api: 1, usage: 2, auth: 3, notFound: 4, unavailable: 5 } as const

/** The help text, printed by `help`, `--help` and a bare invocation. */
export const USAGE = `Usage: download-gate <command> [arguments] [options]

Commands:
  issue <user_id> <filename>        issue a download token (and print a curl line)
        [--ttl <s>] [--max-uses <n>]
  list <user_id>                    list the user's live tokens
  revoke <user_id> <jti>            revoke one token
  revoke-all <user_id>              revoke all of the user's live tokens
  revoke-file <user_id> <filename>  revoke all live tokens for one file
  help                              show this text

Options (anywhere on the line; put -- before an argument that starts with -):
  --url <base>       service base URL (env DOWNLOAD_GATE_URL, else http://localhost:3000)
  --api-key <key>    sent as X-API-Key (env DOWNLOAD_GATE_API_KEY)
  --json             print the JSON response body on one line
  --timeout <s>      request timeout in seconds (default 10)
  -h, --help         show this text

Exit codes:
  0  success
  1  other API error (400 invalid_request, 500, ...)
  2  usage error (unknown command or option, missing argument, bad number)
  3  authentication or authorisation failed (401, 403)
  4  not found (404: no such file, no such token)
  5  unavailable or rate limited (429, 502-504, connection refused, timeout)
`

const COMMANDS = {
	issue: ['user_id', 'filename'],
	list: ['user_id'],
	revoke: ['user_id', 'jti'],
	'revoke-all': ['user_id'],
	'revoke-file': ['user_id', 'filename'],
} as const satisfies Record<string, readonly string[]>

type Command = keyof typeof COMMANDS

/** A checked command line, ready to send. */
export interface Invocation {
	readonly command: Command
	readonly args: readonly string[]
	readonly ttl: number | undefined
	readonly maxUses: number | undefined
	readonly baseUrl: string
	readonly apiKey: string | undefined
	readonly json: boolean
	readonly timeoutMs: number
}

/** A mistake on the command line (exit 2). */
export class UsageError extends Error {}

const isCommand = (name: string): name is Command => Object.hasOwn(COMMANDS, name)

function positiveInt(option: string, raw: string | undefined): number | undefined {
	if (raw === undefined) return undefined
	if (!/^[1-9][0-9]{0,14}$/.test(raw)) throw new UsageError(`${option} must be a whole number ≥ 1, got "${raw}"`)
	return Number(raw)
}

/**
 * Parses `argv` (without the runtime and script) with `env` for defaults.
 * Returns 'help' when help was asked for; throws `UsageError` on any mistake.
 */
export function parseCommandLine(
	argv: readonly string[],
	env: Record<string, string | undefined>,
): Invocation | 'help' {
	let parsed: ReturnType<typeof parse>
	try {
		parsed = parse(argv)
	} catch (err) {
		throw new UsageError(err instanceof Error ? err.message : String(err))
	}
	const { values, positionals } = parsed
	const [name, ...args] = positionals
	if (values.help || name === 'help') return 'help'
	if (name === undefined) throw new UsageError('no command given')
	if (!isCommand(name)) throw new UsageError(`unknown command "${name}"`)
	const expected = COMMANDS[name]
	if (args.length !== expected.length || args.some((a) => a === ''))
		throw new UsageError(`${name} takes ${expected.map((a) => `<${a}>`).join(' ')}`)
	// URL parsing would resolve these as dot segments and call another route.
	if (args.some((a) => a === '.' || a === '..')) throw new UsageError('an argument must not be . or ..')
	if (name !== 'issue' && (values.ttl !== undefined || values['max-uses'] !== undefined))
		throw new UsageError('--ttl and --max-uses only apply to issue')

	const baseUrl = values.url ?? env.DOWNLOAD_GATE_URL ?? 'http://localhost:3000'
	if (!URL.canParse(baseUrl) || !/^https?:$/.test(new URL(baseUrl).protocol))
		throw new UsageError(`--url must be an http(s) URL, got "${baseUrl}"`)
	const timeout = values.timeout ?? '10'
	if (!/^\d+(\.\d+)?$/.test(timeout) || Number(timeout) <= 0)
		throw new UsageError(`--timeout must be a number of seconds > 0, got "${timeout}"`)

	return {
		command: name,
		args,
		ttl: positiveInt('--ttl', values.ttl),
		maxUses: positiveInt('--max-uses', values['max-uses']),
		baseUrl: baseUrl.replace(/\/+$/, ''),
		apiKey: values['api-key'] || env.DOWNLOAD_GATE_API_KEY || undefined,
		json: values.json ?? false,
		timeoutMs: Math.round(Number(timeout) * 1000),
	}
}

function parse(argv: readonly string[]) {
	return parseArgs({
		args: [...argv],
		allowPositionals: true,
		strict: true,
		options: {
			url: { type: 'string' },
			'api-key': { type: 'string' },
			json: { type: 'boolean' },
			timeout: { type: 'string' },
			ttl: { type: 'string' },
			'max-uses': { type: 'string' },
			help: { type: 'boolean', short: 'h' },
		},
	})
}

/** The result of one Eden call: `data` on success, else `error` with the status and the parsed body. */
type EdenReply<T> =
	| { readonly data: T; readonly error: null }
	| { readonly data: null; readonly error: { readonly status: unknown; readonly value: unknown } }

/** How a sent invocation ended, once Eden answered. */
type Outcome =
	| { readonly ok: true; readonly body: unknown; readonly readable: () => string }
	| { readonly ok: false; readonly status: unknown; readonly value: unknown }

/** One invocation as a typed Eden call: its method and path (for messages and tests), and the call itself. */
interface Call {
	readonly method: 'GET' | 'DELETE'
	/** The path with its query string, exactly as Eden sends it. */
	readonly path: string
	readonly send: (init: RequestInit) => Promise<Outcome>
}

function settle<T>(reply: EdenReply<T>, readable: (data: T) => string): Outcome {
	if (reply.error !== null) return { ok: false, status: reply.error.status, value: reply.error.value }
	const { data } = reply
	return { ok: true, body: data, readable: () => readable(data) }
}

/** `?k=v&…` as Eden builds it (`encodeURIComponent` on both sides), or ''. */
function queryString(query: Readonly<Record<string, string | number | undefined>>): string {
	const pairs = Object.entries(query).flatMap(([k, v]) =>
		v === undefined ? [] : [`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`],
	)
	return pairs.length > 0 ? `?${pairs.join('&')}` : ''
}

/** The typed Eden call an invocation makes on `client`. */
function callFor(client: DownloadGateClient, inv: Invocation): Call {
	// Eden puts path parameters in the URL as given: encode them (a filename may hold '/', '#', '%', …).
	const [userId = '', second = ''] = inv.args.map(encodeURIComponent)
	const user = client.api.users({ user_id: userId })
	switch (inv.command) {
		case 'issue': {
			const query = { ttl: inv.ttl, max_uses: inv.maxUses } // Eden leaves out undefined values
			const route = client.api['get-download-token']({ user_id: userId })({ filename: second })
			return {
				method: 'GET',
				path: `${route['~path']}${queryString(query)}`,
				send: async (init) => settle(await route.get({ query, fetch: init }), formatIssued),
			}
		}
		case 'list': {
			const route = user.tokens
			return {
				method: 'GET',
				path: route['~path'],
				send: async (init) => settle(await route.get({ fetch: init }), (body) => formatTokens(body.tokens)),
			}
		}
		case 'revoke': {
			const route = user.tokens({ jti: second })
			return {
				method: 'DELETE',
				path: route['~path'],
				send: async (init) => settle(await route.delete(undefined, { fetch: init }), () => `revoked ${inv.args[1]}`),
			}
		}
		case 'revoke-all': {
			const route = user.tokens
			return {
				method: 'DELETE',
				path: route['~path'],
				send: async (init) =>
					settle(await route.delete(undefined, { fetch: init }), (body) => revokedCount(body.revoked)),
			}
		}
		case 'revoke-file': {
			const route = user.files({ filename: second }).tokens
			return {
				method: 'DELETE',
				path: route['~path'],
				send: async (init) =>
					settle(await route.delete(undefined, { fetch: init }), (body) => revokedCount(body.revoked)),
			}
		}
	}
}

/** The HTTP method and path (with query) an invocation calls through the typed client; path segments percent-encoded. */
export function requestFor(inv: Invocation): { method: 'GET' | 'DELETE'; path: string } {
	const { method, path } = callFor(createClient(inv.baseUrl), inv)
	return { method, path }
}

/** The exit code for an HTTP error status. */
export function exitCodeFor(status: number): number {
	if (status === 401 || status === 403) return EXIT.auth
	if (status === 404) return EXIT.notFound
	if (status === 429 || status === 502 || status === 503 || status === 504) return EXIT.unavailable
	return EXIT.api
}

/** Quotes a word for a POSIX shell: double quotes when safe (also from `!` history expansion), else single. */
export function shellQuote(word: string): string {
	if (!/["$`\\!]/.test(word)) return `"${word}"`
	return `'${word.replaceAll("'", `'\\''`)}'`
}

type Json = Record<string, unknown>
const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)
const show = (v: unknown): string => (v === null || v === undefined ? '-' : String(v))

/** `73400320 bytes (70.0 MiB)`: exact bytes, and a readable size once it is over 1 KiB. */
export function formatSize(bytes: number | null | undefined): string {
	if (typeof bytes !== 'number') return '-'
	const units = ['KiB', 'MiB', 'GiB', 'TiB'] as const
	let value = bytes
	let unit = ''
	for (const next of units) {
		if (value < 1024) break
		value /= 1024
		unit = next
	}
	return unit === '' ? `${bytes} bytes` : `${bytes} bytes (${value.toFixed(1)} ${unit})`
}

/** The fields of a token answer (SPEC §3.1) the CLI prints; `size` is missing from services older than it. */
export interface IssuedView {
	readonly token: string
	readonly download_url: string
	readonly jti: string
	readonly expires_at: string
	readonly max_uses: number | null
	readonly size?: number | null
}

/** One row of a token listing (SPEC §3.3). */
export interface LiveTokenView {
	readonly jti: string
	readonly filename: string
	readonly issued_at: string
	readonly expires_at: string
	readonly max_uses: number | null
	readonly bytes_left: number | null
}

/** Readable output of a token request: fields, then a ready-to-paste curl command. */
export function formatIssued(body: IssuedView): string {
	const rows: [string, string][] = [
		['token', show(body.token)],
		['download_url', show(body.download_url)],
		['size', formatSize(body.size)],
		['jti', show(body.jti)],
		['expires_at', show(body.expires_at)],
		['max_uses', body.max_uses === null ? 'unlimited' : show(body.max_uses)],
	]
	const curl = `curl -H ${shellQuote(`Authorization: Bearer ${show(body.token)}`)} -OJL ${shellQuote(show(body.download_url))}`
	return `${table(rows, 2)}\n\n${curl}`
}

/** Readable output of a token listing: an aligned table, or "no live tokens". */
export function formatTokens(tokens: readonly LiveTokenView[]): string {
	if (tokens.length === 0) return 'no live tokens'
	const columns = ['jti', 'filename', 'issued_at', 'expires_at', 'max_uses', 'bytes_left'] as const
	const header = columns.map((c) => c.toUpperCase())
	const cell = (t: LiveTokenView, c: (typeof columns)[number]) =>
		c === 'max_uses' && t[c] === null ? 'unlimited' : show(t[c])
	return table([header, ...tokens.map((t) => columns.map((c) => cell(t, c)))], 2)
}

const revokedCount = (n: number): string => `revoked ${n} token${n === 1 ? '' : 's'}`

function table(rows: readonly (readonly string[])[], gap: number): string {
	const widths: number[] = []
	for (const row of rows)
		for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, Bun.stringWidth(cell))
	return rows
		.map((row) =>
			row
				.map((cell, i) =>
					i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - Bun.stringWidth(cell) + gap),
				)
				.join(''),
		)
		.join('\n')
}

/** The `{ error, message }` of an error answer as Eden parsed it, or one made up from the status when the body is not ours. */
export function errorOf(status: number, value: unknown): { error: string; message: string } {
	if (isRecord(value) && typeof value.error === 'string' && typeof value.message === 'string')
		return { error: value.error, message: value.message }
	const text = typeof value === 'string' ? value : value === null || value === undefined ? '' : JSON.stringify(value)
	const snippet = text.trim().slice(0, 200)
	return { error: `http_${status}`, message: snippet ? `HTTP ${status}: ${snippet}` : `HTTP ${status}` }
}

/** Why no answer came: a timeout or an unreachable service (exit 5). */
function noAnswer(inv: Invocation, err: unknown): { error: string; message: string } {
	const timedOut = err instanceof Error && err.name === 'TimeoutError'
	const message = timedOut
		? `no answer from ${inv.baseUrl} within ${inv.timeoutMs / 1000} s`
		: `cannot reach ${inv.baseUrl}: ${err instanceof Error ? err.message : String(err)}`
	return { error: timedOut ? 'timeout' : 'unreachable', message }
}

function fail(inv: Invocation, code: number, error: { error: string; message: string }): number {
	if (inv.json) console.log(JSON.stringify(error))
	console.error(`error: ${error.message} (${error.error})`)
	return code
}

/** Sends one invocation through the typed client and prints its outcome; returns the exit code. Never throws. */
export async function run(inv: Invocation): Promise<number> {
	let status = 0 // of the last answer, for a body Eden could not parse
	const client = createClient(inv.baseUrl, {
		...(inv.apiKey ? { apiKey: inv.apiKey } : {}),
		fetch: async (input, init) => {
			const res = await fetch(input, init)
			status = res.status
			return res
		},
	})
	const call = callFor(client, inv)
	const badResponse = () =>
		fail(inv, EXIT.api, { error: 'bad_response', message: `expected JSON from ${call.path}, got HTTP ${status}` })
	let outcome: Outcome
	try {
		outcome = await call.send({ signal: AbortSignal.timeout(inv.timeoutMs) })
	} catch (err) {
		// Eden reads the body outside its own try: a JSON body that does not parse, or a cut or timed-out read.
		if (!(err instanceof SyntaxError)) return fail(inv, EXIT.unavailable, noAnswer(inv, err))
		return status >= 400 ? fail(inv, exitCodeFor(status), errorOf(status, null)) : badResponse()
	}
	if (!outcome.ok) {
		// Eden answers a fetch that threw (refused, timed out) as a 503 carrying the thrown error.
		if (outcome.value instanceof Error) return fail(inv, EXIT.unavailable, noAnswer(inv, outcome.value))
		const code = typeof outcome.status === 'number' ? outcome.status : status
		return fail(inv, exitCodeFor(code), errorOf(code, outcome.value))
	}
	if (inv.command !== 'revoke' && !isRecord(outcome.body)) return badResponse()
	let text: string
	try {
		text = inv.json ? JSON.stringify(inv.command === 'revoke' ? { revoked: true } : outcome.body) : outcome.readable()
	} catch {
		// The body's type is the route's schema; a service that breaks it must not crash the CLI.
		return badResponse()
	}
	console.log(text)
	return EXIT.ok
}

/** Runs the CLI on `argv` (arguments only) and returns the process exit code. */
export async function main(
	argv: readonly string[],
	env: Record<string, string | undefined> = process.env,
): Promise<number> {
	if (argv.length === 0) {
		process.stdout.write(USAGE)
		return EXIT.usage
	}
	let inv: Invocation | 'help'
	try {
		inv = parseCommandLine(argv, env)
	} catch (err) {
		if (!(err instanceof UsageError)) throw err
		console.error(`error: ${err.message}\nRun "download-gate --help" for usage.`)
		return EXIT.usage
	}
	if (inv === 'help') {
		process.stdout.write(USAGE)
		return EXIT.ok
	}
	return run(inv)
}

if (import.meta.main) process.exitCode = await main(Bun.argv.slice(2))
