-- Read-only view of one seller for admin and the API: buckets settled to now, factor, 429s and
-- waits in the last hour, breaker with time-based transitions applied (not written).
-- KEYS[1] bucket (packed string), KEYS[2] breaker (packed string), KEYS[3] 429 hash, KEYS[4] waits hash.
local c = BK
local cfg = CB
local now = now_us()
local k = bk_load(KEYS[1], now, c)
local b = cb_load(KEYS[2])
cb_advance(b, now, cfg)
local reply = cb_reply(b)
return {fmt(k.t), fmt(k.jt), fmt(k.f), sum_hour(KEYS[3], now), fmt(now), reply[1], reply[2], reply[3], reply[4],
  reply[5], reply[6], sum_hour(KEYS[4], now)}
