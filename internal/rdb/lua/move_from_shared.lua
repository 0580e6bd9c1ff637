-- move_from_shared: points a job's record at its account's queue, where its
-- task moves from the shared queue, when the record names the shared queue
-- (or none, or '': records written before records kept their queue were
-- pushed to the shared queue) and the job has not finished.
--
-- KEYS[1]  job     the job's record (rdb.JobKey)
-- ARGV[1]  shared  the shared queue's name
-- ARGV[2]  to      the queue the task moves to
--
-- Returns 'moved' when the record names ARGV[2] now; 'elsewhere' when it
-- names another queue (the task on the shared queue is a stale copy: the
-- job's task is on that queue); 'missing' when there is no record; or the
-- finished state ('succeeded', 'dead_lettered'), left as it was.

local h = redis.call('HMGET', KEYS[1], 'state', 'queue')
local state, q = h[1], h[2]
if not state then return 'missing' end
if state == 'succeeded' or state == 'dead_lettered' then return state end
if not q or q == '' then q = ARGV[1] end
if q == ARGV[2] then return 'moved' end
if q ~= ARGV[1] then return 'elsewhere' end
redis.call('HSET', KEYS[1], 'queue', ARGV[2])
return 'moved'
