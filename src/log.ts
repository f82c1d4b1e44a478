import pino from 'pino'
import type { LogLevel } from './config'

type Fields = Record<string, unknown>

/** A JSON-lines logger (pino underneath). Callers pass fields, never raw tokens or secrets. */
export interface Logger {
	debug(msg: string, fields?: Fields): void
	info(msg: string, fields?: Fields): void
	warn(msg: string, fields?: Fields): void
	error(msg: string, fields?: Fields): void
	/** Whether lines at `level` are written (callers skip building fields for nothing). */
	enabled(level: 'debug' | 'info' | 'warn' | 'error'): boolean
	/** A logger whose every line also carries `fields` (e.g. the request id). */
	child(fields: Fields): Logger
	/** Writes out anything buffered (at shutdown). */
	flush(): void
}

// A safety net under the rule that nothing secret is ever passed in: these
// field names are masked wherever they appear, one or two levels deep.
const REDACTED_FIELDS = ['authorization', 'token', 'api_key', 'apiKey', 'x-api-key', 'password', 'secret', 'cookie']
const REDACT_PATHS = REDACTED_FIELDS.flatMap((f) => [`["${f}"]`, `*["${f}"]`, `*.*["${f}"]`])

function wrap(p: pino.Logger, flushSync: () => void): Logger {
	return {
		debug: (msg, fields) => p.debug(fields ?? {}, msg),
		info: (msg, fields) => p.info(fields ?? {}, msg),
		warn: (msg, fields) => p.warn(fields ?? {}, msg),
		error: (msg, fields) => p.error(fields ?? {}, msg),
		enabled: (level) => p.isLevelEnabled(level),
		child: (fields) => wrap(p.child(fields), flushSync),
		flush: flushSync,
	}
}

/**
 * One JSON object per line at or above `level`: `{"level":"info","time":"…","msg":"…",…}`.
 * Lines given to a `write` callback go out at once (tests); to stdout they go
 * through pino's asynchronous destination, which batches writes so an access
 * log costs no syscall per request, and is flushed at shutdown.
 */
export function createLogger(level: LogLevel, write?: (line: string) => void): Logger {
	const boom = write ? null : pino.destination({ dest: 1, sync: false, minLength: 8 * 1024 })
	let pending = false
	const destination = boom
		? {
				write(line: string) {
					pending = true
					return boom.write(line)
				},
			}
		: { write: write ?? (() => {}) }
	// Lines wait for a full buffer; a quiet service still shows them within a quarter second.
	if (boom)
		setInterval(() => {
			if (!pending) return
			pending = false
			boom.flush()
		}, 250).unref()
	// At shutdown the buffer must reach stdout before the process exits.
	const flushSync = () => {
		try {
			boom?.flushSync()
		} catch {
			// Not yet open, or stdout gone: nothing more can be written anyway.
		}
	}
	return wrap(
		pino(
			{
				level,
				base: undefined,
				messageKey: 'msg',
				timestamp: pino.stdTimeFunctions.isoTime,
				formatters: { level: (label) => ({ level: label }) },
				redact: { paths: REDACT_PATHS, censor: '[redacted]' },
			},
			destination,
		),
		flushSync,
	)
}

/** Turns an unknown error into loggable fields without its stack leaking to clients. */
export function errorFields(err: unknown): Fields {
	if (err instanceof Error) {
		const cause = err.cause instanceof Error ? err.cause.message : undefined
		return { err: err.message, err_name: err.name, ...(cause ? { cause } : {}) }
	}
	return { err: String(err) }
}
