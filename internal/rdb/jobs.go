package rdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The store's scripts: every write that changes a job's state or a batch.
// Those that touch a batch's counters have lib/batch.lua put in front.
var (
	createJobsScript        = load("create_jobs.lua", batchLib, agentLib)
	uncreateJobScript       = load("uncreate_job.lua", batchLib, agentLib)
	startJobScript          = load("start_job.lua", batchLib)
	finishJobScript         = load("finish_job.lua", batchLib, agentLib)
	recordLaunchPollScript  = load("record_launch_poll.lua", batchLib)
	createBatchScript       = load("create_batch.lua")
	closeBatchScript        = load("close_batch.lua", batchLib)
	requeueDeadLetterScript = load("requeue_dead_letter.lua", batchLib)
	unindexDeadLetterScript = load("unindex_dead_letter.lua")
	restoreDeadLetterScript = load("restore_dead_letter.lua", batchLib)
	deleteDeadLetterScript  = load("delete_dead_letter.lua", batchLib, agentLib)
	moveFromSharedScript    = load("move_from_shared.lua")
)

// NewJob is one job's arguments to CreateJobs.
type NewJob struct {
	ID      string
	SID     string
	AgentNo string
	Payload []byte
	Batch   string // batch to join; empty for none
	Force   bool   // relaunch a job that succeeded
	Queue   string // the asynq queue of the job's task, kept on the record
}

// CreateJobs runs create_jobs.lua: it creates the jobs' records unless they
// exist, and returns each job's answer ("created", "conflict",
// "in_progress" or its state), in order.
func CreateJobs(ctx context.Context, c redis.Scripter, jobs []NewJob, now time.Time) ([]string, error) {
	keys := make([]string, 0, 2*len(jobs))
	args := make([]any, 0, 1+7*len(jobs))
	args = append(args, ms(now))
	for _, j := range jobs {
		keys = append(keys, JobKey(j.ID), AttemptsKey(j.ID))
		args = append(args, j.ID, j.SID, j.AgentNo, j.Payload, j.Batch, flag(j.Force), j.Queue)
	}
	return call(ctx, c, createJobsScript, keys, args, func(cmd *redis.Cmd) ([]string, error) {
		vals, err := cmd.StringSlice()
		if err == nil && len(vals) != len(jobs) {
			err = fmt.Errorf("%d answers for %d jobs", len(vals), len(jobs))
		}
		return vals, err
	})
}

// UncreateJob runs uncreate_job.lua: it undoes CreateJobs for a job that has
// not started, and reports whether there was anything to undo.
func UncreateJob(ctx context.Context, c redis.Scripter, id string) (bool, error) {
	return call(ctx, c, uncreateJobScript, []string{JobKey(id), AttemptsKey(id)}, []any{id}, isOne)
}

// StartArgs is start_job.lua's arguments: the job (to recreate a missing
// record), its retry budget and the time.
type StartArgs struct {
	ID          string
	SID         string
	AgentNo     string
	Payload     []byte
	Queue       string // the queue of the task running it
	MaxAttempts int
	Now         time.Time
}

// StartJob runs start_job.lua: it marks the job running for its next attempt
// unless it has finished, and returns the state ("running" or the finished
// state) and the attempt number.
func StartJob(ctx context.Context, c redis.Scripter, a StartArgs) (state string, attempt int, err error) {
	r, err := call(ctx, c, startJobScript, a.keys(), a.args(), func(cmd *redis.Cmd) (StartReply, error) {
		vals, err := slice(cmd, 2)
		if err != nil {
			return StartReply{}, err
		}
		return startReply(vals), nil
	})
	return r.State, r.Attempt, err
}

// JobRunning is the state StartJob gives a job it starts.
const JobRunning = "running"

// StartReply is start_job.lua's answer.
type StartReply struct {
	State   string // JobRunning, or the finished state
	Attempt int    // the attempt starting, or the finished job's attempt count
}

// startReply decodes start_job.lua's answer, {state, attempt}.
func startReply(vals []any) StartReply {
	s, _ := vals[0].(string)
	n, _ := vals[1].(int64)
	return StartReply{State: s, Attempt: int(n)}
}

func (a StartArgs) keys() []string { return []string{JobKey(a.ID), AttemptsKey(a.ID), DeadLetters} }

func (a StartArgs) args() []any {
	return []any{ms(a.Now), a.MaxAttempts, a.ID, a.SID, a.AgentNo, a.Payload, a.Now.UTC().Format(time.RFC3339Nano), a.Queue}
}

// FinishArgs is finish_job.lua's arguments: one attempt's outcome.
type FinishArgs struct {
	ID            string
	Kind          string // "succeeded", "retrying", "dead_lettered" or "deferred"
	Entry         []byte // the attempt log entry (JSON)
	Code          string
	Message       string
	AgentLaunchID string
	HTTPStatus    int
	Uncertain     bool
	Response      []byte // Kaleyra's answer (JSON); nil for none
	Now           time.Time
	NextRunAt     time.Time     // zero for none
	Retention     time.Duration // how long a finished job's keys are kept (whole seconds); 0 forever
	ResultsMaxLen int64         // the results stream's approximate cap; 0 never trims
	FollowAt      time.Time     // a success's first launch status poll; zero when not followed
	StartedAt     time.Time     // the call's start, kept by a success that writes no attempt log
}

func (a FinishArgs) keys() []string {
	return []string{JobKey(a.ID), AttemptsKey(a.ID), ResultsStream, DeadLetters, Outcomes}
}

func (a FinishArgs) args() []any {
	next := msOrZero(a.NextRunAt)
	return []any{a.Kind, a.Entry, a.Code, a.Message, a.AgentLaunchID, a.HTTPStatus, flag(a.Uncertain), string(a.Response),
		ms(a.Now), next, seconds(a.Retention), a.ResultsMaxLen, a.Now.UTC().Format(time.RFC3339Nano), a.ID, msOrZero(a.FollowAt), msOrZero(a.StartedAt)}
}

// FinishJob runs finish_job.lua: it records an attempt's outcome and returns
// the job's state afterwards ("missing" when it has no record).
func FinishJob(ctx context.Context, c redis.Scripter, a FinishArgs) (string, error) {
	return call(ctx, c, finishJobScript, a.keys(), a.args(), text)
}

// QueueFinishJob queues FinishJob on pipe; its Result is FinishJob's.
func QueueFinishJob(ctx context.Context, pipe redis.Pipeliner, a FinishArgs) *Pending[string] {
	return queue(ctx, pipe, finishJobScript, a.keys(), a.args(), text)
}

// PollArgs is record_launch_poll.lua's arguments: one launch status poll.
type PollArgs struct {
	ID            string
	AgentLaunchID string // the launch polled
	Polls         int    // launch_polls as read before the poll
	State         string // the state answered; "" for a failed poll
	Code          string
	Message       string
	Response      []byte // the answer (JSON); nil for none
	Now           time.Time
	NextPollAt    time.Time // zero when following ends
	Ended         string    // why following ends ("final", "expired"); "" when it does not
	ResultsMaxLen int64
}

// RecordLaunchPoll runs record_launch_poll.lua: it records a poll's answer
// and returns "changed", "recorded", "missing", "superseded", "waiting",
// "ended" or "stale" (see the script).
func RecordLaunchPoll(ctx context.Context, c redis.Scripter, a PollArgs) (string, error) {
	args := []any{a.AgentLaunchID, a.Polls, a.State, a.Code, a.Message, string(a.Response), ms(a.Now),
		msOrZero(a.NextPollAt), a.Ended, a.ResultsMaxLen, a.Now.UTC().Format(time.RFC3339Nano), a.ID}
	return call(ctx, c, recordLaunchPollScript, []string{JobKey(a.ID), ResultsStream}, args, text)
}

// CreateBatch runs create_batch.lua: it makes an empty, open batch, and
// reports false when the ID is taken.
func CreateBatch(ctx context.Context, c redis.Scripter, id, name string, now time.Time) (bool, error) {
	return call(ctx, c, createBatchScript, []string{BatchKey(id), BatchIndex}, []any{id, name, ms(now)}, isOne)
}

// CloseBatch runs close_batch.lua: it closes the batch, which is finished
// once every job has its outcome and then kept for retention (whole
// seconds; 0 forever). It reports false when the batch does not exist.
func CloseBatch(ctx context.Context, c redis.Scripter, id string, now time.Time, retention time.Duration) (bool, error) {
	return call(ctx, c, closeBatchScript, []string{BatchKey(id)}, []any{ms(now), seconds(retention)}, isOne)
}

// RequeueReply is requeue_dead_letter.lua's answer.
type RequeueReply struct {
	// Result is "requeued", "resume", "uncertain", "missing", or the state
	// of a job that is no dead letter.
	Result string
	// HasJob is set when the job's fields below were returned (requeued,
	// resume).
	HasJob  bool
	Payload []byte
	SID     string
	AgentNo string
}

// RequeueDeadLetter runs requeue_dead_letter.lua: it marks a dead letter
// queued with a fresh budget, keeping it in the dead-letter index.
func RequeueDeadLetter(ctx context.Context, c redis.Scripter, id string, includeUncertain bool, now time.Time) (RequeueReply, error) {
	keys := []string{JobKey(id), DeadLetters}
	return call(ctx, c, requeueDeadLetterScript, keys, []any{flag(includeUncertain), ms(now), id}, func(cmd *redis.Cmd) (RequeueReply, error) {
		vals, err := slice(cmd, 1)
		if err != nil {
			return RequeueReply{}, err
		}
		str := func(i int) string { v, _ := vals[i].(string); return v }
		r := RequeueReply{Result: str(0)}
		if len(vals) >= 4 {
			r.HasJob, r.Payload, r.SID, r.AgentNo = true, []byte(str(1)), str(2), str(3)
		}
		return r, nil
	})
}

// UnindexDeadLetter runs unindex_dead_letter.lua: it removes a requeued job
// from the dead-letter index unless it is dead-lettered again, and reports
// whether it did.
func UnindexDeadLetter(ctx context.Context, c redis.Scripter, id string) (bool, error) {
	return call(ctx, c, unindexDeadLetterScript, []string{JobKey(id), DeadLetters}, []any{id}, isOne)
}

// RestoreDeadLetter runs restore_dead_letter.lua: it puts a requeued job
// back to dead-lettered, and reports whether it did. A batch it finishes
// again is kept for retention (whole seconds; 0 forever).
func RestoreDeadLetter(ctx context.Context, c redis.Scripter, id string, now time.Time, retention time.Duration) (bool, error) {
	keys := []string{JobKey(id), DeadLetters}
	return call(ctx, c, restoreDeadLetterScript, keys, []any{id, ms(now), seconds(retention)}, isOne)
}

// DeleteDeadLetter runs delete_dead_letter.lua: it drops a dead letter and
// returns "deleted", "missing", or the state of a job that is no dead letter.
func DeleteDeadLetter(ctx context.Context, c redis.Scripter, id string) (string, error) {
	return call(ctx, c, deleteDeadLetterScript, []string{JobKey(id), AttemptsKey(id), DeadLetters}, []any{id}, text)
}

// MoveFromShared runs move_from_shared.lua: it points job id's record at
// the queue to when it names the shared queue (or none) and the job has not
// finished, and returns "moved", "elsewhere" (another queue), "missing" or
// the finished state.
func MoveFromShared(ctx context.Context, c redis.Scripter, id, shared, to string) (string, error) {
	return call(ctx, c, moveFromSharedScript, []string{JobKey(id)}, []any{shared, to}, text)
}

// ms is t as the scripts take times: Unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

// msOrZero is ms(t), or 0 for the zero time (the scripts' "none").
func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ms(t)
}

// seconds is d as the scripts take TTLs: whole seconds.
func seconds(d time.Duration) int64 { return int64(d / time.Second) }

// flag is b as the scripts take flags: "1" or "0".
func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func text(cmd *redis.Cmd) (string, error) { return cmd.Text() }

func isOne(cmd *redis.Cmd) (bool, error) {
	n, err := cmd.Int64()
	return n == 1, err
}

// slice is cmd's array answer, which must hold at least n values.
func slice(cmd *redis.Cmd, n int) ([]any, error) {
	vals, err := cmd.Slice()
	if err == nil && len(vals) < n {
		err = fmt.Errorf("%d values, want %d or more", len(vals), n)
	}
	return vals, err
}
