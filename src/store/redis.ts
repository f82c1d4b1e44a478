import type { Clock } from '../clock'
import { StoreUnavailableError } from '../errors'
import { type RedisClient, runScript, type Script, script } from './scripts'
import type { NewTokenRecord, TakeResult, TokenInfo, TokenStore } from './types'

export type { RedisClient } from './scripts'

// Record fields: f filename, i issued-at (s), e expires-at (s), m max uses,
// b bytes left in the budget, a resume allowance left, r revoked flag.
// Scripts run in RESP2 mode inside Redis (no redis.setresp), so nil is false
// and tables come back as arrays whatever protocol the client speaks.

const CREATE = `
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
return 1
`

// Returns {code, bytesLeft}: 0 missing, 2 revoked, 1 unlimited ok, 3 used up, 4 budgeted ok.
const TAKE = `
local v = redis.call('HMGET', KEYS[1], 'e', 'r', 'b')
if not v[1] then return {0, 0} end
if v[2] then return {2, 0} end
if not v[3] then return {1, 0} end
local left = tonumber(v[3])
local want = tonumber(ARGV[1])
if want > left then return {3, left} end
if want > 0 then left = redis.call('HINCRBY', KEYS[1], 'b', '-' .. ARGV[1]) end
return {4, left}
`

const GIVE_BACK = `
local v = redis.call('HMGET', KEYS[1], 'b', 'a')
if not v[1] then return 0 end
local back = math.min(tonumber(ARGV[2]), tonumber(v[2] or '0'))
if back > 0 then
  redis.call('HINCRBY', KEYS[1], 'a', string.format('%d', -back))
  redis.call('HINCRBY', KEYS[1], 'b', string.format('%d', back))
end
if ARGV[1] ~= '0' then redis.call('HINCRBY', KEYS[1], 'b', ARGV[1]) end
return 1
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

const SCRIPTS = {
	create: script(CREATE),
	take: script(TAKE),
	giveBack: script(GIVE_BACK),
	revoke: script(REVOKE),
} as const

const toInt = (v: unknown): number => (typeof v === 'number' ? v : Number(v))

/**
 * The Redis token store. It is given a ready client and does not close it:
 * whoever built the client (deps.ts) closes it. Every failure of the client
 * becomes `StoreUnavailableError`.
 */
export function createRedisTokenStore(client: RedisClient, opts: { prefix: string; clock: Clock }): TokenStore {
	const { prefix, clock } = opts
	const tokenKey = (userId: string, jti: string) => `${prefix}t:{${userId}}:${jti}`
	const indexKey = (userId: string) => `${prefix}u:{${userId}}`
	const nowS = () => Math.floor(clock() / 1000)

	const run = (s: Script, keys: string[], args: (string | number)[]) => runScript(client, s, keys, args)

	async function guard<T>(op: () => Promise<T>): Promise<T> {
		try {
			return await op()
		} catch (err) {
			throw new StoreUnavailableError(err)
		}
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
		async create(r: NewTokenRecord) {
			const ttlMs = Math.max(1, (r.expiresAtS - nowS()) * 1000)
			await run(
				SCRIPTS.create,
				[tokenKey(r.userId, r.jti), indexKey(r.userId)],
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
				],
			)
		},

		async take(userId, jti, bytes): Promise<TakeResult> {
			const reply = (await run(SCRIPTS.take, [tokenKey(userId, jti)], [bytes])) as unknown[]
			const code = toInt(reply[0])
			const left = toInt(reply[1])
			switch (code) {
				case 0:
					return { status: 'missing' }
				case 1:
					return { status: 'ok', budgeted: false }
				case 2:
					return { status: 'revoked' }
				case 3:
					return { status: 'used_up', bytesLeft: left }
				default:
					return { status: 'ok', budgeted: true, bytesLeft: left }
			}
		},

		async giveBack(userId, jti, unwritten, written) {
			await run(SCRIPTS.giveBack, [tokenKey(userId, jti)], [Math.max(0, unwritten), Math.max(0, written)])
		},

		async revoke(userId, jti) {
			return toInt(await run(SCRIPTS.revoke, [tokenKey(userId, jti)], ['', 'count-known'])) === 1
		},

		async revokeAll(userId, filename) {
			const jtis = await liveJtis(userId)
			if (jtis.length === 0) return 0
			let revoked = 0
			// Batches keep each script short so one user's revoke-all never blocks Redis for long.
			for (let i = 0; i < jtis.length; i += 500) {
				const keys = jtis.slice(i, i + 500).map((jti) => tokenKey(userId, jti))
				revoked += toInt(await run(SCRIPTS.revoke, keys, [filename ?? '', 'count-new']))
			}
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
				if (jti === undefined || f == null || e == null || r != null || Number(e) <= now) return
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

		async ping() {
			await guard(() => client.ping())
		},

		async close() {},
	}
}
