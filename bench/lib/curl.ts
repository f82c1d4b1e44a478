// The curl driver: large bodies (wrk reads 8 KiB at a time and caps
// throughput below what the servers send), slow clients, and exact headers.

import { curlHeaderArgs, type HttpRequest } from './http'

interface CurlRun {
	status: number
	bytes: number
	exitCode: number
}

async function curl(req: HttpRequest, extra: string[]): Promise<CurlRun> {
	const p = Bun.spawn(
		['curl', '-s', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', ...extra, ...curlHeaderArgs(req), req.url],
		{ stdout: 'pipe', stderr: 'ignore' },
	)
	const [out, exitCode] = await Promise.all([new Response(p.stdout).text(), p.exited])
	const [status, bytes] = out.trim().split(' ').map(Number)
	return { status: status ?? 0, bytes: bytes ?? 0, exitCode }
}

/** What `parallel` simultaneous downloads of `req` achieved. */
export interface ParallelResult {
	bytes: number
	seconds: number
	/** Decimal megabytes per second over all of them. */
	mbps: number
	/** Downloads that did not end with 200 and exit code 0. */
	failures: number
}

/** `parallel` curl downloads of `req` at once, each to /dev/null. */
export async function parallelDownloads(req: HttpRequest, parallel: number): Promise<ParallelResult> {
	const started = performance.now()
	const runs = await Promise.all(Array.from({ length: parallel }, () => curl(req, [])))
	const seconds = (performance.now() - started) / 1000
	const bytes = runs.reduce((a, r) => a + r.bytes, 0)
	return {
		bytes,
		seconds,
		mbps: bytes / 1e6 / seconds,
		failures: runs.filter((r) => r.status !== 200 || r.exitCode !== 0).length,
	}
}

/** `clients` curls reading `req` at `rate` (curl's `--limit-rate`, e.g. `1M`) for `seconds`. */
export async function slowClients(
	req: HttpRequest,
	opts: { clients: number; rate: string; seconds: number },
): Promise<{ bytes: number; failures: number }> {
	const runs = await Promise.all(
		Array.from({ length: opts.clients }, () =>
			curl(req, ['--limit-rate', opts.rate, '--max-time', String(opts.seconds)]),
		),
	)
	// Exit code 28 is the --max-time we asked for.
	return {
		bytes: runs.reduce((a, r) => a + r.bytes, 0),
		failures: runs.filter((r) => r.status !== 200 || (r.exitCode !== 0 && r.exitCode !== 28)).length,
	}
}

/** One GET as curl sees it on the wire: status, response headers (lower-case names) and body bytes. */
export async function getWithHeaders(
	req: HttpRequest,
): Promise<{ status: number; headers: Map<string, string>; bytes: number }> {
	const p = Bun.spawn(
		[
			'curl',
			'-s',
			'-D',
			'-',
			'-o',
			'/dev/null',
			'-w',
			'\nBENCH_SIZE %{size_download}',
			...curlHeaderArgs(req),
			req.url,
		],
		{ stdout: 'pipe', stderr: 'ignore' },
	)
	const [out] = await Promise.all([new Response(p.stdout).text(), p.exited])
	const lines = out.split(/\r?\n/)
	const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0)
	const headers = new Map<string, string>()
	for (const line of lines.slice(1)) {
		const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line)
		if (m?.[1] && m[2] !== undefined) headers.set(m[1].toLowerCase(), m[2])
	}
	const bytes = Number(/BENCH_SIZE (\d+)/.exec(out)?.[1] ?? 0)
	return { status, headers, bytes }
}
