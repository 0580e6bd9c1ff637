-- hold_queue: pauses one asynq queue for a while, by the key asynq's own
-- pause sets and its dequeue looks at, with an expiry: workers stop taking
-- the queue's tasks until the key expires. A longer hold is never shortened,
-- and a pause without expiry (an operator's, from asynqmon) is left alone.
--
-- KEYS[1]  paused  asynq's paused key of the queue (rdb.AsynqPausedKey)
-- ARGV[1]  hold    how long, ms
-- ARGV[2]  since   the time, Unix seconds (asynq keeps this as the value)
--
-- Returns 1 when the hold was set or lengthened, else 0.

local ttl = redis.call('PTTL', KEYS[1])
if ttl == -1 or ttl >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
return 1
