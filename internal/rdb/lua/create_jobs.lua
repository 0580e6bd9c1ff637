-- create_jobs: creates the records of #KEYS/2 jobs, each unless it exists
-- (or relaunches a success with force), and counts the new ones in their
-- batch. A chunk of jobs in one script costs Redis far less than a script
-- each (BENCHMARKS.md). Needs lib/batch.lua and lib/agent.lua.
--
-- KEYS[2i-1]  job        job i's record (rdb.JobKey)
-- KEYS[2i]    attempts   job i's attempt log (rdb.AttemptsKey)
-- ARGV[1]     now        the time, Unix ms
-- then seven per job i, from ARGV[7i-5]:
-- ARGV[7i-5]  id         job ID
-- ARGV[7i-4]  sid        Kaleyra account
-- ARGV[7i-3]  agent_no   agent number
-- ARGV[7i-2]  payload    canonical request body
-- ARGV[7i-1]  batch      batch ID to join ('' for none)
-- ARGV[7i]    force      '1' relaunches a job that succeeded, else '0'
-- ARGV[7i+1]  queue      the asynq queue its task goes on, kept on a created
--                        record so that every later push of the job's task
--                        goes to the same queue (one task per job)
--
-- Returns one answer per job, in order: 'created', 'conflict' (another
-- payload or another account: an ID names one account's job, whose task is
-- sent with that account's key), 'in_progress' (running or retrying), or the job's state
-- ('queued', 'succeeded', 'dead_lettered').

local now = ARGV[1]
-- The batch a job joins, if it joins one: its batch when that batch is
-- open. A closed batch takes no more jobs (its total is final); the job is
-- then stored without a batch.
local batches = {} -- batch name: {key or false, closed}
local function batch_of(batch)
  local b = batches[batch]
  if not b then
    local bk = batch_key(batch)
    b = {bk or false, bk and redis.call('HGET', bk, 'closed') == '1'}
    batches[batch] = b
  end
  if b[2] then return nil, '' end
  return b[1] or nil, batch
end
local function create(jk, ak, id, sid, agent_no, payload, batch, force, queue)
  local bk
  bk, batch = batch_of(batch)
  local function join()
    if not bk then return end
    redis.call('HINCRBY', bk, 'total', 1)
    batch_move(bk, nil, 'queued')
    redis.call('RPUSH', batch_jobs(bk), id)
  end
  local state = redis.call('HGET', jk, 'state')
  if not state then
    redis.call('HSET', jk, 'id', id, 'sid', sid, 'agent_no', agent_no, 'payload', payload,
      'state', 'queued', 'attempts', 0, 'enqueued_at', now, 'updated_at', now, 'batch', batch, 'generation', 1,
      'queue', queue)
    join()
    agent_add(agent_no, id, now)
    return 'created'
  end
  local rec = redis.call('HMGET', jk, 'payload', 'sid')
  if rec[1] ~= payload or rec[2] ~= sid then return 'conflict' end
  if state == 'succeeded' and force == '1' then
    -- The last success stays readable (and restorable by Uncreate) until the
    -- relaunch records its own outcome over it; the fields set here are kept
    -- as restore_<field> for Uncreate.
    local prev = redis.call('HMGET', jk, 'attempts', 'enqueued_at', 'updated_at', 'batch', 'queue')
    redis.call('HSET', jk, 'state', 'queued', 'attempts', 0, 'enqueued_at', now, 'updated_at', now,
      'batch', batch, 'queue', queue, 'restore_ttl', redis.call('PTTL', jk))
    for i, f in ipairs({'attempts', 'enqueued_at', 'updated_at', 'batch', 'queue'}) do
      if prev[i] then redis.call('HSET', jk, 'restore_' .. f, prev[i]) end
    end
    -- The relaunch counts in its new batch: the job leaves the batch it
    -- succeeded in (unless that is the same one, where it just starts over).
    if bk and prev[4] == batch then
      batch_move(bk, 'succeeded', 'queued')
    else
      local old = batch_key(prev[4])
      if old then
        batch_move(old, 'succeeded', nil)
        redis.call('HINCRBY', old, 'total', -1)
        redis.call('HINCRBY', old, 'relaunched', 1)
      end
      join()
    end
    -- A followed success takes its launch state out of the counts while it
    -- is relaunched (Finish sets new launch fields); Uncreate puts it back.
    local ls = redis.call('HGET', jk, 'launch_state')
    redis.call('HDEL', jk, 'launch_state', 'restore_launch_state')
    if ls then
      redis.call('HSET', jk, 'restore_launch_state', ls)
      batch_launch(batch_key(prev[4]), ls, nil)
    end
    redis.call('HINCRBY', jk, 'generation', 1)
    agent_add(agent_no, id, now)
    redis.call('PERSIST', jk)
    redis.call('PERSIST', ak)
    return 'created'
  end
  if state == 'running' or state == 'retrying' then return 'in_progress' end
  return state
end
local out = {}
for i = 1, #KEYS / 2 do
  local a = 7 * i - 5
  out[i] = create(KEYS[2 * i - 1], KEYS[2 * i], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5],
    ARGV[a + 6])
end
return out
