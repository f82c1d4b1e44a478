// What the admin CLI prints: readable lines for people, one JSON line for scripts (--json).
import type { LiveToken } from '../modules/lifecycle/model'
import type { IssuedToken } from '../modules/tokens/model'

/** The fields of a token answer (docs/contract.md §3.1) the CLI prints; `size` is missing from services older than it. */
export type IssuedView = Omit<IssuedToken, 'expires_in' | 'size'> & { readonly size?: number | null }

/** An error as the CLI reports it: a stable code and a message for people. */
export interface CliError {
	readonly error: string
	readonly message: string
}

const show = (v: unknown): string => (v === null || v === undefined ? '-' : String(v))

/** `73400320 bytes (70.0 MiB)`: exact bytes, and a readable size once it is over 1 KiB. */
function formatSize(bytes: number | null | undefined): string {
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

/** Quotes a word for a POSIX shell: double quotes when safe (also from `!` history expansion), else single. */
function shellQuote(word: string): string {
	if (!/["$`\\!]/.test(word)) return `"${word}"`
	return `'${word.replaceAll("'", `'\\''`)}'`
}

/** Rows with their columns aligned by display width (wide characters count double), `gap` spaces apart. */
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

/** Readable output of a token request: fields, then a curl command ready to paste into a POSIX shell. */
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

/** Readable output of a token listing (docs/contract.md §3.3): an aligned table, or "no live tokens". */
export function formatTokens(tokens: readonly LiveToken[]): string {
	if (tokens.length === 0) return 'no live tokens'
	const columns = ['jti', 'filename', 'issued_at', 'expires_at', 'max_uses', 'bytes_left'] as const
	const header = columns.map((c) => c.toUpperCase())
	const cell = (t: LiveToken, c: (typeof columns)[number]) =>
		c === 'max_uses' && t[c] === null ? 'unlimited' : show(t[c])
	return table([header, ...tokens.map((t) => columns.map((c) => cell(t, c)))], 2)
}

/** Readable output of one page of a listing: its table, then how to ask for the next page if there is one. */
export function formatPage(tokens: readonly LiveToken[], nextCursor: string | null | undefined): string {
	const table = formatTokens(tokens)
	return nextCursor ? `${table}\n\nmore: add --cursor ${nextCursor} for the next page, or --all for every page` : table
}

/**
 * What `list --all` prints for one page as it arrives: with `--json` one JSON
 * line per token; else the page's own table (a page after the first is set
 * off by a blank line). Null when there is nothing to print (an empty page).
 */
export function formatStreamedPage(json: boolean, tokens: readonly LiveToken[], first: boolean): string | null {
	if (tokens.length === 0) return null
	if (json) return tokens.map((t) => JSON.stringify(t)).join('\n')
	return first ? formatTokens(tokens) : `\n${formatTokens(tokens)}`
}

/** The last line of a readable `list --all`: how many tokens were listed. */
export const formatListedCount = (n: number): string =>
	n === 0 ? 'no live tokens' : `\n${n} live token${n === 1 ? '' : 's'}`

/** Readable output of a bulk revocation: `revoked 1 token`, `revoked 3 tokens`. */
export const formatRevokedCount = (n: number): string => `revoked ${n} token${n === 1 ? '' : 's'}`

/** The stdout line of a command that succeeded: `body` as one JSON line with `--json`, else the readable text. */
export function successLine(json: boolean, body: unknown, readable: () => string): string {
	return json ? JSON.stringify(body) : readable()
}

/** What a failed command prints: with `--json` the error as one JSON line on stdout too; always a line on stderr. */
export function failureLines(
	json: boolean,
	error: CliError,
): { readonly stdout: string | null; readonly stderr: string } {
	return {
		stdout: json ? JSON.stringify({ error: error.error, message: error.message }) : null,
		stderr: `error: ${error.message} (${error.error})`,
	}
}

/** The stderr lines of a command-line mistake, pointing at the help. */
export const formatUsageError = (message: string): string => `error: ${message}\nRun "download-gate --help" for usage.`
