// The wrk driver: Debian's wrk with bench/wrk/request.lua, which sets the
// headers, can rotate users in the path, and prints one JSON summary line.

import { join } from 'node:path'
import type { HttpRequest } from './http'
import { baseEnv } from './proc'

/** One wrk run. */
export interface WrkResult {
	/** Completed requests (any status). */
	requests: number
	seconds: number
	rps: number
	p50Ms: number
	p99Ms: number
	/** Answers outside 2xx/3xx. */
	non2xx: number
	/** Connect, read, write and timeout errors. */
	errors: number
	bytes: number
}

const SCRIPT = join(import.meta.dir, '..', 'wrk', 'request.lua')

/** Runs wrk -t2 against `req` for `seconds` with `connections` open connections. */
export async function wrk(
	req: HttpRequest,
	opts: { connections: number; seconds: number; rotateUsers?: number },
): Promise<WrkResult> {
	const headers = Object.entries(req.headers ?? {})
		.map(([name, value]) => `${name}: ${value}`)
		.join('\n')
	const p = Bun.spawn(
		['wrk', '-t2', `-c${opts.connections}`, `-d${opts.seconds}s`, '--timeout', '5s', '-s', SCRIPT, req.url],
		{
			env: baseEnv({
				BENCH_HEADERS: headers,
				...(opts.rotateUsers ? { BENCH_ROTATE_USERS: String(opts.rotateUsers) } : {}),
			}),
			stdout: 'pipe',
			stderr: 'pipe',
		},
	)
	const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited])
	const json = /BENCH_JSON (\{.*\})/.exec(out)?.[1]
	if (!json) throw new Error(`wrk gave no result for ${req.url}:\n${out}${err}`)
	const r = JSON.parse(json) as Record<string, number | undefined>
	const requests = r.requests ?? 0
	const seconds = (r.duration_us ?? 1) / 1e6
	return {
		requests,
		seconds,
		rps: requests / seconds,
		p50Ms: (r.p50_us ?? 0) / 1000,
		p99Ms: (r.p99_us ?? 0) / 1000,
		non2xx: r.non2xx ?? 0,
		errors: r.errors ?? 0,
		bytes: r.bytes ?? 0,
	}
}
