import type { LogLevel } from './config'

type Fields = Record<string, unknown>

/** A JSON-lines logger. Callers pass fields, never raw tokens or secrets. */
export interface Logger {
	debug(msg: string, fields?: Fields): void
	info(msg: string, fields?: Fields): void
	warn(msg: string, fields?: Fields): void
	error(msg: string, fields?: Fields): void
	/** Writes out anything buffered (at shutdown). */
	flush(): void
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 }

const FLUSH_MS = 100
const FLUSH_BYTES = 32 * 1024

/**
 * One JSON object per line at or above `level`. Lines given to a `write`
 * callback go out at once (tests); to stdout they are batched and flushed
 * every 100 ms or 32 KB, so an access log does not cost a syscall per request.
 */
export function createLogger(level: LogLevel, write?: (line: string) => void): Logger {
	const min = RANK[level]
	let buffer = ''
	let timer: ReturnType<typeof setTimeout> | undefined
	const flush = () => {
		if (timer) clearTimeout(timer)
		timer = undefined
		if (buffer === '') return
		const out = buffer
		buffer = ''
		process.stdout.write(out)
	}
	let stampMs = 0
	let stamp = ''
	// One ISO timestamp per millisecond, not per line.
	const now = () => {
		const ms = Date.now()
		if (ms !== stampMs) {
			stampMs = ms
			stamp = new Date(ms).toISOString()
		}
		return stamp
	}
	const emit = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: Fields) => {
		if (RANK[lvl] < min) return
		const line = `${JSON.stringify({ level: lvl, time: now(), msg, ...fields })}\n`
		if (write) return write(line)
		buffer += line
		if (buffer.length >= FLUSH_BYTES || RANK[lvl] >= RANK.warn) flush()
		else timer ??= setTimeout(flush, FLUSH_MS)
	}
	return {
		debug: (msg, fields) => emit('debug', msg, fields),
		info: (msg, fields) => emit('info', msg, fields),
		warn: (msg, fields) => emit('warn', msg, fields),
		error: (msg, fields) => emit('error', msg, fields),
		flush,
	}
}

/** Turns an unknown error into loggable fields without its stack leaking to clients. */
export function errorFields(err: unknown): Fields {
	if (err instanceof Error) {
		const cause = err.cause instanceof Error ? err.cause.message : undefined
		return { err: err.message, err_name: err.name, ...(cause ? { cause } : {}) }
	}
	return { err: String(err) }
}
