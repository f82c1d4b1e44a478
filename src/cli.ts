#!/usr/bin/env bun
// download-gate admin CLI: issue, list and revoke download tokens through a running service's HTTP API.
import { parseArgs } from 'node:util'

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

/** The HTTP method and path (with query) an invocation calls; path segments percent-encoded. */
export function requestFor(inv: Invocation): { method: 'GET' | 'DELETE'; path: string } {
	const [a = '', b = ''] = inv.args.map(encodeURIComponent)
	switch (inv.command) {
		case 'issue': {
			const query = new URLSearchParams()
			if (inv.ttl !== undefined) query.set('ttl', String(inv.ttl))
			if (inv.maxUses !== undefined) query.set('max_uses', String(inv.maxUses))
			const qs = query.size > 0 ? `?${query}` : ''
			return { method: 'GET', path: `/api/get-download-token/${a}/${b}${qs}` }
		}
		case 'list':
			return { method: 'GET', path: `/api/users/${a}/tokens` }
		case 'revoke':
			return { method: 'DELETE', path: `/api/users/${a}/tokens/${b}` }
		case 'revoke-all':
			return { method: 'DELETE', path: `/api/users/${a}/tokens` }
		case 'revoke-file':
			return { method: 'DELETE', path: `/api/users/${a}/files/${b}/tokens` }
	}
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

/** Readable output of a token request: fields, then a ready-to-paste curl command. */
export function formatIssued(body: Json): string {
	const rows: [string, string][] = [
		['token', show(body.token)],
		['download_url', show(body.download_url)],
		['jti', show(body.jti)],
		['expires_at', show(body.expires_at)],
		['max_uses', body.max_uses === null ? 'unlimited' : show(body.max_uses)],
	]
	const curl = `curl -H ${shellQuote(`Authorization: Bearer ${show(body.token)}`)} -OJL ${shellQuote(show(body.download_url))}`
	return `${table(rows, 2)}\n\n${curl}`
}

/** Readable output of a token listing: an aligned table, or "no live tokens". */
export function formatTokens(tokens: readonly Json[]): string {
	if (tokens.length === 0) return 'no live tokens'
	const columns = ['jti', 'filename', 'issued_at', 'expires_at', 'max_uses', 'bytes_left'] as const
	const header = columns.map((c) => c.toUpperCase())
	const cell = (t: Json, c: (typeof columns)[number]) => (c === 'max_uses' && t[c] === null ? 'unlimited' : show(t[c]))
	return table([header, ...tokens.map((t) => columns.map((c) => cell(t, c)))], 2)
}

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

/** The `{ error, message }` of an error response, or one made up from the status when the body is not ours. */
export function errorOf(status: number, text: string): { error: string; message: string } {
	try {
		const body: unknown = JSON.parse(text)
		if (isRecord(body) && typeof body.error === 'string' && typeof body.message === 'string')
			return { error: body.error, message: body.message }
	} catch {}
	const snippet = text.trim().slice(0, 200)
	return { error: `http_${status}`, message: snippet ? `HTTP ${status}: ${snippet}` : `HTTP ${status}` }
}

function successOutput(inv: Invocation, body: unknown): string {
	if (inv.json) return JSON.stringify(inv.command === 'revoke' ? { revoked: true } : body)
	switch (inv.command) {
		case 'issue':
			return formatIssued(isRecord(body) ? body : {})
		case 'list': {
			const tokens = isRecord(body) && Array.isArray(body.tokens) ? body.tokens.filter(isRecord) : []
			return formatTokens(tokens)
		}
		case 'revoke':
			return `revoked ${inv.args[1]}`
		default: {
			const n = isRecord(body) ? show(body.revoked) : '?'
			return `revoked ${n} token${n === '1' ? '' : 's'}`
		}
	}
}

function fail(inv: Invocation, code: number, error: { error: string; message: string }): number {
	if (inv.json) console.log(JSON.stringify(error))
	console.error(`error: ${error.message} (${error.error})`)
	return code
}

/** Sends one invocation and prints its outcome; returns the exit code. Never throws. */
export async function run(inv: Invocation): Promise<number> {
	const { method, path } = requestFor(inv)
	const headers: Record<string, string> = { Accept: 'application/json' }
	if (inv.apiKey) headers['X-API-Key'] = inv.apiKey
	let status: number
	let text: string
	try {
		const res = await fetch(`${inv.baseUrl}${path}`, { method, headers, signal: AbortSignal.timeout(inv.timeoutMs) })
		status = res.status
		text = await res.text()
	} catch (err) {
		const timedOut = err instanceof Error && err.name === 'TimeoutError'
		const message = timedOut
			? `no answer from ${inv.baseUrl} within ${inv.timeoutMs / 1000} s`
			: `cannot reach ${inv.baseUrl}: ${err instanceof Error ? err.message : String(err)}`
		return fail(inv, EXIT.unavailable, { error: timedOut ? 'timeout' : 'unreachable', message })
	}

	if (status >= 400) {
		return fail(inv, exitCodeFor(status), errorOf(status, text))
	}
	let body: unknown = null
	if (status !== 204) {
		try {
			body = JSON.parse(text)
		} catch {
			return fail(inv, EXIT.api, { error: 'bad_response', message: `expected JSON from ${path}, got HTTP ${status}` })
		}
	}
	console.log(successOutput(inv, body))
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
