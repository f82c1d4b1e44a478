import { describe, expect, test } from 'bun:test'
import type { Env } from '../../../src/config'
import { endpointLabel } from '../../../src/modules/events/webhooks'
import { bearer, downloadPath, makeTestApp, randomBytesOf, type TestApp } from '../../support/helpers'
import { startSilentListener, startWebhookReceiver, type WebhookReceiver } from '../../support/webhook-receiver'
import { parseScrape, type Scrape } from '../ops/prometheus'
import {
	ALL_TYPES,
	cleanupsAfterEach,
	FAST_TUNING,
	groupState,
	redisForFile,
	sortedIds,
	WEBHOOK_SECRET,
	waitFor,
	waitForGroups,
} from './fixtures'
import { readStream, type StreamEvent, typesOf } from './stream'

// docs/contract.md §7 webhooks, through the service as configured by its
// environment (WEBHOOK_URLS, WEBHOOK_SECRET, …): real requests cause the
// events, real receivers verify every signature with the standardwebhooks
// package. Backoffs and takeover times are shortened (makeTestApp's
// webhookTuning); everything else is the production path.

const MiB = 1024 * 1024

const redis = await redisForFile()
const cleanups = cleanupsAfterEach()

const receiver = (): WebhookReceiver => {
	const r = startWebhookReceiver(WEBHOOK_SECRET)
	cleanups.push(() => r.stop())
	return r
}

/** The service delivering to `urls`, once every endpoint's consumer group exists (events from then on are delivered). */
async function webhookApp(urls: readonly string[], env: Env = {}, tuning: Record<string, number> = {}) {
	const t = await makeTestApp({
		env: {
			WEBHOOK_URLS: urls.join(','),
			WEBHOOK_SECRET,
			WEBHOOK_EVENTS: ALL_TYPES.join(','),
			WEBHOOK_TIMEOUT_S: '1',
			RATE_LIMIT_ISSUE: '1000000/min',
			RATE_LIMIT_DENIED: '1000000000/min',
			...env,
		},
		webhookTuning: { ...FAST_TUNING, ...tuning },
	})
	cleanups.push(() => t.close())
	await waitForGroups(redis, streamKeyOf(t), urls)
	return t
}
const streamKeyOf = (t: TestApp) => `${t.config.redisKeyPrefix}events`

async function scrape(t: TestApp): Promise<Scrape> {
	const res = await t.request('/metrics')
	expect(res.status).toBe(200)
	return parseScrape(await res.text())
}

/** What a receiver must have been sent for a stream entry: the event, byte for byte as JSON. */
const asSent = (e: StreamEvent) => ({ id: e.id, type: e.type, timestamp: e.timestamp, data: e.data })

describe('webhooks through the service', () => {
	test('every event type reaches the endpoint once, signed, exactly as the stream holds it', async () => {
		const r = receiver()
		const t = await webhookApp([r.url])
		await t.putFile('w', 'v.mp4', randomBytesOf(MiB))
		const whole = await t.issue('w', 'v.mp4', '?max_uses=1')
		const res = await t.request(downloadPath('w', 'v.mp4'), { headers: bearer(whole.token) })
		expect((await res.arrayBuffer()).byteLength).toBe(MiB)
		const cut = await t.issue('w', 'v.mp4', '?max_uses=1')
		const aborter = new AbortController()
		const partial = await t.request(downloadPath('w', 'v.mp4'), { headers: bearer(cut.token), signal: aborter.signal })
		await partial.body?.getReader().read()
		aborter.abort()
		const revoked = await t.issue('w', 'v.mp4')
		const revoke = await t.request('/api/tokens/revoke', {
			method: 'POST',
			headers: { 'Content-Type': 'application/json' },
			body: JSON.stringify({ token: revoked.token }),
		})
		expect(await revoke.json()).toEqual({ revoked: true })
		expect((await t.request(downloadPath('w', 'v.mp4'), { headers: bearer('a.b.c') })).status).toBe(401)

		await waitFor(
			() => ALL_TYPES.every((type) => r.delivered().some((x) => (x.payload as StreamEvent).type === type)),
			5000,
			'one event of each type',
		)
		const stream = await readStream(redis, streamKeyOf(t))
		expect([...new Set(typesOf(stream))].sort()).toEqual([...ALL_TYPES].sort())
		await waitFor(() => r.delivered().length >= stream.length, 5000, 'every event of the stream')
		await Bun.sleep(300)
		expect(r.rejected).toEqual([])
		expect(sortedIds(r.requests)).toEqual(sortedIds(stream))
		for (const event of stream) {
			const got = r.requests.find((x) => x.id === event.id)
			expect(got?.payload).toEqual(asSent(event))
			expect(got?.contentType).toBe('application/json')
		}
	})

	test('a receiver down for 20 s: events pile up, and all arrive once it is back', async () => {
		const r = receiver()
		const t = await webhookApp([r.url])
		await r.stop()
		await t.putFile('down', 'v.mp4', 'v')
		const issued: string[] = []
		for (let i = 0; i < 20; i++) {
			issued.push((await t.issue('down', 'v.mp4')).jti)
			await Bun.sleep(250)
		}
		await Bun.sleep(15_000)
		const during = await scrape(t)
		const endpoint = endpointLabel(r.url)
		expect(
			during.value('download_gate_webhook_attempts_total', { endpoint, outcome: 'network_error' }),
		).toBeGreaterThan(5)
		expect(during.value('download_gate_webhook_attempts_total', { endpoint, outcome: 'delivered' })).toBe(0)
		expect(during.value('download_gate_webhook_backlog', { endpoint })).toBe(20)

		r.start()
		await waitFor(() => r.delivered().length >= 20, 5000, 'the 20 events held during the outage')
		await Bun.sleep(300)
		const stream = await readStream(redis, streamKeyOf(t))
		expect(stream).toHaveLength(20)
		expect(sortedIds(r.delivered())).toEqual(sortedIds(stream))
		expect(
			r
				.delivered()
				.map((x) => (x.payload as StreamEvent).data.jti)
				.sort(),
		).toEqual([...issued].sort())
		expect(r.rejected).toEqual([])
		expect(await groupState(redis, streamKeyOf(t), r.url)).toEqual({ pending: 0, lag: 0 })
	}, 40_000)

	test('a receiver that never answers: downloads take no longer while deliveries hang', async () => {
		const silent = startSilentListener()
		const t = await webhookApp([silent.url], { WEBHOOK_TIMEOUT_S: '10' }, { claimIdleMs: 30_000 })
		// Stopped before the app, which then need not wait out the hanging attempt.
		cleanups.push(() => silent.stop())
		const bytes = await t.putFile('hang', 'v.mp4', randomBytesOf(MiB))
		await t.issue('hang', 'v.mp4')
		await waitFor(() => silent.accepted >= 1, 3000, 'a delivery attempt hanging')
		const latencies: number[] = []
		for (let i = 0; i < 20; i++) {
			const { token } = await t.issue('hang', 'v.mp4', '?max_uses=1')
			const started = performance.now()
			const res = await t.request(downloadPath('hang', 'v.mp4'), { headers: bearer(token) })
			expect((await res.arrayBuffer()).byteLength).toBe(bytes.length)
			latencies.push(performance.now() - started)
		}
		// Every event of those downloads was written, and none was delivered: the attempt still hangs.
		const stream = await readStream(redis, streamKeyOf(t))
		expect(stream.filter((e) => e.type === 'download.completed')).toHaveLength(20)
		const metrics = await scrape(t)
		expect(metrics.value('download_gate_webhook_attempts_total', { endpoint: endpointLabel(silent.url) })).toBe(0)
		// A download that waited on the hanging attempt would take up to WEBHOOK_TIMEOUT_S (10 s).
		expect(Math.max(...latencies)).toBeLessThan(1000)
	})

	test('a redirect is not followed: the Location never hears of the event, which is retried under its id', async () => {
		const target = receiver()
		const redirector = receiver()
		redirector.respond = () => new Response(null, { status: 302, headers: { Location: target.url } })
		const t = await webhookApp([redirector.url])
		await t.putFile('redir', 'v.mp4', 'v')
		const { jti } = await t.issue('redir', 'v.mp4')
		await waitFor(() => redirector.requests.length >= 3, 5000, 'three attempts')
		expect(target.requests).toEqual([])
		expect(new Set(redirector.requests.map((x) => x.id)).size).toBe(1)
		expect(redirector.requests.map((x) => (x.payload as StreamEvent).data.jti)).toContain(jti)
		const endpoint = endpointLabel(redirector.url)
		const redirects = async () =>
			(await scrape(t)).value('download_gate_webhook_attempts_total', { endpoint, outcome: 'redirect' })
		// The receiver has an attempt before the service has read its answer and counted it (a CI run scraped 2).
		await waitFor(async () => (await redirects()) >= 3, 3000, 'three redirects counted')
		const metrics = await scrape(t)
		expect(metrics.value('download_gate_webhook_attempts_total', { endpoint, outcome: 'redirect' })).toBeGreaterThan(2)
		expect(metrics.value('download_gate_webhook_attempts_total', { endpoint, outcome: 'delivered' })).toBe(0)
	})

	test('past WEBHOOK_MAX_AGE an event is dead-lettered, counted in /metrics, and no longer attempted', async () => {
		const r = receiver()
		r.respond = () => new Response('busy', { status: 500 })
		const t = await webhookApp([r.url], { WEBHOOK_MAX_AGE: '60' })
		const deadKey = `${streamKeyOf(t)}:dead`
		const endpoint = endpointLabel(r.url)
		await t.putFile('old', 'v.mp4', 'v')
		await t.issue('old', 'v.mp4')
		await waitFor(() => r.requests.length >= 2, 5000, 'failed attempts')
		const before = await scrape(t)
		expect(before.value('download_gate_webhook_dead_letters_total', { endpoint, reason: 'max_age' })).toBe(0)

		t.clock.advance(61_000)
		// Counted last, after the dead letter is written and the entry acknowledged.
		await waitFor(
			async () =>
				(await scrape(t)).value('download_gate_webhook_dead_letters_total', { endpoint, reason: 'max_age' }) >= 1,
			5000,
			'the dead letter',
		)
		expect(await redis.xlen(deadKey)).toBe(1)
		const [event] = await readStream(redis, streamKeyOf(t))
		const raw = (await redis.call('XRANGE', deadKey, '-', '+')) as [string, string[]][]
		const fields = raw[0]?.[1] ?? []
		const named = Object.fromEntries(
			Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]]),
		)
		expect(named).toMatchObject({ id: event?.id, type: 'token.issued', endpoint, error: 'HTTP 500: busy' })
		const after = await scrape(t)
		expect(after.value('download_gate_webhook_dead_letters_total', { endpoint, reason: 'max_age' })).toBe(1)
		expect(await groupState(redis, streamKeyOf(t), r.url)).toEqual({ pending: 0, lag: 0 })
		const attempts = r.requests.length
		await Bun.sleep(500)
		expect(r.requests.length).toBe(attempts)
	})

	test('a flood of denials never floods the receiver: the writer aggregates, the worker caps the rest', async () => {
		const r = receiver()
		const t = await webhookApp([r.url], { WEBHOOK_EVENTS: 'download.denied', TRUST_PROXY: 'true' })
		await t.putFile('flood', 'v.mp4', 'v')
		const refuse = async (ip: string | null) => {
			const res = await t.request(downloadPath('flood', 'v.mp4'), {
				headers: { ...bearer('a.b.c'), ...(ip === null ? {} : { 'X-Forwarded-For': ip }) },
			})
			expect(res.status).toBe(401)
			await res.arrayBuffer()
		}
		const inWaves = async (n: number, ip: (i: number) => string | null) => {
			for (let i = 0; i < n; i += 100)
				await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, k) => refuse(ip(i + k))))
		}
		// 10,000 refusals from one address: one event (this instance writes one per address and reason per 10 s).
		await inWaves(10_000, () => null)
		await waitFor(() => r.delivered().length === 1, 3000, 'the one denial event')
		await Bun.sleep(500)
		expect(r.requests).toHaveLength(1)
		expect((r.requests[0]?.payload as StreamEvent | undefined)?.data).toMatchObject({
			reason: 'invalid_token',
			ip: '127.0.0.1',
		})

		// 2,000 addresses: 2,000 events in the stream, and at most 10 a second reach the receiver.
		const started = performance.now()
		await inWaves(2000, (i) => `10.9.${i >> 8}.${i & 255}`)
		await waitFor(
			async () => {
				const { pending, lag } = await groupState(redis, streamKeyOf(t), r.url)
				return pending === 0 && lag === 0 && (await redis.xlen(streamKeyOf(t))) === 2001
			},
			10_000,
			'every denial read and settled',
		)
		const seconds = (performance.now() - started) / 1000
		const delivered = r.requests.length - 1
		expect(delivered).toBeGreaterThan(0)
		expect(delivered).toBeLessThanOrEqual(10 * (Math.ceil(seconds) + 1))
		// Counted just after the worker acknowledged them, which is what the wait above saw.
		const throttled = async () =>
			(await scrape(t)).value('download_gate_webhook_dropped_total', {
				endpoint: endpointLabel(r.url),
				reason: 'throttled',
			})
		await waitFor(async () => (await throttled()) >= 2000 - delivered, 2000, 'the throttled events counted')
		const metrics = await scrape(t)
		expect(
			metrics.value('download_gate_webhook_dropped_total', { endpoint: endpointLabel(r.url), reason: 'throttled' }),
		).toBe(2000 - delivered)
		expect(metrics.value('download_gate_events_written_total', { type: 'download.denied' })).toBe(2001)
	}, 60_000)
})
