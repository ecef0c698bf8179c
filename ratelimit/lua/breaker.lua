-- One breaker on its own (the shared CardTrader breaker, or any breaker for beat / admin).
-- KEYS[1] breaker (packed string). ARGV[1] op: admit | record | release | tick | reset; ARGV[2] kind for
-- record (s/f/n).
-- Returns {allowed or transition, retry_us, state fields...}.
local op = ARGV[1]
local cfg = CB
local now = now_us()
local b = cb_load(KEYS[1])
if op == 'reset' then
  redis.call('DEL', KEYS[1])
  return {'', 0, 'C', 0, 0, 0, '0', '0', fmt(now)}
end
local before = b.st
cb_advance(b, now, cfg)
local first, retry = '', 0
if op == 'tick' then
  if before ~= b.st then first = 'half_opened' end
elseif op == 'admit' then
  local admit = cb_check(b, now, cfg)
  if admit < 0 then
    first = '0'; retry = -admit
  else
    first = '1'
    if admit == 1 then cb_take_probe(b, now); first = 'probe' end
  end
elseif op == 'record' then
  first = cb_record(b, now, ARGV[2], cfg)
elseif op == 'release' then
  if b.st == 'H' and b.p > 0 then b.p = b.p - 1; b.dirty = true end
else
  return redis.error_reply('unknown breaker op ' .. op)
end
cb_save(KEYS[1], b, cfg)
local reply = cb_reply(b)
table.insert(reply, 1, retry)
table.insert(reply, 1, first)
table.insert(reply, fmt(now))
return reply
