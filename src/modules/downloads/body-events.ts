import type { EventWriter } from '../events/writer'
import { type DownloadPlan, rangeOf } from './plan'
import type { BodyEnd } from './response'

/**
 * The download events of unlimited tokens' bodies (a budgeted body's are
 * written by the store, in the step that counts it). A copy begins with a
 * body from the first byte; only a body of the whole file completes one.
 */
export interface BodyEvents {
	/** The body was handed over; `signal()` says when the client leaves before it is sent. Never throws. */
	started(plan: DownloadPlan, signal: () => AbortSignal): void
	/** A streamed body ended (a zero-copy one ends at hand-over). Never throws. */
	ended(plan: DownloadPlan, end: BodyEnd): void
}

/** The body events written to `events`. */
export function createBodyEvents(events: EventWriter): BodyEvents {
	function emit(
		plan: DownloadPlan,
		type: 'download.started' | 'download.completed' | 'download.broken',
		extra: Record<string, unknown> = {},
	) {
		const { claims, file, selection } = plan
		const { start, end } = rangeOf(selection, file.size)
		events.emit(type, {
			jti: claims.jti,
			user_id: claims.user_id,
			filename: claims.filename,
			size: file.size,
			range: `${start}-${end - 1}`,
			...extra,
			request_id: plan.requestId,
		})
	}
	const reports = (plan: DownloadPlan) =>
		!plan.budgeted && plan.body.kind !== 'none' && rangeOf(plan.selection, plan.file.size).start === 0
	// A player's `bytes=0-1` probe is no download.
	const wholeFile = (plan: DownloadPlan) => rangeOf(plan.selection, plan.file.size).end === plan.file.size

	return {
		started(plan, signal) {
			if (!reports(plan)) return
			emit(plan, 'download.started')
			// A zero-copy body ends for the service when it is handed over: the runtime reports a client
			// that leaves before the last byte through the request's signal, and nothing when all was sent.
			if (plan.body.kind !== 'zero-copy') return
			if (wholeFile(plan)) emit(plan, 'download.completed', { handed_over: true })
			signal().addEventListener('abort', () => emit(plan, 'download.broken', { bytes_written: null }), { once: true })
		},
		ended(plan, end) {
			if (!reports(plan) || plan.body.kind === 'zero-copy') return
			if (!end.complete) emit(plan, 'download.broken', { bytes_written: end.written })
			else if (wholeFile(plan)) emit(plan, 'download.completed')
		},
	}
}
