import { expect, test } from 'bun:test'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeTestApp, serviceEnv, uniquePrefix } from '../../support/helpers'
import { waitFor as heldBy } from '../../support/poll'
import { type RedisServer, startRedisServer } from '../../support/redis-server'
import { startServerProcess } from '../../support/server-process'
import { startWebhookReceiver } from '../../support/webhook-receiver'
import {
	ALL_TYPES,
	cleanupsAfterEach,
	connectRedis,
	FAST_TUNING,
	groupState,
	pendingByConsumer,
	redisForFile,
	sortedIds,
	WEBHOOK_SECRET,
	waitFor,
	waitForGroups,
} from './fixtures'
import { readStream, type StreamEvent } from './stream'

// docs/contract.md §7 "at least once across all instances", with the faults
// that test it: a service process SIGKILLed while it holds deliveries, and
// Redis itself killed and restarted from its append-only file.

const redis = await redisForFile()
const cleanups = cleanupsAfterEach()

const jtiOf = (payload: unknown) => String((payload as StreamEvent).data.jti)

test('a service process SIGKILLed while it holds events: another instance takes them over and delivers them all', async () => {
	const r = startWebhookReceiver(WEBHOOK_SECRET)
	cleanups.push(() => r.stop())
	// The doomed process's attempts hang until it is killed; afterwards the receiver answers at once.
	let hanging = true
	const released: (() => void)[] = []
	r.respond = async () => {
		if (!hanging) return new Response(null, { status: 204 })
		await new Promise<void>((resolve) => released.push(resolve))
		return new Response(null, { status: 503 })
	}
	cleanups.push(() => {
		for (const release of released) release()
	})
	const storage = await mkdtemp(join(tmpdir(), 'dlg-webhook-kill-'))
	cleanups.push(() => rm(storage, { recursive: true, force: true }))
	await mkdir(join(storage, 'u'))
	await Bun.write(join(storage, 'u', 'v.mp4'), 'video')
	const prefix = uniquePrefix()
	const streamKey = `${prefix}events`
	const hooks = {
		WEBHOOK_URLS: r.url,
		WEBHOOK_SECRET,
		WEBHOOK_EVENTS: ALL_TYPES.join(','),
		RATE_LIMIT_ISSUE: '1000/min',
	}
	const doomed = await startServerProcess(
		serviceEnv(storage, { ...hooks, REDIS_KEY_PREFIX: prefix, WEBHOOK_TIMEOUT_S: '30' }),
	)
	const doomedConsumer = `${hostname()}:0`
	let held = 0
	try {
		await waitForGroups(redis, streamKey, [r.url])
		// One burst: the process reads what has arrived (up to a batch of 10) and attempts the first, which hangs.
		const answers = await Promise.all(
			Array.from({ length: 15 }, () => fetch(`${doomed.url}/api/get-download-token/u/v.mp4`)),
		)
		expect(answers.map((res) => res.status)).toEqual(Array(15).fill(200))
		held = await heldBy('the doomed process holding events, one attempt hanging', 5000, async () => {
			const pending = (await pendingByConsumer(redis, streamKey, r.url)).get(doomedConsumer) ?? 0
			return released.length === 1 && pending > 0 ? pending : `${pending} pending, ${released.length} hanging`
		})
	} finally {
		process.kill(doomed.pid, 'SIGKILL')
	}
	hanging = false
	for (const release of released) release()

	// Another instance of the same deployment (same prefix, same endpoint), a consumer of its own.
	const rescuer = await makeTestApp({
		env: { ...hooks, REDIS_KEY_PREFIX: prefix, WEBHOOK_TIMEOUT_S: '1', STORAGE_DIR: storage },
		webhookTuning: { ...FAST_TUNING, claimIdleMs: 1500 },
		workerIndex: 1,
	})
	cleanups.push(() => rescuer.close())
	await waitFor(() => r.delivered().length >= 15, 10_000, 'all 15 events')
	await Bun.sleep(300)
	const stream = await readStream(redis, streamKey)
	expect(stream).toHaveLength(15)
	expect(sortedIds(r.delivered())).toEqual(sortedIds(stream))
	expect(r.rejected).toEqual([])
	// The attempt the killed process had in flight went out again under the same webhook-id.
	const hung = r.requests.filter((x) => x.status === 503)
	expect(hung).toHaveLength(1)
	expect(r.delivered().map((x) => x.id)).toContain(hung[0]?.id ?? '')
	expect(held).toBeGreaterThan(0)
	expect(await groupState(redis, streamKey, r.url)).toEqual({ pending: 0, lag: 0 })
	expect((await pendingByConsumer(redis, streamKey, r.url)).get(doomedConsumer)).toBeUndefined()
}, 40_000)

test('Redis SIGKILLed and restarted from its AOF: every acknowledged event arrives, none delivered before comes again', async () => {
	const dataDir = await mkdtemp(join(tmpdir(), 'dlg-webhook-aof-'))
	const server: RedisServer = await startRedisServer({ dataDir })
	cleanups.push(() => rm(dataDir, { recursive: true, force: true }))
	cleanups.push(() => server.stop())
	const own = await connectRedis(server.url)
	cleanups.push(() => own.disconnect())
	const r = startWebhookReceiver(WEBHOOK_SECRET)
	cleanups.push(() => r.stop())
	let accepting = true
	r.respond = () => new Response(null, { status: accepting ? 204 : 500 })
	const t = await makeTestApp({
		env: {
			REDIS_URL: server.url,
			WEBHOOK_URLS: r.url,
			WEBHOOK_SECRET,
			WEBHOOK_TIMEOUT_S: '1',
			RATE_LIMIT_ISSUE: '1000/min',
		},
		webhookTuning: { ...FAST_TUNING, backoffCapMs: 200 },
	})
	cleanups.push(() => t.close())
	const streamKey = `${t.config.redisKeyPrefix}events`
	await waitForGroups(own, streamKey, [r.url])
	await t.putFile('u', 'v.mp4', 'video')
	const issued: string[] = []
	const issue = async () => issued.push((await t.issue('u', 'v.mp4')).jti)

	// Ten delivered and acknowledged, then ten refused by the receiver: pending when Redis dies.
	for (let i = 0; i < 10; i++) await issue()
	await waitFor(() => r.delivered().length === 10, 5000, 'the first ten')
	accepting = false
	for (let i = 0; i < 10; i++) await issue()
	await waitFor(
		() => new Set(r.requests.filter((x) => x.status === 500).map((x) => x.id)).size === 10,
		5000,
		'ten refused',
	)
	await server.kill()
	const killedAt = performance.now()
	await server.start()
	accepting = true
	await waitFor(async () => (await own.ping().catch(() => '')) === 'PONG', 5000, 'Redis back')
	// The service reconnects by itself; a token issued now is the first request to succeed again.
	await waitFor(
		async () => (await t.request('/api/get-download-token/u/v.mp4').catch(() => null))?.status === 200,
		5000,
		'the service writing again',
	)
	await waitFor(() => r.delivered().length >= 21, 10_000, 'every acknowledged event')
	await Bun.sleep(300)

	const stream = await readStream(own, streamKey)
	expect(stream).toHaveLength(21)
	expect(sortedIds(r.delivered())).toEqual(sortedIds(stream))
	for (const jti of issued) expect(r.delivered().map((x) => jtiOf(x.payload))).toContain(jti)
	// What was acknowledged before the crash was not sent again.
	const first = new Set(
		r
			.delivered()
			.slice(0, 10)
			.map((x) => x.id),
	)
	expect(r.requests.filter((x) => x.at > killedAt && first.has(x.id))).toEqual([])
	expect(r.rejected).toEqual([])
	expect(await groupState(own, streamKey, r.url)).toEqual({ pending: 0, lag: 0 })
}, 40_000)
