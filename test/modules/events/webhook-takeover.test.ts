import { expect, test } from 'bun:test'
import { tracked } from '../../support/child-processes'
import { startWebhookReceiver } from '../../support/webhook-receiver'
import {
	groupState,
	makeEvent,
	pendingByConsumer,
	redisForFile,
	sortedIds,
	startDelivery,
	uniqueKeys,
	WEBHOOK_SECRET,
	waitFor,
	waitForGroups,
	writeEvents,
} from './fixtures'
import type { ChildWorkerSettings } from './webhook-worker-child'

const redis = await redisForFile()

test('an instance SIGKILLed while it holds pending entries: another instance takes them over and delivers them', async () => {
	const keys = uniqueKeys('takeover')
	const r = startWebhookReceiver(WEBHOOK_SECRET)
	// The first instance's requests hang (a slow receiver) until it is killed.
	let hanging = true
	let arrivedWhileHanging = 0
	const released: (() => void)[] = []
	r.respond = async () => {
		if (!hanging) return new Response(null, { status: 204 })
		arrivedWhileHanging++
		await new Promise<void>((resolve) => released.push(resolve))
		return new Response(null, { status: 503 })
	}
	const settings: ChildWorkerSettings = {
		redisUrl: process.env.TEST_REDIS_URL ?? '',
		...keys,
		endpoint: r.url,
		consumerName: 'doomed',
		timeoutMs: 30_000,
		batchSize: 5,
	}
	const child = tracked(
		Bun.spawn([process.execPath, `${import.meta.dir}/webhook-worker-child.ts`, JSON.stringify(settings)], {
			stdout: 'pipe',
			stderr: 'inherit',
		}),
	)
	try {
		await waitForGroups(redis, keys.streamKey, [r.url])
		const events = Array.from({ length: 8 }, (_, i) => makeEvent('download.completed', i))
		await writeEvents(redis, keys.streamKey, events)
		// The child holds a batch of 5 (one of them in flight) and has left 3 unread.
		await waitFor(
			async () =>
				arrivedWhileHanging === 1 && (await pendingByConsumer(redis, keys.streamKey, r.url)).get('doomed') === 5,
			5000,
			'the child to hold five entries',
		)
		child.kill('SIGKILL')
		await child.exited
		hanging = false
		for (const release of released) release()

		const rescuer = await startDelivery(redis, keys, [r.url], {
			consumerName: 'rescuer',
			timeoutMs: 300,
			tuning: { claimIdleMs: 800, claimEveryMs: 100 },
		})
		try {
			await waitFor(() => r.delivered().length >= 8, 5000, 'every event')
			await Bun.sleep(200)
			expect(sortedIds(r.delivered())).toEqual(sortedIds(events))
			expect(r.rejected).toEqual([])
			expect(await groupState(redis, keys.streamKey, r.url)).toEqual({ pending: 0, lag: 0 })
			expect((await pendingByConsumer(redis, keys.streamKey, r.url)).get('doomed')).toBeUndefined()
			// The request the child had in flight (answered after it died) went out again under the same webhook-id.
			const hung = r.requests.filter((x) => x.status === 503)
			expect(hung).toHaveLength(1)
			expect(r.delivered().map((x) => x.id)).toContain(hung[0]?.id ?? '')
		} finally {
			await rescuer.stop()
		}
	} finally {
		child.kill('SIGKILL')
		for (const release of released) release()
		await r.stop()
	}
})

test('entries waiting out a backoff longer than the takeover idle time stay with their live instance', async () => {
	const keys = uniqueKeys('touch')
	const r = startWebhookReceiver(WEBHOOK_SECRET)
	r.respond = () => new Response(null, { status: 500 })
	// The owner fails once, then waits 2-4 s: far past the 600 ms after which entries count as abandoned.
	// Its batch is full (2 of 2), so it does not scan for entries to take over (which would refresh its own).
	const owner = await startDelivery(redis, keys, [r.url], {
		consumerName: 'owner',
		timeoutMs: 200,
		tuning: {
			batchSize: 2,
			backoffBaseMs: 4000,
			backoffCapMs: 4000,
			claimIdleMs: 600,
			touchEveryMs: 150,
			claimEveryMs: 100,
		},
	})
	try {
		await writeEvents(redis, keys.streamKey, [makeEvent('token.issued', 1), makeEvent('token.issued', 2)])
		await waitFor(() => r.requests.length === 1, 3000, 'the first attempt')
		const other = await startDelivery(redis, keys, [r.url], {
			consumerName: 'other',
			timeoutMs: 200,
			tuning: { claimIdleMs: 600, claimEveryMs: 100 },
		})
		try {
			await Bun.sleep(1500)
			expect(await pendingByConsumer(redis, keys.streamKey, r.url)).toEqual(new Map([['owner', 2]]))
			expect(r.requests).toHaveLength(1)
		} finally {
			await other.stop()
		}
	} finally {
		await owner.stop()
		await r.stop()
	}
})
