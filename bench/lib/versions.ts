// Versions of the runtimes and tools, for the report.

import { cpus, totalmem } from 'node:os'
import { which } from './proc'

const first = (cmd: string[]): string => {
	try {
		const p = Bun.spawnSync(cmd, { stdout: 'pipe', stderr: 'pipe' })
		return `${p.stdout.toString()}${p.stderr.toString()}`.trim().split('\n')[0] ?? ''
	} catch {
		return ''
	}
}

/** `Bun 1.4.5`. */
export const bunVersion = (): string => `Bun ${Bun.version}`

/** `Node v20.20.2`, or null when node is not installed. */
export const nodeVersion = (): string | null => (which('node') ? `Node ${first(['node', '--version'])}` : null)

/** `nginx 1.22.1`, or null when nginx is not installed. */
export function nginxVersion(): string | null {
	const bin = which('nginx')
	if (!bin) return null
	return first([bin, '-v']).replace(/^nginx version: nginx\//, 'nginx ')
}

/** One line describing the machine and the tools. */
export function machine(): string {
	const cpu = cpus()[0]?.model ?? 'unknown CPU'
	const gib = Math.round(totalmem() / 2 ** 30)
	const redis = first(['redis-server', '--version']).split(' ').slice(0, 3).join(' ')
	const wrk = first(['wrk', '--version']).split(' ').slice(0, 2).join(' ')
	const kernel = first(['uname', '-r'])
	return `${cpus().length} × ${cpu}, ${gib} GiB RAM, Linux ${kernel}, ${bunVersion()}, ${redis}, ${wrk}, curl ${first(['curl', '--version']).split(' ')[1] ?? '?'}`
}
