-- restore_dead_letter: puts a requeued job back to dead-lettered when its
-- task could not be pushed, and its batch counters as they were. Needs
-- lib/batch.lua.
--
-- KEYS[1]  job  the job's record (rdb.JobKey)
-- KEYS[2]  dlq  the dead-letter index (rdb.DeadLetters)
-- ARGV[1]  id   job ID
-- ARGV[2]  now  the time, Unix ms (a batch finished again without an earlier time)
-- ARGV[3]  ttl  seconds a finished batch's keys are kept; 0 forever
--
-- Returns 1 when it restored the letter, 0 when the job is not a requeued
-- letter still in the index.

if redis.call('HGET', KEYS[1], 'state') == 'queued' and redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('HSET', KEYS[1], 'state', 'dead_lettered', 'attempts', redis.call('HGET', KEYS[1], 'restore_attempts') or '0')
  redis.call('HDEL', KEYS[1], 'restore_attempts')
  local h = redis.call('HMGET', KEYS[1], 'batch', 'code')
  local bk = batch_key(h[1])
  if bk then
    batch_move(bk, 'queued', 'dead_lettered')
    batch_code(bk, h[2], '1')
    -- finished again when it was before the requeue, as of then
    batch_settle(bk, redis.call('HGET', bk, 'prev_finished_at') or ARGV[2], ARGV[3])
  end
  return 1
end
return 0
