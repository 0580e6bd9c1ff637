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
-- rfc3339 is Unix ms t as an RFC 3339 UTC time, as attempt log entries
-- give times; nil for none (0 or nil). Days to a date: H. Hinnant's
-- civil_from_days.
local function rfc3339(t)
  t = tonumber(t)
  if not t or t <= 0 then return nil end
  local ms = t % 1000
  local s = (t - ms) / 1000
  local sod = s % 86400
  local z = (s - sod) / 86400 + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, doy - math.floor((153 * mp + 2) / 5) + 1,
    math.floor(sod / 3600), math.floor(sod % 3600 / 60), sod % 60, ms)
end
-- log_success writes the attempt log of a success that has none (one at its
-- first attempt: finish_job.lua), from its record, before a relaunch
-- replaces the record's fields.
local function log_success(jk, ak)
  if redis.call('EXISTS', ak) == 1 then return end
  local a = redis.call('HMGET', jk, 'attempts', 'code', 'message', 'http_status', 'uncertain', 'started_at', 'finished_at')
  redis.call('RPUSH', ak, cjson.encode({attempt = tonumber(a[1]) or 0, outcome = 'succeeded', code = a[2] or '',
    message = a[3] or '', http_status = tonumber(a[4]) or 0, uncertain = a[5] == '1', started_at = rfc3339(a[6]),
    finished_at = rfc3339(a[7])}))
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
    redis.call('HSET', jk, 'sid', sid, 'agent_no', agent_no, 'payload', payload,
      'state', 'queued', 'attempts', 0, 'enqueued_at', now, 'updated_at', now, 'batch', batch, 'queue', queue)
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
    log_success(jk, ak)
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
    -- a record without a generation is of the first (memory: it is not written)
    redis.call('HSET', jk, 'generation', (tonumber(redis.call('HGET', jk, 'generation')) or 1) + 1)
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
