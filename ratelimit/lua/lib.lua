-- Shared helpers, prepended to every script (scripts.py). Times are integer microseconds from
-- the Redis server's TIME, so every worker on every machine shares one clock.
-- Numbers are written with %.17g: Redis would otherwise format them with %.14g and a
-- microsecond timestamp (16 digits) would lose precision.

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

-- Circuit breaker state lives in one hash: st (C/O/H), f (consecutive failures), lf (last
-- failure), s (successes while half-open), o (opened at), since (first left CLOSED),
-- p (probes in flight), pt (last probe admitted). A missing hash is a healthy CLOSED breaker.
-- Breaker and bucket configuration (the CB and BK tables) and the feature flags (FL: adaptive,
-- breakers, 1 on / 0 off) are written into the script source by scripts.py, one script per
-- configuration: nothing constant travels with each call.

local function cb_load(key)
  local v = redis.call('HMGET', key, 'st', 'f', 'lf', 's', 'o', 'since', 'p', 'pt')
  return {
    st = v[1] or 'C', f = tonumber(v[2]) or 0, lf = tonumber(v[3]) or 0, s = tonumber(v[4]) or 0,
    o = tonumber(v[5]) or 0, since = tonumber(v[6]) or 0, p = tonumber(v[7]) or 0, pt = tonumber(v[8]) or 0,
    exists = v[1] ~= false and v[1] ~= nil, dirty = false,
  }
end

local function cb_save(key, b, cfg)
  if not b.dirty then return end
  if b.st == 'C' and b.f == 0 then
    if b.exists then redis.call('DEL', key) end
    return
  end
  redis.call('HSET', key, 'st', b.st, 'f', b.f, 'lf', fmt(b.lf), 's', b.s, 'o', fmt(b.o),
    'since', fmt(b.since), 'p', b.p, 'pt', fmt(b.pt))
  if b.st == 'C' then
    redis.call('PEXPIRE', key, math.ceil(cfg.failure_window_us / 1000))
  else
    redis.call('PEXPIRE', key, cfg.ttl_ms)
  end
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

-- The seller's buckets and adaptive factor share one hash: t/ts (global tokens, last settle),
-- jt/jts (jobs bucket, absent when full), f (adaptive factor, absent at 1), lc (last cut). A
-- missing hash is a full bucket at factor 1.

local function bk_load(key, now, c)
  local v = redis.call('HMGET', key, 't', 'ts', 'jt', 'jts', 'f', 'lc')
  -- adaptive_rate_limiting off: the nominal budget, whatever factor is stored (the next save drops it)
  local f = FL.adaptive == 1 and tonumber(v[5]) or 1
  local k = {f = f, lc = tonumber(v[6]) or 0, has_f = v[5] ~= false, has_j = v[3] ~= false, lc_dirty = false}
  -- Refill at the factor in force since the last settle (recovery only raises it, so this never
  -- over-grants), then let the factor recover for the elapsed time.
  local ts = tonumber(v[2]) or now
  local t = tonumber(v[1]) or c.capacity
  k.t = math.min(c.capacity * f, t + math.max(0, now - ts) * c.rate * f)
  local jts = tonumber(v[4]) or now
  local jt = tonumber(v[3]) or c.jcap
  k.jt = math.min(c.jcap, jt + math.max(0, now - jts) * c.jrate * f)
  -- a missing jts (full jobs bucket, dropped) must not count as "settled now"
  local last = math.max(tonumber(v[2]) or 0, tonumber(v[4]) or 0)
  if v[5] and FL.adaptive == 1 then
    -- the factor's own clock is the latest settle (ts is written on every update; f with it)
    k.f = math.min(1, f + math.max(0, now - last) * c.inc)
  end
  return k
end

-- Only what differs from a fresh key is written (the common grant writes t and ts alone): a full
-- jobs bucket and a factor of 1 are what missing fields mean, so they are dropped, not stored;
-- lc only changes on a cut (record.lua sets lc_dirty).
local function bk_save(key, k, now, c)
  local nowf = fmt(now)
  local set = {'t', fmt(k.t), 'ts', nowf}
  local drop = {}
  if k.jt < c.jcap then
    set[#set + 1] = 'jt'; set[#set + 1] = fmt(k.jt); set[#set + 1] = 'jts'; set[#set + 1] = nowf
  elseif k.has_j then
    drop[#drop + 1] = 'jt'; drop[#drop + 1] = 'jts'
  end
  if k.f < 1 then
    set[#set + 1] = 'f'; set[#set + 1] = fmt(k.f)
  elseif k.has_f then
    drop[#drop + 1] = 'f'
  end
  if k.lc_dirty then
    set[#set + 1] = 'lc'; set[#set + 1] = fmt(k.lc)
  end
  redis.call('HSET', key, unpack(set))
  if #drop > 0 then redis.call('HDEL', key, unpack(drop)) end
  -- Expire once the state is indistinguishable from a fresh key (full buckets, factor 1), so an
  -- idle seller costs nothing; refill is bounded below by the current factor.
  local rate_now = c.rate * k.f
  local jrate_now = c.jrate * k.f
  local fill = math.max((c.capacity - k.t) / rate_now, (c.jcap - k.jt) / jrate_now)
  local recover = 0
  if c.inc > 0 then recover = (1 - k.f) / c.inc end
  redis.call('PEXPIRE', key, math.ceil((fill + recover) / 1000) + 1000)
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
