import { BoundedCache, stringBytes } from '../../bounded-cache'
import type { Clock } from '../../clock'
import type { RateLimit } from '../../config'
import { type AppError, RateLimitedError } from '../../errors'
import { errorFields, type Logger } from '../../log'
import type { RateLimiter } from '../../store/rate-limit'

/** Counts refused downloads per client IP and turns them into 429 past `RATE_LIMIT_DENIED`. */
export interface RefusalLimiter {
	/** The answer for refusal `err` from `ip`: `err` itself, or 429 `rate_limited` past the limit. Never throws. */
	limit(err: AppError, ip: string): Promise<AppError>
}

/**
 * Only refusals are counted, so guessing and scraping hit 429 while the happy
 * path pays no extra round trip. 5xx are the service's fault and never
 * counted. An IP over the limit is remembered here until its window resets,
 * so a flood of refusals costs no Redis round trip each (this only makes one
 * instance stricter; the shared count stays in Redis). A limiter outage keeps
 * the refusal as it was.
 */
export function createRefusalLimiter(deps: {
	readonly rateLimiter: RateLimiter
	readonly rule: RateLimit
	readonly clock: Clock
	readonly log: Logger
}): RefusalLimiter {
	const { rateLimiter, rule, clock, log } = deps
	const blockedUntil = new BoundedCache<number>(1024 * 1024, (ip) => stringBytes(ip) + 8)
	return {
		async limit(err, ip) {
			if (err.status >= 500) return err
			const now = clock()
			const until = blockedUntil.get(ip)
			if (until !== undefined) {
				if (until > now) return new RateLimitedError((until - now) / 1000)
				blockedUntil.delete(ip)
			}
			try {
				const hit = await rateLimiter.hit('denied', ip, rule)
				if (hit.allowed) return err
				blockedUntil.set(ip, now + hit.retryAfterS * 1000)
				return new RateLimitedError(hit.retryAfterS)
			} catch (limiterErr) {
				log.warn('rate limiter unavailable', errorFields(limiterErr))
				return err
			}
		},
	}
}
