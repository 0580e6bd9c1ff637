-- start_job: marks a job running for its next attempt, unless it has
-- finished; a missing record is recreated from the ARGV, and a job found
-- running (its worker died) gets a 'lost' attempt. Needs lib/batch.lua.
--
-- KEYS[1]  job           the job's record (rdb.JobKey)
-- KEYS[2]  attempts      the job's attempt log (rdb.AttemptsKey)
-- KEYS[3]  dlq           the dead-letter index (rdb.DeadLetters)
-- ARGV[1]  now           the time, Unix ms
-- ARGV[2]  max_attempts  the retry budget, kept on the record
-- ARGV[3]  id            job ID
-- ARGV[4]  sid           Kaleyra account   (these three recreate a
-- ARGV[5]  agent_no      agent number       missing record)
-- ARGV[6]  payload       canonical request body
-- ARGV[7]  now_rfc3339   the time, RFC 3339, for a lost attempt's entry
-- ARGV[8]  queue         the queue of the task running it, kept on a
--                        recreated record like create_jobs keeps it
--
-- Returns {state, attempt}: {'running', n} for attempt n, or the finished
-- state ('succeeded', 'dead_lettered') and its attempt count.

-- one read of the fields the script needs; it writes none of them before use
local h = redis.call('HMGET', KEYS[1], 'state', 'batch', 'attempts', 'generation')
local state, batch, attempts = h[1], h[2], h[3]
if not state then
  redis.call('HSET', KEYS[1], 'sid', ARGV[4], 'agent_no', ARGV[5], 'payload', ARGV[6],
    'attempts', 0, 'enqueued_at', ARGV[1], 'queue', ARGV[8])
  state, batch, attempts = 'queued', false, '0'
end
if state == 'succeeded' or state == 'dead_lettered' then
  return {state, tonumber(attempts)}
end
local bk = batch_key(batch)
if state == 'running' then
  -- redelivered after its worker died: still running, as its batch counts it
  local n = attempts
  redis.call('RPUSH', KEYS[2], '{"attempt":' .. n .. ',"outcome":"lost","message":"the worker stopped during this call; no answer was recorded","finished_at":"' .. ARGV[7] .. '"}')
else
  batch_move(bk, state, 'running')
end
if bk then redis.call('HSETNX', bk, 'started_at', ARGV[1]) end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', '1')
redis.call('HSET', KEYS[1], 'state', 'running', 'started_at', ARGV[1], 'updated_at', ARGV[1], 'max_attempts', ARGV[2])
-- A record without a generation (never relaunched or requeued:
-- create_jobs.lua) has no restore_* fields and is no dead letter; each
-- field to delete costs Redis a scan of the record. One that says '1' was
-- written, or bumped from none, by an earlier version, which counted from 0:
-- it takes the full path.
if not h[4] then
  redis.call('HDEL', KEYS[1], 'next_run_at')
else
  redis.call('HDEL', KEYS[1], 'next_run_at', 'restore_ttl', 'restore_attempts', 'restore_enqueued_at', 'restore_updated_at',
    'restore_batch', 'restore_queue')
  -- a dlq retry that stopped before unindexing: the job runs, so it is no dead letter
  redis.call('ZREM', KEYS[3], ARGV[3])
end
return {'running', n}
