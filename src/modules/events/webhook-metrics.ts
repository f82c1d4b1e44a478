import type { WebhookAttemptOutcome } from './webhook-attempt'

/** Why an entry went to the dead-letter stream. */
export type DeadLetterReason = 'max_age' | 'malformed'

/**
 * Why an entry was acknowledged without a delivery or a dead letter:
 * `throttled` a `download.denied` past the per-second limit; `trimmed` the
 * stream dropped it (EVENTS_MAX_LEN) before it could be delivered.
 */
export type DropReason = 'throttled' | 'trimmed'

/** One endpoint's backlog, as its consumer group holds it (the same seen from every instance). */
export interface WebhookBacklog {
	/** Read by an instance, not yet delivered (in flight, or waiting out a backoff). */
	readonly pending: number
	/** Not yet read by any instance. */
	readonly undelivered: number
	/** Age of the oldest event not yet delivered, 0 when there is none. */
	readonly oldestAgeSeconds: number
}

/**
 * Where the worker reports what it does; plain callbacks for prom-client (or
 * anything else) to count. `endpoint` is the endpoint's URL without
 * credentials, query or fragment. Callbacks must not throw.
 */
export interface WebhookMetrics {
	/** One POST ended (latency until the response's headers, or the failure). */
	attempt(endpoint: string, outcome: WebhookAttemptOutcome, seconds: number): void
	deadLettered(endpoint: string, reason: DeadLetterReason): void
	dropped(endpoint: string, reason: DropReason, count: number): void
	/** Every few seconds, per endpoint; a group-wide value: combine instances with max, not sum. */
	backlog(endpoint: string, backlog: WebhookBacklog): void
}

/** A sink that records nothing. */
export const NO_WEBHOOK_METRICS: WebhookMetrics = {
	attempt() {},
	deadLettered() {},
	dropped() {},
	backlog() {},
}
