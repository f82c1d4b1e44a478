import { expect, test } from 'bun:test'
import { endpointLabel } from '../../../src/modules/events/webhooks'
import { startWebhookReceiver } from '../../support/webhook-receiver'
import {
	groupState,
	makeEvent,
	recordingMetrics,
	redisForFile,
	sortedIds,
	startDelivery,
	uniqueKeys,
	WEBHOOK_SECRET,
	waitFor,
	writeEvents,
} from './fixtures'

const redis = await redisForFile()

const PER_SECOND = 20

test('10,000 download.denied: the receiver gets at most N a second, the rest are dropped and counted; other events all arrive', async () => {
	const keys = uniqueKeys('flood')
	const r = startWebhookReceiver(WEBHOOK_SECRET)
	const metrics = recordingMetrics()
	// Two instances, as in production: the limit is shared through Redis.
	const instances = [
		await startDelivery(redis, keys, [r.url], { metrics, deniedPerSecond: PER_SECOND, consumerName: 'a' }),
		await startDelivery(redis, keys, [r.url], { metrics, deniedPerSecond: PER_SECOND, consumerName: 'b' }),
	]
	try {
		const denied = Array.from({ length: 10_000 }, (_, i) => makeEvent('download.denied', i))
		const others = Array.from({ length: 10 }, (_, i) => makeEvent('token.revoked', i))
		const t0 = performance.now()
		await writeEvents(redis, keys.streamKey, [...denied.slice(0, 5000), ...others, ...denied.slice(5000)])
		await waitFor(
			async () => {
				const s = await groupState(redis, keys.streamKey, r.url)
				return s.pending === 0 && s.lag === 0
			},
			20_000,
			'every entry handled',
		)
		const seconds = (performance.now() - t0) / 1000
		const deniedRequests = r.requests.filter((x) => (x.payload as { type: string }).type === 'download.denied')
		// Fixed one-second windows: at most N in each second the flood lasted.
		expect(deniedRequests.length).toBeGreaterThan(0)
		expect(deniedRequests.length).toBeLessThanOrEqual(PER_SECOND * (Math.ceil(seconds) + 1))
		expect(deniedRequests.length).toBeLessThanOrEqual(200)
		const bySecond = Map.groupBy(deniedRequests, (x) => Math.floor((x.at - t0) / 1000))
		expect(Math.max(...[...bySecond.values()].map((s) => s.length))).toBeLessThanOrEqual(2 * PER_SECOND)
		// Everything else still arrives, once.
		const rest = r.requests.filter((x) => (x.payload as { type: string }).type !== 'download.denied')
		expect(sortedIds(rest)).toEqual(sortedIds(others))
		const dropped = metrics.drops.filter((d) => d.endpoint === endpointLabel(r.url) && d.reason === 'throttled')
		expect(dropped.reduce((sum, d) => sum + d.count, 0)).toBe(10_000 - deniedRequests.length)
	} finally {
		for (const d of instances) await d.stop()
		await r.stop()
	}
}, 30_000)
