-- finish_job: records an attempt's outcome in one atomic step, with the
-- job's batch counters; a final outcome also appends the results stream
-- entry and counts it, and a dead letter is indexed. A success to follow
-- starts in launch state 'pending' (the launch_* fields; record_launch_poll
-- changes them). A job that has already
-- finished is left as it was; a success that expires settles its agent's
-- index (lib/agent.lua). Needs lib/batch.lua and lib/agent.lua.
--
-- A success keeps less than a dead letter, since retained successes are
-- most of Redis's memory (BENCHMARKS.md): its record keeps no 'response'
-- (Kaleyra's answer is on its results stream entry) and no 'max_attempts'
-- (it has no attempts left to count), and a success at the
-- job's first attempt, whose log would hold that one entry, writes no log:
-- its record's started_at is then the call's start, and the store reads
-- the attempt from the record (store.recordWithHistory).
--
-- KEYS[1]   job              the job's record (rdb.JobKey)
-- KEYS[2]   attempts         the job's attempt log (rdb.AttemptsKey)
-- KEYS[3]   results          the results stream (rdb.ResultsStream)
-- KEYS[4]   dlq              the dead-letter index (rdb.DeadLetters)
-- KEYS[5]   outcomes         the outcome counters (rdb.Outcomes)
-- ARGV[1]   kind             'succeeded', 'retrying', 'dead_lettered' or 'deferred'
-- ARGV[2]   entry            the attempt log entry (JSON)
-- ARGV[3]   code             the answer's code
-- ARGV[4]   message          the answer's message
-- ARGV[5]   agent_launch_id  Kaleyra's ID of the launch
-- ARGV[6]   http_status      the answer's HTTP status
-- ARGV[7]   uncertain        '1' when the agent may have been launched, else '0'
-- ARGV[8]   response         Kaleyra's answer (JSON; '' for none)
-- ARGV[9]   now              the time, Unix ms
-- ARGV[10]  next_run_at      Unix ms of the next run (retrying, deferred); 0 for none
-- ARGV[11]  ttl              seconds a finished job's keys are kept; 0 forever
-- ARGV[12]  maxlen           the results stream's approximate cap; 0 never trims
-- ARGV[13]  now_rfc3339      the time, RFC 3339, for the stream entry
-- ARGV[14]  id               job ID
-- ARGV[15]  follow_at        Unix ms of the first launch status poll of a
--                            success to follow; 0 when it is not followed
-- ARGV[16]  started_at       Unix ms of the call's start; 0 for unknown
--
-- Returns the job's state afterwards ('queued' for deferred, 'retrying',
-- 'succeeded', 'dead_lettered'), or 'missing' when it has no record.

-- one read of the fields the script needs; it writes none of them before use
local h = redis.call('HMGET', KEYS[1], 'state', 'batch', 'agent_no', 'attempts', 'sid', 'generation')
local state = h[1]
if not state then return 'missing' end
if state == 'succeeded' or state == 'dead_lettered' then return state end
local bk = batch_key(h[2])
local kind = ARGV[1]
local logged = kind ~= 'succeeded' or redis.call('EXISTS', KEYS[2]) == 1
if logged then redis.call('RPUSH', KEYS[2], ARGV[2]) end
if kind == 'deferred' then
  redis.call('HINCRBY', KEYS[1], 'attempts', '-1')
  redis.call('HSET', KEYS[1], 'state', 'queued', 'next_run_at', ARGV[10], 'updated_at', ARGV[9])
  batch_move(bk, state, 'queued')
  return 'queued'
end
if kind == 'retrying' then
  redis.call('HSET', KEYS[1], 'code', ARGV[3], 'message', ARGV[4], 'http_status', ARGV[6], 'updated_at', ARGV[9],
    'state', 'retrying', 'next_run_at', ARGV[10])
  batch_move(bk, state, 'retrying')
  return 'retrying'
end
batch_move(bk, state, kind)
if kind == 'dead_lettered' then batch_code(bk, ARGV[3], '1') end
batch_settle(bk, ARGV[9], ARGV[11])
-- A finished record keeps no updated_at (its finished_at is that time) and
-- no uncertain of '0', which store.recordFrom reads back as they were: both
-- are bytes of every retained record.
local set = {'HSET', KEYS[1], 'code', ARGV[3], 'message', ARGV[4], 'http_status', ARGV[6],
  'state', kind, 'agent_launch_id', ARGV[5], 'finished_at', ARGV[9]}
local del = {'HDEL', KEYS[1], 'updated_at', 'next_run_at'}
if ARGV[7] == '1' then
  table.insert(set, 'uncertain'); table.insert(set, '1')
end
-- A relaunch's outcome replaces the launch state of the success before it,
-- and a requeued dead letter's its uncertain mark and answer. A record
-- without a generation (never relaunched or requeued: create_jobs.lua) has
-- none of these fields, and each field to delete costs Redis a scan of the
-- record; one with any generation, even '1' (start_job.lua), may have them.
if h[6] then
  for _, f in ipairs({'restore_launch_state', 'launch_state', 'launch_state_at', 'launch_followed_at', 'launch_polls',
      'launch_next_poll_at', 'launch_polled_at', 'launch_follow_ended', 'launch_status_code', 'launch_status_message',
      'launch_status_response', 'launch_poll_failed'}) do
    table.insert(del, f)
  end
  if ARGV[7] ~= '1' then table.insert(del, 'uncertain') end
  if kind == 'succeeded' then table.insert(del, 'response') end
end
if kind ~= 'succeeded' then
  table.insert(set, 'response'); table.insert(set, ARGV[8])
else
  table.insert(del, 'max_attempts')
  if not logged and ARGV[16] ~= '0' then
    table.insert(set, 'started_at'); table.insert(set, ARGV[16])
  end
end
redis.call(unpack(set))
redis.call(unpack(del))
local launch_state = ''
if kind == 'succeeded' and tonumber(ARGV[15]) > 0 and ARGV[5] ~= '' then
  launch_state = 'pending'
  redis.call('HSET', KEYS[1], 'launch_state', 'pending', 'launch_state_at', ARGV[9], 'launch_followed_at', ARGV[9],
    'launch_polls', 0, 'launch_next_poll_at', ARGV[15])
  batch_launch(bk, nil, 'pending')
end
h = {h[3], h[4], h[2], h[5]} -- agent_no, attempts, batch, sid for the stream entry
local x = {'XADD', KEYS[3]}
if tonumber(ARGV[12]) > 0 then
  table.insert(x, 'MAXLEN'); table.insert(x, '~'); table.insert(x, ARGV[12])
end
for _, v in ipairs({'*', 'job_id', ARGV[14], 'sid', h[4] or '', 'agent_no', h[1] or '', 'outcome', kind, 'code', ARGV[3],
    'message', ARGV[4], 'agent_launch_id', ARGV[5], 'attempts', h[2] or '0', 'finished_at', ARGV[13],
    'uncertain', ARGV[7], 'batch_id', h[3] or '', 'launch_state', launch_state, 'response', ARGV[8]}) do
  table.insert(x, v)
end
redis.call(unpack(x))
redis.call('HINCRBY', KEYS[5], kind .. '|' .. ARGV[3], '1')
if kind == 'dead_lettered' then
  redis.call('ZADD', KEYS[4], ARGV[9], ARGV[14])
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
elseif tonumber(ARGV[11]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[11])
  if logged then redis.call('EXPIRE', KEYS[2], ARGV[11]) end
  agent_settle(h[1], ARGV[14], ARGV[11] * 1000)
end
return kind
