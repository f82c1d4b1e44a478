import type { Clock } from '../clock'
import type { RateLimit } from '../config'
import { defineScripts, luaWindowHit, type RedisClient, toInt } from './scripts'

/** The outcome of counting one event against a limit. */
export interface RateLimitHit {
	readonly allowed: boolean
	/** Seconds until the window resets (meaningful when not allowed). */
	readonly retryAfterS: number
}

/**
 * Fixed-window counters shared by every instance. `id` becomes the Redis
 * Cluster hash tag, so each counter lives in one slot.
 */
export interface RateLimiter {
	/** Counts one event for `scope`/`id`; rejects with `StoreUnavailableError` when Redis is down. */
	hit(scope: string, id: string, rule: RateLimit): Promise<RateLimitHit>
}

// INCR, and start the window on the first event (or repair a key that lost its TTL).
const HIT = `${luaWindowHit('KEYS[1]', 'ARGV[1]')}
return {n, ttl}
`

/** Redis rate limiter: one atomic script per event. */
export function createRedisRateLimiter(client: RedisClient, prefix: string): RateLimiter {
	const scripts = defineScripts(client, { hit: { numberOfKeys: 1, lua: HIT } })
	return {
		async hit(scope, id, rule) {
			const reply = (await scripts.hit.run([`${prefix}rl:${scope}:{${id}}`], [rule.windowS * 1000])) as unknown[]
			const [count, ttlMs] = reply.map(toInt)
			return { allowed: (count ?? 0) <= rule.limit, retryAfterS: Math.ceil((ttlMs ?? 0) / 1000) }
		},
	}
}

/** Fixed-window counters of one process: the memory rate limiter's and the memory store's issue limit. */
export interface FixedWindows {
	/** Counts one event for `key` (refused ones too, as the Redis script does) against `rule`. */
	hit(key: string, rule: RateLimit): RateLimitHit
	/** Forgets windows that are over. */
	sweep(): void
}

/** Past this many windows, starting a new one first forgets those that are over. */
const SWEEP_ABOVE = 10_000

/**
 * Fixed windows in memory with the Redis script's semantics: a window starts
 * with its first event and lasts `rule.windowS`; every event counts.
 */
export function createFixedWindows(clock: Clock): FixedWindows {
	const windows = new Map<string, { count: number; resetAt: number }>()
	const sweep = () => {
		const now = clock()
		for (const [key, w] of windows) if (w.resetAt <= now) windows.delete(key)
	}
	return {
		hit(key, rule) {
			const now = clock()
			let window = windows.get(key)
			if (!window || window.resetAt <= now) {
				// Opportunistic sweep keeps the map bounded by active clients.
				if (windows.size > SWEEP_ABOVE) sweep()
				window = { count: 0, resetAt: now + rule.windowS * 1000 }
				windows.set(key, window)
			}
			window.count++
			return { allowed: window.count <= rule.limit, retryAfterS: Math.ceil((window.resetAt - now) / 1000) }
		},
		sweep,
	}
}

/** In-process rate limiter for the development store; same semantics, one process. */
export function createMemoryRateLimiter(clock: Clock): RateLimiter {
	const windows = createFixedWindows(clock)
	return {
		async hit(scope, id, rule) {
			return windows.hit(`${scope}:${id}`, rule)
		},
	}
}
