import { afterAll, afterEach } from 'bun:test'
import type { Cluster, Redis } from 'ioredis'
import { systemClock } from '../../../src/clock'
import { EVENT_TYPES } from '../../../src/config'
import { createLogger, type Logger } from '../../../src/log'
import type { WebhookAttemptOutcome } from '../../../src/modules/events/webhook-attempt'
import type { DeadLetterReason, DropReason, WebhookBacklog } from '../../../src/modules/events/webhook-metrics'
import {
	createWebhookDelivery,
	type WebhookDelivery,
	type WebhookDeliveryOptions,
	type WebhookMetrics,
	webhookGroupName,
} from '../../../src/modules/events/webhooks'
import { createRedisClient, waitReady } from '../../../src/store/connect'

/** A signing secret in Standard Webhooks' serialization (32 bytes). */
export const WEBHOOK_SECRET = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`

/** The event types the service writes (docs/contract.md §7). */
export const ALL_TYPES = EVENT_TYPES

/** A client as the service builds it (fail fast: 1 s command timeout, no offline queue), connected. */
export async function connectRedis(url = process.env.TEST_REDIS_URL ?? ''): Promise<Redis | Cluster> {
	const client = createRedisClient({ store: { kind: 'redis', url } })
	if (client === null) throw new Error('no Redis client')
	// Restart tests take Redis away on purpose; the worker reports what fails on its own.
	client.on('error', () => {})
	await waitReady(client, 5000)
	return client
}

/** This test file's connection to the test Redis, closed after its last test. */
export async function redisForFile(): Promise<Redis | Cluster> {
	const client = await connectRedis()
	afterAll(() => client.disconnect())
	return client
}

/** What a test pushes here is undone after it, last first. */
export function cleanupsAfterEach(): (() => unknown)[] {
	const cleanups: (() => unknown)[] = []
	afterEach(async () => {
		for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
	})
	return cleanups
}

/** Stream keys no other test uses. */
export function uniqueKeys(name: string): { streamKey: string; deadLetterKey: string } {
	const prefix = `t:webhooks:${name}:${crypto.randomUUID().slice(0, 8)}`
	return { streamKey: `${prefix}:events`, deadLetterKey: `${prefix}:dead` }
}

/** One event as the writer puts it in the stream. */
export interface TestEvent {
	readonly id: string
	readonly type: string
	readonly timestamp: string
	readonly data: Readonly<Record<string, unknown>>
}

/** An event of `type` whose `data.seq` is `seq`. */
export function makeEvent(type: string, seq: number, overrides: Partial<TestEvent> = {}): TestEvent {
	return {
		id: `evt_${crypto.randomUUID().replaceAll('-', '')}`,
		type,
		timestamp: new Date().toISOString(),
		data: { jti: `jti-${seq}`, user_id: 'u1', filename: 'clip ü.mp4', seq, request_id: `req-${seq}` },
		...overrides,
	}
}

/** The stream fields of `event`, in the writer's order. */
export const fieldsOf = (e: TestEvent): string[] => [
	'id',
	e.id,
	'type',
	e.type,
	'timestamp',
	e.timestamp,
	'data',
	JSON.stringify(e.data),
]

/** XADDs `events` (pipelined, in order). */
export async function writeEvents(redis: Redis | Cluster, streamKey: string, events: readonly TestEvent[]) {
	for (let i = 0; i < events.length; i += 1000) {
		await Promise.all(events.slice(i, i + 1000).map((e) => redis.call('XADD', streamKey, '*', ...fieldsOf(e))))
	}
}

/** Polls `check` every 10 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
	const deadline = performance.now() + timeoutMs
	while (!(await check())) {
		if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
		await Bun.sleep(10)
	}
}

/** A metrics sink that keeps every call. */
export interface RecordedMetrics extends WebhookMetrics {
	readonly attempts: { endpoint: string; outcome: WebhookAttemptOutcome; seconds: number }[]
	readonly deadLetters: { endpoint: string; reason: DeadLetterReason }[]
	readonly drops: { endpoint: string; reason: DropReason; count: number }[]
	readonly backlogs: { endpoint: string; backlog: WebhookBacklog }[]
}

export function recordingMetrics(): RecordedMetrics {
	const m: RecordedMetrics = {
		attempts: [],
		deadLetters: [],
		drops: [],
		backlogs: [],
		attempt: (endpoint, outcome, seconds) => m.attempts.push({ endpoint, outcome, seconds }),
		deadLettered: (endpoint, reason) => m.deadLetters.push({ endpoint, reason }),
		dropped: (endpoint, reason, count) => m.drops.push({ endpoint, reason, count }),
		backlog: (endpoint, backlog) => m.backlogs.push({ endpoint, backlog }),
	}
	return m
}

/** A logger whose lines are kept (warnings and up). */
export function quietLog(): { log: Logger; lines: string[] } {
	const lines: string[] = []
	return { log: createLogger('warn', (line) => lines.push(line)), lines }
}

/** Short waits for tests; the production defaults are in webhooks.ts. */
export const FAST_TUNING = {
	batchSize: 10,
	backoffBaseMs: 50,
	backoffCapMs: 500,
	idlePollMs: 20,
	claimIdleMs: 1500,
	claimEveryMs: 100,
	touchEveryMs: 300,
	backlogEveryMs: 100,
	redisRetryMs: 100,
} as const

type Overrides = Partial<Omit<WebhookDeliveryOptions, 'redis' | 'streamKey' | 'deadLetterKey' | 'endpoints'>>

/**
 * A started delivery with test timings (timeout 500 ms), once every endpoint's
 * group exists: events written after this returns are the ones it delivers.
 */
export async function startDelivery(
	redis: Redis | Cluster,
	keys: { streamKey: string; deadLetterKey: string },
	endpoints: readonly string[],
	overrides: Overrides = {},
): Promise<WebhookDelivery> {
	const delivery = createWebhookDelivery({
		redis,
		...keys,
		endpoints,
		secret: WEBHOOK_SECRET,
		eventTypes: new Set(ALL_TYPES),
		consumerName: `test-${crypto.randomUUID().slice(0, 8)}`,
		log: quietLog().log,
		clock: systemClock,
		timeoutMs: 500,
		...overrides,
		tuning: { ...FAST_TUNING, ...overrides.tuning },
	})
	delivery.start()
	await waitForGroups(redis, keys.streamKey, endpoints)
	return delivery
}

/** Waits until every endpoint's consumer group exists on `streamKey`. */
export async function waitForGroups(redis: Redis | Cluster, streamKey: string, endpoints: readonly string[]) {
	const wanted = endpoints.map(webhookGroupName)
	await waitFor(
		async () => {
			const names = (await groupInfos(redis, streamKey)).map((g) => g.name)
			return wanted.every((w) => names.includes(w))
		},
		5000,
		'the consumer groups',
	)
}

/** XINFO GROUPS of `streamKey` as records ([] when the stream does not exist). */
export async function groupInfos(
	redis: Redis | Cluster,
	streamKey: string,
): Promise<{ name: string; pending: number; lag: number | null }[]> {
	const reply = await redis.call('XINFO', 'GROUPS', streamKey).catch(() => [])
	if (!Array.isArray(reply)) return []
	return reply.map((flat: unknown[]) => {
		const r = new Map<string, unknown>()
		for (let i = 0; i + 1 < flat.length; i += 2) r.set(String(flat[i]), flat[i + 1])
		const lag = r.get('lag')
		return { name: String(r.get('name')), pending: Number(r.get('pending')), lag: lag === null ? null : Number(lag) }
	})
}

/** Pending entries of the endpoint's group, by consumer. */
export async function pendingByConsumer(
	redis: Redis | Cluster,
	streamKey: string,
	endpoint: string,
): Promise<Map<string, number>> {
	const reply = (await redis.call('XPENDING', streamKey, webhookGroupName(endpoint))) as [
		number,
		string | null,
		string | null,
		[string, string][] | null,
	]
	return new Map((reply[3] ?? []).map(([name, count]) => [name, Number(count)]))
}

/** Pending and undelivered entries of the endpoint's group. */
export async function groupState(redis: Redis | Cluster, streamKey: string, endpoint: string) {
	const group = (await groupInfos(redis, streamKey)).find((g) => g.name === webhookGroupName(endpoint))
	if (group === undefined) throw new Error(`no group for ${endpoint}`)
	return { pending: group.pending, lag: group.lag }
}

/** The ids of the verified requests a receiver answered 2xx, sorted. */
export const sortedIds = (events: readonly { id: string }[]): string[] => events.map((e) => e.id).sort()
