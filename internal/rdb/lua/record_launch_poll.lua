-- record_launch_poll: records one launch status poll of a followed success:
-- its answer, when to poll next (or that following ends), and, when the
-- launch state changed, the new state with the job's batch counters and a
-- results stream entry (outcome 'launch_state'). A poll is recorded only
-- over the record its caller read: the same launch, still followed, and
-- no poll recorded since (so that a poll repeated by a crashed worker's
-- redelivered task is not counted twice). Needs lib/batch.lua.
--
-- KEYS[1]   job              the job's record (rdb.JobKey)
-- KEYS[2]   results          the results stream (rdb.ResultsStream)
-- ARGV[1]   agent_launch_id  the launch polled
-- ARGV[2]   polls            launch_polls as read before the poll
-- ARGV[3]   state            the launch state answered; '' for a failed poll
-- ARGV[4]   code             the answer's code, or the failure's pseudo-code
-- ARGV[5]   message          the answer's message or the failure's cause
-- ARGV[6]   response         the answer's body (JSON; '' for none)
-- ARGV[7]   now              the time, Unix ms
-- ARGV[8]   next_poll_at     Unix ms of the next poll; 0 when following ends
-- ARGV[9]   ended            why following ends: 'final', 'expired'; '' when not
-- ARGV[10]  maxlen           the results stream's approximate cap; 0 never trims
-- ARGV[11]  now_rfc3339      the time, RFC 3339, for the stream entry
-- ARGV[12]  id               job ID
--
-- Returns 'changed' (recorded, with a new launch state), 'recorded'
-- (recorded, same state), 'missing' (no record), 'superseded' (the job
-- was relaunched since: another launch ID), 'waiting' (a relaunch is
-- queued or running), 'ended' (following has ended) or 'stale' (another
-- poll was recorded since ARGV[2] was read).

local h = redis.call('HMGET', KEYS[1], 'state', 'agent_launch_id', 'launch_state', 'launch_polls', 'batch',
  'agent_no', 'attempts', 'launch_next_poll_at', 'sid')
if not h[1] then return 'missing' end
if h[2] ~= ARGV[1] then return 'superseded' end
if h[1] ~= 'succeeded' or not h[3] then return 'waiting' end
if not h[8] then return 'ended' end
if (h[4] or '0') ~= ARGV[2] then return 'stale' end
redis.call('HINCRBY', KEYS[1], 'launch_polls', 1)
local failed = '0'
if ARGV[3] == '' then failed = '1' end
redis.call('HSET', KEYS[1], 'launch_polled_at', ARGV[7], 'launch_status_code', ARGV[4],
  'launch_status_message', ARGV[5], 'launch_status_response', ARGV[6], 'launch_poll_failed', failed)
if tonumber(ARGV[8]) > 0 then
  redis.call('HSET', KEYS[1], 'launch_next_poll_at', ARGV[8])
else
  redis.call('HDEL', KEYS[1], 'launch_next_poll_at')
  redis.call('HSET', KEYS[1], 'launch_follow_ended', ARGV[9])
end
local state = ARGV[3]
if state == '' or state == h[3] then return 'recorded' end
redis.call('HSET', KEYS[1], 'launch_state', state, 'launch_state_at', ARGV[7])
batch_launch(batch_key(h[5]), h[3], state)
local x = {'XADD', KEYS[2]}
if tonumber(ARGV[10]) > 0 then
  table.insert(x, 'MAXLEN'); table.insert(x, '~'); table.insert(x, ARGV[10])
end
for _, v in ipairs({'*', 'job_id', ARGV[12], 'sid', h[9] or '', 'agent_no', h[6] or '', 'outcome', 'launch_state', 'code', ARGV[4],
    'message', ARGV[5], 'agent_launch_id', ARGV[1], 'attempts', h[7] or '0', 'finished_at', ARGV[11],
    'uncertain', '0', 'batch_id', h[5] or '', 'launch_state', state, 'previous_launch_state', h[3],
    'response', ARGV[6]}) do
  table.insert(x, v)
end
redis.call(unpack(x))
return 'changed'
