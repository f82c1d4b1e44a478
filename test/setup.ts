import { afterAll } from 'bun:test'
import { type RedisServer, startRedisServer } from './support/redis-server'

// One real redis-server for the whole run (or the one REDIS_URL names).
// Fault tests start their own, so stopping it never disturbs other tests.
let server: RedisServer | null = null
if (!process.env.REDIS_URL) {
	server = await startRedisServer()
	process.env.TEST_REDIS_URL = server.url
} else {
	process.env.TEST_REDIS_URL = process.env.REDIS_URL
}

afterAll(async () => {
	await server?.stop()
})
