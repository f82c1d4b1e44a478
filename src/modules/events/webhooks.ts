import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import type { Clock } from '../../clock'
import type { Logger } from '../../log'
import type { FetchLike } from './webhook-attempt'
import { createEndpointWorker, type EndpointSettings, type EndpointWorker } from './webhook-endpoint'
import { createFloodGate } from './webhook-flood'
import { NO_WEBHOOK_METRICS, type WebhookMetrics } from './webhook-metrics'
import { createWebhookSigner } from './webhook-signer'
import { createGroupStream } from './webhook-stream'

export type { FetchLike, WebhookAttemptOutcome } from './webhook-attempt'
export type { DeadLetterReason, DropReason, WebhookBacklog, WebhookMetrics } from './webhook-metrics'
export { NO_WEBHOOK_METRICS } from './webhook-metrics'

/** Event types whose bursts are cut to `deniedPerSecond` per endpoint (a scraper can cause thousands a second). */
export const FLOOD_TYPES: ReadonlySet<string> = new Set(['download.denied'])

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

/** What `createWebhookDelivery` needs. */
export interface WebhookDeliveryOptions {
	/** A client of its own (the caller builds and closes it), so deliveries never queue behind the download path. */
	readonly redis: Redis | Cluster
	readonly streamKey: string
	readonly deadLetterKey: string
	/** http(s) URLs; each gets its own consumer group, so one failing endpoint never delays another. */
	readonly endpoints: readonly string[]
	/** `whsec_<base64>` (Standard Webhooks). */
	readonly secret: string
	/** Types to deliver; other entries are acknowledged without a request. */
	readonly eventTypes: ReadonlySet<string>
	/** Unique per instance (e.g. host name and pid): the consumer name in every group. */
	readonly consumerName: string
	readonly log: Logger
	readonly clock: Clock
	/** Per attempt, the response's headers and error bodies included. Default 10 s. */
	readonly timeoutMs?: number
	/** Older events are dead-lettered instead of retried. Default 24 h. */
	readonly maxAgeMs?: number
	/** `download.denied` events per endpoint per second, across all instances; the rest are dropped. Default 10. */
	readonly deniedPerSecond?: number
	readonly fetch?: FetchLike
	readonly metrics?: WebhookMetrics
	readonly tuning?: Partial<WebhookTuning>
}

/** The delivery worker of every endpoint. */
export interface WebhookDelivery {
	/** Starts every endpoint's worker in the background; nothing awaits deliveries. Throws if already started. */
	start(): void
	/** Finishes each attempt in flight (bounded by the timeout); everything not delivered stays pending for another instance. */
	stop(): Promise<void>
}

/** The consumer group of an endpoint: `webhooks:` and 12 hex digits of the SHA-256 of its exact URL. */
export const webhookGroupName = (url: string): string =>
	`webhooks:${createHash('sha256').update(url).digest('hex').slice(0, 12)}`

/** The URL without credentials, query or fragment (these may carry secrets): how logs, metrics and dead letters name an endpoint. */
export function endpointLabel(url: string): string {
	const u = new URL(url)
	return `${u.protocol}//${u.host}${u.pathname}`
}

function positive(name: string, value: number): number {
	if (!Number.isFinite(value) || value <= 0)
		throw new Error(`webhooks: ${name} must be a positive number, got ${value}`)
	return value
}

function settingsOf(options: WebhookDeliveryOptions): EndpointSettings {
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

/**
 * Delivers the events of `streamKey` to every endpoint (docs/contract.md §7):
 * signed per Standard Webhooks, at least once across all instances, retried
 * with backoff, dead-lettered past `maxAgeMs`. Throws on invalid options (a
 * bad secret or URL, a claim time not above the timeout); never afterwards.
 */
export function createWebhookDelivery(options: WebhookDeliveryOptions): WebhookDelivery {
	const settings = settingsOf(options)
	const signer = createWebhookSigner(options.secret)
	const deniedPerSecond = positive('deniedPerSecond', options.deniedPerSecond ?? 10)
	if (options.consumerName === '') throw new Error('webhooks: consumerName is required')
	const urls = [...new Set(options.endpoints)]
	urls.forEach((url, i) => {
		const protocol = URL.canParse(url) ? new URL(url).protocol : ''
		// Named by position, not spelled out: a URL may carry credentials.
		if (protocol !== 'http:' && protocol !== 'https:') {
			throw new Error(`webhooks: endpoint ${i + 1} of ${urls.length} is not an http(s) URL`)
		}
	})
	const workers: EndpointWorker[] = urls.map((url) => {
		const group = webhookGroupName(url)
		return createEndpointWorker({
			url,
			label: endpointLabel(url),
			stream: createGroupStream(options.redis, options, group, options.consumerName),
			signer,
			eventTypes: options.eventTypes,
			floodTypes: FLOOD_TYPES,
			// Beside the stream key, so it shares its hash tag (and Cluster slot) when it has one.
			flood: createFloodGate(options.redis, `${options.streamKey}:${group}:denied-rate`, deniedPerSecond),
			fetch: options.fetch ?? ((url, init) => fetch(url, init)),
			log: options.log,
			clock: options.clock,
			metrics: options.metrics ?? NO_WEBHOOK_METRICS,
			settings,
		})
	})
	let started = false
	return {
		start() {
			if (started) throw new Error('webhook delivery already started')
			started = true
			for (const w of workers) w.start()
		},
		async stop() {
			await Promise.all(workers.map((w) => w.stop()))
		},
	}
}
