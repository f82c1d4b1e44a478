// What a user would write instead of download-gate: Fastify + ioredis + jose.
// GET /api/get-download-token/:user_id/:filename signs an HS256 JWT and stores
// its jti in Redis (SET … EX); GET /api/download/:user_id/:filename verifies
// the token, checks the jti in Redis and streams the file with Content-Length.
// No use limits, no ranges. FASTIFY_WORKERS > 1 forks with node:cluster.
// Prints `ready` once every worker listens.
//
// Environment: PORT, REDIS_URL, STORAGE_DIR, JWT_SECRET, API_KEY, FASTIFY_WORKERS.

import cluster from 'node:cluster'
import { randomUUID } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { errors, jwtVerify, SignJWT } from 'jose'

const env = (name: string): string => {
	const value = process.env[name]
	if (!value) throw new Error(`${name} is required`)
	return value
}

const workers = Number(process.env.FASTIFY_WORKERS ?? 1)

if (workers > 1 && cluster.isPrimary) {
	let listening = 0
	cluster.on('listening', () => {
		if (++listening === workers) console.log('ready')
	})
	for (let i = 0; i < workers; i++) cluster.fork()
	const stop = () => {
		for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM')
		process.exit(0)
	}
	process.on('SIGTERM', stop)
	process.on('SIGINT', stop)
} else {
	await serve()
}

async function serve(): Promise<void> {
	const storage = env('STORAGE_DIR')
	const apiKey = env('API_KEY')
	const key = new TextEncoder().encode(env('JWT_SECRET'))
	const redis = new Redis(env('REDIS_URL'))
	const name = /^[A-Za-z0-9_.@-]{1,128}$/
	const jtiKey = (jti: string) => `fx:jti:${jti}`

	const app = Fastify({ logger: false })

	app.get<{ Params: { user_id: string; filename: string }; Querystring: { ttl?: string } }>(
		'/api/get-download-token/:user_id/:filename',
		async (req, reply) => {
			if (req.headers['x-api-key'] !== apiKey) return reply.code(401).send({ error: 'unauthorized' })
			const { user_id, filename } = req.params
			if (!name.test(user_id) || !name.test(filename) || filename.startsWith('.'))
				return reply.code(400).send({ error: 'invalid_request' })
			const ttl = Number(req.query.ttl ?? 900)
			if (!Number.isInteger(ttl) || ttl < 1 || ttl > 86_400) return reply.code(400).send({ error: 'invalid_request' })
			const file = await stat(join(storage, user_id, filename)).catch(() => null)
			if (!file?.isFile()) return reply.code(404).send({ error: 'file_not_found' })
			const jti = randomUUID()
			const token = await new SignJWT({ user_id, filename, action: 'download' })
				.setProtectedHeader({ alg: 'HS256' })
				.setJti(jti)
				.setIssuedAt()
				.setExpirationTime(`${ttl}s`)
				.sign(key)
			await redis.set(jtiKey(jti), `${user_id}/${filename}`, 'EX', ttl)
			reply.header('Cache-Control', 'no-store')
			return { token, expires_in: ttl, download_url: `/api/download/${user_id}/${encodeURIComponent(filename)}` }
		},
	)

	app.get<{ Params: { user_id: string; filename: string } }>('/api/download/:user_id/:filename', async (req, reply) => {
		const auth = req.headers.authorization
		if (!auth?.startsWith('Bearer ')) return reply.code(401).send({ error: 'missing_token' })
		let claims: Record<string, unknown>
		try {
			;({ payload: claims } = await jwtVerify(auth.slice(7), key, { algorithms: ['HS256'] }))
		} catch (err) {
			const code = err instanceof errors.JWTExpired ? 'token_expired' : 'invalid_token'
			return reply.code(401).send({ error: code })
		}
		const { user_id, filename } = req.params
		if (claims.action !== 'download' || claims.user_id !== user_id || claims.filename !== filename)
			return reply.code(403).send({ error: 'token_mismatch' })
		if (typeof claims.jti !== 'string' || (await redis.get(jtiKey(claims.jti))) !== `${user_id}/${filename}`)
			return reply.code(401).send({ error: 'token_revoked' })
		if (!name.test(user_id) || !name.test(filename) || filename.startsWith('.'))
			return reply.code(404).send({ error: 'file_not_found' })
		const path = join(storage, user_id, filename)
		const file = await stat(path).catch(() => null)
		if (!file?.isFile()) return reply.code(404).send({ error: 'file_not_found' })
		reply.header('Content-Type', 'video/mp4')
		reply.header('Content-Length', file.size)
		return reply.send(createReadStream(path))
	})

	app.get('/health', async () => ({ status: 'ok' }))

	const close = async () => {
		await app.close()
		redis.disconnect()
		process.exit(0)
	}
	process.on('SIGTERM', close)
	process.on('SIGINT', close)
	await app.listen({ port: Number(env('PORT')), host: '127.0.0.1' })
	if (cluster.isPrimary) console.log('ready')
}
