-- requeue_dead_letter: gives a dead letter a fresh attempt budget and marks
-- it queued, keeping it in the dead-letter index (unindex_dead_letter takes
-- it out once its task is pushed); its batch has work again. Needs
-- lib/batch.lua.
--
-- KEYS[1]  job                the job's record (rdb.JobKey)
-- KEYS[2]  dlq                the dead-letter index (rdb.DeadLetters)
-- ARGV[1]  include_uncertain  '1' requeues a letter marked uncertain too, else '0'
-- ARGV[2]  now                the time, Unix ms
-- ARGV[3]  id                 job ID
--
-- Returns {'requeued', payload, sid, agent_no}; {'resume', payload, sid,
-- agent_no} for a requeue that stopped before unindexing; {'uncertain'};
-- {'missing'}; or {state} for a job that is no dead letter.

local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
local h = redis.call('HMGET', KEYS[1], 'payload', 'sid', 'agent_no', 'uncertain', 'batch', 'code')
if state == 'dead_lettered' then
  if h[4] == '1' and ARGV[1] ~= '1' then return {'uncertain'} end
  -- The dead letter's fields stay as they are (its uncertain mark above
  -- all) until the new run records its own outcome, so that Restore can put
  -- it back exactly.
  redis.call('HSET', KEYS[1], 'state', 'queued', 'restore_attempts', redis.call('HGET', KEYS[1], 'attempts'),
    'attempts', 0, 'updated_at', ARGV[2])
  -- a record without a generation is of the first (create_jobs.lua)
  redis.call('HSET', KEYS[1], 'generation', (tonumber(redis.call('HGET', KEYS[1], 'generation')) or 1) + 1)
  -- It stays in its batch, which has work again.
  local bk = batch_key(h[5])
  batch_move(bk, 'dead_lettered', 'queued')
  batch_code(bk, h[6], '-1')
  batch_reopen(bk)
  return {'requeued', h[1], h[2], h[3]}
end
if state == 'queued' and redis.call('ZSCORE', KEYS[2], ARGV[3]) then
  return {'resume', h[1], h[2], h[3]}
end
return {state}
