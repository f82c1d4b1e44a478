import { errorFields } from '../../log'
import { type FetchLike, postWebhook } from './webhook-attempt'
import { backoffDelay } from './webhook-backoff'
import { type BatchDeps, createHeldBatch, type Held } from './webhook-batch'
import type { EndpointSettings } from './webhook-settings'
import type { WebhookSigner } from './webhook-signer'
import { isNoGroup, streamIdMs } from './webhook-stream'

/** What one endpoint's worker needs. */
export interface EndpointDeps extends BatchDeps {
	readonly url: string
	readonly signer: WebhookSigner
	readonly fetch: FetchLike
	readonly settings: EndpointSettings
}

/** Delivers one endpoint's consumer group until stopped. */
export interface EndpointWorker {
	start(): void
	/** Lets the attempt in flight finish (bounded by the timeout), then returns; held entries stay pending. */
	stop(): Promise<void>
}

const REDIS_LOG_EVERY_MS = 30_000

/** A worker for one endpoint; nothing runs before `start()`. */
export function createEndpointWorker(deps: EndpointDeps): EndpointWorker {
	const { stream, settings, log, metrics, label } = deps
	const batch = createHeldBatch(deps)
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
	const timers: ReturnType<typeof setInterval>[] = []
	const chores = new Set<Promise<void>>()

	const now = () => performance.now()

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
			await batch.flushAcks()
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
			await batch.admit(await stream.readOwn(settings.batchSize), false)
		}
		await batch.flushAcks()
		await batch.expire()
		if (batch.room() > 0 && now() >= nextClaimAt) {
			nextClaimAt = now() + settings.claimEveryMs
			const claimed = await stream.claim(batch.room(), settings.claimIdleMs)
			if (claimed.trimmed > 0) metrics.dropped(label, 'trimmed', claimed.trimmed)
			await batch.admit(claimed.entries, false)
		}
		if (batch.room() > 0 && now() >= nextReadAt) {
			const got = await stream.readNew(batch.room())
			nextReadAt = got.length === 0 ? now() + settings.idlePollMs : 0
			await batch.admit(got, true)
		}
		const next = batch.next()
		if (next !== undefined && now() >= gateUntil) {
			await attempt(next)
			return
		}
		let wakeAt = next !== undefined ? gateUntil : Number.POSITIVE_INFINITY
		if (batch.room() > 0) wakeAt = Math.min(wakeAt, nextReadAt, nextClaimAt)
		// The first held entry to outgrow max age is dead-lettered on time, gate or not.
		wakeAt = Math.min(wakeAt, now() + batch.msUntilExpiry() + 1)
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
		await stream.touch(batch.streamIds())
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
