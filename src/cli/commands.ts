// The admin CLI's commands: each is a call of the typed client (list: one a page); its answer is printed and becomes the exit code.
import { createClient, type DownloadGateClient, ListingError, tokenPages } from '../client'
import { errorFromBody } from '../client/download-error'
import { isRetryableStatus } from '../client/retry'
import { type Command, EXIT, type Invocation, parseCommandLine, USAGE, UsageError } from './args'
import {
	type CliError,
	failureLines,
	formatIssued,
	formatListedCount,
	formatPage,
	formatRevokedCount,
	formatStreamedPage,
	formatUsageError,
	successLine,
} from './format'

/** The result of one Eden call: `data` on success, else `error` with the status and the parsed body. */
type EdenReply<T> =
	| { readonly data: T; readonly error: null }
	| { readonly data: null; readonly error: { readonly status: unknown; readonly value: unknown } }

/** How a sent invocation ended, once Eden answered. */
type Outcome =
	/** What to print: `json` with `--json`, else `readable()` (which throws when the body breaks the route's schema). */
	| { readonly kind: 'answered'; readonly json: unknown; readonly readable: () => string }
	/** A success whose body is not a JSON object, so not the service's. */
	| { readonly kind: 'not-json' }
	/** An error answer (or, from Eden, a request that got none): its status and parsed body. */
	| { readonly kind: 'refused'; readonly status: unknown; readonly value: unknown }

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** A reply whose success body is a JSON object, printed as it came (`--json`) or by `readable`. */
function answered<T>(reply: EdenReply<T>, readable: (data: T) => string): Outcome {
	if (reply.error !== null) return { kind: 'refused', status: reply.error.status, value: reply.error.value }
	const { data } = reply
	if (!isRecord(data)) return { kind: 'not-json' }
	return { kind: 'answered', json: data, readable: () => readable(data) }
}

/** A reply whose success is a bodiless 204, reported as `text` (or `{"revoked":true}` with `--json`). */
function revokedOne(reply: EdenReply<unknown>, text: string): Outcome {
	if (reply.error !== null) return { kind: 'refused', status: reply.error.status, value: reply.error.value }
	return { kind: 'answered', json: { revoked: true }, readable: () => text }
}

/** Makes the invocation's typed call on `client`, with `init` (the timeout's signal) for its fetch. */
async function send(
	client: DownloadGateClient,
	inv: Invocation,
	command: Exclude<Command, 'list'>,
	init: RequestInit,
): Promise<Outcome> {
	// createClient leaves path parameters as given: encode each (a filename may hold '/', '#', '%', …).
	const [userId = '', second = ''] = inv.args.map(encodeURIComponent)
	const user = client.api.users({ user_id: userId })
	switch (command) {
		case 'issue': {
			const route = client.api['get-download-token']({ user_id: userId })({ filename: second })
			// Eden builds the query string, leaving out undefined values.
			return answered(await route.get({ query: { ttl: inv.ttl, max_uses: inv.maxUses }, fetch: init }), formatIssued)
		}
		case 'revoke':
			return revokedOne(await user.tokens({ jti: second }).delete(undefined, { fetch: init }), `revoked ${inv.args[1]}`)
		case 'revoke-all':
			return answered(await user.tokens.delete(undefined, { fetch: init }), (body) => formatRevokedCount(body.revoked))
		case 'revoke-file': {
			const route = user.files({ filename: second }).tokens
			return answered(await route.delete(undefined, { fetch: init }), (body) => formatRevokedCount(body.revoked))
		}
	}
}

/** The exit code for an HTTP error status; "try later" is the client's own reading of a status. */
function exitCodeFor(status: number): number {
	if (status === 401 || status === 403) return EXIT.auth
	if (status === 404) return EXIT.notFound
	if (isRetryableStatus(status)) return EXIT.unavailable
	return EXIT.api
}

/** An error answer as Eden parsed it, read by the client's `errorFromBody` (a body not ours is `unexpected_response`). */
function refusal(status: number, value: unknown): CliError {
	// errorFromBody reads the body's text, which Eden has parsed already (into JSON, a string, a number or a boolean).
	const text = typeof value === 'string' ? value : value === null || value === undefined ? '' : JSON.stringify(value)
	const { code, message } = errorFromBody(status, text)
	return { error: code, message }
}

/** Why no answer came: a timeout or an unreachable service (exit 5). */
function noAnswer(inv: Invocation, err: unknown): CliError {
	const timedOut = err instanceof Error && err.name === 'TimeoutError'
	const message = timedOut
		? `no answer from ${inv.baseUrl} within ${inv.timeoutMs / 1000} s`
		: `cannot reach ${inv.baseUrl}: ${err instanceof Error ? err.message : String(err)}`
	return { error: timedOut ? 'timeout' : 'unreachable', message }
}

function fail(inv: Invocation, code: number, error: CliError): number {
	const lines = failureLines(inv.json, error)
	if (lines.stdout !== null) console.log(lines.stdout)
	console.error(lines.stderr)
	return code
}

/** Sends one invocation through the typed client and prints its outcome; returns the exit code. Never throws. */
async function run(inv: Invocation): Promise<number> {
	// What the last request was and how it was answered, as the fetch Eden sends with saw it.
	let sent = { url: inv.baseUrl, status: 0 }
	const client = createClient(inv.baseUrl, {
		...(inv.apiKey ? { apiKey: inv.apiKey } : {}),
		fetch: async (input, init) => {
			const res = await fetch(input, init)
			sent = { url: input instanceof Request ? input.url : String(input), status: res.status }
			return res
		},
	})
	const badResponse = () => {
		// Eden appends the path and query to the base URL as given; print them as the route's own.
		const path = sent.url.startsWith(inv.baseUrl) ? sent.url.slice(inv.baseUrl.length) : sent.url
		const message = `expected JSON from ${path}, got HTTP ${sent.status}`
		return fail(inv, EXIT.api, { error: 'bad_response', message })
	}
	if (inv.command === 'list') return list(inv, client, () => sent.status, badResponse)
	let outcome: Outcome
	try {
		outcome = await send(client, inv, inv.command, { signal: AbortSignal.timeout(inv.timeoutMs) })
	} catch (err) {
		// Eden reads the body outside its own try: a JSON body that does not parse, or a cut or timed-out read.
		if (!(err instanceof SyntaxError)) return fail(inv, EXIT.unavailable, noAnswer(inv, err))
		return sent.status >= 400 ? fail(inv, exitCodeFor(sent.status), refusal(sent.status, null)) : badResponse()
	}
	if (outcome.kind === 'not-json') return badResponse()
	if (outcome.kind === 'refused') {
		// Eden answers a fetch that threw (refused, timed out) as a 503 carrying the thrown error.
		if (outcome.value instanceof Error) return fail(inv, EXIT.unavailable, noAnswer(inv, outcome.value))
		const status = typeof outcome.status === 'number' ? outcome.status : sent.status
		return fail(inv, exitCodeFor(status), refusal(status, outcome.value))
	}
	let text: string
	try {
		text = successLine(inv.json, outcome.json, outcome.readable)
	} catch {
		// The body's type is the route's schema; a service that breaks it must not crash the CLI.
		return badResponse()
	}
	console.log(text)
	return EXIT.ok
}

/**
 * `list`: one page, or with `--all` every page from the cursor on, each printed as it arrives (a
 * listing of 50,000 tokens never sits in memory whole). A page that fails after others were printed
 * ends the run with its error, and stderr says where to go on from.
 */
async function list(
	inv: Invocation,
	client: DownloadGateClient,
	lastStatus: () => number,
	badResponse: () => number,
): Promise<number> {
	const pages = tokenPages(client, inv.args[0] ?? '', {
		limit: inv.limit,
		cursor: inv.cursor,
		// A bound on each page, not on the whole listing.
		requestInit: () => ({ signal: AbortSignal.timeout(inv.timeoutMs) }),
	})
	let listed = 0
	let printed = false
	let cursor = inv.cursor
	try {
		for await (const page of pages) {
			let text: string | null
			try {
				text = inv.all
					? formatStreamedPage(inv.json, page.tokens, !printed)
					: successLine(inv.json, page, () => formatPage(page.tokens, page.next_cursor))
			} catch {
				// The body's type is the route's schema; a service that breaks it must not crash the CLI.
				return badResponse()
			}
			if (text !== null) console.log(text)
			printed ||= text !== null
			listed += page.tokens.length
			cursor = page.next_cursor ?? undefined
			if (!inv.all) return EXIT.ok
		}
	} catch (err) {
		const code = listFailure(inv, err, lastStatus(), badResponse)
		if (listed > 0 && cursor !== undefined)
			console.error(`listed ${listed} token${listed === 1 ? '' : 's'} before this; to go on: --cursor ${cursor}`)
		return code
	}
	if (!inv.json) console.log(formatListedCount(listed))
	return EXIT.ok
}

/** Prints why a page of `list` could not be had (as `run` does for other commands); returns the exit code. */
function listFailure(inv: Invocation, err: unknown, lastStatus: number, badResponse: () => number): number {
	if (!(err instanceof ListingError)) return fail(inv, EXIT.unavailable, noAnswer(inv, err))
	if (err.code === 'network_error') return fail(inv, EXIT.unavailable, noAnswer(inv, err.cause))
	// Not JSON (no status), or a success that is not a page: the status the fetch saw says which.
	if (err.status === null || err.status < 400)
		return lastStatus >= 400 ? fail(inv, exitCodeFor(lastStatus), refusal(lastStatus, null)) : badResponse()
	return fail(inv, exitCodeFor(err.status), { error: err.code, message: err.message })
}

/**
 * Runs the CLI on `argv` (the arguments after the script) with `env` for defaults: prints to stdout and stderr
 * and returns the exit code (`EXIT`). Throws only on a bug.
 */
export async function runCommandLine(
	argv: readonly string[],
	env: Readonly<Record<string, string | undefined>>,
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
		console.error(formatUsageError(err.message))
		return EXIT.usage
	}
	if (inv === 'help') {
		process.stdout.write(USAGE)
		return EXIT.ok
	}
	return run(inv)
}
