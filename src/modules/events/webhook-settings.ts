import type { BackoffPolicy } from './webhook-backoff'

/** Knobs with production defaults; tests shorten them. */
export interface WebhookTuning {
	/** Entries one instance holds per endpoint at most (read this many at a time). Default 10. */
	readonly batchSize: number
	/** First wait after a failure, doubling per consecutive failure (with jitter). Default 1 s. */
	readonly backoffBaseMs: number
	/** Longest wait between attempts on a failing endpoint. Default 5 min. */
	readonly backoffCapMs: number
	/** Wait between reads of an idle stream (reads never block: see the README). Default 250 ms. */
	readonly idlePollMs: number
	/** An entry unacknowledged and untouched this long is taken over by another instance. Default 3 × timeout. */
	readonly claimIdleMs: number
	/** How often to look for entries to take over. Default claimIdleMs / 2. */
	readonly claimEveryMs: number
	/** How often held entries' idle time is reset. Default claimIdleMs / 3. */
	readonly touchEveryMs: number
	/** How often the backlog is read for the metrics. Default 10 s. */
	readonly backlogEveryMs: number
	/** Wait after a failed Redis command. Default 1 s. */
	readonly redisRetryMs: number
	/** The dead-letter stream is trimmed to about this many entries. Default 100,000. */
	readonly deadLetterMaxLen: number
	/** Consumers of instances gone this long (nothing pending) are deleted from the groups. Default 1 h. */
	readonly idleConsumerMs: number
}

/**
 * Timing and bounds of one endpoint's worker (all in ms): the tuning with its
 * defaults filled in, the backoff as one policy, and the endpoint's own
 * attempt timeout and age before dead letters.
 */
export type EndpointSettings = Omit<WebhookTuning, 'backoffBaseMs' | 'backoffCapMs'> & {
	readonly timeoutMs: number
	readonly maxAgeMs: number
	readonly backoff: BackoffPolicy
}

/** `value`, or an error naming the option when it is not a positive number. */
export function positive(name: string, value: number): number {
	if (!Number.isFinite(value) || value <= 0)
		throw new Error(`webhooks: ${name} must be a positive number, got ${value}`)
	return value
}

/**
 * The settings of every endpoint's worker: the options given, defaults for the
 * rest. Throws when one is not a positive number, or when takeover could steal
 * an attempt in flight.
 */
export function settingsOf(options: {
	readonly timeoutMs?: number
	readonly maxAgeMs?: number
	readonly tuning?: Partial<WebhookTuning>
}): EndpointSettings {
	const t = options.tuning ?? {}
	const timeoutMs = positive('timeoutMs', options.timeoutMs ?? 10_000)
	const claimIdleMs = positive('claimIdleMs', t.claimIdleMs ?? 3 * timeoutMs)
	// An attempt in flight leaves its entry idle for up to the timeout; taking it over sooner would deliver it twice.
	if (claimIdleMs <= timeoutMs) throw new Error('webhooks: claimIdleMs must be longer than timeoutMs')
	const touchEveryMs = positive('touchEveryMs', t.touchEveryMs ?? claimIdleMs / 3)
	if (touchEveryMs >= claimIdleMs) throw new Error('webhooks: touchEveryMs must be shorter than claimIdleMs')
	return {
		timeoutMs,
		maxAgeMs: positive('maxAgeMs', options.maxAgeMs ?? 24 * 3600_000),
		batchSize: Math.floor(positive('batchSize', t.batchSize ?? 10)),
		backoff: {
			baseMs: positive('backoffBaseMs', t.backoffBaseMs ?? 1000),
			capMs: positive('backoffCapMs', t.backoffCapMs ?? 300_000),
		},
		idlePollMs: positive('idlePollMs', t.idlePollMs ?? 250),
		claimIdleMs,
		claimEveryMs: positive('claimEveryMs', t.claimEveryMs ?? claimIdleMs / 2),
		touchEveryMs,
		backlogEveryMs: positive('backlogEveryMs', t.backlogEveryMs ?? 10_000),
		redisRetryMs: positive('redisRetryMs', t.redisRetryMs ?? 1000),
		deadLetterMaxLen: Math.floor(positive('deadLetterMaxLen', t.deadLetterMaxLen ?? 100_000)),
		idleConsumerMs: positive('idleConsumerMs', t.idleConsumerMs ?? 3600_000),
	}
}
