import type { LogLevel } from './config'

type Fields = Record<string, unknown>

/** A JSON-lines logger. Callers pass fields, never raw tokens or secrets. */
export interface Logger {
	debug(msg: string, fields?: Fields): void
	info(msg: string, fields?: Fields): void
	warn(msg: string, fields?: Fields): void
	error(msg: string, fields?: Fields): void
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 }

/** Writes one JSON object per line to `write` (stdout by default) at or above `level`. */
export function createLogger(level: LogLevel, write: (line: string) => void = (l) => process.stdout.write(l)): Logger {
	const min = RANK[level]
	const emit = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: Fields) => {
		if (RANK[lvl] < min) return
		write(`${JSON.stringify({ level: lvl, time: new Date().toISOString(), msg, ...fields })}\n`)
	}
	return {
		debug: (msg, fields) => emit('debug', msg, fields),
		info: (msg, fields) => emit('info', msg, fields),
		warn: (msg, fields) => emit('warn', msg, fields),
		error: (msg, fields) => emit('error', msg, fields),
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
