-- uncreate_job: undoes what create_jobs just did for one job whose task
-- could not be pushed: a new record is removed, a forced relaunch goes back
-- to the success it was; its batch counters are put back too. Needs
-- lib/batch.lua and lib/agent.lua.
--
-- KEYS[1]  job        the job's record (rdb.JobKey)
-- KEYS[2]  attempts   the job's attempt log (rdb.AttemptsKey)
-- ARGV[1]  id         job ID (to leave its batch's job list)
--
-- Returns 1 when it undid the create, 0 when the job was not freshly
-- created (it has started, or it is not queued).

local h = redis.call('HMGET', KEYS[1], 'state', 'attempts', 'generation', 'restore_ttl', 'batch', 'restore_batch', 'agent_no')
if h[1] ~= 'queued' or h[2] ~= '0' then return 0 end
local bk = batch_key(h[5])
local function leave()
  if not bk then return end
  redis.call('HINCRBY', bk, 'total', -1)
  batch_move(bk, 'queued', nil)
  redis.call('LREM', batch_jobs(bk), -1, ARGV[1])
end
if (h[3] or '1') == '1' then -- the first generation: a new record
  redis.call('DEL', KEYS[1], KEYS[2])
  agent_drop(h[7], ARGV[1])
  leave()
  return 1
end
if h[4] then -- a forced relaunch: back to the success it was, in its batch
  redis.call('HSET', KEYS[1], 'state', 'succeeded')
  for _, f in ipairs({'attempts', 'enqueued_at', 'updated_at', 'batch', 'queue'}) do
    local v = redis.call('HGET', KEYS[1], 'restore_' .. f)
    if v then redis.call('HSET', KEYS[1], f, v) else redis.call('HDEL', KEYS[1], f) end
  end
  redis.call('HDEL', KEYS[1], 'restore_ttl', 'restore_attempts', 'restore_enqueued_at', 'restore_updated_at', 'restore_batch',
    'restore_queue')
  -- A followed success gets its launch state back, and its follow-up task,
  -- which waited while the job was queued, polls on.
  local ls = redis.call('HGET', KEYS[1], 'restore_launch_state')
  if ls then
    redis.call('HSET', KEYS[1], 'launch_state', ls)
    redis.call('HDEL', KEYS[1], 'restore_launch_state')
    batch_launch(batch_key(h[6]), nil, ls)
  end
  if bk and h[5] == h[6] then
    batch_move(bk, 'queued', 'succeeded')
  else
    leave()
    local old = batch_key(h[6])
    if old then
      batch_move(old, nil, 'succeeded')
      redis.call('HINCRBY', old, 'total', 1)
      redis.call('HINCRBY', old, 'relaunched', -1)
    end
  end
  local ttl = tonumber(h[4])
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('PEXPIRE', KEYS[2], ttl)
    agent_settle(h[7])
  end
  return 1
end
return 0
