-- How a request ended, for one seller, atomically: the adaptive factor (a 429 cuts it and drains
-- the bucket that was hit) and the seller's breaker.
-- KEYS[1] seller bucket (packed string), KEYS[2] seller breaker (packed string), KEYS[3] seller 429-per-minute hash.
-- ARGV[1] breaker kind (s/f/n), ARGV[2] '1' when CardTrader answered 429, ARGV[3] 'g' or 'j'.
-- Returns {transition, breaker state, factor, cut (1 when this call cut the factor)}.
-- With the adaptive_rate_limiting flag off (FL.adaptive 0) a 429 is only counted.
local kind = ARGV[1]
local limited = ARGV[2] == '1'
local c = BK
local cut_by = BK.cut
local floor = BK.floor
local cooldown = BK.cooldown_us
local cfg = CB
local now = now_us()

local factor = '1'
local cut = 0
if limited then
  count_minute(KEYS[3], now)
  if FL.adaptive == 1 then
    local k = bk_load(KEYS[1], now, c)
    -- Requests already in flight when the first 429 came back answer 429 too; one cut per
    -- cooldown keeps a single overshoot from collapsing the budget.
    if now - k.lc >= cooldown then
      k.f = math.max(floor, k.f * cut_by)
      k.lc = now
      cut = 1
    end
    -- CardTrader says the window is full: whatever we believed was left is not.
    if ARGV[3] == 'j' then k.jt = 0 else k.t = 0 end
    k.t = math.min(k.t, c.capacity * k.f)
    bk_save(KEYS[1], k, now, c)
    factor = fmt(k.f)
  end
end

local b = cb_load(KEYS[2])
cb_advance(b, now, cfg)
local transition = cb_record(b, now, kind, cfg)
cb_save(KEYS[2], b, cfg)
return {transition, b.st, factor, cut}
