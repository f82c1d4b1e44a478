import type { Logger } from '../log'
import type { MetricsSnapshot } from '../modules/ops/metrics'

/** The argument that makes `src/index.ts` a worker of a supervisor: `--worker=<index>`. */
export const WORKER_FLAG = '--worker'

/** Which worker this process is (its `--worker=<n>`), or null when it is not one. */
export function workerIndexOf(argv: readonly string[]): number | null {
	for (const arg of argv) {
		if (arg === WORKER_FLAG) return 0
		const m = /^--worker=(\d{1,4})$/.exec(arg)
		if (m) return Number(m[1])
	}
	return null
}

/** Messages between the supervisor and its workers, so one scrape of /metrics on any worker covers all. */
export type IpcMessage =
	| { readonly t: 'scrape'; readonly id: number } // worker → supervisor: a scrape arrived here
	| { readonly t: 'collect'; readonly id: number } // supervisor → worker: send your snapshot
	| { readonly t: 'snapshot'; readonly id: number; readonly data: MetricsSnapshot } // worker → supervisor
	| { readonly t: 'scraped'; readonly id: number; readonly snapshots: readonly MetricsSnapshot[] } // supervisor → worker: every worker's

/** How long the supervisor waits for every worker's snapshot. */
export const COLLECT_TIMEOUT_MS = 1500

/**
 * A worker's side of the metrics exchange: answers the supervisor's collects
 * with `snapshot()`, and returns the function a scrape calls, which asks the
 * supervisor for every worker's snapshot and aggregates them here (the
 * supervisor only relays, so it carries no metrics library), or serves this
 * worker's own figures when the supervisor does not answer in time.
 */
export function workerMetrics(
	snapshot: () => Promise<MetricsSnapshot>,
	ownText: () => Promise<string>,
	aggregate: (snapshots: readonly MetricsSnapshot[]) => Promise<string>,
	log: Logger,
): () => Promise<string> {
	let nextId = 0
	const waiting = new Map<number, (text: string) => void>()
	process.on('message', (message: IpcMessage) => {
		if (message.t === 'collect')
			void snapshot().then((data) => process.send?.({ t: 'snapshot', id: message.id, data } satisfies IpcMessage))
		else if (message.t === 'scraped') void aggregate(message.snapshots).then((text) => waiting.get(message.id)?.(text))
	})
	return () =>
		new Promise((resolve) => {
			const id = nextId++
			const timer = setTimeout(() => {
				// The supervisor is gone or stuck: this worker's own figures beat no answer.
				waiting.delete(id)
				log.warn('metrics: the supervisor did not answer; serving this worker’s metrics only')
				resolve(ownText())
			}, COLLECT_TIMEOUT_MS * 2)
			waiting.set(id, (text) => {
				clearTimeout(timer)
				waiting.delete(id)
				resolve(text)
			})
			process.send?.({ t: 'scrape', id } satisfies IpcMessage)
		})
}
