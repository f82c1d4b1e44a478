// Child processes of the bench: every server is started in its own process
// group (setsid), registered here, and stopped as a group, so a worker a
// server forked itself (download-gate's WORKERS, nginx's workers) goes too,
// on success, on failure and on Ctrl-C.

import type { Subprocess } from 'bun'

/** A started server: its group leader and how to stop it. */
export interface Managed {
	readonly pid: number
	readonly proc: Subprocess
	/** SIGTERM to the whole group, then SIGKILL after `graceMs`; resolves once the leader exited. */
	stop(graceMs?: number): Promise<void>
}

const live = new Set<Managed>()

function signalGroup(pid: number, signal: NodeJS.Signals): void {
	try {
		process.kill(-pid, signal)
	} catch {
		// The group is already gone.
	}
}

/** Starts `cmd` as the leader of a new process group, stopped with the bench whatever happens. */
export function spawnServer(
	cmd: string[],
	opts: { cwd?: string; env?: Record<string, string>; stdout?: 'ignore' | 'inherit' | 'pipe' } = {},
): Managed {
	const proc = Bun.spawn(cmd, {
		cwd: opts.cwd,
		env: opts.env,
		stdin: 'ignore',
		stdout: opts.stdout ?? 'ignore',
		stderr: 'inherit',
		detached: true,
	})
	const managed: Managed = {
		pid: proc.pid,
		proc,
		async stop(graceMs = 5000) {
			if (!live.has(managed)) return
			signalGroup(proc.pid, 'SIGTERM')
			const timer = setTimeout(() => signalGroup(proc.pid, 'SIGKILL'), graceMs)
			await proc.exited
			clearTimeout(timer)
			// A worker that outlived its leader (it should not) goes now.
			signalGroup(proc.pid, 'SIGKILL')
			live.delete(managed)
		},
	}
	live.add(managed)
	return managed
}

/** Stops every server still running (in parallel). */
export async function stopAll(): Promise<void> {
	await Promise.all([...live].map((m) => m.stop(3000)))
}

let installed = false

/** SIGINT/SIGTERM stop every server then exit 130/143; a plain exit SIGKILLs what is left. */
export function installCleanup(): void {
	if (installed) return
	installed = true
	let stopping = false
	const onSignal = (signal: NodeJS.Signals, code: number) => {
		process.on(signal, () => {
			// A second signal does not wait: the exit handler below SIGKILLs what is left.
			if (stopping) process.exit(code)
			stopping = true
			console.error(`\n[bench] ${signal}: stopping ${live.size} server(s)`)
			stopAll().finally(() => process.exit(code))
		})
	}
	onSignal('SIGINT', 130)
	onSignal('SIGTERM', 143)
	process.on('exit', () => {
		for (const m of live) signalGroup(m.pid, 'SIGKILL')
	})
}

/** Runs a short command to completion and returns its stdout (stderr is kept for errors). */
export async function sh(cmd: string[], env?: Record<string, string>): Promise<string> {
	const p = Bun.spawn(cmd, { stdout: 'pipe', stderr: 'pipe', env })
	const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited])
	if (code !== 0) throw new Error(`${cmd[0]} exited with ${code}: ${err.trim().slice(0, 500)}`)
	return out
}

/** The full path of `name`, looking in /usr/sbin too (nginx lives there). */
export function which(name: string): string | null {
	return Bun.which(name, { PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` })
}

/** A loopback port that was free a moment ago (bound to 0, then released). */
export function freePort(): number {
	const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
	const port = probe.port
	probe.stop(true)
	return port
}

/** Polls `probe` every 25 ms until it is true; throws after `timeoutMs` or when `managed` exits. */
export async function waitFor(
	what: string,
	probe: () => Promise<boolean>,
	opts: { timeoutMs?: number; managed?: Managed } = {},
): Promise<void> {
	const deadline = Date.now() + (opts.timeoutMs ?? 10_000)
	while (Date.now() < deadline) {
		if (await probe().catch(() => false)) return
		const code = opts.managed?.proc.exitCode
		if (code !== null && code !== undefined) throw new Error(`${what} exited with code ${code} before it was ready`)
		await Bun.sleep(25)
	}
	throw new Error(`${what} was not ready within ${opts.timeoutMs ?? 10_000} ms`)
}

/** Resolves once the server printed a line equal to `line` (its stdout must be 'pipe'); throws if it exits first. */
export async function waitForLine(what: string, managed: Managed, line: string, timeoutMs = 10_000): Promise<void> {
	const stdout = managed.proc.stdout
	if (!(stdout instanceof ReadableStream)) throw new Error(`${what}: stdout is not piped`)
	const reader = stdout.pipeThrough(new TextDecoderStream()).getReader()
	const timer = setTimeout(() => reader.cancel(), timeoutMs)
	let seen = ''
	try {
		for (;;) {
			const { value, done } = await reader.read()
			if (done)
				throw new Error(`${what} ${managed.proc.exitCode === null ? 'timed out' : 'exited'} before printing "${line}"`)
			seen += value
			if (seen.split('\n').includes(line)) return
		}
	} finally {
		clearTimeout(timer)
		reader.releaseLock()
	}
}

/** A probe for `waitFor`: an HTTP GET of `url` answered with `status` (any 2xx by default). */
export const answers = (url: string, init?: RequestInit, status?: number) => async (): Promise<boolean> => {
	const res = await fetch(url, init)
	await res.arrayBuffer()
	return status === undefined ? res.ok : res.status === status
}

/** The minimal environment for a child: PATH and HOME only, plus `extra`. */
export function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
	return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...extra }
}
