// The baseline: `processes` copies of bun-file-server.ts sharing one port
// (reusePort), each a plain `new Response(Bun.file(path))` with no checks.

import { join } from 'node:path'
import { STORAGE } from '../lib/context'
import { answers, baseEnv, freePort, type Managed, spawnServer, waitFor } from '../lib/proc'
import { bunVersion } from '../lib/versions'
import type { FileServer } from './types'

/** Starts the plain Bun.file server with `processes` processes. */
export async function startBunFile(opts: { processes: number }): Promise<FileServer> {
	const port = freePort()
	const url = `http://127.0.0.1:${port}`
	const children: Managed[] = []
	const stop = async () => {
		await Promise.all(children.map((c) => c.stop()))
	}
	try {
		for (let i = 0; i < opts.processes; i++) {
			const managed = spawnServer(['bun', join(import.meta.dir, 'bun-file-server.ts')], {
				env: baseEnv({ PORT: String(port), BASELINE_DIR: STORAGE }),
			})
			children.push(managed)
			// One at a time, so each is known to have bound the port.
			await waitFor('Bun.file baseline', async () => (await fetch(url)).status === 404, { managed })
		}
		await waitFor('Bun.file baseline', answers(`${url}/api/download/u0/small.mp4`))
	} catch (err) {
		await stop()
		throw err
	}
	return {
		name: 'Bun.file baseline',
		runtime: bunVersion(),
		processes: opts.processes,
		url,
		pids: children.map((c) => c.pid),
		redisPid: null,
		stop,
		download: async (user, file) => ({ url: `${url}/api/download/${user}/${encodeURIComponent(file)}` }),
	}
}
