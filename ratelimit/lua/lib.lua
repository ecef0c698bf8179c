-- Shared helpers, prepended to every script (scripts.py). Times are integer microseconds from
-- the Redis server's TIME, so every worker on every machine shares one clock.
-- State is packed as doubles (exact); numbers that travel as text are written with %.17g: Redis
-- would otherwise format them with %.14g and a microsecond timestamp (16 digits) would lose
-- precision.

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function fmt(x)
  return string.format('%.17g', x)
end

-- A quantity as integer millionths (a Lua number in a reply becomes an integer, truncated).
local function micro(x)
  return math.floor(x * 1000000 + 0.5)
end

-- Circuit breaker state is one string packed with struct ('<c1ddddddd'): st (C/O/H), f
-- (consecutive failures), lf (last failure), s (successes while half-open), o (opened at), since
-- (first left CLOSED), p (probes in flight), pt (last probe admitted). A missing key is a healthy
-- CLOSED breaker. Strings, not hashes, so that acquire reads a seller's breaker and bucket with
-- one MGET and writes each with one SET ... PX (value and expiry together).
-- Breaker and bucket configuration (the CB and BK tables) and the feature flags (FL: adaptive,
-- breakers, 1 on / 0 off) are written into the script source by scripts.py, one script per
-- configuration: nothing constant travels with each call.

local CB_FORMAT = '<c1ddddddd'

local function cb_parse(raw)
  if not raw then
    return {st = 'C', f = 0, lf = 0, s = 0, o = 0, since = 0, p = 0, pt = 0, exists = false, dirty = false}
  end
  local st, f, lf, s, o, since, p, pt = struct.unpack(CB_FORMAT, raw)
  return {st = st, f = f, lf = lf, s = s, o = o, since = since, p = p, pt = pt, exists = true, dirty = false}
end

local function cb_load(key)
  return cb_parse(redis.call('GET', key))
end

local function cb_save(key, b, cfg)
  if not b.dirty then return end
  if b.st == 'C' and b.f == 0 then
    if b.exists then redis.call('DEL', key) end
    return
  end
  local ttl = cfg.ttl_ms
  if b.st == 'C' then ttl = math.ceil(cfg.failure_window_us / 1000) end
  redis.call('SET', key, struct.pack(CB_FORMAT, b.st, b.f, b.lf, b.s, b.o, b.since, b.p, b.pt), 'PX', ttl)
end

-- Transitions that only depend on time: OPEN -> HALF_OPEN once the open period has passed,
-- leaked probe slots freed after the probe window, stale failures forgotten.
local function cb_advance(b, now, cfg)
  if b.st == 'O' and now >= b.o + cfg.open_us then
    b.st = 'H'; b.s = 0; b.p = 0; b.dirty = true
  end
  if b.st == 'H' and b.p > 0 and now - b.pt >= cfg.probe_window_us then
    b.p = 0; b.dirty = true
  end
  if b.st == 'C' and b.f > 0 and now - b.lf >= cfg.failure_window_us then
    b.f = 0; b.dirty = true
  end
end

-- 0: pass; 1: pass as a half-open probe; negative: refused, -(microseconds until worth retrying).
local function cb_check(b, now, cfg)
  if b.st == 'C' then return 0 end
  if b.st == 'O' then return -math.max(1, b.o + cfg.open_us - now) end
  if b.p >= cfg.max_probes then return -math.max(1, b.pt + cfg.probe_window_us - now) end
  return 1
end

local function cb_take_probe(b, now)
  b.p = b.p + 1; b.pt = now; b.dirty = true
end

-- kind: 's' success, 'f' failure, 'n' neutral. Returns the transition made, or ''.
local function cb_record(b, now, kind, cfg)
  if b.st == 'H' and b.p > 0 then b.p = b.p - 1; b.dirty = true end
  if kind == 's' then
    if b.st == 'C' and b.f > 0 then
      b.f = 0; b.dirty = true
    elseif b.st == 'H' then
      b.s = b.s + 1; b.dirty = true
      if b.s >= cfg.successes then
        b.st = 'C'; b.f = 0; b.s = 0; b.p = 0; b.o = 0; b.since = 0
        return 'closed'
      end
    end
  elseif kind == 'f' then
    -- With the circuit_breaker flag off (FL.breakers 0) failures are counted, nothing opens.
    if b.st == 'C' or FL.breakers == 0 then
      b.f = b.f + 1; b.lf = now; b.dirty = true
      if b.st == 'C' and b.f >= cfg.threshold and FL.breakers == 1 then
        b.st = 'O'; b.o = now; b.since = now; b.s = 0; b.p = 0
        return 'opened'
      end
    elseif b.st == 'H' then
      b.st = 'O'; b.o = now; b.s = 0; b.p = 0; b.lf = now; b.dirty = true
      return 'reopened'
    end
    -- OPEN: a late failure of a request admitted before the trip; it must not extend the open period.
  end
  return ''
end

local function cb_reply(b)
  return {b.st, b.f, b.s, b.p, fmt(b.o), fmt(b.since)}
end

-- The seller's buckets and adaptive factor are one string of six doubles (struct.pack '<dddddd':
-- t global tokens, ts last settle (µs), jt jobs tokens, jts its settle, f factor, lc last cut).
-- A missing key is a full bucket at factor 1. One GET to load and one SET ... PX to save (value
-- and expiry together) is two redis.calls where a hash took three or four (HMGET, HSET, PEXPIRE,
-- HDEL), and a double round-trips exactly (no number formatting).

local function bk_parse(s, now, c)
  if not s then
    return {t = c.capacity, jt = c.jcap, f = 1, lc = 0}
  end
  local t, ts, jt, jts, f, lc = struct.unpack('<dddddd', s)
  -- adaptive_rate_limiting off: the nominal budget, whatever factor is stored (the next save drops it)
  if FL.adaptive == 0 then f = 1 end
  -- Refill at the factor in force since the last settle (recovery only raises it, so this never
  -- over-grants), then let the factor recover for the time since the latest settle.
  return {
    t = math.min(c.capacity * f, t + math.max(0, now - ts) * c.rate * f),
    jt = math.min(c.jcap, jt + math.max(0, now - jts) * c.jrate * f),
    f = math.min(1, f + math.max(0, now - math.max(ts, jts)) * c.inc),
    lc = lc,
  }
end

local function bk_load(key, now, c)
  return bk_parse(redis.call('GET', key), now, c)
end

-- Both buckets are settled to now. Expire once the state is indistinguishable from a missing key
-- (full buckets, factor 1), so an idle seller costs nothing; refill is bounded below by the
-- current factor.
local function bk_save(key, k, now, c)
  local fill = math.max((c.capacity - k.t) / (c.rate * k.f), (c.jcap - k.jt) / (c.jrate * k.f))
  local recover = 0
  if c.inc > 0 then recover = (1 - k.f) / c.inc end
  redis.call('SET', key, struct.pack('<dddddd', k.t, now, k.jt, now, k.f, k.lc), 'PX',
    math.ceil((fill + recover) / 1000) + 1000)
end

-- Events per minute in a hash (field: minute number, value: count) for "in the last hour"
-- figures: 429s (record.lua) and waits (acquire.lua). One HINCRBY per event; the first event
-- of a minute also sets the key to expire when that minute leaves the hour, and prunes minutes
-- older than an hour once the hash holds more than an hour's worth.
local function count_minute(key, now)
  local minute = math.floor(now / 60000000)
  if redis.call('HINCRBY', key, tostring(minute), 1) == 1 then
    redis.call('PEXPIREAT', key, (minute + 61) * 60000)
    if redis.call('HLEN', key) > 61 then
      for _, field in ipairs(redis.call('HKEYS', key)) do
        if tonumber(field) < minute - 59 then redis.call('HDEL', key, field) end
      end
    end
  end
end

-- Sum of the counts of the last 60 minutes (this one included).
local function sum_hour(key, now)
  local since_minute = math.floor(now / 60000000) - 59
  local hits = 0
  local counts = redis.call('HGETALL', key)
  for i = 1, #counts, 2 do
    if tonumber(counts[i]) >= since_minute then hits = hits + tonumber(counts[i + 1]) end
  end
  return hits
end
