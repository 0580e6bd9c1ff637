package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/rdb"
)

// CreateResult is what a producer learns about a job ID when it asks for
// its record to be created. The values are the create script's answers.
type CreateResult string

// Create results.
const (
	Created         CreateResult = "created"       // a new record; the job must now be pushed to the queue
	Conflict        CreateResult = "conflict"      // the ID exists with a different payload or SID
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
	// Queue is the asynq queue of the job's task. A created record keeps
	// it, so that every later push of the job goes to the same queue: task
	// IDs are unique within a queue only, and a job must have one task.
	Queue string
}

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
	args := make([]rdb.NewJob, len(jobs))
	for i, j := range jobs {
		args[i] = rdb.NewJob{ID: j.ID, SID: j.SID, AgentNo: j.AgentNo, Payload: j.Payload, Batch: j.Batch, Force: j.Force, Queue: j.Queue}
	}
	vals, err := rdb.CreateJobs(ctx, s.rdb, args, now)
	if err != nil {
		return nil, err
	}
	out := make([]CreateResult, len(vals))
	for i, v := range vals {
		out[i] = CreateResult(v)
	}
	return out, nil
}

// Uncreate undoes what Create just did when the job could not be pushed to
// the queue: a new record is removed, a forced relaunch goes back to the
// success it was; either way the batch counters are put back too. A failed
// row thus leaves nothing behind.
func (s *Store) Uncreate(ctx context.Context, id string) error {
	if _, err := rdb.UncreateJob(ctx, s.rdb, id); err != nil {
		return fmt.Errorf("undo create of job %s: %w", id, err)
	}
	return nil
}

// Start marks the job running for its next attempt, unless it has already
// finished (which a redelivered task must not launch again). It returns the
// state (StateRunning: go ahead and call Kaleyra; or the final state: do not
// call again) and the attempt number. A job whose
// record is missing (deleted by hand) is recreated from j, so a task on the
// queue never runs without a record.
func (s *Store) Start(ctx context.Context, j NewJob, maxAttempts int, now time.Time) (State, int, error) {
	state, attempt, err := rdb.StartJob(ctx, s.rdb, j.StartArgs(maxAttempts, now))
	if err != nil {
		return "", 0, fmt.Errorf("start job %s: %w", j.ID, err)
	}
	return State(state), attempt, nil
}

// StartArgs is what Start passes to rdb.StartJob, for a caller that starts j
// in a script of its own (limits.Limiter.AcquireStart).
func (j NewJob) StartArgs(maxAttempts int, now time.Time) rdb.StartArgs {
	return rdb.StartArgs{ID: j.ID, SID: j.SID, AgentNo: j.AgentNo, Payload: j.Payload, Queue: j.Queue,
		MaxAttempts: maxAttempts, Now: now}
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
	// FollowAt, for a success with an AgentLaunchID, starts its launch
	// follow-up (launch state pending) with a first poll at that time; zero
	// does not follow it.
	FollowAt time.Time
}

// Finish records an attempt's outcome in one atomic step, with the job's
// batch counters. For a final outcome it also appends the results stream
// entry and, for a dead letter, indexes it. It returns the job's state afterwards; a job that had already
// finished is left as it was (and its state returned), so a late or repeated
// Finish never records a second outcome.
func (s *Store) Finish(ctx context.Context, id string, o Outcome, now time.Time) (State, error) {
	a, err := s.finishArgs(id, o, now)
	if err != nil {
		return "", err
	}
	res, err := rdb.FinishJob(ctx, s.rdb, a)
	return finishState(id, res, err)
}

// finishState reads the finish script's answer: the job's state afterwards,
// or ErrNotFound for a job without a record.
func finishState(id, res string, err error) (State, error) {
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
	rdb redis.UniversalClient
	// ctx is QueueFinish's, for running the script again when the pipeline
	// met NOSCRIPT; State has no context of its own.
	ctx context.Context
	p   *rdb.Pending[string]
}

// QueueFinish queues what Finish does on pipe, so that it shares a round trip
// with other commands (the worker's limiter release); State reads its answer
// once pipe has run.
func (s *Store) QueueFinish(ctx context.Context, pipe redis.Pipeliner, id string, o Outcome, now time.Time) (*PendingFinish, error) {
	a, err := s.finishArgs(id, o, now)
	if err != nil {
		return nil, err
	}
	return &PendingFinish{id: id, rdb: s.rdb, ctx: ctx, p: rdb.QueueFinishJob(ctx, pipe, a)}, nil
}

// State returns what Finish would have: the job's state afterwards, or the
// error. When Redis did not know the script (NOSCRIPT after a restart: it
// did not run), it runs it again alone with QueueFinish's context. An error
// means the outcome may not be recorded; the caller then calls Finish,
// which is safe to repeat.
func (p *PendingFinish) State() (State, error) {
	res, err := p.p.Result(p.ctx, p.rdb)
	return finishState(p.id, res, err)
}

// finishArgs builds the finish script's arguments.
func (s *Store) finishArgs(id string, o Outcome, now time.Time) (rdb.FinishArgs, error) {
	entry, err := o.Attempt.entry()
	if err != nil {
		return rdb.FinishArgs{}, fmt.Errorf("finish job %s: %w", id, err)
	}
	return s.finishArgsWith(id, o, now, entry), nil
}

// finishArgsWith is finishArgs with the attempt's log entry written.
func (s *Store) finishArgsWith(id string, o Outcome, now time.Time, entry []byte) rdb.FinishArgs {
	a := o.Attempt
	return rdb.FinishArgs{ID: id, Kind: string(o.Kind), Entry: entry, Code: a.Code, Message: a.Message,
		AgentLaunchID: o.AgentLaunchID, HTTPStatus: a.HTTPStatus, Uncertain: a.Uncertain, Response: o.Response,
		Now: now, NextRunAt: o.NextRunAt, Retention: s.Retention, ResultsMaxLen: s.ResultsMaxLen,
		FollowAt: o.FollowAt, StartedAt: a.StartedAt}
}

// JobQueue returns the asynq queue the job's record says its task is on;
// "" for a record written before records kept it, or none.
func (s *Store) JobQueue(ctx context.Context, id string) (string, error) {
	q, err := s.rdb.HGet(ctx, rdb.JobKey(id), "queue").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("read queue of job %s: %w", id, err)
	}
	return q, nil
}

// MoveResult is what MoveFromShared found.
type MoveResult string

// The results of MoveFromShared.
const (
	// Moved: the record names the new queue; the task is to be pushed there.
	Moved MoveResult = "moved"
	// Elsewhere: the record names another queue, where the job's task is;
	// the one on the shared queue is a stale copy.
	Elsewhere MoveResult = "elsewhere"
	// NotMoved: no record, or a finished job; the record is left as it was.
	NotMoved MoveResult = "not_moved"
)

// MoveFromShared records that a job's task moves from the shared queue
// (named shared) to the queue to, before it is pushed there, when the record
// names the shared queue and the job has not finished.
func (s *Store) MoveFromShared(ctx context.Context, id, shared, to string) (MoveResult, error) {
	res, err := rdb.MoveFromShared(ctx, s.rdb, id, shared, to)
	if err != nil {
		return "", fmt.Errorf("move job %s to queue %s: %w", id, to, err)
	}
	switch MoveResult(res) {
	case Moved, Elsewhere:
		return MoveResult(res), nil
	}
	return NotMoved, nil
}

// SetJobQueue records the queue a job's next task goes on, before it is
// pushed there: a dead letter retried after its account got a worker moves
// from the shared queue to its account's.
func (s *Store) SetJobQueue(ctx context.Context, id, queue string) error {
	if err := s.rdb.HSet(ctx, rdb.JobKey(id), "queue", queue).Err(); err != nil {
		return fmt.Errorf("record queue of job %s: %w", id, err)
	}
	return nil
}
