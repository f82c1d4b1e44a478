import type { Clock } from '../../clock'
import { errorFields, type Logger } from '../../log'
import { type FetchLike, postWebhook } from './webhook-attempt'
import { type BackoffPolicy, backoffDelay } from './webhook-backoff'
import { parseEvent, type WebhookEvent } from './webhook-event'
import type { FloodGate } from './webhook-flood'
import type { DeadLetterReason, WebhookMetrics } from './webhook-metrics'
import type { WebhookSigner } from './webhook-signer'
import { type GroupStream, isNoGroup, type StreamEntry, streamIdMs } from './webhook-stream'

/** Timing and bounds of one endpoint's worker (all in ms unless named otherwise). */
export interface EndpointSettings {
	readonly timeoutMs: number
	readonly maxAgeMs: number
	/** Entries held (pending for this instance) at most. */
	readonly batchSize: number
	readonly backoff: BackoffPolicy
	/** Wait between reads while nothing new arrives. */
	readonly idlePollMs: number
	/** Takeover: an entry idle this long is another instance's no more. Above `timeoutMs`. */
	readonly claimIdleMs: number
	readonly claimEveryMs: number
	/** How often held entries' idle time is reset (below `claimIdleMs`). */
	readonly touchEveryMs: number
	readonly backlogEveryMs: number
	/** Wait after a failed Redis command. */
	readonly redisRetryMs: number
	readonly deadLetterMaxLen: number
	/** Other consumers with nothing pending, idle this long, are deleted from the group. */
	readonly idleConsumerMs: number
}

/** What one endpoint's worker needs. */
export interface EndpointDeps {
	readonly url: string
	/** The URL without credentials, query or fragment: for logs, metrics and dead letters. */
	readonly label: string
	readonly stream: GroupStream
	readonly signer: WebhookSigner
	readonly eventTypes: ReadonlySet<string>
	/** Types let through `flood` (at most so many a second), e.g. `download.denied`. */
	readonly floodTypes: ReadonlySet<string>
	readonly flood: FloodGate
	readonly fetch: FetchLike
	readonly log: Logger
	readonly clock: Clock
	readonly metrics: WebhookMetrics
	readonly settings: EndpointSettings
}

/** Delivers one endpoint's consumer group until stopped. */
export interface EndpointWorker {
	start(): void
	/** Lets the attempt in flight finish (bounded by the timeout), then returns; held entries stay pending. */
	stop(): Promise<void>
}

/** An entry pending for this instance. */
interface Held {
	readonly streamId: string
	readonly fields: readonly string[]
	readonly event: WebhookEvent
	attempts: number
	/** Monotonic ms of the last attempt, -Infinity before the first. */
	lastAttemptAt: number
	lastError: string | null
	/** Answered 2xx; only the acknowledgement is left. */
	delivered: boolean
}

const REDIS_LOG_EVERY_MS = 30_000
const THROTTLE_LOG_EVERY_MS = 10_000

/** A worker for one endpoint; nothing runs before `start()`. */
export function createEndpointWorker(deps: EndpointDeps): EndpointWorker {
	const { stream, settings, log, metrics, label } = deps
	const held: Held[] = []
	let stopping = false
	let groupReady = false
	// Consecutive failed attempts on this endpoint, and no attempt before gateUntil (monotonic ms).
	let streak = 0
	let gateUntil = 0
	let nextReadAt = 0
	let nextClaimAt = 0
	let nextPruneAt = 0
	let wake: (() => void) | null = null
	let loop: Promise<void> | null = null
	let lastRedisLog = { at: Number.NEGATIVE_INFINITY, message: '' }
	let throttledSinceLog = 0
	let lastThrottleLog = Number.NEGATIVE_INFINITY
	const timers: ReturnType<typeof setInterval>[] = []
	const chores = new Set<Promise<void>>()

	const now = () => performance.now()
	const room = () => settings.batchSize - held.length
	const age = (event: WebhookEvent) => deps.clock() - event.happenedAtMs

	/** Sleeps `ms`, or less if stop() is called. */
	function sleep(ms: number): Promise<void> {
		if (stopping || ms <= 0) return Promise.resolve()
		return new Promise((resolve) => {
			const timer = setTimeout(done, ms)
			function done() {
				clearTimeout(timer)
				wake = null
				resolve()
			}
			wake = done
		})
	}

	function logRedisError(err: unknown, doing: string) {
		const fields = errorFields(err)
		const message = String(fields.err)
		if (message === lastRedisLog.message && now() - lastRedisLog.at < REDIS_LOG_EVERY_MS) return
		lastRedisLog = { at: now(), message }
		log.warn('webhook worker: Redis command failed; retrying', { endpoint: label, doing, ...fields })
	}

	async function deadLetter(streamId: string, fields: readonly string[], error: string, reason: DeadLetterReason) {
		await stream.deadLetter(fields, label, error, settings.deadLetterMaxLen)
		await stream.ack([streamId])
		metrics.deadLettered(label, reason)
		log.warn('webhook event dead-lettered', { endpoint: label, stream_id: streamId, reason, error })
	}

	function noteThrottled(count: number) {
		if (count === 0) return
		metrics.dropped(label, 'throttled', count)
		throttledSinceLog += count
		if (now() - lastThrottleLog < THROTTLE_LOG_EVERY_MS) return
		log.warn('webhook events throttled (flood of one type); acknowledged without delivery', {
			endpoint: label,
			count: throttledSinceLog,
		})
		throttledSinceLog = 0
		lastThrottleLog = now()
	}

	/** Takes entries into `held`, acknowledging at once those that are not to be delivered. */
	async function admit(entries: readonly StreamEntry[], fresh: boolean) {
		const skip: string[] = []
		let trimmed = 0
		let throttled = 0
		for (const entry of entries) {
			if (held.some((h) => h.streamId === entry.streamId)) continue
			if (entry.fields === null) {
				skip.push(entry.streamId)
				trimmed++
				continue
			}
			const parsed = parseEvent(entry.streamId, entry.fields)
			if (!parsed.ok) {
				await deadLetter(entry.streamId, entry.fields, parsed.error, 'malformed')
				continue
			}
			const { event } = parsed
			if (!deps.eventTypes.has(event.type)) {
				skip.push(entry.streamId)
				continue
			}
			// Only on first read: an entry already let through stays let through when taken over.
			if (fresh && deps.floodTypes.has(event.type) && !(await deps.flood.admit())) {
				skip.push(entry.streamId)
				throttled++
				continue
			}
			if (age(event) > settings.maxAgeMs) {
				await deadLetter(entry.streamId, entry.fields, 'not attempted before max age', 'max_age')
				continue
			}
			held.push({
				streamId: entry.streamId,
				fields: entry.fields,
				event,
				attempts: 0,
				lastAttemptAt: Number.NEGATIVE_INFINITY,
				lastError: null,
				delivered: false,
			})
		}
		await stream.ack(skip)
		if (trimmed > 0) {
			metrics.dropped(label, 'trimmed', trimmed)
			log.warn('webhook events trimmed from the stream before delivery', { endpoint: label, count: trimmed })
		}
		noteThrottled(throttled)
	}

	function release(h: Held) {
		const at = held.indexOf(h)
		if (at >= 0) held.splice(at, 1)
	}

	async function flushAcks() {
		const done = held.filter((h) => h.delivered)
		if (done.length === 0) return
		await stream.ack(done.map((h) => h.streamId))
		for (const h of done) release(h)
	}

	async function expire() {
		for (const h of held.filter((x) => !x.delivered && age(x.event) > settings.maxAgeMs)) {
			await deadLetter(h.streamId, h.fields, h.lastError ?? 'not attempted before max age', 'max_age')
			release(h)
		}
	}

	/** Least recently attempted first (never attempted before any), then stream order. */
	function pick(): Held | undefined {
		let best: Held | undefined
		for (const h of held) if (!h.delivered && (best === undefined || h.lastAttemptAt < best.lastAttemptAt)) best = h
		return best
	}

	async function attempt(h: Held) {
		h.attempts++
		h.lastAttemptAt = now()
		const headers = deps.signer.headers(h.event.id, deps.clock(), h.event.body)
		const result = await postWebhook(deps.fetch, deps.url, headers, h.event.body, settings.timeoutMs, deps.clock)
		metrics.attempt(label, result.outcome, result.seconds)
		if (result.outcome === 'delivered') {
			h.delivered = true
			streak = 0
			gateUntil = 0
			log.debug('webhook delivered', { endpoint: label, event_id: h.event.id, attempts: h.attempts })
			await flushAcks()
			return
		}
		streak++
		h.lastError = result.error
		const retryAfter = Math.min(result.retryAfterMs ?? 0, settings.backoff.capMs)
		const wait = Math.max(backoffDelay(streak, settings.backoff), retryAfter)
		gateUntil = now() + wait
		log.warn('webhook attempt failed', {
			endpoint: label,
			event_id: h.event.id,
			type: h.event.type,
			attempt: h.attempts,
			outcome: result.outcome,
			error: result.error,
			retry_in_ms: Math.round(wait),
		})
	}

	async function step() {
		if (!groupReady) {
			await stream.ensureGroup()
			groupReady = true
			await admit(await stream.readOwn(settings.batchSize), false)
		}
		await flushAcks()
		await expire()
		if (room() > 0 && now() >= nextClaimAt) {
			nextClaimAt = now() + settings.claimEveryMs
			const claimed = await stream.claim(room(), settings.claimIdleMs)
			if (claimed.trimmed > 0) metrics.dropped(label, 'trimmed', claimed.trimmed)
			await admit(claimed.entries, false)
		}
		if (room() > 0 && now() >= nextReadAt) {
			const got = await stream.readNew(room())
			nextReadAt = got.length === 0 ? now() + settings.idlePollMs : 0
			await admit(got, true)
		}
		const next = pick()
		if (next !== undefined && now() >= gateUntil) {
			await attempt(next)
			return
		}
		let wakeAt = next !== undefined ? gateUntil : Number.POSITIVE_INFINITY
		if (room() > 0) wakeAt = Math.min(wakeAt, nextReadAt, nextClaimAt)
		// The first held entry to outgrow max age is dead-lettered on time, gate or not.
		for (const h of held) wakeAt = Math.min(wakeAt, now() + settings.maxAgeMs - age(h.event) + 1)
		await sleep(Math.min(wakeAt, now() + settings.claimEveryMs) - now())
	}

	async function run() {
		while (!stopping) {
			try {
				await step()
			} catch (err) {
				if (isNoGroup(err)) {
					log.warn('webhook consumer group missing; creating it again', { endpoint: label, group: stream.group })
					groupReady = false
					continue
				}
				logRedisError(err, 'delivery loop')
				await sleep(settings.redisRetryMs)
			}
		}
	}

	/** Runs `chore` unless the previous one is still running; stop() waits for the one in flight. */
	function every(ms: number, doing: string, chore: () => Promise<void>) {
		let running = false
		timers.push(
			setInterval(() => {
				if (running || stopping) return
				running = true
				const p = chore()
					.catch((err: unknown) => logRedisError(err, doing))
					.finally(() => {
						running = false
						chores.delete(p)
					})
				chores.add(p)
			}, ms),
		)
	}

	async function touch() {
		await stream.touch(held.map((h) => h.streamId))
	}

	async function report() {
		if (!groupReady) return
		const backlog = await stream.backlog()
		const oldest = backlog.oldestId === null ? null : streamIdMs(backlog.oldestId)
		metrics.backlog(label, {
			pending: backlog.pending,
			undelivered: backlog.undelivered,
			oldestAgeSeconds: oldest === null ? 0 : Math.max(0, (deps.clock() - oldest) / 1000),
		})
		if (now() < nextPruneAt) return
		nextPruneAt = now() + settings.idleConsumerMs / 4
		const pruned = await stream.pruneConsumers(settings.idleConsumerMs)
		if (pruned.length > 0) log.info('webhook consumers of stopped instances removed', { endpoint: label, pruned })
	}

	return {
		start() {
			if (loop !== null) throw new Error('webhook worker already started')
			loop = run()
			every(settings.touchEveryMs, 'touching held entries', touch)
			every(settings.backlogEveryMs, 'reading the backlog', report)
		},
		async stop() {
			stopping = true
			for (const t of timers) clearInterval(t)
			wake?.()
			await loop
			await Promise.all(chores)
		},
	}
}
