import { describe, expect, test } from 'bun:test'
import { createWebhookDelivery, endpointLabel, type WebhookDelivery } from '../../../src/modules/events/webhooks'
import { freePort } from '../../support/redis-server'
import { startSilentListener, startWebhookReceiver } from '../../support/webhook-receiver'
import {
	cleanupsAfterEach,
	fieldsOf,
	groupState,
	makeEvent,
	pendingByConsumer,
	quietLog,
	recordingMetrics,
	redisForFile,
	sortedIds,
	startDelivery,
	type TestEvent,
	uniqueKeys,
	WEBHOOK_SECRET,
	waitFor,
	writeEvents,
} from './fixtures'

const redis = await redisForFile()
const cleanups = cleanupsAfterEach()
const started = async (delivery: Promise<WebhookDelivery>) => {
	const d = await delivery
	cleanups.push(() => d.stop())
	return d
}
const receiver = () => {
	const r = startWebhookReceiver(WEBHOOK_SECRET)
	cleanups.push(() => r.stop())
	return r
}
const expected = (e: TestEvent) => ({ id: e.id, type: e.type, timestamp: e.timestamp, data: e.data })

describe('webhook delivery', () => {
	test('each event of the chosen types reaches every endpoint once, signed, exactly as the stream entry says; other types are acknowledged unsent', async () => {
		const keys = uniqueKeys('basic')
		const [a, b] = [receiver(), receiver()]
		const types = new Set(['token.issued', 'download.completed'])
		await started(startDelivery(redis, keys, [a.url, b.url], { eventTypes: types }))
		const events = Array.from({ length: 30 }, (_, i) =>
			makeEvent(['token.issued', 'download.completed', 'token.revoked'][i % 3] ?? '', i),
		)
		await writeEvents(redis, keys.streamKey, events)
		const wanted = events.filter((e) => types.has(e.type))
		const written = performance.now()
		await waitFor(() => a.delivered().length >= 20 && b.delivered().length >= 20, 5000, 'both endpoints')
		// Nothing more comes afterwards (no duplicate, no token.revoked).
		await Bun.sleep(300)
		for (const r of [a, b]) {
			expect(r.rejected).toEqual([])
			expect(sortedIds(r.requests)).toEqual(sortedIds(wanted))
			for (const got of r.requests) {
				const event = wanted.find((e) => e.id === got.id)
				if (event === undefined) throw new Error(`unexpected ${got.id}`)
				expect(got.payload).toEqual(expected(event))
				expect(got.body).toBe(JSON.stringify(expected(event)))
				expect(got.contentType).toBe('application/json')
				expect(Math.abs(got.timestamp - Date.now() / 1000)).toBeLessThan(5)
				expect(got.at - written).toBeLessThan(2000)
			}
			// Delivered and skipped entries alike are acknowledged.
			expect(await groupState(redis, keys.streamKey, r.url)).toEqual({ pending: 0, lag: 0 })
		}
	})

	test('an endpoint starts with the events written after its group exists, not the stream history', async () => {
		const keys = uniqueKeys('history')
		const r = receiver()
		const before = Array.from({ length: 5 }, (_, i) => makeEvent('token.issued', i))
		await writeEvents(redis, keys.streamKey, before)
		await started(startDelivery(redis, keys, [r.url]))
		const after = Array.from({ length: 3 }, (_, i) => makeEvent('token.issued', 10 + i))
		await writeEvents(redis, keys.streamKey, after)
		await waitFor(() => r.delivered().length >= 3, 5000, 'the new events')
		await Bun.sleep(200)
		expect(sortedIds(r.requests)).toEqual(sortedIds(after))
	})

	test('a stream deleted and written again (a Redis that lost its data): the group comes back where it was, nothing new is skipped', async () => {
		const keys = uniqueKeys('recreated')
		const r = receiver()
		await started(startDelivery(redis, keys, [r.url]))
		const before = [makeEvent('token.issued', 1)]
		await writeEvents(redis, keys.streamKey, before)
		await waitFor(() => r.delivered().length === 1, 3000, 'the first event')
		// In one step, so the worker cannot re-create the group between the loss and the new entries.
		const after = Array.from({ length: 5 }, (_, i) => makeEvent('token.issued', 10 + i))
		const lost = redis.multi().del(keys.streamKey)
		for (const e of after) lost.xadd(keys.streamKey, '*', ...fieldsOf(e))
		await lost.exec()
		await waitFor(() => r.delivered().length === 6, 3000, 'the events written after the loss')
		await Bun.sleep(200)
		expect(sortedIds(r.requests)).toEqual(sortedIds([...before, ...after]))
		expect(await groupState(redis, keys.streamKey, r.url)).toEqual({ pending: 0, lag: 0 })
	})

	test('two instances on one endpoint share the work: every event is delivered once', async () => {
		const keys = uniqueKeys('shared')
		const r = receiver()
		await started(startDelivery(redis, keys, [r.url], { consumerName: 'instance-1' }))
		await started(startDelivery(redis, keys, [r.url], { consumerName: 'instance-2' }))
		const events = Array.from({ length: 40 }, (_, i) => makeEvent('download.started', i))
		await writeEvents(redis, keys.streamKey, events)
		await waitFor(() => r.delivered().length >= 40, 5000, 'every event')
		await Bun.sleep(200)
		expect(sortedIds(r.requests)).toEqual(sortedIds(events))
		expect(await groupState(redis, keys.streamKey, r.url)).toEqual({ pending: 0, lag: 0 })
	})

	test('with one endpoint refusing connections, the other gets everything promptly; the dead one holds a bounded batch', async () => {
		const keys = uniqueKeys('one-dead')
		const live = receiver()
		const dead = `http://127.0.0.1:${freePort()}/hooks`
		const metrics = recordingMetrics()
		await started(startDelivery(redis, keys, [dead, live.url], { metrics }))
		const events = Array.from({ length: 50 }, (_, i) => makeEvent('token.issued', i))
		const t0 = performance.now()
		await writeEvents(redis, keys.streamKey, events)
		await waitFor(() => live.delivered().length >= 50, 3000, 'the live endpoint')
		expect(performance.now() - t0).toBeLessThan(2000)
		expect(sortedIds(live.requests)).toEqual(sortedIds(events))
		const refused = () =>
			metrics.attempts.some((a) => a.endpoint === endpointLabel(dead) && a.outcome === 'network_error')
		await waitFor(refused, 2000, 'an attempt at the dead endpoint counted')
		expect(refused()).toBe(true)
		// The dead endpoint's instance holds one batch (10) and leaves the rest unread.
		expect(await groupState(redis, keys.streamKey, dead)).toEqual({ pending: 10, lag: 40 })
	})

	test('a receiver answering 500 is retried with growing gaps, always under the same webhook-id', async () => {
		const keys = uniqueKeys('500')
		const r = receiver()
		const failures = 5
		r.respond = ({ n }) => new Response('down for maintenance', { status: n < failures ? 500 : 200 })
		const metrics = recordingMetrics()
		const base = 80
		await started(
			startDelivery(redis, keys, [r.url], { metrics, tuning: { backoffBaseMs: base, backoffCapMs: 10_000 } }),
		)
		const event = makeEvent('download.completed', 1)
		await writeEvents(redis, keys.streamKey, [event])
		await waitFor(() => r.delivered().length === 1, 8000, 'the delivery after five 500s')
		expect(r.requests.map((x) => x.id)).toEqual(Array(failures + 1).fill(event.id))
		// The receiver has the delivery before the worker has read its answer and counted it (a CI run saw five of six).
		await waitFor(() => metrics.attempts.length > failures, 2000, 'the delivery counted')
		expect(metrics.attempts.map((a) => a.outcome)).toEqual([...Array(failures).fill('server_error'), 'delivered'])
		// Failure k waits in [d/2, d], d = base·2^(k-1). A retry is never early, so the lower bounds
		// (which double each time) prove the growth; a busy machine may only make one late (loose upper bound).
		const gaps = r.requests.slice(1).map((x, i) => x.at - (r.requests[i]?.at ?? 0))
		const report = gaps.map((gap, i) => {
			const d = base * 2 ** i
			return { gap: Math.round(gap), ok: gap >= d / 2 - 2 && gap < d + 2000 }
		})
		expect(report).toEqual(report.map((x) => ({ ...x, ok: true })))
		expect(gaps.at(-1) ?? 0).toBeGreaterThanOrEqual((base * 2 ** (failures - 1)) / 2 - 2)
		await waitFor(async () => (await groupState(redis, keys.streamKey, r.url)).pending === 0, 2000, 'the ack')
	})

	test('a 302 is not followed: the event never reaches the Location, and the attempt counts as a failure', async () => {
		const keys = uniqueKeys('302')
		const elsewhere = receiver()
		const r = receiver()
		r.respond = () => new Response(null, { status: 302, headers: { location: elsewhere.url } })
		const metrics = recordingMetrics()
		await started(startDelivery(redis, keys, [r.url], { metrics }))
		await writeEvents(redis, keys.streamKey, [makeEvent('token.issued', 1)])
		await waitFor(() => metrics.attempts.length >= 3, 5000, 'three attempts')
		expect(elsewhere.requests.length + elsewhere.rejected.length).toBe(0)
		expect(new Set(metrics.attempts.map((a) => a.outcome))).toEqual(new Set(['redirect']))
		expect(await groupState(redis, keys.streamKey, r.url)).toEqual({ pending: 1, lag: 0 })
	})

	test('a receiver that accepts and never answers: each attempt ends at timeoutMs, and nothing else stalls', async () => {
		const keys = uniqueKeys('hang')
		const silent = startSilentListener()
		cleanups.push(() => silent.stop())
		const live = receiver()
		const metrics = recordingMetrics()
		const delivery = await startDelivery(redis, keys, [silent.url, live.url], {
			metrics,
			timeoutMs: 300,
			tuning: { claimIdleMs: 1000 },
		})
		const events = Array.from({ length: 20 }, (_, i) => makeEvent('download.broken', i))
		await writeEvents(redis, keys.streamKey, events)
		await waitFor(() => live.delivered().length >= 20, 2000, 'the live endpoint')
		await waitFor(() => metrics.attempts.filter((a) => a.outcome === 'timeout').length >= 2, 3000, 'two timeouts')
		const timeouts = metrics.attempts.filter((a) => a.endpoint === endpointLabel(silent.url))
		for (const t of timeouts) {
			expect(t.outcome).toBe('timeout')
			expect(t.seconds).toBeGreaterThanOrEqual(0.29)
			expect(t.seconds).toBeLessThan(0.6)
		}
		expect(silent.accepted).toBeGreaterThanOrEqual(2)
		// stop() waits for an attempt in flight no longer than its timeout.
		const t0 = performance.now()
		await delivery.stop()
		expect(performance.now() - t0).toBeLessThan(600)
	})

	test('past maxAgeMs an event is dead-lettered with its endpoint and last error, counted, and acknowledged', async () => {
		const keys = uniqueKeys('max-age')
		const dead = `http://user:secret@127.0.0.1:${freePort()}/hooks?token=abc`
		const live = receiver()
		const metrics = recordingMetrics()
		await started(startDelivery(redis, keys, [dead, live.url], { metrics, maxAgeMs: 600 }))
		const fresh = [makeEvent('token.used_up', 1), makeEvent('token.used_up', 2)]
		// Written long after it happened (a backlog caught up late): never attempted.
		const stale = makeEvent('token.revoked', 3, { timestamp: new Date(Date.now() - 2 * 86_400_000).toISOString() })
		await writeEvents(redis, keys.streamKey, [...fresh, stale])
		await waitFor(() => metrics.deadLetters.length >= 4, 3000, 'four dead letters')
		expect(metrics.deadLetters).toEqual(
			expect.arrayContaining([
				{ endpoint: endpointLabel(dead), reason: 'max_age' },
				{ endpoint: endpointLabel(live.url), reason: 'max_age' },
			]),
		)
		expect(metrics.deadLetters.filter((d) => d.endpoint === endpointLabel(dead))).toHaveLength(3)
		expect(sortedIds(live.requests)).toEqual(sortedIds(fresh))
		const dl = (await redis.call('XRANGE', keys.deadLetterKey, '-', '+')) as [string, string[]][]
		const byKey = dl.map(([, fields]) => fields)
		expect(byKey).toHaveLength(4)
		const deadLabel = 'http://127.0.0.1:' // credentials and query are not written out
		for (const e of fresh) {
			const entry = byKey.find((f) => f[1] === e.id)
			expect(entry?.slice(0, 8)).toEqual(fieldsOf(e))
			expect(entry?.[8]).toBe('endpoint')
			expect(entry?.[9]).toBe(endpointLabel(dead))
			expect(entry?.[9]?.startsWith(deadLabel)).toBe(true)
			expect(entry?.[10]).toBe('error')
			expect(entry?.[11]?.length).toBeGreaterThan(0)
			expect(entry?.[11]).not.toBe('not attempted before max age')
		}
		const staleEntries = byKey.filter((f) => f[1] === stale.id)
		expect(staleEntries.map((f) => f.slice(0, 8))).toEqual([fieldsOf(stale), fieldsOf(stale)])
		expect(staleEntries.map((f) => f[11])).toEqual(['not attempted before max age', 'not attempted before max age'])
		for (const url of [dead, live.url]) {
			expect(await groupState(redis, keys.streamKey, url)).toEqual({ pending: 0, lag: 0 })
		}
	})

	test('an entry that is not an event is dead-lettered as malformed and acknowledged', async () => {
		const keys = uniqueKeys('malformed')
		const r = receiver()
		const metrics = recordingMetrics()
		await started(startDelivery(redis, keys, [r.url], { metrics }))
		await redis.call(
			'XADD',
			keys.streamKey,
			'*',
			'id',
			'evt_x',
			'type',
			'token.issued',
			'timestamp',
			'now',
			'data',
			'{',
		)
		await writeEvents(redis, keys.streamKey, [makeEvent('token.issued', 1)])
		await waitFor(() => r.delivered().length === 1 && metrics.deadLetters.length === 1, 3000, 'both')
		expect(metrics.deadLetters).toEqual([{ endpoint: endpointLabel(r.url), reason: 'malformed' }])
		const dl = (await redis.call('XRANGE', keys.deadLetterKey, '-', '+')) as [string, string[]][]
		expect(dl.map(([, f]) => f.at(-1))).toEqual(['malformed entry: data is not JSON'])
		expect(await groupState(redis, keys.streamKey, r.url)).toEqual({ pending: 0, lag: 0 })
	})

	test('stop() lets the attempt in flight finish and leaves the rest pending, unsent', async () => {
		const keys = uniqueKeys('stop')
		const r = receiver()
		let arrived = 0
		r.respond = async () => {
			arrived++
			await Bun.sleep(200)
			return new Response(null, { status: 204 })
		}
		const delivery = await startDelivery(redis, keys, [r.url], { consumerName: 'stopping' })
		await writeEvents(
			redis,
			keys.streamKey,
			Array.from({ length: 5 }, (_, i) => makeEvent('token.issued', i)),
		)
		await waitFor(() => arrived === 1, 3000, 'the first request')
		await delivery.stop()
		// The attempt in flight was answered and acknowledged; nothing was sent after it.
		expect(r.delivered()).toHaveLength(1)
		await Bun.sleep(300)
		expect(arrived).toBe(1)
		expect(await pendingByConsumer(redis, keys.streamKey, r.url)).toEqual(new Map([['stopping', 4]]))
	})

	test('backlog is reported per endpoint: pending, unread, and the age of the oldest', async () => {
		const keys = uniqueKeys('backlog')
		const dead = `http://127.0.0.1:${freePort()}/hooks`
		const metrics = recordingMetrics()
		await started(startDelivery(redis, keys, [dead], { metrics, tuning: { batchSize: 3 } }))
		await writeEvents(
			redis,
			keys.streamKey,
			Array.from({ length: 8 }, (_, i) => makeEvent('token.issued', i)),
		)
		await Bun.sleep(700)
		const last = metrics.backlogs.at(-1)
		expect(last?.endpoint).toBe(endpointLabel(dead))
		expect(last?.backlog.pending).toBe(3)
		expect(last?.backlog.undelivered).toBe(5)
		expect(last?.backlog.oldestAgeSeconds).toBeGreaterThan(0.4)
		expect(last?.backlog.oldestAgeSeconds).toBeLessThan(2)
	})
})

describe('webhook delivery options', () => {
	const base = () => ({
		redis,
		streamKey: 'k',
		deadLetterKey: 'd',
		secret: WEBHOOK_SECRET,
		eventTypes: new Set<string>(),
		consumerName: 'c',
		log: quietLog().log,
		clock: Date.now,
	})

	test('a non-http endpoint is refused without spelling out the URL (it may hold credentials)', async () => {
		expect(() => createWebhookDelivery({ ...base(), endpoints: ['ftp://user:hunter2@x/'] })).toThrow(
			'webhooks: endpoint 1 of 1 is not an http(s) URL',
		)
		expect(() => createWebhookDelivery({ ...base(), endpoints: ['not a url'] })).toThrow('not an http(s) URL')
	})

	test('a takeover idle time not above the attempt timeout is refused (it would steal attempts in flight)', async () => {
		const endpoints = ['https://example.test/hooks']
		expect(() =>
			createWebhookDelivery({ ...base(), endpoints, timeoutMs: 5000, tuning: { claimIdleMs: 5000 } }),
		).toThrow('claimIdleMs must be longer than timeoutMs')
		expect(() => createWebhookDelivery({ ...base(), endpoints, secret: 'whsec_%%%' })).toThrow(
			'webhook secret is not whsec_<base64>',
		)
		expect(() => createWebhookDelivery({ ...base(), endpoints, timeoutMs: 0 })).toThrow('timeoutMs must be')
	})
})
