-- delete_dead_letter: drops a dead letter, its record and attempt log; its
-- batch counts it as deleted, no longer in its total. Needs lib/batch.lua and lib/agent.lua.
--
-- KEYS[1]  job       the job's record (rdb.JobKey)
-- KEYS[2]  attempts  the job's attempt log (rdb.AttemptsKey)
-- KEYS[3]  dlq       the dead-letter index (rdb.DeadLetters)
-- ARGV[1]  id        job ID
--
-- Returns 'deleted'; 'missing' when the job has no record; or its state
-- when it is no dead letter (then nothing is touched).

local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'missing' end
if state ~= 'dead_lettered' then return state end
local h = redis.call('HMGET', KEYS[1], 'batch', 'code', 'agent_no')
redis.call('DEL', KEYS[1], KEYS[2])
agent_drop(h[3], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
-- The job leaves its batch with its record (enqueued again, it joins the
-- new run's batch); the batch keeps count of the deleted.
local bk = batch_key(h[1])
if bk then
  batch_move(bk, 'dead_lettered', nil)
  batch_code(bk, h[2], '-1')
  redis.call('HINCRBY', bk, 'total', -1)
  redis.call('HINCRBY', bk, 'deleted', 1)
end
return 'deleted'
