-- One decision for one seller, atomically: seller breaker admission, then the global bucket (and
-- the jobs bucket for /jobs requests, both or neither), under the seller's adaptive factor.
-- KEYS[1] seller bucket (packed string), KEYS[2] seller breaker (packed string), KEYS[3] seller waits-per-minute hash
-- (same {seller} hash tag).
-- ARGV[1] cost, ARGV[2] reserved share (0 for high priority), ARGV[3] 1 for the jobs bucket.
-- Returns {code, wait_us, tokens_left, factor, probe}: code 1 granted, 0 wait, -1 seller breaker
-- open (wait_us = retry after), -2 cost can never be granted. Tokens and factor travel as integer
-- millionths: an integer costs the caller's RESP parser one line and this script no formatting.
-- With the circuit_breaker flag off (FL.breakers 0) the breaker is not even read: nothing blocks.
local cost = tonumber(ARGV[1])
local share = tonumber(ARGV[2])
local jobs = ARGV[3] == '1'
local c = BK
local cfg = CB
local now = now_us()

local b = nil
local admit = 0
local raw
if FL.breakers == 1 then
  local both = redis.call('MGET', KEYS[1], KEYS[2])
  raw = both[1]
  b = cb_parse(both[2])
  cb_advance(b, now, cfg)
  admit = cb_check(b, now, cfg)
  if admit < 0 then
    cb_save(KEYS[2], b, cfg)
    return {-1, -admit, 0, 0, 0}
  end
else
  raw = redis.call('GET', KEYS[1])
end

local k = bk_parse(raw, now, c)
local cap = c.capacity * k.f
local need = cost + share * cap
if cost > (1 - share) * c.capacity or (jobs and cost > c.jcap) then
  return {-2, 0, micro(k.t), micro(k.f), 0}
end

local wait = 0
if need > cap then
  -- Not even a full bucket at today's factor holds it: wait for the factor to recover that far,
  -- then for the bucket to fill (an upper bound, never an under-estimate).
  local f_needed = (cost / (1 - share)) / c.capacity
  if c.inc <= 0 then return {-2, 0, micro(k.t), micro(k.f), 0} end
  wait = (f_needed - k.f) / c.inc + c.capacity / c.rate
elseif k.t < need then
  wait = (need - k.t) / (c.rate * k.f)
end
if jobs and k.jt < cost then
  wait = math.max(wait, (cost - k.jt) / (c.jrate * k.f))
end
if wait > 0 then
  if b then cb_save(KEYS[2], b, cfg) end
  count_minute(KEYS[3], now)
  return {0, math.ceil(wait), micro(k.t), micro(k.f), 0}
end

k.t = k.t - cost
if jobs then k.jt = k.jt - cost end
bk_save(KEYS[1], k, now, c)
if b then
  if admit == 1 then cb_take_probe(b, now) end
  cb_save(KEYS[2], b, cfg)
end
return {1, 0, micro(k.t), micro(k.f), admit}
