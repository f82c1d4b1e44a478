import { COVERAGE, PRELUDE } from './redis-scripts-lib'
import { luaWindowHit } from './scripts'

// The Lua scripts of the Redis token store (redis.ts runs them); the record's
// layout and what they share are in redis-scripts-lib.ts.

/**
 * Counts the issue against the user's window and the user's live tokens and,
 * when both allow, writes the record and its index entries, and token.issued.
 * KEYS: record, ue, ul, issue window, [stream]. ARGV[8…]: filename, issued-at,
 * expires-at, record TTL ms, max uses, budget, allowance, now, issue limit,
 * window ms, max live, size, nbf, cidr JSON, rate, event fields (raw JSON).
 */
export const CREATE = `${PRELUDE}
if tonumber(ARGV[16]) > 0 then
${luaWindowHit('KEYS[4]', 'ARGV[17]')}
  if n > tonumber(ARGV[16]) then return {'rate_limited', {ttl}, EVENTS} end
end
local now = tonumber(ARGV[15])
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)
if #old > 0 then redis.call('ZREM', KEYS[2], unpack(old)); redis.call('ZREM', KEYS[3], unpack(old)) end
if redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') >= tonumber(ARGV[18]) then return {'too_many_live', {}, EVENTS} end
redis.call('HSET', KEYS[1], 'f', ARGV[8], 'i', ARGV[9], 'e', ARGV[10], 'z', ARGV[19])
if ARGV[12] ~= '' then redis.call('HSET', KEYS[1], 'm', ARGV[12], 'b', ARGV[13], 'a', ARGV[14]) end
if ARGV[20] ~= '' then redis.call('HSET', KEYS[1], 'n', ARGV[20]) end
if ARGV[21] ~= '' then redis.call('HSET', KEYS[1], 'p', ARGV[21]) end
if ARGV[22] ~= '' then redis.call('HSET', KEYS[1], 'q', ARGV[22]) end
redis.call('PEXPIRE', KEYS[1], ARGV[11])
local member = position(ARGV[9], JTI)
redis.call('ZADD', KEYS[2], ARGV[10], member)
redis.call('ZADD', KEYS[3], 0, member)
for i = 2, 3 do
  if redis.call('PTTL', KEYS[i]) < tonumber(ARGV[11]) then redis.call('PEXPIRE', KEYS[i], ARGV[11]) end
end
emit('token.issued', JTI, ARGV[8], ARGV[23])
return {'created', {}, EVENTS}
`

/**
 * Check 5 (record), the grace of check 3, check 7 (budget) and check 8
 * (download slot) in one step; a first body of a copy writes download.started.
 * KEYS: record, slots, [stream]. ARGV[8…]: bytes, filename ('' = unchecked),
 * reservation field ('' = none), start, now (s), expired-at ('' = not
 * expired), '1' = record when the first body starts, lease id ('' = none),
 * lease limit, now (ms), lease TTL (ms).
 */
export const TAKE = `${PRELUDE}${COVERAGE}
local v = redis.call('HMGET', KEYS[1], 'f', 'r', 'b', 's', 'z')
if not v[1] then return {'missing', {}, EVENTS} end
if ARGV[9] ~= '' and v[1] ~= ARGV[9] then return {'mismatch', {}, EVENTS} end
if v[2] then return {'revoked', {}, EVENTS} end
if ARGV[13] ~= '' and (not v[4] or tonumber(v[4]) >= tonumber(ARGV[13])) then return {'expired', {}, EVENTS} end
local want = tonumber(ARGV[8])
local function slot_free()
  if ARGV[15] == '' or want == 0 then return true end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[17])
  return redis.call('ZCARD', KEYS[2]) < tonumber(ARGV[16])
end
-- What a body admitted holds: its slot, and the time of the token's first body.
local function admit()
  if want == 0 then return end
  if ARGV[15] ~= '' then
    redis.call('ZADD', KEYS[2], tonumber(ARGV[17]) + tonumber(ARGV[18]), ARGV[15])
    redis.call('PEXPIRE', KEYS[2], ARGV[18])
  end
  if ARGV[14] == '1' and not v[4] then redis.call('HSET', KEYS[1], 's', ARGV[12]) end
end
if not v[3] then
  if not slot_free() then return {'too_many_downloads', {}, EVENTS} end
  admit()
  return {'ok_unlimited', {}, EVENTS}
end
if want == 0 then return {'ok', {v[3]}, EVENTS} end
if ARGV[10] ~= '' then
  local prior = redis.call('HGET', KEYS[1], ARGV[10])
  if prior == 'x' then return {'cancelled', {}, EVENTS} end
  if prior then return {'ok', {v[3]}, EVENTS} end
end
if want > tonumber(v[3]) then return {'used_up', {v[3]}, EVENTS} end
if not slot_free() then return {'too_many_downloads', {}, EVENTS} end
admit()
local left = redis.call('HINCRBY', KEYS[1], 'b', '-' .. ARGV[8])
local start = tonumber(ARGV[11])
if ARGV[10] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[10], ARGV[8] .. ':' .. ARGV[11])
  redis.call('HINCRBY', KEYS[1], 'o', 1)
end
local size = tonumber(v[5] or '0')
if size > 0 then
  local P, C = cov_parse(redis.call('HGET', KEYS[1], 'w'))
  P, C = cov_add(P, C, start, start + want, size, 1)
  cov_write(KEYS[1], 'w', P, C)
  local started = cov_max(C)
  local before = tonumber(redis.call('HGET', KEYS[1], 'ks') or '0')
  if started > before then
    redis.call('HSET', KEYS[1], 'ks', started)
    emit('download.started', JTI, v[1], string.format(',"copy":%d,"size":%d,"range":"%d-%d"', started, size, start, start + want - 1))
  end
end
return {'ok', {string.format('%d', left)}, EVENTS}
`

/**
 * Ends a reservation: a broken body gives back what it did not write plus
 * what the allowance covers; what it did deliver counts toward whole copies
 * (download.completed per copy), a break writes download.broken, a budget
 * spent with nothing in flight writes token.used_up and leaves the listing.
 * KEYS: record, ue, ul, [stream]. ARGV[8…]: reservation field, bytes written, '1' = broken.
 */
export const SETTLE = `${PRELUDE}${COVERAGE}
local held = redis.call('HGET', KEYS[1], ARGV[8])
if not held or held == 'x' then return {'none', {'0'}, EVENTS} end
redis.call('HDEL', KEYS[1], ARGV[8])
local reserved, start = string.match(held, '^(%d+):?(%d*)$')
reserved = tonumber(reserved)
start = tonumber(start)
local inflight = redis.call('HINCRBY', KEYS[1], 'o', -1)
local rec = redis.call('HMGET', KEYS[1], 'f', 'i', 'e', 'z', 'r', 'a')
local written = reserved
local back = 0
local extra = 0
if ARGV[10] == '1' then
  written = math.min(math.max(tonumber(ARGV[9]), 0), reserved)
  extra = math.min(written, tonumber(rec[6] or '0'))
  if extra > 0 then redis.call('HINCRBY', KEYS[1], 'a', string.format('%d', -extra)) end
  back = reserved - written + extra
  if back > 0 then redis.call('HINCRBY', KEYS[1], 'b', string.format('%d', back)) end
end
local size = tonumber(rec[4] or '0')
if start and size > 0 then
  local WP, WC = cov_parse(redis.call('HGET', KEYS[1], 'w'))
  WP, WC = cov_add(WP, WC, start, start + reserved, size, -1)
  -- A broken body leaves the copies begun: its resume, overlapping what the socket swallowed, starts no new copy.
  if ARGV[10] ~= '1' then WP, WC = cov_add(WP, WC, start, start + written, size, 1) end
  cov_write(KEYS[1], 'w', WP, WC)
  -- Every byte written counts, the allowance's too: a client resumes where its copy ends, anywhere up to
  -- there, and bytes given back to the budget were still sent (leaving them out lost whole copies).
  local DP, DC = cov_parse(redis.call('HGET', KEYS[1], 'd'))
  DP, DC = cov_add(DP, DC, start, start + written, size, 1)
  cov_write(KEYS[1], 'd', DP, DC)
  local copies = cov_min(DC)
  local before = tonumber(redis.call('HGET', KEYS[1], 'kc') or '0')
  if copies > before then
    redis.call('HSET', KEYS[1], 'kc', copies)
    for c = before + 1, copies do
      emit('download.completed', JTI, rec[1], string.format(',"copy":%d,"size":%d', c, size))
    end
  end
end
if ARGV[10] == '1' then
  local range = 'null'
  if start then range = string.format('"%d-%d"', start, start + reserved - 1) end
  emit('download.broken', JTI, rec[1], string.format(',"bytes_written":%d,"bytes_returned":%d,"range":%s', written, back, range))
end
if rec[1] and not rec[5] and rec[2] then
  local member = position(rec[2], JTI)
  local left = tonumber(redis.call('HGET', KEYS[1], 'b') or '0')
  if left == 0 and inflight <= 0 then
    redis.call('ZREM', KEYS[2], member)
    redis.call('ZREM', KEYS[3], member)
    if redis.call('HSETNX', KEYS[1], 'u', '1') == 1 then
      emit('token.used_up', JTI, rec[1], string.format(',"copies":%d', tonumber(redis.call('HGET', KEYS[1], 'kc') or '0')))
    end
  elseif left > 0 and back > 0 then
    redis.call('ZADD', KEYS[2], 'NX', rec[3], member)
    redis.call('ZADD', KEYS[3], 'NX', 0, member)
  end
end
return {'settled', {string.format('%d', back)}, EVENTS}
`

/**
 * Undoes a reservation whose request failed; leaves a tombstone so a charge
 * arriving later is refused. A body that had been admitted is reported
 * broken before its first byte. KEYS: record, ue, ul, [stream]. ARGV[8]: reservation field.
 */
export const CANCEL = `${PRELUDE}${COVERAGE}
if redis.call('EXISTS', KEYS[1]) == 0 then return {'none', {}, EVENTS} end
local held = redis.call('HGET', KEYS[1], ARGV[8])
redis.call('HSET', KEYS[1], ARGV[8], 'x')
if not held or held == 'x' then return {'none', {}, EVENTS} end
local reserved, start = string.match(held, '^(%d+):?(%d*)$')
reserved = tonumber(reserved)
start = tonumber(start)
redis.call('HINCRBY', KEYS[1], 'b', string.format('%d', reserved))
redis.call('HINCRBY', KEYS[1], 'o', -1)
local rec = redis.call('HMGET', KEYS[1], 'f', 'i', 'e', 'z', 'r')
local size = tonumber(rec[4] or '0')
if start and size > 0 then
  local P, C = cov_parse(redis.call('HGET', KEYS[1], 'w'))
  P, C = cov_add(P, C, start, start + reserved, size, -1)
  cov_write(KEYS[1], 'w', P, C)
end
local range = 'null'
if start then range = string.format('"%d-%d"', start, start + reserved - 1) end
emit('download.broken', JTI, rec[1], string.format(',"bytes_written":0,"bytes_returned":%d,"range":%s', reserved, range))
if not rec[5] and rec[2] then
  local member = position(rec[2], JTI)
  redis.call('ZADD', KEYS[2], 'NX', rec[3], member)
  redis.call('ZADD', KEYS[3], 'NX', 0, member)
end
return {'cancelled', {}, EVENTS}
`

/**
 * Revokes the records of KEYS[3 … 2+ARGV[9]] (each the record of the jti in
 * ARGV[12 + k]), those for file ARGV[8] when set, and takes them out of the
 * listing; token.revoked for each newly revoked. KEYS: ue, ul, records…,
 * [stream]. ARGV[8…]: filename ('' = any), count, by, scope, jtis…
 * Answers how many it revoked anew, whether each was known, and the revoked jtis.
 */
export const REVOKE = `${PRELUDE}
local count = tonumber(ARGV[9])
local fresh = 0
local known = 0
local revoked = {}
for k = 1, count do
  local key = KEYS[2 + k]
  local jti = ARGV[11 + k]
  local rec = redis.call('HMGET', key, 'f', 'i', 'r')
  if rec[1] then
    if rec[2] then
      local member = position(rec[2], jti)
      if ARGV[8] == '' or rec[1] == ARGV[8] then
        redis.call('ZREM', KEYS[1], member)
        redis.call('ZREM', KEYS[2], member)
      end
    end
    if ARGV[8] == '' or rec[1] == ARGV[8] then
      known = known + 1
      if redis.call('HSETNX', key, 'r', ARGV[10]) == 1 then
        fresh = fresh + 1
        revoked[#revoked + 1] = jti
        emit('token.revoked', jti, rec[1], ',"by":' .. jstr(ARGV[10]) .. ',"scope":' .. jstr(ARGV[11]))
      end
    end
  end
end
return {'revoked', {fresh, known, unpack(revoked)}, EVENTS}
`

/**
 * The fields ARGV[1…] of the records KEYS[1…] (false where absent), in one
 * flat reply: one command per chunk of a listing page instead of one per token.
 */
export const PAGE = `
local out = {}
for i = 1, #KEYS do
  local v = redis.call('HMGET', KEYS[i], unpack(ARGV))
  for k = 1, #ARGV do out[#out + 1] = v[k] end
end
return out
`

/** Drops a bounded number of expired entries from a user's listing indexes. KEYS: ue, ul. ARGV: now, at most. */
export const PRUNE = `
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #old > 0 then redis.call('ZREM', KEYS[1], unpack(old)); redis.call('ZREM', KEYS[2], unpack(old)) end
return #old
`
