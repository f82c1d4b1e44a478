import type { Cluster, Redis } from 'ioredis'

/** Decides, across every instance, whether one more event of a flooding type goes to an endpoint this second. */
export interface FloodGate {
	/** True while fewer than the limit went out in the current second (on Redis' clock). Throws the Redis error. */
	admit(): Promise<boolean>
}

// One counter per endpoint in a fixed one-second window on Redis' own clock
// (TIME), so every instance counts into the same window whatever its clock.
// Returns the count including this one and the ms left in the window.
const HIT = `
local now = redis.call('TIME')
local second = now[1]
local window = redis.call('HMGET', KEYS[1], 's', 'n')
local n = 1
if window[1] == second then
	n = redis.call('HINCRBY', KEYS[1], 'n', 1)
else
	redis.call('HSET', KEYS[1], 's', second, 'n', 1)
	redis.call('PEXPIRE', KEYS[1], 2000)
end
return { n, 1000 - math.floor(tonumber(now[2]) / 1000) }
`

/**
 * A gate letting at most `perSecond` events a second through for one endpoint,
 * counted in Redis at `key`. Once a window is spent, this instance refuses
 * without asking Redis until it ends, so a flood costs one command a second
 * beyond the events let through.
 */
export function createFloodGate(redis: Redis | Cluster, key: string, perSecond: number): FloodGate {
	let closedUntil = 0
	return {
		async admit() {
			if (performance.now() < closedUntil) return false
			const reply = await redis.eval(HIT, 1, key)
			const [count, leftMs] = Array.isArray(reply) ? reply.map(Number) : []
			if (count === undefined || leftMs === undefined) throw new Error('unexpected reply to the flood gate script')
			if (count < perSecond) return true
			// The last one this window may still go; everything after it waits for the next window.
			closedUntil = performance.now() + leftMs
			return count === perSecond
		},
	}
}
