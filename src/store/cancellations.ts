import type { Logger } from '../log'
import { errorFields } from '../log'
import type { TokenStore } from './types'

/** Cancels reservations whose requests failed, retrying until the store takes them. */
export interface CancellationQueue {
	/** Queues a cancel of `reservation`; returns at once (the store may be down right now). */
	cancel(userId: string, jti: string, reservation: string): void
	/** Cancels still waiting. */
	readonly pending: number
	/** A cancel of one of `jti`'s reservations is still waiting: the budget it holds may come back. */
	waitingFor(jti: string): boolean
	/** Stops retrying (at shutdown). */
	stop(): void
}

const MAX_PENDING = 10_000
const FIRST_RETRY_MS = 250
const MAX_RETRY_MS = 5_000

/**
 * A request answered with an error is never charged, even when the store
 * runs its reservation after the service gave up waiting (a stalled Redis
 * resuming, a retried delivery). The failed request's reservation is
 * cancelled instead: the store gives its bytes back if it was charged and
 * refuses it if it arrives later. Cancels are retried with backoff until the
 * store answers; at most `MAX_PENDING` wait (the oldest is dropped, and
 * logged: dropping only ever errs on the side of the budget).
 */
export function createCancellationQueue(store: TokenStore, log: Logger): CancellationQueue {
	const queue: { userId: string; jti: string; reservation: string }[] = []
	let timer: ReturnType<typeof setTimeout> | undefined
	let delayMs = FIRST_RETRY_MS
	let draining = false
	let stopped = false

	const schedule = (ms: number) => {
		if (stopped || timer !== undefined || draining) return
		timer = setTimeout(() => {
			timer = undefined
			void drain()
		}, ms)
		timer.unref?.()
	}

	async function drain() {
		draining = true
		try {
			while (queue.length > 0 && !stopped) {
				const next = queue[0]
				if (!next) break
				try {
					await store.cancel(next.userId, next.jti, next.reservation)
					queue.shift()
					delayMs = FIRST_RETRY_MS
				} catch (err) {
					log.warn('could not cancel a failed request’s reservation yet; will retry', {
						jti: next.jti,
						pending: queue.length,
						...errorFields(err),
					})
					delayMs = Math.min(MAX_RETRY_MS, delayMs * 2)
					break
				}
			}
		} finally {
			draining = false
		}
		if (queue.length > 0) schedule(delayMs)
	}

	return {
		cancel(userId, jti, reservation) {
			if (queue.length >= MAX_PENDING) {
				const dropped = queue.shift()
				log.error('too many reservations waiting to be cancelled; dropping the oldest', { jti: dropped?.jti })
			}
			queue.push({ userId, jti, reservation })
			schedule(0)
		},
		get pending() {
			return queue.length
		},
		// Asked only when the store refuses a token as used up: a scan of at most MAX_PENDING is cheap there.
		waitingFor: (jti) => queue.some((x) => x.jti === jti),
		stop() {
			stopped = true
			clearTimeout(timer)
		},
	}
}
