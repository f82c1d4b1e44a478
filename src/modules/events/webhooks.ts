import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import type { Clock } from '../../clock'
import type { Logger } from '../../log'
import type { FetchLike } from './webhook-attempt'
import { createEndpointWorker, type EndpointWorker } from './webhook-endpoint'
import { createFloodGate } from './webhook-flood'
import { NO_WEBHOOK_METRICS, type WebhookMetrics } from './webhook-metrics'
import { positive, settingsOf, type WebhookTuning } from './webhook-settings'
import { createWebhookSigner } from './webhook-signer'
import { createGroupStream } from './webhook-stream'

export type { FetchLike, WebhookAttemptOutcome } from './webhook-attempt'
export type { DeadLetterReason, DropReason, WebhookBacklog, WebhookMetrics } from './webhook-metrics'
export { NO_WEBHOOK_METRICS } from './webhook-metrics'
export type { WebhookTuning } from './webhook-settings'

/** Event types whose bursts are cut to `deniedPerSecond` per endpoint (a scraper can cause thousands a second). */
export const FLOOD_TYPES: ReadonlySet<string> = new Set(['download.denied'])

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
