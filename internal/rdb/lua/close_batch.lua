-- close_batch: marks a batch closed (its total is final) and finished when
-- every job has its outcome. Needs lib/batch.lua.
--
-- KEYS[1]  batch  the batch's record (rdb.BatchKey)
-- ARGV[1]  now    the time, Unix ms
-- ARGV[2]  ttl    seconds a finished batch's keys are kept; 0 forever
--
-- Returns 1, or 0 when the batch does not exist.

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'closed', 1)
batch_settle(KEYS[1], ARGV[1], ARGV[2])
return 1
