import type { ChainableCommander } from 'ioredis'
import type { Clock } from '../clock'
import type { RateLimit } from '../config'
import { StoreUnavailableError } from '../errors'
import { defineScripts, luaWindowHit, type RedisClient, type Script, toInt } from './scripts'
import type { TrackedCache } from './tracking'
import type { CreateResult, NewTokenRecord, TakeResult, TokenInfo, TokenStore } from './types'

export type { RedisClient } from './scripts'

// Record fields: f filename, i issued-at (s), e expires-at (s), m max uses,
// b bytes left in the budget, a resume allowance left, r revoked flag, and one
// `v:<reservation>` per body in flight (its reserved bytes, or `x` once cancelled).
// Scripts run in RESP2 mode inside Redis (no redis.setresp), so nil is false
// and tables come back as arrays of bulk strings and integers whatever
// protocol the client speaks; each script answers a status string first.
// Byte counts travel as strings (ARGV, '%d'): Lua prints numbers above 10^14
// in exponent form; a number in a reply table becomes an exact integer.

// Counts the issue against the user's window (KEYS[3]) and, when allowed,
// writes the record and its index entry. Returns {'created'} or {'rate_limited', window ms left}.
const CREATE = `
if tonumber(ARGV[10]) > 0 then
${luaWindowHit('KEYS[3]', 'ARGV[11]')}
  if n > tonumber(ARGV[10]) then return {'rate_limited', ttl} end
end
redis.call('HSET', KEYS[1], 'f', ARGV[2], 'i', ARGV[3], 'e', ARGV[4])
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[1], 'm', ARGV[6], 'b', ARGV[7], 'a', ARGV[8])
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[9])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[5]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
return {'created'}
`

// Returns {status} or {status, bytes left}, the status as TakeResult names it:
// ok_unlimited, ok (budgeted), missing, revoked, used_up, mismatch (record for
// another file), cancelled (reservation cancelled before it arrived).
// ARGV: bytes, filename ('' = unchecked), reservation field ('' = none).
const TAKE = `
local v = redis.call('HMGET', KEYS[1], 'f', 'r', 'b')
if not v[1] then return {'missing'} end
if ARGV[2] ~= '' and v[1] ~= ARGV[2] then return {'mismatch'} end
if v[2] then return {'revoked'} end
if not v[3] then return {'ok_unlimited'} end
local left = tonumber(v[3])
local want = tonumber(ARGV[1])
if want == 0 then return {'ok', left} end
if ARGV[3] ~= '' then
  local prior = redis.call('HGET', KEYS[1], ARGV[3])
  if prior == 'x' then return {'cancelled'} end
  if prior then return {'ok', left} end
end
if want > left then return {'used_up', left} end
left = redis.call('HINCRBY', KEYS[1], 'b', '-' .. ARGV[1])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], ARGV[3], ARGV[1]) end
return {'ok', left}
`

// ARGV: reservation field, bytes written, '1' when the connection broke. Returns the bytes given back.
const SETTLE = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v or v == 'x' then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[3] ~= '1' then return 0 end
local reserved = tonumber(v)
local written = math.min(math.max(tonumber(ARGV[2]), 0), reserved)
local extra = math.min(written, tonumber(redis.call('HGET', KEYS[1], 'a') or '0'))
if extra > 0 then redis.call('HINCRBY', KEYS[1], 'a', string.format('%d', -extra)) end
local back = reserved - written + extra
if back > 0 then redis.call('HINCRBY', KEYS[1], 'b', string.format('%d', back)) end
return string.format('%d', back)
`

// ARGV: reservation field. Leaves a tombstone so a charge arriving later is refused.
const CANCEL = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local v = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], 'x')
if v and v ~= 'x' then
  redis.call('HINCRBY', KEYS[1], 'b', v)
  return 1
end
return 0
`

// Revokes the given records (those for file ARGV[1] when set). Counts newly
// revoked ones, or every known one with ARGV[2] = 'count-known' (single revoke is idempotent).
const REVOKE = `
local n = 0
for i = 1, #KEYS do
  local f = redis.call('HGET', KEYS[i], 'f')
  if f and (ARGV[1] == '' or f == ARGV[1]) then
    if redis.call('HSETNX', KEYS[i], 'r', '1') == 1 or ARGV[2] == 'count-known' then n = n + 1 end
  end
end
return n
`

const UNLIMITED: TakeResult = Object.freeze({ status: 'ok', budgeted: false })

/** A script's reply `{status, …}` as its status string and the rest; RESP2 and RESP3 alike send a bulk string. */
function statusOf(reply: unknown, script: string): { status: string; rest: unknown[] } {
	const [status, ...rest] = Array.isArray(reply) ? (reply as unknown[]) : []
	if (typeof status !== 'string' && !(status instanceof Buffer)) {
		throw new StoreUnavailableError(new Error(`unexpected ${script} reply ${String(reply)}`))
	}
	return { status: String(status), rest }
}

/** TAKE's reply as a TakeResult; an unknown status means a script this code does not know. */
function takeResult(reply: unknown): TakeResult {
	const { status, rest } = statusOf(reply, 'take')
	switch (status) {
		case 'ok_unlimited':
			return UNLIMITED
		case 'ok':
			return { status: 'ok', budgeted: true, bytesLeft: toInt(rest[0]) }
		case 'used_up':
			return { status: 'used_up', bytesLeft: toInt(rest[0]) }
		case 'missing':
		case 'revoked':
		case 'mismatch':
		case 'cancelled':
			return { status }
		default:
			throw new StoreUnavailableError(new Error(`unexpected take status ${status}`))
	}
}

/** CREATE's reply as a CreateResult. */
function createResult(reply: unknown): CreateResult {
	const { status, rest } = statusOf(reply, 'create')
	switch (status) {
		case 'created':
			return { status: 'created' }
		case 'rate_limited':
			return { status: 'rate_limited', retryAfterS: Math.ceil(toInt(rest[0]) / 1000) }
		default:
			throw new StoreUnavailableError(new Error(`unexpected create status ${status}`))
	}
}

/** Options of the Redis store. */
export interface RedisStoreOptions {
	readonly prefix: string
	readonly clock: Clock
	/** Writes return only once this many replicas acknowledged them (`WAIT`); 0 = off. */
	readonly minReplicasAck?: number
	/** How long `WAIT` may take, in ms (inside the command timeout). */
	readonly replicaAckTimeoutMs?: number
	/**
	 * Unlimited tokens' state remembered per process, kept coherent by Redis
	 * (see tracking.ts): a token checked once is then checked without a round
	 * trip until any client changes its record. Budget takes always go to Redis.
	 */
	readonly cache?: TrackedCache
}

/** How long a revocation waits for every instance to confirm it dropped its cached copy. */
const BARRIER_TIMEOUT_MS = 500

/** The field of a reservation in the token's record. */
const reservationField = (reservation: string) => `v:${reservation}`

/**
 * The Redis token store. It is given a ready client and does not close it:
 * whoever built the client (deps.ts) closes it. Every failure of the client,
 * and writes the replicas did not acknowledge in time, become `StoreUnavailableError`.
 */
export function createRedisTokenStore(client: RedisClient, opts: RedisStoreOptions): TokenStore {
	const { prefix, clock, cache } = opts
	const ack = opts.minReplicasAck ?? 0
	const ackTimeoutMs = opts.replicaAckTimeoutMs ?? 500
	const scripts = defineScripts(client, {
		create: { numberOfKeys: 3, lua: CREATE },
		take: { numberOfKeys: 1, lua: TAKE },
		settle: { numberOfKeys: 1, lua: SETTLE },
		cancel: { numberOfKeys: 1, lua: CANCEL },
		revoke: { lua: REVOKE },
	})
	// Takes go through the tracked connection when there is a cache, so their reads can fill it;
	// while that connection is reconnecting they go through the main one and fill nothing.
	const trackedTake = cache ? defineScripts(cache.client, { take: { numberOfKeys: 1, lua: TAKE } }).take : null
	const tokenKey = (userId: string, jti: string) => `${prefix}t:{${userId}}:${jti}`
	const indexKey = (userId: string) => `${prefix}u:{${userId}}`
	const issueLimitKey = (userId: string) => `${prefix}rl:issue:{${userId}}`
	const nowS = () => Math.floor(clock() / 1000)

	async function guard<T>(op: () => Promise<T>): Promise<T> {
		try {
			return await op()
		} catch (err) {
			throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(err)
		}
	}

	// Runs `pipeline` followed by WAIT on the same connection (and, on Cluster,
	// the same node): resolves with the first command's reply once `ack`
	// replicas have everything written before it, else rejects.
	async function acknowledged(pipeline: ChainableCommander): Promise<unknown> {
		return guard(async () => {
			const replies = (await pipeline.wait(ack, ackTimeoutMs).exec()) ?? []
			for (const [err] of replies) if (err) throw err
			const acked = toInt(replies.at(-1)?.[1] ?? 0)
			if (!(acked >= ack)) throw new Error(`only ${acked} of ${ack} replicas acknowledged the write`)
			return replies[0]?.[1]
		})
	}

	// Without replica acknowledgement a script is one command; with it, the
	// script and WAIT travel in one pipeline.
	async function write(script: Script, keys: readonly string[], args: readonly (string | number)[]) {
		if (ack === 0) return script.run(keys, args)
		return acknowledged(script.queue(client.pipeline(), keys, args))
	}

	// After a take that charged: WAIT on the connection that ran it, reached
	// through a keyed no-op (on Cluster, the node owning the key). A take that
	// wrote nothing (a refusal, an unlimited token) waits for nothing.
	async function replicated(via: RedisClient, key: string): Promise<void> {
		if (ack > 0) await acknowledged(via.pipeline().exists(key))
	}

	async function liveJtis(userId: string): Promise<string[]> {
		const now = nowS()
		const index = indexKey(userId)
		return guard(async () => {
			await client.zremrangebyscore(index, '-inf', now)
			return client.zrangebyscore(index, `(${now}`, '+inf')
		})
	}

	return {
		async create(r: NewTokenRecord, limit?: RateLimit): Promise<CreateResult> {
			const ttlMs = Math.max(1, (r.expiresAtS - nowS()) * 1000)
			const reply = await write(
				scripts.create,
				[tokenKey(r.userId, r.jti), indexKey(r.userId), issueLimitKey(r.userId)],
				[
					r.jti,
					r.filename,
					r.issuedAtS,
					r.expiresAtS,
					ttlMs,
					r.maxUses ?? '',
					r.budgetBytes ?? '',
					r.allowanceBytes,
					nowS(),
					limit?.limit ?? 0,
					(limit?.windowS ?? 0) * 1000,
				],
			)
			return createResult(reply)
		},

		async take(userId, jti, bytes, options = {}): Promise<TakeResult> {
			const key = tokenKey(userId, jti)
			// The remembered state of an unlimited token: exists, not revoked, for this file.
			const remembered = cache?.lookup(key)
			if (remembered !== undefined && remembered === options.filename) return UNLIMITED
			const tracked = cache !== undefined && trackedTake !== null && cache.client.status === 'ready'
			const ticket = tracked ? cache.ticket() : null
			const field = options.reservation ? reservationField(options.reservation) : ''
			const args = [bytes, options.filename ?? '', field]
			const result = takeResult(await (tracked ? trackedTake : scripts.take).run([key], args))
			if (result.status === 'ok' && result.budgeted && bytes > 0) await replicated(tracked ? cache.client : client, key)
			if (tracked && result === UNLIMITED && options.filename !== undefined) cache.fill(key, options.filename, ticket)
			return result
		},

		async settle(userId, jti, reservation, written, broken) {
			return toInt(
				await write(
					scripts.settle,
					[tokenKey(userId, jti)],
					[reservationField(reservation), Math.max(0, written), broken ? '1' : '0'],
				),
			)
		},

		async cancel(userId, jti, reservation) {
			await write(scripts.cancel, [tokenKey(userId, jti)], [reservationField(reservation)])
		},

		async revoke(userId, jti) {
			cache?.forget(tokenKey(userId, jti))
			const known = toInt(await write(scripts.revoke, [tokenKey(userId, jti)], ['', 'count-known'])) === 1
			// Answered only once every instance dropped its copy: refused everywhere from the next request.
			await cache?.barrier(BARRIER_TIMEOUT_MS)
			return known
		},

		async revokeAll(userId, filename) {
			const jtis = await liveJtis(userId)
			let revoked = 0
			// Batches keep each script short so one user's revoke-all never blocks Redis for long.
			for (let i = 0; i < jtis.length; i += 500) {
				const keys = jtis.slice(i, i + 500).map((jti) => tokenKey(userId, jti))
				for (const key of keys) cache?.forget(key)
				revoked += toInt(await write(scripts.revoke, keys, [filename ?? '', 'count-new']))
			}
			if (revoked > 0) await cache?.barrier(BARRIER_TIMEOUT_MS)
			return revoked
		},

		async list(userId) {
			const jtis = await liveJtis(userId)
			if (jtis.length === 0) return []
			const rows = await guard(async () => {
				const pipeline = client.pipeline()
				for (const jti of jtis) pipeline.hmget(tokenKey(userId, jti), 'f', 'i', 'e', 'm', 'b', 'r')
				return (await pipeline.exec()) ?? []
			})
			const now = nowS()
			const out: TokenInfo[] = []
			rows.forEach(([err, value], n) => {
				if (err) throw new StoreUnavailableError(err)
				const [f, i, e, m, b, r] = value as (string | null)[]
				const jti = jtis[n]
				// Revoked, expired and used-up tokens are not live.
				if (jti === undefined || f == null || e == null || r != null || Number(e) <= now || b === '0') return
				out.push({
					jti,
					filename: f,
					issuedAtS: Number(i),
					expiresAtS: Number(e),
					maxUses: m == null ? null : Number(m),
					bytesLeft: b == null ? null : Number(b),
				})
			})
			return out
		},

		peek(userId, jti, filename) {
			return cache !== undefined && cache.lookup(tokenKey(userId, jti)) === filename
		},

		async ping() {
			await guard(() => client.ping())
		},

		async close() {},
	}
}
