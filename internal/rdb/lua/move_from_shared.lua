-- move_from_shared: points a job's record at its account's queue, where its
-- task moves from the shared queue, when the record names the shared queue
-- (or none, or '': records written before records kept their queue were
-- pushed to the shared queue).
--
-- KEYS[1]  job     the job's record (rdb.JobKey)
-- ARGV[1]  shared  the shared queue's name
-- ARGV[2]  to      the queue the task moves to
--
-- Returns 1 when the record names ARGV[2] now, 0 when there is no record or
-- it names another queue (the job's task is elsewhere).

local h = redis.call('HMGET', KEYS[1], 'state', 'queue')
if not h[1] then return 0 end
local q = h[2]
if not q or q == '' then q = ARGV[1] end
if q == ARGV[2] then return 1 end
if q ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'queue', ARGV[2])
return 1
