// The do-it-yourself peer: fastify-fixture.ts (Fastify + ioredis + jose) on
// the bench's redis-server, run with Bun, or with Node after a `bun build`
// to plain JavaScript (Node 20 does not run TypeScript).

import { join } from 'node:path'
import { Redis } from 'ioredis'
import { API_KEY, type BenchContext, DATA, SECRET, STORAGE } from '../lib/context'
import type { HttpRequest } from '../lib/http'
import { baseEnv, freePort, spawnServer, waitForLine } from '../lib/proc'
import { bunVersion, nodeVersion } from '../lib/versions'
import type { TokenServer } from './types'

const FIXTURE = join(import.meta.dir, 'fastify-fixture.ts')

async function entry(runtime: 'bun' | 'node'): Promise<string[]> {
	if (runtime === 'bun') return ['bun', FIXTURE]
	const built = await Bun.build({ entrypoints: [FIXTURE], target: 'node', packages: 'external', outdir: DATA })
	const out = built.outputs[0]?.path
	if (!built.success || !out) throw new Error(`bun build of the Fastify fixture failed: ${built.logs.join('\n')}`)
	// Under bench/.data/, so Node finds fastify, ioredis and jose in the repository's node_modules.
	return ['node', out]
}

/** Starts the Fastify fixture with `processes` processes (node:cluster when more than one). */
export async function startFastify(ctx: BenchContext, opts: { processes: number }): Promise<TokenServer> {
	const runtime = ctx.opts.fastifyRuntime
	const version = runtime === 'bun' ? bunVersion() : nodeVersion()
	if (!version) throw new Error('node is not installed: run the Fastify fixture with --fastify=bun')
	const port = freePort()
	const url = `http://127.0.0.1:${port}`
	const managed = spawnServer(await entry(runtime), {
		env: baseEnv({
			NODE_ENV: 'production',
			PORT: String(port),
			REDIS_URL: ctx.redis.url,
			STORAGE_DIR: STORAGE,
			JWT_SECRET: SECRET,
			API_KEY,
			FASTIFY_WORKERS: String(opts.processes),
		}),
		stdout: 'pipe',
	})
	const stop = () => managed.stop()
	try {
		await waitForLine('Fastify fixture', managed, 'ready')
	} catch (err) {
		await stop()
		throw err
	}

	const issue = async (user: string, file: string): Promise<{ token: string; jti: string }> => {
		const res = await fetch(`${url}/api/get-download-token/${user}/${encodeURIComponent(file)}?ttl=86400`, {
			headers: { 'X-API-Key': API_KEY },
		})
		if (!res.ok) throw new Error(`Fastify fixture issue ${res.status}: ${await res.text()}`)
		const { token } = (await res.json()) as { token: string }
		const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { jti: string }
		return { token, jti: payload.jti }
	}
	const download = (user: string, file: string, token: string): HttpRequest => ({
		url: `${url}/api/download/${user}/${encodeURIComponent(file)}`,
		headers: { Authorization: `Bearer ${token}` },
	})

	return {
		name: 'Fastify + ioredis',
		runtime: version,
		processes: opts.processes,
		url,
		pids: [managed.pid],
		redisPid: ctx.redis.pid,
		stop,
		async download(user, file) {
			return download(user, file, (await issue(user, file)).token)
		},
		issuance: (file) => ({
			url: `${url}/api/get-download-token/{user}/${encodeURIComponent(file)}?ttl=60`,
			headers: { 'X-API-Key': API_KEY },
		}),
		async forged(user, file) {
			const { token } = await issue(user, file)
			return download(user, file, `${token.slice(0, -4)}AAAA`)
		},
		async revoked(user, file) {
			const { token, jti } = await issue(user, file)
			// What a user would do to revoke: delete the jti.
			const redis = new Redis(ctx.redis.url)
			await redis.del(`fx:jti:${jti}`)
			redis.disconnect()
			return download(user, file, token)
		},
	}
}
