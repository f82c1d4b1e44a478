import type { Clock } from '../../clock'
import type { Logger } from '../../log'
import { parseEvent, type WebhookEvent } from './webhook-event'
import type { FloodGate } from './webhook-flood'
import type { DeadLetterReason, WebhookMetrics } from './webhook-metrics'
import type { EndpointSettings } from './webhook-settings'
import type { GroupStream, StreamEntry } from './webhook-stream'

/** An entry pending for this instance. */
export interface Held {
	readonly streamId: string
	readonly event: WebhookEvent
	attempts: number
	/** Monotonic ms of the last attempt, -Infinity before the first. */
	lastAttemptAt: number
	lastError: string | null
	/** Answered 2xx; only the acknowledgement is left. */
	delivered: boolean
}

/** What a batch needs from its endpoint's worker. */
export interface BatchDeps {
	/** The endpoint's URL without credentials, query or fragment: for logs, metrics and dead letters. */
	readonly label: string
	readonly stream: GroupStream
	readonly eventTypes: ReadonlySet<string>
	/** Types let through `flood` (at most so many a second), e.g. `download.denied`. */
	readonly floodTypes: ReadonlySet<string>
	readonly flood: FloodGate
	readonly log: Logger
	readonly clock: Clock
	readonly metrics: WebhookMetrics
	readonly settings: Pick<EndpointSettings, 'batchSize' | 'maxAgeMs' | 'deadLetterMaxLen'>
}

/**
 * The entries one instance holds for one endpoint: at most `batchSize`, each
 * pending in Redis until it is delivered (then acknowledged), too old (then
 * dead-lettered), or found not to be delivered at all. Every method throws the
 * Redis error; what was done before it stays done.
 */
export interface HeldBatch {
	room(): number
	streamIds(): string[]
	/** Takes `entries` in; those not to be delivered (other types, throttled, trimmed, malformed, too old) are settled at once. */
	admit(entries: readonly StreamEntry[], fresh: boolean): Promise<void>
	/** Acknowledges the delivered entries and lets them go. */
	flushAcks(): Promise<void>
	/** Dead-letters the entries past max age. */
	expire(): Promise<void>
	/** The entry to attempt next: least recently attempted first (never attempted before any), then stream order. */
	next(): Held | undefined
	/** Ms until the first held entry outgrows max age (Infinity when none is held). */
	msUntilExpiry(): number
}

const THROTTLE_LOG_EVERY_MS = 10_000

/** An empty batch. */
export function createHeldBatch(deps: BatchDeps): HeldBatch {
	const { stream, settings, log, metrics, label } = deps
	// The entry's fields are kept beside it for the dead letter, which carries them unchanged.
	const held: { entry: Held; fields: readonly string[] }[] = []
	let throttledSinceLog = 0
	let lastThrottleLog = Number.NEGATIVE_INFINITY
	const age = (event: WebhookEvent) => deps.clock() - event.happenedAtMs

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
		if (performance.now() - lastThrottleLog < THROTTLE_LOG_EVERY_MS) return
		log.warn('webhook events throttled (a flood of one type); acknowledged without delivery', {
			endpoint: label,
			count: throttledSinceLog,
		})
		throttledSinceLog = 0
		lastThrottleLog = performance.now()
	}

	function release(h: Held) {
		const at = held.findIndex((x) => x.entry === h)
		if (at >= 0) held.splice(at, 1)
	}

	return {
		room: () => settings.batchSize - held.length,
		streamIds: () => held.map((x) => x.entry.streamId),
		async admit(entries, fresh) {
			const skip: string[] = []
			let trimmed = 0
			let throttled = 0
			for (const { streamId, fields } of entries) {
				if (held.some((x) => x.entry.streamId === streamId)) continue
				if (fields === null) {
					skip.push(streamId)
					trimmed++
					continue
				}
				const parsed = parseEvent(streamId, fields)
				if (!parsed.ok) {
					await deadLetter(streamId, fields, parsed.error, 'malformed')
					continue
				}
				const { event } = parsed
				if (!deps.eventTypes.has(event.type)) {
					skip.push(streamId)
					continue
				}
				// Only on first read: an entry once let through stays let through when taken over.
				if (fresh && deps.floodTypes.has(event.type) && !(await deps.flood.admit())) {
					skip.push(streamId)
					throttled++
					continue
				}
				if (age(event) > settings.maxAgeMs) {
					await deadLetter(streamId, fields, 'not attempted before max age', 'max_age')
					continue
				}
				const entry = {
					streamId,
					event,
					attempts: 0,
					lastAttemptAt: Number.NEGATIVE_INFINITY,
					lastError: null,
					delivered: false,
				}
				held.push({ entry, fields })
			}
			await stream.ack(skip)
			if (trimmed > 0) {
				metrics.dropped(label, 'trimmed', trimmed)
				log.warn('webhook events trimmed from the stream before delivery', { endpoint: label, count: trimmed })
			}
			noteThrottled(throttled)
		},
		async flushAcks() {
			const done = held.filter((x) => x.entry.delivered).map((x) => x.entry)
			if (done.length === 0) return
			await stream.ack(done.map((h) => h.streamId))
			for (const h of done) release(h)
		},
		async expire() {
			for (const { entry, fields } of held.filter(
				(x) => !x.entry.delivered && age(x.entry.event) > settings.maxAgeMs,
			)) {
				await deadLetter(entry.streamId, fields, entry.lastError ?? 'not attempted before max age', 'max_age')
				release(entry)
			}
		},
		next() {
			let best: Held | undefined
			for (const { entry } of held) {
				if (!entry.delivered && (best === undefined || entry.lastAttemptAt < best.lastAttemptAt)) best = entry
			}
			return best
		},
		msUntilExpiry() {
			let soonest = Number.POSITIVE_INFINITY
			for (const { entry } of held) soonest = Math.min(soonest, settings.maxAgeMs - age(entry.event))
			return soonest
		},
	}
}
