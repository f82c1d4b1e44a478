import { afterAll, beforeAll, expect, test } from 'bun:test'
import { Redis } from 'ioredis'
import { WEBHOOK_SECRET } from './modules/events/fixtures'
import { makeTestApp } from './support/helpers'
import { pollUntil } from './support/poll'

// createDeps builds every client of the process; one that fails half-way closes what it opened.

let redis: Redis
beforeAll(() => {
	redis = new Redis(process.env.TEST_REDIS_URL ?? '')
})
afterAll(() => redis.disconnect())

const clients = async () => (String(await redis.client('LIST')).match(/^id=/gm) ?? []).length

test('webhook settings refused after the Redis clients were opened: createDeps rejects and leaves no connection behind', async () => {
	const before = await clients()
	const started = makeTestApp({
		env: { WEBHOOK_URLS: 'http://127.0.0.1:9/hooks', WEBHOOK_SECRET, WEBHOOK_TIMEOUT_S: '5' },
		// Takeover sooner than an attempt may last would deliver twice: the worker refuses it.
		webhookTuning: { claimIdleMs: 1000 },
	})
	await expect(started).rejects.toThrow('claimIdleMs must be longer than timeoutMs')
	expect(await pollUntil(clients, (n) => n === before, 2000, 20)).toBe(before)
})
