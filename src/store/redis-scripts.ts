import { luaWindowHit } from './scripts'

// The Lua scripts of the Redis token store (store/redis.ts runs them).
//
// Token record fields: f filename, i issued-at (s), e expires-at (s), z file
// size at issuance, m max uses, b bytes left in the budget, a resume allowance
// left, r revoked (by whom), s when the first body started (s; with
// EXPIRY_GRACE_S), n nbf, p cidr (JSON), q rate, and one `v:<reservation>`
// per body in flight (`<bytes>:<start>`, or `x` once cancelled), o bodies in
// flight; for counting whole copies delivered (docs/contract.md §7): d the
// times each byte range was delivered, w the same plus bodies in flight (both
// `<position>:<count>,…`), ks copies started and kc copies completed so far,
// u set once token.used_up was written.
//
// Per user: ue (score: expiry) and ul (score 0, ordered by member) index the
// live tokens by their position `<issued-at, 12 digits>:<jti>`; dl holds the
// download slots in flight (score: when each lapses, ms).
//
// Scripts run in RESP2 mode inside Redis (nil is false; tables come back as
// arrays of bulk strings and integers, whatever the client speaks). Each
// answers {status, {values}, {events}}. Byte counts travel as strings
// ('%d'): Lua prints numbers above 10^14 in exponent form.

/**
 * Shared head of every script that may write events. ARGV[1..7]: event mode
 * (`off`; `inline`: XADD to the stream, the last KEY; `return`: hand the
 * entries back, for Redis Cluster where the stream lives in another slot),
 * event id base, timestamp, stream MAXLEN, request id, user id, jti. A
 * script's own arguments start at ARGV[8].
 */
const PRELUDE = `
local EVMODE, EVBASE, EVTS, EVMAX, REQID, USER, JTI = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local EVENTS = {}
local function jstr(s) return cjson.encode(tostring(s)) end
-- One event: data is the token's identity, then raw JSON members (',"k":v…'), then the request id.
local function emit(etype, jti, filename, raw)
  if EVMODE == 'off' then return end
  local data = '{"jti":' .. jstr(jti) .. ',"user_id":' .. jstr(USER) .. ',"filename":' .. jstr(filename) .. raw
  if REQID ~= '' then data = data .. ',"request_id":' .. jstr(REQID) end
  data = data .. '}'
  local n = (EVMODE == 'return') and (#EVENTS / 4 + 1) or (#EVENTS + 1)
  local id = EVBASE
  if n > 1 then id = EVBASE .. '-' .. n end
  if EVMODE == 'inline' then
    redis.call('XADD', KEYS[#KEYS], 'MAXLEN', '~', EVMAX, '*', 'id', id, 'type', etype, 'timestamp', EVTS, 'data', data)
    EVENTS[#EVENTS + 1] = etype
  else
    EVENTS[#EVENTS + 1] = id
    EVENTS[#EVENTS + 1] = etype
    EVENTS[#EVENTS + 1] = EVTS
    EVENTS[#EVENTS + 1] = data
  end
end
local function position(issued, jti) return string.format('%012d:%s', tonumber(issued), jti) end
`

/**
 * Coverage of a file's bytes by counts, as breakpoints: count C[i] holds on
 * [P[i], P[i+1]) and the last on [P[#P], size). At most COVERAGE_CAP
 * breakpoints are kept: past it a change is not recorded, which can only
 * delay a completion, never invent one.
 */
const COVERAGE = `
local COVERAGE_CAP = 2048
local function cov_parse(s)
  local P, C = {}, {}
  if s then for p, c in string.gmatch(s, '(%d+):(%-?%d+)') do P[#P + 1] = tonumber(p); C[#C + 1] = tonumber(c) end end
  if #P == 0 then P[1] = 0; C[1] = 0 end
  return P, C
end
local function cov_write(key, field, P, C)
  if #P > COVERAGE_CAP then return end
  local out = {}
  for i = 1, #P do out[i] = string.format('%d:%d', P[i], C[i]) end
  redis.call('HSET', key, field, table.concat(out, ','))
end
local function cov_split(P, C, x, size)
  if x >= size or x <= 0 then return end
  local i = #P
  while P[i] > x do i = i - 1 end
  if P[i] ~= x then table.insert(P, i + 1, x); table.insert(C, i + 1, C[i]) end
end
-- Adds delta to the count of every byte in [a, b); returns the merged breakpoints.
local function cov_add(P, C, a, b, size, delta)
  if b > size then b = size end
  if a < 0 then a = 0 end
  if b <= a then return P, C end
  cov_split(P, C, a, size); cov_split(P, C, b, size)
  for i = 1, #P do if P[i] >= a and P[i] < b then C[i] = C[i] + delta end end
  local NP, NC = {P[1]}, {C[1]}
  for i = 2, #P do if C[i] ~= NC[#NC] then NP[#NP + 1] = P[i]; NC[#NC + 1] = C[i] end end
  return NP, NC
end
local function cov_min(C) local m = C[1]; for i = 2, #C do if C[i] < m then m = C[i] end end; return m end
local function cov_max(C) local m = C[1]; for i = 2, #C do if C[i] > m then m = C[i] end end; return m end
`

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
local delivered = written - extra
local size = tonumber(rec[4] or '0')
if start and size > 0 then
  local WP, WC = cov_parse(redis.call('HGET', KEYS[1], 'w'))
  WP, WC = cov_add(WP, WC, start, start + reserved, size, -1)
  WP, WC = cov_add(WP, WC, start, start + delivered, size, 1)
  cov_write(KEYS[1], 'w', WP, WC)
  local DP, DC = cov_parse(redis.call('HGET', KEYS[1], 'd'))
  DP, DC = cov_add(DP, DC, start, start + delivered, size, 1)
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
 * The listing fields of the records KEYS[1…] (f i e m b r n p q each, false
 * where absent), in one flat reply: one command per chunk of a page instead of one per token.
 */
export const PAGE = `
local out = {}
for i = 1, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'f', 'i', 'e', 'm', 'b', 'r', 'n', 'p', 'q')
  for k = 1, 9 do out[#out + 1] = v[k] end
end
return out
`

/** Drops a bounded number of expired entries from a user's listing indexes. KEYS: ue, ul. ARGV: now, at most. */
export const PRUNE = `
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #old > 0 then redis.call('ZREM', KEYS[1], unpack(old)); redis.call('ZREM', KEYS[2], unpack(old)) end
return #old
`
