// download-gate itself: `bun src/index.ts` in production mode against the
// bench's redis-server, WORKERS=n, LOG_LEVEL=warn. Under --profile it runs
// with `bun --cpu-prof` and writes its profile when stopped.

import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { API_KEY, type BenchContext, PROFILES, SECRET, STORAGE } from '../lib/context'
import type { HttpRequest } from '../lib/http'
import { answers, baseEnv, freePort, spawnServer, waitFor } from '../lib/proc'
import { listeningProcesses } from '../lib/proc-stats'
import type { BenchRedis } from '../lib/redis'
import { bunVersion } from '../lib/versions'
import type { TokenServer } from './types'

/** What the issuance route answers (the fields the bench uses). */
export interface Issued {
	token: string
	jti: string
}

/** download-gate, with its token routes. */
export interface DownloadGate extends TokenServer {
	/** Issues a token with `query` (e.g. `?ttl=86400&max_uses=1`). */
	issue(user: string, file: string, query?: string): Promise<Issued>
	/** A GET of `file` with a fresh token; `query` adds issuance parameters (e.g. `&ip=127.0.0.0/8`). */
	download(user: string, file: string, opts?: { maxUses?: number; query?: string }): Promise<HttpRequest>
	/** A token request for `file` (`{user}` rotated by wrk); `query` adds parameters to `?ttl=60`. */
	issuance(file: string, query?: string): HttpRequest
	/** The .cpuprofile it writes when stopped (under --profile), else null. */
	readonly profile: string | null
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` })

/** Starts download-gate and waits until every worker answers. */
export async function startDownloadGate(
	ctx: BenchContext,
	opts: {
		workers: number
		redis?: BenchRedis
		env?: Record<string, string>
		/** Where the files are, as environment (default `STORAGE_DIR` = bench/.data/storage; `S3_*` for a bucket). */
		storage?: Record<string, string>
		/** Processes it reads from whose CPU is reported apart (see `RunningTarget.backends`). */
		backends?: Record<string, number>
		profileName?: string
	},
): Promise<DownloadGate> {
	const redis = opts.redis ?? ctx.redis
	const port = freePort()
	const url = `http://127.0.0.1:${port}`
	let profile: string | null = null
	const cmd = ['bun', 'src/index.ts']
	if (ctx.opts.profile) {
		mkdirSync(PROFILES, { recursive: true })
		const name = `${ctx.runName}-${opts.profileName ?? `download-gate-w${opts.workers}`}.cpuprofile`
		profile = join(PROFILES, name)
		// Only the parent is profiled: workers are re-spawned without Bun's flags.
		cmd.splice(1, 0, '--cpu-prof', '--cpu-prof-interval=250', `--cpu-prof-dir=${PROFILES}`, `--cpu-prof-name=${name}`)
	}
	const managed = spawnServer(cmd, {
		cwd: ctx.opts.serviceDir,
		env: baseEnv({
			NODE_ENV: 'production',
			PORT: String(port),
			HOST: '127.0.0.1',
			WORKERS: String(opts.workers),
			LOG_LEVEL: 'warn',
			JWT_SECRET: SECRET,
			REDIS_URL: redis.url,
			API_KEYS: API_KEY,
			ISSUE_AUTH: 'api-key',
			...(opts.storage ?? { STORAGE_DIR: STORAGE }),
			SHUTDOWN_GRACE_S: '2',
			// The bench issues thousands of tokens a second and sends refusals on purpose:
			// the limits would answer 429 and measure the limiter instead.
			RATE_LIMIT_ISSUE: '100000000/min',
			RATE_LIMIT_DENIED: '100000000/min',
			...opts.env,
		}),
	})
	const stop = () => managed.stop(10_000)
	try {
		await waitFor('download-gate', answers(`${url}/health`), { managed, timeoutMs: 20_000 })
		// Workers bind the same port (reusePort) a moment later: wait until all of them listen.
		await waitFor('download-gate workers', async () => listeningProcesses(managed.pid, port) >= opts.workers, {
			managed,
			timeoutMs: 20_000,
		})
	} catch (err) {
		await stop()
		throw err
	}

	const issue = async (user: string, file: string, query = '?ttl=86400'): Promise<Issued> => {
		const res = await fetch(`${url}/api/get-download-token/${user}/${encodeURIComponent(file)}${query}`, {
			headers: { 'X-API-Key': API_KEY },
		})
		if (!res.ok) throw new Error(`download-gate issue ${res.status}: ${await res.text()}`)
		return (await res.json()) as Issued
	}
	const downloadUrl = (user: string, file: string) => `${url}/api/download/${user}/${encodeURIComponent(file)}`

	return {
		name: 'download-gate',
		runtime: bunVersion(),
		processes: opts.workers,
		url,
		pids: [managed.pid],
		redisPid: redis.pid,
		backends: opts.backends,
		profile,
		stop,
		issue,
		async download(user, file, o = {}): Promise<HttpRequest> {
			const query = `?ttl=86400${o.maxUses ? `&max_uses=${o.maxUses}` : ''}${o.query ?? ''}`
			const { token } = await issue(user, file, query)
			return { url: downloadUrl(user, file), headers: bearer(token) }
		},
		issuance: (file, query = '') => ({
			url: `${url}/api/get-download-token/{user}/${encodeURIComponent(file)}?ttl=60${query}`,
			headers: { 'X-API-Key': API_KEY },
		}),
		async forged(user, file) {
			const { token } = await issue(user, file)
			return { url: downloadUrl(user, file), headers: bearer(`${token.slice(0, -4)}AAAA`) }
		},
		async revoked(user, file) {
			const { token, jti } = await issue(user, file)
			const res = await fetch(`${url}/api/users/${user}/tokens/${jti}`, {
				method: 'DELETE',
				headers: { 'X-API-Key': API_KEY },
			})
			if (res.status !== 204) throw new Error(`download-gate revoke ${res.status}: ${await res.text()}`)
			return { url: downloadUrl(user, file), headers: bearer(token) }
		},
	}
}
