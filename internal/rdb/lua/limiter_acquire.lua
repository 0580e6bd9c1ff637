-- limiter_acquire: takes a rate token (GCRA) and an in-flight slot together
-- for one launch call, on Redis's clock, or says how long to wait.
--
-- KEYS[1]  tat             theoretical arrival time, Unix µs (rdb.SIDKeys.TAT)
-- KEYS[2]  inflight        leases, token scored by expiry in Unix µs (InFlight)
-- KEYS[3]  cooloff         exists while in cool-off (CoolOff)
-- KEYS[4]  rate            the effective rate hash (Rate)
-- KEYS[5]  gateway_errors  unused here; passed so both limiter scripts take the same KEYS
-- ARGV[1]  rate            the configured rate, calls per second
-- ARGV[2]  burst           calls that may go at once above the rate
-- ARGV[3]  max_in_flight   the cap on calls in flight
-- ARGV[4]  lease           how long a slot is held at most, µs
-- ARGV[5]  token           the slot's lease token
-- ARGV[6]  ahead           how early a call's token may be reserved, µs
-- ARGV[7]  margin          the share of the rate's interval added to it as
--                          room for the calls' jitter on their way (0.01)
--
-- A call whose token comes within ahead is granted at once, with the delay
-- after which it may go: the rate counts it at its token's time, not at
-- whenever its caller, woken up late, would have asked. With a burst of 1
-- a token is lost for every microsecond a caller is late, and a loaded
-- machine's callers are late by milliseconds (BENCHMARKS.md).
--
-- Returns {1, next_us, 'ok', delay_us} with the slot taken,
-- {1, next_us, 'lowered', delay_us} with the slot taken while throttling
-- has lowered the account's rate (its release must then run
-- limiter_release.lua, which raises it again), or {0, wait_us, reason}
-- with reason 'cool_off', 'in_flight' (wait_us 0: unknown) or 'rate'.
-- delay_us is how long the granted call must wait before it goes (at most
-- ahead); next_us is how long until the account's next call may be asked
-- for (0: at once), so that a caller's other waiters need not ask before
-- then only to be told so.

-- Numbers go to Redis as strings made with '%d', as in lib/batch.lua.
local function int(n) return string.format('%d', n) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cool = redis.call('PTTL', KEYS[3])
if cool > 0 then return {0, cool * 1000, 'cool_off'} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', int(now))
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return {0, 0, 'in_flight'} end
local rate = tonumber(ARGV[1])
local eff = tonumber(redis.call('HGET', KEYS[4], 'rate'))
local granted = 'ok'
if eff and eff < rate then rate, granted = eff, 'lowered' end
-- Rounded up, so that whole µs never take the calls above the rate.
local interval = math.ceil(1000000 / rate * (1 + tonumber(ARGV[7])))
local tolerance = interval * tonumber(ARGV[2])
local ahead = tonumber(ARGV[6])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new = tat + interval
-- The call may go once new is within the tolerance: after delay.
local delay = new - tolerance - now
if delay > ahead then return {0, delay - ahead, 'rate'} end
if delay < 0 then delay = 0 end
redis.call('SET', KEYS[1], int(new), 'PX', int(math.floor((new - now) / 1000) + 1000))
redis.call('ZADD', KEYS[2], int(now + delay + tonumber(ARGV[4])), ARGV[5])
redis.call('PEXPIRE', KEYS[2], int(math.floor((delay + tonumber(ARGV[4])) / 1000) + 1000))
return {1, math.max(0, new + interval - tolerance - now - ahead), granted, delay}
