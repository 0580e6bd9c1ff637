-- unindex_dead_letter: removes a requeued job from the dead-letter index,
-- unless it has been dead-lettered again.
--
-- KEYS[1]  job  the job's record (rdb.JobKey)
-- KEYS[2]  dlq  the dead-letter index (rdb.DeadLetters)
-- ARGV[1]  id   job ID
--
-- Returns the number of index entries removed (0 or 1).

if redis.call('HGET', KEYS[1], 'state') == 'dead_lettered' then return 0 end
return redis.call('ZREM', KEYS[2], ARGV[1])
