import { expect, test } from 'bun:test'
import type { FetchLike } from '../../../src/modules/events/webhooks'
import { startWebhookReceiver } from '../../support/webhook-receiver'
import {
	groupState,
	makeEvent,
	redisForFile,
	sortedIds,
	startDelivery,
	uniqueKeys,
	WEBHOOK_SECRET,
	waitFor,
	writeEvents,
} from './fixtures'

const redis = await redisForFile()

const OUTAGE_MS = 20_000
const CAP_MS = 2000

test(
	'a receiver not listening for 20 s, then back: every event delivered once, none lost, one webhook-id per event on every attempt',
	async () => {
		const keys = uniqueKeys('outage')
		const r = startWebhookReceiver(WEBHOOK_SECRET)
		// Every attempt as it leaves, refused connections included (the receiver cannot see those).
		const attempts: { header: string | null; bodyId: unknown; at: number }[] = []
		const recordingFetch: FetchLike = (url, init) => {
			const body = JSON.parse(String(init.body)) as { id: unknown }
			attempts.push({ header: new Headers(init.headers).get('webhook-id'), bodyId: body.id, at: performance.now() })
			return fetch(url, init)
		}
		const delivery = await startDelivery(redis, keys, [r.url], {
			fetch: recordingFetch,
			// A small batch, so each held event is retried many times over the outage (not just rotated).
			tuning: { backoffBaseMs: 100, backoffCapMs: CAP_MS, batchSize: 3 },
		})
		try {
			const before = Array.from({ length: 5 }, (_, i) => makeEvent('token.issued', i))
			await writeEvents(redis, keys.streamKey, before)
			await waitFor(() => r.delivered().length === 5, 3000, 'the events before the outage')

			await r.stop()
			const downAt = performance.now()
			const early = Array.from({ length: 10 }, (_, i) => makeEvent('download.started', 10 + i))
			await writeEvents(redis, keys.streamKey, early)
			await Bun.sleep(OUTAGE_MS / 2)
			const late = Array.from({ length: 10 }, (_, i) => makeEvent('download.completed', 20 + i))
			await writeEvents(redis, keys.streamKey, late)
			await Bun.sleep(OUTAGE_MS / 2)
			r.start()
			const upAt = performance.now()

			const all = [...before, ...early, ...late]
			await waitFor(() => r.delivered().length === all.length, CAP_MS + 5000, 'every event after the outage')
			await Bun.sleep(200)
			expect(sortedIds(r.requests)).toEqual(sortedIds(all))
			expect(r.rejected).toEqual([])
			expect(r.delivered().every((x) => x.at - upAt < CAP_MS + 1000)).toBe(true)
			expect(await groupState(redis, keys.streamKey, r.url)).toEqual({ pending: 0, lag: 0 })

			// The same webhook-id, the event's own, on each attempt of each event.
			for (const a of attempts) expect(a.header).toBe(String(a.bodyId))
			const during = attempts.filter((a) => a.at > downAt && a.at < upAt)
			const perEvent = Map.groupBy(during, (a) => a.header)
			expect(perEvent.size).toBeGreaterThan(1)
			expect(Math.max(...[...perEvent.values()].map((tries) => tries.length))).toBeGreaterThanOrEqual(4)
			// While it was down the endpoint was tried with backoff: waits grow, never past the cap.
			const gaps = during.slice(1).map((a, i) => a.at - (during[i]?.at ?? 0))
			expect(Math.max(...gaps)).toBeLessThan(CAP_MS + 300)
			expect(during.length).toBeLessThan(OUTAGE_MS / (CAP_MS / 2) + 12)
		} finally {
			await delivery.stop()
			await r.stop()
		}
	},
	OUTAGE_MS + 20_000,
)
