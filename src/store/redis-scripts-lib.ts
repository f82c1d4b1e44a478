// What the Lua scripts of the Redis token store (redis-scripts.ts) share:
// the record's layout, the event prelude and the coverage counting.
//
// Token record fields: f filename, i issued-at (s), e expires-at (s), z file
// size at issuance, m max uses, b bytes left in the budget, a resume allowance
// left, r revoked (by whom), s when the first body started (s; with
// EXPIRY_GRACE_S), n nbf, p cidr (JSON), q rate, and one `v:<reservation>`
// per body in flight (`<bytes>:<start>`, or `x` once cancelled), o bodies in
// flight; for counting whole copies delivered (docs/contract.md §7): d the
// times each byte range was handed to a client (broken bodies' written bytes
// included), w the bodies in flight plus those that ended whole (both
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
export const PRELUDE = `
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
export const COVERAGE = `
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
