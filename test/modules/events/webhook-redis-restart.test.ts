import { afterAll, beforeAll, expect, test } from 'bun:test'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Cluster, Redis } from 'ioredis'
import { type RedisServer, startRedisServer } from '../../support/redis-server'
import { startWebhookReceiver } from '../../support/webhook-receiver'
import {
	connectRedis,
	groupState,
	makeEvent,
	pendingByConsumer,
	sortedIds,
	startDelivery,
	uniqueKeys,
	WEBHOOK_SECRET,
	waitFor,
	writeEvents,
} from './fixtures'

let server: RedisServer
let dataDir: string
let redis: Redis | Cluster
beforeAll(async () => {
	dataDir = await mkdtemp(join(tmpdir(), 'dlg-webhooks-aof-'))
	server = await startRedisServer({ dataDir })
	redis = await connectRedis(server.url)
})
afterAll(async () => {
	redis.disconnect()
	await server.stop()
	await rm(dataDir, { recursive: true, force: true })
})

const seqOf = (payload: unknown): number => Number((payload as { data: { seq: number } }).data.seq)

test('Redis killed and restarted from its AOF: nothing acknowledged comes again, nothing pending is lost', async () => {
	const keys = uniqueKeys('aof')
	const r = startWebhookReceiver(WEBHOOK_SECRET)
	// Before the crash: events 0-9 accepted, 10-19 refused (so they stay pending).
	let accepting = (seq: number) => seq < 10
	r.respond = ({ payload }) => new Response(null, { status: accepting(seqOf(payload)) ? 204 : 500 })
	const tuning = { claimIdleMs: 600, claimEveryMs: 100, backoffBaseMs: 50, backoffCapMs: 200 }
	const first = await startDelivery(redis, keys, [r.url], { consumerName: 'before-crash', timeoutMs: 300, tuning })
	const events = Array.from({ length: 30 }, (_, i) => makeEvent('download.completed', i))
	await writeEvents(redis, keys.streamKey, events.slice(0, 20))
	await waitFor(
		async () =>
			r.delivered().length === 10 &&
			(await pendingByConsumer(redis, keys.streamKey, r.url)).get('before-crash') === 10 &&
			new Set(r.requests.filter((x) => x.status === 500).map((x) => x.id)).size === 10,
		5000,
		'ten delivered, ten refused and pending',
	)
	// The whole deployment goes down: Redis at once (SIGKILL), the instance with it (its memory is gone).
	await server.kill()
	await first.stop()
	await server.start()
	const restartedAt = performance.now()
	accepting = () => true

	// A new instance finds the pending entries in the restored group and takes them over.
	const second = await startDelivery(redis, keys, [r.url], { consumerName: 'after-crash', timeoutMs: 300, tuning })
	try {
		await writeEvents(redis, keys.streamKey, events.slice(20, 25))
		await waitFor(() => r.delivered().length === 25, 5000, 'the pending and the new events')
		// Redis goes down again under a running instance: it carries on once Redis is back.
		await server.kill()
		await Bun.sleep(500)
		await server.start()
		await waitFor(async () => (await redis.ping().catch(() => '')) === 'PONG', 5000, 'the client to reconnect')
		await writeEvents(redis, keys.streamKey, events.slice(25))
		await waitFor(() => r.delivered().length === 30, 5000, 'the events after the second restart')
		await Bun.sleep(200)

		expect(sortedIds(r.delivered())).toEqual(sortedIds(events))
		const afterRestart = r.requests.filter((x) => x.at > restartedAt).map((x) => seqOf(x.payload))
		expect(afterRestart.filter((seq) => seq < 10)).toEqual([])
		expect(r.rejected).toEqual([])
		expect(await groupState(redis, keys.streamKey, r.url)).toEqual({ pending: 0, lag: 0 })
	} finally {
		await second.stop()
		await r.stop()
	}
})
