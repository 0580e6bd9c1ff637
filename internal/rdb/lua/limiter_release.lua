-- limiter_release: frees an in-flight slot and feeds the call's result to
-- the cool-off (gateway errors) and the adaptive rate (throttling lowers
-- it, successes raise it back).
--
-- KEYS[1]  tat             unused here; passed so both limiter scripts take the same KEYS
-- KEYS[2]  inflight        leases (rdb.SIDKeys.InFlight)
-- KEYS[3]  cooloff         the cool-off flag (CoolOff)
-- KEYS[4]  rate            the effective rate hash (Rate)
-- KEYS[5]  gateway_errors  the count of recent gateway errors (GatewayErrors)
-- ARGV[1]  token           the slot's lease token
-- ARGV[2]  result          'answered', 'gateway', 'throttled' or 'unused'
-- ARGV[3]  rate            the configured rate, calls per second
-- ARGV[4]  min_rate        the floor throttling lowers the rate to
-- ARGV[5]  threshold       gateway errors that start a cool-off; 0 disables it
-- ARGV[6]  window          ms over which gateway errors are counted
-- ARGV[7]  duration        ms a cool-off lasts
--
-- Returns {cool_off_started (1 or 0), new_rate}: new_rate is the effective
-- rate as a string when this release changed it, else '0'.

-- now is Redis's clock in Unix ms, read only where a result needs it: an
-- answered call at the full rate, nearly every call, does not.
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('ZREM', KEYS[2], ARGV[1])
local result, rate, floor = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local cool, newrate = 0, 0
if result == 'gateway' and tonumber(ARGV[5]) > 0 then
  local n = redis.call('INCR', KEYS[5])
  if n == 1 then redis.call('PEXPIRE', KEYS[5], ARGV[6]) end
  if n >= tonumber(ARGV[5]) and redis.call('EXISTS', KEYS[3]) == 0 then
    redis.call('SET', KEYS[3], now(), 'PX', ARGV[7])
    redis.call('DEL', KEYS[5])
    cool = 1
  end
end
local eff = tonumber(redis.call('HGET', KEYS[4], 'rate') or rate)
if result == 'throttled' then
  newrate = math.max(floor, math.min(eff, rate) / 2)
  redis.call('HSET', KEYS[4], 'rate', newrate, 'changed', now())
  if newrate == eff then newrate = 0 end -- already at the floor: nothing changed
elseif eff < rate and result == 'answered' then
  -- raise the rate a tenth of the limit at most once a second of successes
  local changed = tonumber(redis.call('HGET', KEYS[4], 'changed') or '0')
  local t = now()
  if t - changed >= 1000 then
    newrate = math.min(rate, eff + rate / 10)
    if newrate >= rate then
      redis.call('DEL', KEYS[4])
    else
      redis.call('HSET', KEYS[4], 'rate', newrate, 'changed', t)
    end
  end
end
if newrate == 0 then return {cool, '0'} end
return {cool, tostring(newrate)}
