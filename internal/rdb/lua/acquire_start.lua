-- acquire_start: limiter_acquire.lua and, when it grants the slot,
-- start_job.lua, in one script and one round trip. Only on a Redis that lets
-- a script touch keys of several cluster slots (not a Redis Cluster): the
-- account's keys and the job's do not share a slot. Needs lib/batch.lua and
-- both scripts as the functions limiter_acquire and start_job.
--
-- KEYS[1..5]   limiter_acquire's KEYS
-- KEYS[6..8]   start_job's KEYS
-- ARGV[1..7]   limiter_acquire's ARGV
-- ARGV[8..15]  start_job's ARGV
--
-- Returns limiter_acquire's answer; when the slot is taken, followed by
-- start_job's: {1, next_us, 'ok' or 'lowered', delay_us, state, attempt}.

local function slice(t, from, to)
  local r = {}
  for i = from, to do r[#r + 1] = t[i] end
  return r
end

local a = limiter_acquire(slice(KEYS, 1, 5), slice(ARGV, 1, 7))
if a[1] ~= 1 then return a end
local s = start_job(slice(KEYS, 6, 8), slice(ARGV, 8, 15))
return {1, a[2], a[3], a[4], s[1], s[2]}
