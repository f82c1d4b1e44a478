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

/** In-process rate limiter for the development store; same semantics, one process. */
export function createMemoryRateLimiter(clock: Clock): RateLimiter {
	const windows = new Map<string, { count: number; resetAt: number }>()
	return {
		async hit(scope, id, rule) {
			const key = `${scope}:${id}`
			const now = clock()
			let window = windows.get(key)
			if (!window || window.resetAt <= now) {
				// Opportunistic sweep keeps the map bounded by active clients.
				if (windows.size > 10_000) for (const [k, w] of windows) if (w.resetAt <= now) windows.delete(k)
				window = { count: 0, resetAt: now + rule.windowS * 1000 }
				windows.set(key, window)
			}
			window.count++
			return { allowed: window.count <= rule.limit, retryAfterS: Math.ceil((window.resetAt - now) / 1000) }
		},
	}
}
