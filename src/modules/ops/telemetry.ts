import type { AppError } from '../../errors'
import { errorFields, type Logger } from '../../log'
import { type DownloadResult, downloadIndex, type Metrics } from './metrics'

/** What is known of one request, filled in as it is handled; one access line is written from it. */
export interface RequestRecord {
	/** The `X-Request-Id` echoed on the response and carried by every log line about the request. */
	readonly id: string
	readonly startedMs: number
	status?: number
	bytes?: number
	userId?: string
	filename?: string
	jti?: string
	/** The client's address, taken when the request arrived. */
	ip?: string
	/** The error code of a refusal. */
	code?: string
	budgeted?: boolean
	/** Set once its access line is written: a request is finished once, whoever reports it first. */
	finished?: true
}

/** Request ids, access lines and the per-request metrics of docs/contract.md §3.4. */
export interface Telemetry {
	readonly metrics: Metrics
	/** Whether an access line is written per request (LOG_LEVEL info or debug): only then is the client IP looked up for it. */
	readonly logsRequests: boolean
	/** The record of `request`, created (with its id) on first use. */
	record(request: Request): RequestRecord
	/** Notes a refusal: its code on the record and the denial metric; a 5xx is also logged (a bug in full, an outage briefly). */
	refused(request: Request, error: AppError): void
	/** Counts a download body that ended (or was answered without one). */
	downloadEnded(result: DownloadResult, budgeted: boolean, bytes: number): void
	/**
	 * Writes the access line and observes the request duration, once per request
	 * (later calls do nothing). `route` is the route pattern, never the raw path;
	 * `params` fill in the user and file when the handler did not.
	 */
	finish(request: Request, route: string, status: number, params: Readonly<Record<string, unknown>>): void
}

/** A caller's id is echoed only when it is this tame; otherwise one is generated. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

// Unique per process and cheap: a random tag plus a counter.
const processTag = crypto.randomUUID().slice(0, 8)
let counter = 0

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx']
const statusClass = (status: number) => STATUS_CLASSES[Math.floor(status / 100) - 1] ?? 'other'
// Clients may send any method: only these become label values, or labels could grow without bound.
const METHODS = new Set(['GET', 'HEAD', 'POST', 'DELETE', 'OPTIONS', 'PUT', 'PATCH'])

/** Builds the telemetry of one process over `log` and `metrics`. */
export function createTelemetry(deps: {
	log: Logger
	metrics: Metrics
	/** Whether access lines are written (LOG_LEVEL info or debug). */
	logsRequests: boolean
	now?: () => number
}): Telemetry {
	const { log, metrics, logsRequests } = deps
	const now = deps.now ?? (() => performance.now())
	const records = new WeakMap<Request, RequestRecord>()

	function record(request: Request): RequestRecord {
		let rec = records.get(request)
		if (rec === undefined) {
			const given = request.headers.get('x-request-id')
			const id = given !== null && REQUEST_ID.test(given) ? given : `${processTag}-${(counter++).toString(36)}`
			rec = { id, startedMs: now() }
			records.set(request, rec)
		}
		return rec
	}

	return {
		metrics,
		logsRequests,
		record,
		refused(request, error) {
			const rec = record(request)
			rec.code = error.code
			rec.status = error.status
			metrics.denials.inc({ reason: error.code })
			if (error.status < 500) return
			const fields = { request_id: rec.id, code: error.code, ...errorFields(error.cause ?? error) }
			// A bug is logged whole; an unavailable store is an operational state, told once per request.
			if (error.code === 'internal_error') log.error('request failed', fields)
			else log.warn('request failed', fields)
		},
		downloadEnded(result, budgeted, bytes) {
			metrics.downloads.inc(downloadIndex(result, budgeted))
			if (bytes > 0) metrics.bytesSent.inc(budgeted ? 1 : 0, bytes)
		},
		finish(request, route, status, params) {
			const rec = record(request)
			if (rec.finished) return
			rec.finished = true
			const method = METHODS.has(request.method) ? request.method : 'other'
			if (rec.userId === undefined && typeof params.user_id === 'string') rec.userId = params.user_id
			if (rec.filename === undefined && typeof params.filename === 'string') rec.filename = params.filename
			const finalStatus = rec.status ?? status
			const durationMs = now() - rec.startedMs
			// The key is made of bounded values only: route patterns, known methods, status classes.
			const cls = statusClass(finalStatus)
			metrics.requestDuration.observe(
				`${route}\n${method}\n${cls}`,
				() => ({ route, method, status_class: cls }),
				durationMs / 1000,
			)
			if (!logsRequests) return
			// One object of one shape per line; pino leaves out the fields that are undefined.
			log.info('request', {
				request_id: rec.id,
				method,
				route,
				status: finalStatus,
				duration_ms: Math.round(durationMs * 100) / 100,
				bytes: rec.bytes,
				user_id: rec.userId,
				filename: rec.filename,
				jti: rec.jti,
				budgeted: rec.budgeted,
				code: rec.code,
				ip: rec.ip,
			})
		},
	}
}
