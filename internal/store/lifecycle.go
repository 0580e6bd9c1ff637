package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// CreateResult is what a producer learns about a job ID when it asks for
// its record to be created. The values are the create script's answers.
type CreateResult string

// Create results.
const (
	Created         CreateResult = "created"       // a new record; the job must now be pushed to the queue
	Conflict        CreateResult = "conflict"      // the ID exists with a different payload
	AlreadyLaunched CreateResult = "succeeded"     // finished with success; not launched again without force
	DeadLettered    CreateResult = "dead_lettered" // waiting in the dead-letter store for `dlq retry`
	Pending         CreateResult = "queued"        // queued: the caller should make sure the task is on the queue
	InProgress      CreateResult = "in_progress"   // running or retrying
)

// NewJob is what a producer knows about a job when it creates its record.
type NewJob struct {
	ID      string
	SID     string
	AgentNo string
	Payload []byte // canonical request body
	Batch   string
	// Force relaunches a job that already succeeded.
	Force bool
}

// createScript creates the records of #KEYS/2 jobs: KEYS holds each job's
// record and attempt log; ARGV[1] is the time, then six per job: ID, SID,
// agent number, payload, batch and force. It returns each job's Create
// result, in order. A chunk of jobs in one script costs Redis far less than
// a script each (BENCHMARKS.md).
var createScript = withBatch(`
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
local function create(jk, ak, id, sid, agent_no, payload, batch, force)
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
      'state', 'queued', 'attempts', 0, 'enqueued_at', now, 'updated_at', now, 'batch', batch, 'generation', 1)
    join()
    return 'created'
  end
  if redis.call('HGET', jk, 'payload') ~= payload then return 'conflict' end
  if state == 'succeeded' and force == '1' then
    -- The last success stays readable (and restorable by Uncreate) until the
    -- relaunch records its own outcome over it; the fields set here are kept
    -- as restore_<field> for Uncreate.
    local prev = redis.call('HMGET', jk, 'attempts', 'enqueued_at', 'updated_at', 'batch')
    redis.call('HSET', jk, 'state', 'queued', 'attempts', 0, 'enqueued_at', now, 'updated_at', now,
      'batch', batch, 'restore_ttl', redis.call('PTTL', jk))
    for i, f in ipairs({'attempts', 'enqueued_at', 'updated_at', 'batch'}) do
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
    redis.call('HINCRBY', jk, 'generation', 1)
    redis.call('PERSIST', jk)
    redis.call('PERSIST', ak)
    return 'created'
  end
  if state == 'running' or state == 'retrying' then return 'in_progress' end
  return state
end
local out = {}
for i = 1, #KEYS / 2 do
  local a = 6 * i - 4
  out[i] = create(KEYS[2 * i - 1], KEYS[2 * i], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5])
end
return out
`)

// Create makes the job's record unless one exists, and says what it found:
// Created, Conflict, AlreadyLaunched, DeadLettered, Pending or InProgress.
// Only a Created job joins j.Batch (when that is an open batch made by
// CreateBatch): a job ID already known stays where it is.
func (s *Store) Create(ctx context.Context, j NewJob, now time.Time) (CreateResult, error) {
	res, err := s.create(ctx, []NewJob{j}, now)
	if err != nil {
		return "", fmt.Errorf("create job %s: %w", j.ID, err)
	}
	return res[0], nil
}

// CreateMany is Create for many jobs in one round trip (one script), for
// bulk enqueue: it returns each job's Create result, in order, the same as
// Create job by job. An error means the round trip failed as a whole: any
// of the jobs may or may not have been created (a Create that ran leaves a
// queued record, which the next Create of the job reports as Pending).
func (s *Store) CreateMany(ctx context.Context, jobs []NewJob, now time.Time) ([]CreateResult, error) {
	if len(jobs) == 0 {
		return nil, nil
	}
	res, err := s.create(ctx, jobs, now)
	if err != nil {
		return nil, fmt.Errorf("create %d jobs: %w", len(jobs), err)
	}
	return res, nil
}

func (s *Store) create(ctx context.Context, jobs []NewJob, now time.Time) ([]CreateResult, error) {
	keys := make([]string, 0, 2*len(jobs))
	args := make([]any, 0, 1+6*len(jobs))
	args = append(args, ms(now))
	for _, j := range jobs {
		keys = append(keys, jobKey(j.ID), attemptsKey(j.ID))
		args = append(args, j.ID, j.SID, j.AgentNo, j.Payload, j.Batch, boolArg(j.Force))
	}
	vals, err := createScript.Run(ctx, s.rdb, keys, args...).StringSlice()
	if err != nil {
		return nil, err
	}
	if len(vals) != len(jobs) {
		return nil, fmt.Errorf("%d answers for %d jobs", len(vals), len(jobs))
	}
	out := make([]CreateResult, len(vals))
	for i, v := range vals {
		out[i] = CreateResult(v)
	}
	return out, nil
}

var uncreateScript = withBatch(`
local h = redis.call('HMGET', KEYS[1], 'state', 'attempts', 'generation', 'restore_ttl', 'batch', 'restore_batch')
if h[1] ~= 'queued' or h[2] ~= '0' then return 0 end
local bk = batch_key(h[5])
local function leave()
  if not bk then return end
  redis.call('HINCRBY', bk, 'total', -1)
  batch_move(bk, 'queued', nil)
  redis.call('LREM', batch_jobs(bk), -1, ARGV[1])
end
if h[3] == '1' then
  redis.call('DEL', KEYS[1], KEYS[2])
  leave()
  return 1
end
if h[4] then -- a forced relaunch: back to the success it was, in its batch
  redis.call('HSET', KEYS[1], 'state', 'succeeded')
  for _, f in ipairs({'attempts', 'enqueued_at', 'updated_at', 'batch'}) do
    local v = redis.call('HGET', KEYS[1], 'restore_' .. f)
    if v then redis.call('HSET', KEYS[1], f, v) else redis.call('HDEL', KEYS[1], f) end
  end
  redis.call('HDEL', KEYS[1], 'restore_ttl', 'restore_attempts', 'restore_enqueued_at', 'restore_updated_at', 'restore_batch')
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
  end
  return 1
end
return 0
`)

// Uncreate undoes what Create just did when the job could not be pushed to
// the queue: a new record is removed, a forced relaunch goes back to the
// success it was; either way the batch counters are put back too. A failed
// row thus leaves nothing behind.
func (s *Store) Uncreate(ctx context.Context, id string) error {
	if err := uncreateScript.Run(ctx, s.rdb, []string{jobKey(id), attemptsKey(id)}, id).Err(); err != nil {
		return fmt.Errorf("undo create of job %s: %w", id, err)
	}
	return nil
}

var startScript = withBatch(`
-- one read of the fields the script needs; it writes none of them before use
local h = redis.call('HMGET', KEYS[1], 'state', 'batch', 'attempts')
local state, batch, attempts = h[1], h[2], h[3]
if not state then
  redis.call('HSET', KEYS[1], 'id', ARGV[3], 'sid', ARGV[4], 'agent_no', ARGV[5], 'payload', ARGV[6],
    'attempts', 0, 'enqueued_at', ARGV[1], 'generation', 1)
  state, batch, attempts = 'queued', false, '0'
end
if state == 'succeeded' or state == 'dead_lettered' then
  return {state, tonumber(attempts)}
end
local bk = batch_key(batch)
if state == 'running' then
  -- redelivered after its worker died: still running, as its batch counts it
  local n = attempts
  redis.call('RPUSH', KEYS[2], '{"attempt":' .. n .. ',"outcome":"lost","message":"the worker stopped during this call; no answer was recorded","finished_at":"' .. ARGV[7] .. '"}')
else
  batch_move(bk, state, 'running')
end
if bk then redis.call('HSETNX', bk, 'started_at', ARGV[1]) end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'state', 'running', 'started_at', ARGV[1], 'updated_at', ARGV[1], 'max_attempts', ARGV[2])
redis.call('HDEL', KEYS[1], 'next_run_at', 'restore_ttl', 'restore_attempts', 'restore_enqueued_at', 'restore_updated_at', 'restore_batch')
-- a dlq retry that stopped before unindexing: the job runs, so it is no dead letter
redis.call('ZREM', KEYS[3], ARGV[3])
return {'running', n}
`)

// Start marks the job running for its next attempt, unless it has already
// finished (which a redelivered task must not launch again). It returns the
// state (StateRunning: go ahead and call Kaleyra; or the final state: do not
// call again) and the attempt number. A job whose
// record is missing (deleted by hand) is recreated from j, so a task on the
// queue never runs without a record.
func (s *Store) Start(ctx context.Context, j NewJob, maxAttempts int, now time.Time) (state State, attempt int, err error) {
	vals, err := startScript.Run(ctx, s.rdb, []string{jobKey(j.ID), attemptsKey(j.ID), deadLetters},
		ms(now), maxAttempts, j.ID, j.SID, j.AgentNo, j.Payload, now.UTC().Format(time.RFC3339Nano)).Slice()
	if err != nil {
		return "", 0, fmt.Errorf("start job %s: %w", j.ID, err)
	}
	st, _ := vals[0].(string)
	n, _ := vals[1].(int64)
	return State(st), int(n), nil
}

// FinishKind is what the worker decided after an attempt.
type FinishKind string

// Finish kinds. The final ones carry the name of the state they lead to.
const (
	FinishSucceeded    FinishKind = "succeeded"     // success: record, results stream
	FinishRetrying     FinishKind = "retrying"      // will run again at NextRunAt
	FinishDeadLettered FinishKind = "dead_lettered" // final failure: record, dead-letter index, results stream
	FinishDeferred     FinishKind = "deferred"      // pushed back by Kaleyra (429): runs again, the attempt not counted
)

// State is the state a finish of this kind leaves the job in.
func (k FinishKind) State() State {
	if k == FinishDeferred {
		return StateQueued
	}
	return State(k)
}

// Outcome is the worker's account of one attempt.
type Outcome struct {
	Kind          FinishKind
	Attempt       Attempt
	AgentLaunchID string
	Response      json.RawMessage
	NextRunAt     time.Time
}

var finishScript = withBatch(`
-- one read of the fields the script needs; it writes none of them before use
local h = redis.call('HMGET', KEYS[1], 'state', 'batch', 'agent_no', 'attempts')
local state = h[1]
if not state then return 'missing' end
if state == 'succeeded' or state == 'dead_lettered' then return state end
local bk = batch_key(h[2])
redis.call('RPUSH', KEYS[2], ARGV[2])
local kind = ARGV[1]
if kind == 'deferred' then
  redis.call('HINCRBY', KEYS[1], 'attempts', -1)
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
if kind == 'dead_lettered' then batch_code(bk, ARGV[3], 1) end
batch_settle(bk, ARGV[9], ARGV[11])
redis.call('HSET', KEYS[1], 'code', ARGV[3], 'message', ARGV[4], 'http_status', ARGV[6], 'updated_at', ARGV[9],
  'state', kind, 'agent_launch_id', ARGV[5], 'uncertain', ARGV[7], 'response', ARGV[8], 'finished_at', ARGV[9])
redis.call('HDEL', KEYS[1], 'next_run_at')
h = {h[3], h[4], h[2]} -- agent_no, attempts, batch for the stream entry
local x = {'XADD', KEYS[3]}
if tonumber(ARGV[12]) > 0 then
  table.insert(x, 'MAXLEN'); table.insert(x, '~'); table.insert(x, ARGV[12])
end
for _, v in ipairs({'*', 'job_id', ARGV[14], 'agent_no', h[1] or '', 'outcome', kind, 'code', ARGV[3],
    'message', ARGV[4], 'agent_launch_id', ARGV[5], 'attempts', h[2] or '0', 'finished_at', ARGV[13],
    'uncertain', ARGV[7], 'batch_id', h[3] or '', 'response', ARGV[8]}) do
  table.insert(x, v)
end
redis.call(unpack(x))
redis.call('HINCRBY', KEYS[5], kind .. '|' .. ARGV[3], 1)
if kind == 'dead_lettered' then
  redis.call('ZADD', KEYS[4], ARGV[9], ARGV[14])
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
elseif tonumber(ARGV[11]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[11])
  redis.call('EXPIRE', KEYS[2], ARGV[11])
end
return kind
`)

// Finish records an attempt's outcome in one atomic step, with the job's
// batch counters. For a final outcome it also appends the results stream
// entry and, for a dead letter, indexes it. It returns the job's state afterwards; a job that had already
// finished is left as it was (and its state returned), so a late or repeated
// Finish never records a second outcome.
func (s *Store) Finish(ctx context.Context, id string, o Outcome, now time.Time) (State, error) {
	keys, args, err := s.finishArgs(id, o, now)
	if err != nil {
		return "", err
	}
	return finishState(id, finishScript.Run(ctx, s.rdb, keys, args...))
}

// finishState reads the finish script's answer: the job's state afterwards,
// or ErrNotFound for a job without a record.
func finishState(id string, cmd *redis.Cmd) (State, error) {
	res, err := cmd.Text()
	switch {
	case err != nil:
		return "", fmt.Errorf("finish job %s: %w", id, err)
	case res == "missing":
		return "", fmt.Errorf("finish job %s: %w", id, ErrNotFound)
	}
	return State(res), nil
}

// PendingFinish is a Finish queued on a pipeline by QueueFinish.
type PendingFinish struct {
	id  string
	cmd *redis.Cmd
}

// QueueFinish queues what Finish does on pipe, so that it shares a round trip
// with other commands (the worker's limiter release); State reads its answer
// once pipe has run.
func (s *Store) QueueFinish(ctx context.Context, pipe redis.Pipeliner, id string, o Outcome, now time.Time) (*PendingFinish, error) {
	keys, args, err := s.finishArgs(id, o, now)
	if err != nil {
		return nil, err
	}
	return &PendingFinish{id: id, cmd: finishScript.EvalSha(ctx, pipe, keys, args...)}, nil
}

// State returns what Finish would have: the job's state afterwards, or the
// error. An error means the outcome may not be recorded (NOSCRIPT after a
// Redis restart: it was not); the caller then calls Finish, which is safe to
// repeat.
func (p *PendingFinish) State() (State, error) { return finishState(p.id, p.cmd) }

// finishArgs builds the finish script's keys and arguments.
func (s *Store) finishArgs(id string, o Outcome, now time.Time) ([]string, []any, error) {
	entry, err := json.Marshal(o.Attempt)
	if err != nil {
		return nil, nil, fmt.Errorf("finish job %s: %w", id, err)
	}
	var next int64
	if !o.NextRunAt.IsZero() {
		next = ms(o.NextRunAt)
	}
	a := o.Attempt
	keys := []string{jobKey(id), attemptsKey(id), ResultsStream, deadLetters, outcomes}
	return keys, []any{string(o.Kind), entry, a.Code, a.Message, o.AgentLaunchID, a.HTTPStatus, boolArg(a.Uncertain), string(o.Response),
		ms(now), next, int64(s.Retention / time.Second), s.ResultsMaxLen, now.UTC().Format(time.RFC3339Nano), id}, nil
}
