import type { Subprocess } from 'bun'
import { tracked } from './child-processes'
import { assertNoInternalErrors, REPO_ROOT } from './helpers'
import { pollUntil } from './poll'
import { freePort } from './redis-server'

/** `bun src/index.ts` as a child process: the service exactly as deployed. */
export interface ServerProcess {
	readonly url: string
	readonly pid: number
	/** Resident memory of the server process in bytes (Linux /proc). */
	rss(): Promise<number>
	stop(): Promise<number>
	output(): string
}

/** Starts the service with `env` (plus PATH/HOME) and waits until /health answers. */
export async function startServerProcess(env: Record<string, string>): Promise<ServerProcess> {
	const port = freePort()
	const child: Subprocess<'ignore', 'pipe', 'pipe'> = Bun.spawn(['bun', 'src/index.ts'], {
		cwd: REPO_ROOT,
		env: {
			PATH: process.env.PATH ?? '',
			HOME: process.env.HOME ?? '/tmp',
			PORT: String(port),
			HOST: '127.0.0.1',
			...env,
		},
		stdin: 'ignore',
		stdout: 'pipe',
		stderr: 'pipe',
	})
	tracked(child)
	let out = ''
	const drain = async (stream: ReadableStream<Uint8Array>) => {
		for await (const chunk of stream) out += new TextDecoder().decode(chunk)
	}
	void drain(child.stdout)
	void drain(child.stderr)
	const url = `http://127.0.0.1:${port}`
	// Not healthy within the bound: the test's first request shows why.
	await pollUntil(
		async () => {
			if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${out}`)
			return (await fetch(`${url}/health`).catch(() => null))?.ok === true
		},
		Boolean,
		5000,
		25,
	)
	return {
		url,
		pid: child.pid,
		async rss() {
			const status = await Bun.file(`/proc/${child.pid}/status`).text()
			const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN)
			return kb * 1024
		},
		async stop() {
			child.kill('SIGTERM')
			const code = await child.exited
			assertNoInternalErrors(out.split('\n'))
			return code
		},
		output: () => out,
	}
}
