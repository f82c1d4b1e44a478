import {
	AggregatorRegistry,
	Counter,
	collectDefaultMetrics,
	Gauge,
	Histogram,
	type MetricObjectWithValues,
	type MetricValue,
	Registry,
} from 'prom-client'
import type { WebhookMetrics } from '../events/webhook-metrics'
import { HotCounter, HotHistogram } from './hot-metrics'

/** How a download response ended (docs/contract.md §3.4 `downloads by result`). */
export const DOWNLOAD_RESULTS = ['full', 'partial', 'not_modified', 'range_not_satisfiable', 'broken'] as const
export type DownloadResult = (typeof DOWNLOAD_RESULTS)[number]

/** The label set index of `downloads_total` and `bytes_sent_total` (see `HotCounter`). */
export const downloadIndex = (result: DownloadResult, budgeted: boolean): number =>
	DOWNLOAD_RESULTS.indexOf(result) * 2 + (budgeted ? 1 : 0)

/** The service's Prometheus metrics, all named `download_gate_*`, in one registry per process. */
export interface Metrics {
	readonly registry: Registry
	readonly tokensIssued: Counter<'budgeted'>
	/** By `downloadIndex(result, budgeted)`. */
	readonly downloads: HotCounter
	/** Index 0 unlimited, 1 budgeted. */
	readonly bytesSent: HotCounter
	readonly denials: Counter<'reason'>
	readonly budgetBytesReturned: Counter
	readonly downloadsInFlight: Gauge
	/** Keyed `route\nmethod\nstatus_class`. */
	readonly requestDuration: HotHistogram
	readonly storeUp: Gauge
	readonly storeCommandDuration: Histogram<'command' | 'outcome'>
	/** Requests to the file storage (a bucket: HEAD, GET, check) by operation and outcome. */
	readonly storageRequestDuration: Histogram<'operation' | 'outcome'>
	readonly eventsWritten: Counter<'type'>
	readonly eventsDropped: Counter<'type'>
	readonly webhookAttempts: Counter<'endpoint' | 'outcome'>
	readonly webhookAttemptDuration: Histogram<'endpoint'>
	readonly webhookDeadLetters: Counter<'endpoint' | 'reason'>
	readonly webhookDropped: Counter<'endpoint' | 'reason'>
	readonly webhookBacklog: Gauge<'endpoint'>
	readonly webhookOldestAge: Gauge<'endpoint'>
	/** Download slots this process holds for bodies in flight (`MAX_CONCURRENT_DOWNLOADS_PER_USER`). */
	readonly slotsHeld: Gauge
	/** Bodies of tokens with a `rate`, being paced. */
	readonly pacedInFlight: Gauge
	/** Where `downloadsInFlight` is read from at each scrape (the server's pending requests). */
	setInFlightSource(read: () => number): void
}

/** JSON of one process's registry, as exchanged between workers. */
export type MetricsSnapshot = MetricObjectWithValues<MetricValue<string>>[]

/**
 * Builds the registry with the service's metrics and the runtime's default
 * process metrics. Gauges say how workers combine (`aggregator`): store_up is
 * the worst worker's view, in-flight the sum.
 */
export function createMetrics(): Metrics {
	const registry = new Registry()
	collectDefaultMetrics({ register: registry, prefix: 'download_gate_' })
	let inFlight: () => number = () => 0
	const bool = ['true', 'false']
	const tokensIssued = new Counter({
		name: 'download_gate_tokens_issued_total',
		help: 'Download tokens issued, by whether they carry a max_uses budget',
		labelNames: ['budgeted'],
		registers: [registry],
	})
	const downloads = new HotCounter(
		'download_gate_downloads_total',
		'Download responses by result: full (200), partial (206), not_modified (304), range_not_satisfiable (416), broken (the client went away mid-body)',
		// Index order: downloadIndex(result, budgeted).
		DOWNLOAD_RESULTS.flatMap((result) => ['false', 'true'].map((budgeted) => ({ result, budgeted }))),
		registry,
	)
	const bytesSent = new HotCounter(
		'download_gate_bytes_sent_total',
		'Body bytes handed to clients (zero-copy bodies count when handed to the runtime)',
		[{ budgeted: 'false' }, { budgeted: 'true' }],
		registry,
	)
	const denials = new Counter({
		name: 'download_gate_denials_total',
		help: 'Refused requests by error code',
		labelNames: ['reason'],
		registers: [registry],
	})
	const budgetBytesReturned = new Counter({
		name: 'download_gate_budget_bytes_returned_total',
		help: 'Budget bytes given back after broken connections (unwritten bytes plus resume allowance)',
		registers: [registry],
	})
	const downloadsInFlight = new Gauge({
		name: 'download_gate_downloads_in_flight',
		help: 'Downloads being checked or sent, bodies included (from the server’s pending requests)',
		registers: [registry],
		aggregator: 'sum',
		collect() {
			this.set(Math.max(0, inFlight()))
		},
	})
	const requestDuration = new HotHistogram(
		'download_gate_http_request_duration_seconds',
		'Time from request to response (for bodies: until handed to the runtime), by route, method and status class',
		[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
		registry,
	)
	const storeUp = new Gauge({
		name: 'download_gate_store_up',
		help: 'Whether the token store answered its last command (1) or not (0)',
		registers: [registry],
		aggregator: 'min',
	})
	const storeCommandDuration = new Histogram({
		name: 'download_gate_store_command_duration_seconds',
		help: 'Token store command latency by command and outcome (ok, error)',
		labelNames: ['command', 'outcome'],
		buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
		registers: [registry],
	})
	const storageRequestDuration = new Histogram({
		name: 'download_gate_storage_request_duration_seconds',
		help: 'File storage request latency (to the first byte) by operation (head, get, list) and outcome (ok, not_found, changed, error)',
		labelNames: ['operation', 'outcome'],
		buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
		registers: [registry],
	})
	const eventsWritten = new Counter({
		name: 'download_gate_events_written_total',
		help: 'Lifecycle events appended to the events stream, by type',
		labelNames: ['type'],
		registers: [registry],
	})
	const eventsDropped = new Counter({
		name: 'download_gate_events_dropped_total',
		help: 'Lifecycle events this instance could not append (Redis away past the waiting bound), by type',
		labelNames: ['type'],
		registers: [registry],
	})
	const webhookAttempts = new Counter({
		name: 'download_gate_webhook_attempts_total',
		help: 'Webhook delivery attempts by endpoint and outcome (delivered, redirect, client_error, server_error, timeout, network_error)',
		labelNames: ['endpoint', 'outcome'],
		registers: [registry],
	})
	const webhookAttemptDuration = new Histogram({
		name: 'download_gate_webhook_attempt_duration_seconds',
		help: 'Webhook delivery latency until the response headers (or the failure), by endpoint',
		labelNames: ['endpoint'],
		buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
		registers: [registry],
	})
	const webhookDeadLetters = new Counter({
		name: 'download_gate_webhook_dead_letters_total',
		help: 'Events given up for an endpoint (older than WEBHOOK_MAX_AGE, or malformed) and moved to the dead-letter stream',
		labelNames: ['endpoint', 'reason'],
		registers: [registry],
	})
	const webhookDropped = new Counter({
		name: 'download_gate_webhook_dropped_total',
		help: 'Events acknowledged without a delivery: throttled denials, or trimmed from the stream before delivery',
		labelNames: ['endpoint', 'reason'],
		registers: [registry],
	})
	// Group-wide values, the same from every instance: combined with max, not summed.
	const webhookBacklog = new Gauge({
		name: 'download_gate_webhook_backlog',
		help: 'Events not yet delivered to an endpoint (pending and unread)',
		labelNames: ['endpoint'],
		registers: [registry],
		aggregator: 'max',
	})
	const webhookOldestAge = new Gauge({
		name: 'download_gate_webhook_oldest_event_age_seconds',
		help: 'Age of the oldest event not yet delivered to an endpoint (0 when none waits)',
		labelNames: ['endpoint'],
		registers: [registry],
		aggregator: 'max',
	})
	const slotsHeld = new Gauge({
		name: 'download_gate_download_slots_held',
		help: 'Per-user download slots held for bodies in flight (MAX_CONCURRENT_DOWNLOADS_PER_USER)',
		registers: [registry],
		aggregator: 'sum',
	})
	const pacedInFlight = new Gauge({
		name: 'download_gate_paced_bodies_in_flight',
		help: 'Bodies of tokens with a rate, being paced',
		registers: [registry],
		aggregator: 'sum',
	})
	storeUp.set(1)
	for (const budgeted of bool) tokensIssued.inc({ budgeted }, 0)
	budgetBytesReturned.inc(0)
	return {
		registry,
		tokensIssued,
		downloads,
		bytesSent,
		denials,
		budgetBytesReturned,
		downloadsInFlight,
		requestDuration,
		storeUp,
		storeCommandDuration,
		storageRequestDuration,
		eventsWritten,
		eventsDropped,
		webhookAttempts,
		webhookAttemptDuration,
		webhookDeadLetters,
		webhookDropped,
		webhookBacklog,
		webhookOldestAge,
		slotsHeld,
		pacedInFlight,
		setInFlightSource(read) {
			inFlight = read
		},
	}
}

/** The webhook worker's reports, counted in `metrics`. */
export function webhookMetricsOf(metrics: Metrics): WebhookMetrics {
	return {
		attempt(endpoint, outcome, seconds) {
			metrics.webhookAttempts.inc({ endpoint, outcome })
			metrics.webhookAttemptDuration.observe({ endpoint }, seconds)
		},
		deadLettered: (endpoint, reason) => metrics.webhookDeadLetters.inc({ endpoint, reason }),
		dropped: (endpoint, reason, count) => metrics.webhookDropped.inc({ endpoint, reason }, count),
		backlog(endpoint, backlog) {
			metrics.webhookBacklog.set({ endpoint }, backlog.pending + backlog.undelivered)
			metrics.webhookOldestAge.set({ endpoint }, backlog.oldestAgeSeconds)
		},
	}
}

/** One Prometheus text exposition from several processes' snapshots (counters summed, gauges per their aggregator). */
export async function aggregateMetrics(snapshots: readonly MetricsSnapshot[]): Promise<string> {
	return AggregatorRegistry.aggregate(snapshots as MetricsSnapshot[]).metrics()
}

/** The content type of the Prometheus text exposition. */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE
