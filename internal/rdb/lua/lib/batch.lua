-- lib/batch.lua: the batch helpers, a prelude put in front of every script
-- that changes a job's state or a batch (rdb.load concatenates it).
--
-- A batch's keys are derived here from a job record's batch field, so they
-- are not among a script's KEYS. They carry the same hash tag,
-- {rcslaunch:results}, as every key the scripts are given, so they are in
-- the same Redis Cluster slot, which Redis allows a script to touch.
-- The two placeholders quoted on the first line of code are replaced at load
-- by the key prefixes of rdb/keys.go: a batch's record and its job list,
-- each followed by the batch ID.
--
-- Defines batch_key, batch_jobs, batch_move, batch_code, batch_launch,
-- batch_settle and batch_reopen; uses no KEYS or ARGV of its own.
--
-- On a job's hot path (these helpers, start_job, finish_job and the
-- limiter's scripts) numbers go to redis.call as strings ('1',
-- string.format('%d', n)): Redis 7.0 turns a Lua number into text with
-- printf's '%.17g', which costs it more than many a command (BENCHMARKS.md,
-- "Redis instructions per job").
local BATCH, BATCH_JOBS = '$BATCH', '$BATCH_JOBS'
-- batch_key is the key of batch b's record, or nil when b names no batch.
local function batch_key(b)
  if not b or b == '' then return nil end
  local k = BATCH .. b
  if redis.call('EXISTS', k) == 0 then return nil end
  return k
end
local function batch_jobs(k) return BATCH_JOBS .. string.sub(k, #BATCH + 1) end
-- batch_move moves one job of batch k from one counter to another (nil: none).
local function batch_move(k, from, to)
  if not k or from == to then return end
  if from then redis.call('HINCRBY', k, from, '-1') end
  if to then redis.call('HINCRBY', k, to, '1') end
end
-- batch_code counts a dead letter by its code, d ('1' or '-1') more.
local function batch_code(k, code, d)
  if not k then return end
  local f = 'code:' .. (code or '')
  if redis.call('HINCRBY', k, f, d) <= 0 then redis.call('HDEL', k, f) end
end
-- batch_launch moves one followed job of batch k from one launch state's
-- counter ("launch:<state>") to another (nil: none).
local function batch_launch(k, from, to)
  if not k or from == to then return end
  if from then redis.call('HINCRBY', k, 'launch:' .. from, '-1') end
  if to then redis.call('HINCRBY', k, 'launch:' .. to, '1') end
end
-- batch_settle marks batch k finished once it is closed and every job has
-- its outcome; its keys then expire after ttl seconds (0: never).
local function batch_settle(k, at, ttl)
  if not k then return end
  local h = redis.call('HMGET', k, 'closed', 'total', 'succeeded', 'dead_lettered', 'finished_at')
  if h[1] ~= '1' or h[5] then return end
  if (tonumber(h[3]) or 0) + (tonumber(h[4]) or 0) ~= (tonumber(h[2]) or 0) then return end
  redis.call('HSET', k, 'finished_at', at)
  if tonumber(ttl) > 0 then
    redis.call('EXPIRE', k, ttl)
    redis.call('EXPIRE', batch_jobs(k), ttl)
  end
end
-- batch_reopen: a finished batch has work again (a dlq retry).
local function batch_reopen(k)
  if not k then return end
  local f = redis.call('HGET', k, 'finished_at')
  if f then
    redis.call('HSET', k, 'prev_finished_at', f)
    redis.call('HDEL', k, 'finished_at')
    redis.call('PERSIST', k)
    redis.call('PERSIST', batch_jobs(k))
  end
end
