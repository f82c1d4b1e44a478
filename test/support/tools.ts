import { realpath } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { REPO_ROOT } from './helpers'

// The real tools the deployment files are checked with (docker-compose,
// promtool, python3-docker, redis-server, redis-cli), and the download clients
// the bucket suites drive (curl, aria2c, wget, ffmpeg/ffprobe). A missing tool
// fails the test that needs it, naming the package `.ci/run` installs it from.

/** The repository root with symlinks resolved, as the tools print paths. */
export const ROOT = await realpath(REPO_ROOT)

/** `path` (relative to the repository root) as an absolute path, as the tools print it. */
export const repoPath = (path: string): string => join(ROOT, path)

const SPAWN_TIMEOUT_MS = 30_000

/** What a tool printed and how it exited. */
export interface RunResult {
	readonly exitCode: number
	readonly stdout: string
	readonly stderr: string
}

const INSTALL_HINT: Readonly<Record<string, string>> = {
	'docker-compose': 'apt-get install docker-compose',
	promtool: 'apt-get install prometheus',
	'redis-server': 'apt-get install redis-server',
	'redis-cli': 'apt-get install redis-tools',
	'/usr/bin/python3': 'apt-get install python3-docker',
	aria2c: 'apt-get install aria2',
	wget: 'apt-get install wget',
	ffmpeg: 'apt-get install ffmpeg',
	ffprobe: 'apt-get install ffmpeg',
}

/** The path of `tool`; throws naming the package `.ci/run` installs it from when it is missing. */
export function requireTool(tool: string): string {
	const path = tool.startsWith('/') ? (Bun.file(tool).size > 0 ? tool : null) : Bun.which(tool)
	if (path === null) {
		throw new Error(`${tool} is not installed: .ci/run installs it (${INSTALL_HINT[tool] ?? tool})`)
	}
	return path
}

/** Runs a command to completion (killed after 30 s) with exactly `env` (plus PATH and HOME), in the repository root by default. */
export async function run(
	argv: readonly string[],
	options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<RunResult> {
	const [tool, ...args] = argv
	if (tool === undefined) throw new Error('empty command')
	const proc = Bun.spawn([requireTool(tool), ...args], {
		cwd: options.cwd ?? ROOT,
		env: { PATH: Bun.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir(), ...options.env },
		stdin: 'ignore',
		stdout: 'pipe',
		stderr: 'pipe',
		timeout: SPAWN_TIMEOUT_MS,
	})
	const [stdout, stderr, exitCode] = await Promise.all([
		new Response(proc.stdout).text(),
		new Response(proc.stderr).text(),
		proc.exited,
	])
	return { exitCode, stdout, stderr }
}

/** `run`, throwing with the tool's output when it exits non-zero. */
export async function runOk(
	argv: readonly string[],
	options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<RunResult> {
	const result = await run(argv, options)
	if (result.exitCode !== 0) {
		throw new Error(`${argv.join(' ')} exited with ${result.exitCode}:\n${result.stdout}${result.stderr}`)
	}
	return result
}
