-- Read-only view of one seller for admin and the API: buckets settled to now, factor, 429s in
-- the last hour, breaker with time-based transitions applied (not written).
-- KEYS[1] bucket hash, KEYS[2] breaker hash, KEYS[3] 429 hash.
local c = BK
local cfg = CB
local now = now_us()
local k = bk_load(KEYS[1], now, c)
local b = cb_load(KEYS[2])
cb_advance(b, now, cfg)
local since_minute = math.floor(now / 60000000) - 59
local hits = 0
local counts = redis.call('HGETALL', KEYS[3])
for i = 1, #counts, 2 do
  if tonumber(counts[i]) >= since_minute then hits = hits + tonumber(counts[i + 1]) end
end
local reply = cb_reply(b)
return {fmt(k.t), fmt(k.jt), fmt(k.f), hits, fmt(now), reply[1], reply[2], reply[3], reply[4], reply[5], reply[6]}
