// The admin CLI's command line: what it accepts, its help text and exit codes, and the checks made before sending.
import { parseArgs } from 'node:util'

/** The CLI's exit codes, as documented in `USAGE`. */
export const EXIT = { ok: 0, api: 1, usage: 2, auth: 3, notFound: 4, unavailable: 5 } as const

/** The help text, printed by `help`, `--help` and a bare invocation. */
export const USAGE = `Usage: download-gate <command> [arguments] [options]

Commands:
  issue <user_id> <filename>        issue a download token (and print a curl line)
        [--ttl <s>] [--max-uses <n>]
  list <user_id>                    list the user's live tokens, newest first, a page at a time
        [--limit <n>] [--cursor <c>] [--all]
                                    --limit: tokens a page, 1-1000 (default 100)
                                    --cursor: start after this next_cursor of an earlier page
                                    --all: every page from there on, printed as each arrives
  revoke <user_id> <jti>            revoke one token
  revoke-all <user_id>              revoke all of the user's live tokens
  revoke-file <user_id> <filename>  revoke all live tokens for one file
  help                              show this text

Options (anywhere on the line; put -- before an argument that starts with -):
  --url <base>       service base URL (env DOWNLOAD_GATE_URL, else http://localhost:3000)
  --api-key <key>    sent as X-API-Key (env DOWNLOAD_GATE_API_KEY)
  --json             print the JSON response body on one line
                     (list --all: one line per token, as each page arrives)
  --timeout <s>      request timeout in seconds, per request (default 10)
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

/** The name of a command that calls the service. */
export type Command = keyof typeof COMMANDS

/** A checked command line, ready to send. */
export interface Invocation {
	readonly command: Command
	/** The command's arguments in `COMMANDS` order, as typed (not yet percent-encoded). */
	readonly args: readonly string[]
	readonly ttl: number | undefined
	readonly maxUses: number | undefined
	/** `list`: tokens per page; the service's default when absent. */
	readonly limit: number | undefined
	/** `list`: start after this `next_cursor`; the first page when absent. */
	readonly cursor: string | undefined
	/** `list`: every page from there on, not just one. */
	readonly all: boolean
	/** The service's base URL without a trailing slash. */
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
	env: Readonly<Record<string, string | undefined>>,
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
	// URL parsing would resolve these as dot segments (encoded or not) and call another route.
	if (args.some((a) => a === '.' || a === '..')) throw new UsageError('an argument must not be . or ..')
	if (name !== 'issue' && (values.ttl !== undefined || values['max-uses'] !== undefined))
		throw new UsageError('--ttl and --max-uses only apply to issue')
	if (name !== 'list' && (values.limit !== undefined || values.cursor !== undefined || values.all !== undefined))
		throw new UsageError('--limit, --cursor and --all only apply to list')
	if (values.cursor === '') throw new UsageError('--cursor must be a next_cursor, got ""')

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
		limit: positiveInt('--limit', values.limit),
		cursor: values.cursor,
		all: values.all ?? false,
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
			limit: { type: 'string' },
			cursor: { type: 'string' },
			all: { type: 'boolean' },
			help: { type: 'boolean', short: 'h' },
		},
	})
}
