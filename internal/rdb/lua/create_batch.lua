-- create_batch: makes an empty, open batch unless its ID is taken.
--
-- KEYS[1]  batch       the batch's record (rdb.BatchKey)
-- KEYS[2]  batches     the batch index (rdb.BatchIndex)
-- ARGV[1]  id          batch ID
-- ARGV[2]  name        batch name
-- ARGV[3]  created_at  the time, Unix ms
--
-- Returns 1 when it made the batch, 0 when the ID is taken.

if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'created_at', ARGV[3], 'total', 0, 'queued', 0, 'running', 0,
  'retrying', 0, 'succeeded', 0, 'dead_lettered', 0, 'closed', 0)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
