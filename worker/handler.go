package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/kaleyra"
	"github.com/rcslaunch/rcslaunch/internal/limits"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/internal/store"
)

// Pseudo-codes for jobs that fail before any call to Kaleyra.
const (
	codeInvalidJob     = "INVALID_JOB"     // the task's job does not validate
	codeUnknownAccount = "UNKNOWN_ACCOUNT" // no worker serves the job's SID
)

// laterError asks asynq to run the task again at a time of ours. It is not a
// failure to asynq: the retry budget is ours and lives in the job record.
type laterError struct {
	at     time.Time
	reason string
}

func (e *laterError) Error() string {
	return fmt.Sprintf("%s; next try at %s", e.reason, e.at.UTC().Format(time.RFC3339))
}

// runAt is when a task delayed by d from now runs again. asynq keeps retry
// times in whole seconds (rounding down), so the time is rounded up to the
// next second: a retry may then come up to a second late, never early.
func runAt(now time.Time, d time.Duration) time.Time {
	t := now.Add(d)
	if r := t.Truncate(time.Second); r.Before(t) {
		return r.Add(time.Second)
	}
	return t
}

// retryDelay is asynq's RetryDelayFunc: our own time when the handler chose
// one; a second for a task whose lease expired (its worker died, and asynq's
// recoverer found it 30 to 90 s late, or lost Redis); else a short capped
// backoff for infrastructure errors (Redis down). n counts every hand-back
// to the queue, the limiter's too, so it does not say how late a task is.
func retryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var later *laterError
	if errors.As(err, &later) {
		return max(time.Until(later.at), 0)
	}
	if errors.Is(err, asynq.ErrLeaseExpired) {
		n = 0
	}
	return min(time.Second<<min(n, 6), time.Minute)
}

func isFailure(err error) bool {
	var later *laterError
	return !errors.As(err, &later)
}

// process is the asynq handler for one launch task.
func (w *Worker) process(ctx context.Context, task *asynq.Task) error {
	p, err := queue.DecodePayload(task.Payload())
	if err != nil || p.Job.ID == "" {
		// Not a task any producer of ours writes; asynq archives it for a look.
		w.log.Error().Str("task_type", task.Type()).Msg("undecodable launch task; archived")
		return fmt.Errorf("decode launch task: %v: %w", err, asynq.SkipRetry)
	}
	job := p.Job
	log := w.log.With().Str("job_id", job.ID).Str("sid", p.SID).Str("agent_no", job.Launch.AgentNo).Logger()
	qname, _ := asynq.GetQueueName(ctx)
	rec := store.NewJob{ID: job.ID, SID: p.SID, AgentNo: job.Launch.AgentNo, Payload: job.Body(), Queue: qname}
	acct := w.account(p.SID)
	if qname == queue.Name {
		if done, err := w.fromShared(ctx, log, p, rec, acct != nil); done || err != nil {
			return err
		}
	}
	if acct == nil {
		return w.unknownAccount(ctx, log, rec)
	}

	// The job starts (its record says running, attempt n) in the round
	// trip that grants its launch slot.
	slot, started, err := w.acquire(ctx, log, acct, &rec, acct.RetryMax+1)
	if err != nil {
		return err
	}
	state, attempt := store.State(started.State), started.Attempt
	log = log.With().Int("attempt", attempt).Logger()
	if state != store.StateRunning {
		w.release(log, slot, limits.Unused)
		return w.finished(ctx, log, job.ID, state)
	}

	var out kaleyra.Outcome
	if err := job.Validate(); err != nil {
		out = kaleyra.Outcome{Class: kaleyra.Terminal, Code: codeInvalidJob, Message: err.Error()}
	} else {
		// The call is not tied to ctx: once sent, it runs to its own timeout
		// and its answer is recorded, even while the worker shuts down.
		w.metrics.InFlight.Inc()
		out = acct.client.Launch(context.WithoutCancel(ctx), rec.Payload)
		w.metrics.InFlight.Dec()
		w.metrics.CallDuration.WithLabelValues(out.Class.String()).Observe(out.Duration.Seconds())
		w.metrics.Calls.WithLabelValues(w.metrics.SID(acct.SID), out.Class.String(), out.Code).Inc()
	}
	return w.record(log, slot, rec, attempt, acct.RetryMax, out)
}

// finished ends the task of a job found finished when it was to start.
func (w *Worker) finished(ctx context.Context, log zerolog.Logger, id string, state store.State) error {
	log.Info().Str("state", string(state)).Msg("job already finished; not calling Kaleyra again")
	if state == store.StateSucceeded {
		// The task of a success is acknowledged only once its follow-up
		// task exists: a worker may have died between the two.
		return w.ensureFollow(ctx, log, id)
	}
	return nil
}

// fromShared handles a task on the shared queue, where producers put a job
// while no live worker serves its account. Once a live worker serves it,
// the job moves to its account's own queue, at the priority it was enqueued
// with: the shared queue is one line for all accounts, where one account's
// backlog would hold up every other's jobs and priorities do not apply.
// Without a live worker the job is dead-lettered. It reports false when the
// task is to be handled as on any other queue: its record is missing or
// finished (served means this worker serves the account).
func (w *Worker) fromShared(ctx context.Context, log zerolog.Logger, p queue.Payload, rec store.NewJob, served bool) (bool, error) {
	if !served {
		live, err := w.fleet.ServedNow(ctx, p.SID)
		if err != nil {
			return true, err
		}
		if !live {
			return true, w.noAccount(ctx, log, rec)
		}
	}
	prio, err := queue.ParsePriority(string(p.Priority))
	if err != nil {
		prio = queue.PriorityDefault
	}
	p.Priority = prio
	to := queue.AccountQueue(p.SID, prio)
	// The record first: a push that follows it, or a repair by a producer
	// in between, goes to the queue the record names.
	res, err := w.store.MoveFromShared(ctx, p.Job.ID, queue.Name, to)
	switch {
	case err != nil:
		return true, err
	case res == store.Elsewhere:
		// The job's task is on its own queue: running this stale copy (a move
		// whose acknowledgement was lost) could call Kaleyra a second time.
		log.Warn().Msg("stale copy of a job on the shared queue; its task is on its own queue, so this one is dropped")
		return true, nil
	case res == store.NotMoved:
		return false, nil
	}
	pushed, err := queue.Push(ctx, w.tasks, to, p)
	if err != nil {
		return true, fmt.Errorf("move job %s to queue %s: %w", p.Job.ID, to, err)
	}
	log.Debug().Str("queue", to).Bool("pushed", pushed).Msg("job moved from the shared queue to its account's")
	return true, nil
}

// unknownAccount handles a job of an account this worker does not serve:
// on its account's queue (the worker stopped serving it), or on the shared
// queue with its record missing or finished. While another live worker
// serves the account, the job goes back to the queue for that worker to
// take; otherwise it is dead-lettered.
func (w *Worker) unknownAccount(ctx context.Context, log zerolog.Logger, rec store.NewJob) error {
	served, err := w.fleet.ServedNow(ctx, rec.SID)
	if err != nil {
		return err
	}
	if served {
		return &laterError{at: time.Now().Add(time.Second), reason: "account served by another worker"}
	}
	return w.noAccount(ctx, log, rec)
}

// noAccount dead-letters a job whose account no live worker serves, as
// UNKNOWN_ACCOUNT, without a call: it is never sent with another account's
// key.
func (w *Worker) noAccount(ctx context.Context, log zerolog.Logger, rec store.NewJob) error {
	state, attempt, err := w.store.Start(ctx, rec, w.opts.RetryMax+1, time.Now())
	if err != nil {
		log.Error().Err(err).Msg("cannot start job")
		return err
	}
	log = log.With().Int("attempt", attempt).Logger()
	if state != store.StateRunning {
		return w.finished(ctx, log, rec.ID, state)
	}
	out := kaleyra.Outcome{Class: kaleyra.Terminal, Code: codeUnknownAccount,
		Message: fmt.Sprintf("no worker serves account %s (add it to ACCOUNTS_FILE, then dlq retry the job)", rec.SID)}
	return w.record(log, nil, rec, attempt, 0, out)
}

// acquire waits for a call slot of account sid: a rate-limit token and an
// in-flight slot, shared by launch calls and status polls over the fleet.
// With a job, it also starts the job with the grant (limits.AcquireStart),
// with a budget of maxAttempts. Waiting is not an attempt; a task still
// waiting when the worker stops goes back to the queue, and so does one the
// limiter defers (as a laterError).
func (w *Worker) acquire(ctx context.Context, log zerolog.Logger, acct *served, job *store.NewJob, maxAttempts int) (*limits.Slot, rdb.StartReply, error) {
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(stoppingOf(ctx), cancel)
	defer stop()
	waitStart := time.Now()
	var slot *limits.Slot
	var started rdb.StartReply
	var err error
	if job != nil {
		slot, started, err = w.limiter.AcquireStart(waitCtx, acct.SID, job.StartArgs(maxAttempts, waitStart))
	} else {
		slot, err = w.limiter.Acquire(waitCtx, acct.SID)
	}
	if err != nil {
		return nil, started, w.deferred(log, acct, err)
	}
	w.metrics.LimiterWait.Observe(time.Since(waitStart).Seconds())
	if acct.coolingOff.CompareAndSwap(true, false) {
		log.Info().Msg("account cool-off over: launch calls resume")
	}
	return slot, started, nil
}

// deferred turns a limiter refusal into a return to the queue that costs the
// job nothing; Redis errors go to asynq as they are.
func (w *Worker) deferred(log zerolog.Logger, acct *served, err error) error {
	var d *limits.DeferredError
	switch {
	case errors.As(err, &d):
		w.metrics.Deferred.WithLabelValues(w.metrics.SID(acct.SID), d.Reason).Inc()
		if d.Reason == limits.ReasonCoolOff && !acct.coolingOff.Swap(true) {
			log.Warn().Dur("remaining", d.After).Msg("account in cool-off: launch calls wait")
		}
		if d.Reason == limits.ReasonCoolOff || d.Reason == limits.ReasonRate && d.After >= holdAfter {
			w.hold(log, acct.SID, d.After)
		}
		at := runAt(time.Now(), d.After)
		if d.Reason != limits.ReasonCoolOff && d.After < time.Second {
			// The job has already waited MaxWait in this process and only
			// gives its worker slot back: it goes to the back of the queue,
			// runnable at asynq's next look. Rounding up to the next second
			// would leave a freed launch slot unused for up to a second
			// whenever no other job is at hand (the end of a batch). Coming
			// back early costs one look at the limiter, never an attempt.
			at = time.Now().Add(d.After)
		}
		return &laterError{at: at, reason: d.Error()}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return &laterError{at: runAt(time.Now(), time.Second), reason: "stopped while waiting for a launch slot"}
	}
	log.Error().Err(err).Msg("cannot take a launch slot")
	return err
}

// holdAfter is the shortest rate wait for which the account's queues are
// held: the limiter sleeps through shorter ones in the process.
const holdAfter = 250 * time.Millisecond

// hold keeps every worker from taking sid's jobs for d, during which sid may
// not call: workers take other accounts' jobs meanwhile, instead of taking
// sid's only to hand each back (which, for a backlog, would be all of them).
func (w *Worker) hold(log zerolog.Logger, sid string, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if err := queue.Hold(ctx, w.store.Redis(), sid, d); err != nil {
		log.Warn().Err(err).Msg("cannot hold the account's queues; its jobs are handed back one by one")
	}
}

// health is what an answer says about the account, for its limits.
func health(out kaleyra.Outcome) limits.Result {
	switch {
	case out.Class == kaleyra.Throttled:
		return limits.Throttled
	case out.Class == kaleyra.Retryable || out.Code == "RCS502":
		return limits.GatewayError
	case out.Code == codeUnknownAccount || out.Code == codeInvalidJob:
		return limits.Unused
	}
	return limits.Answered
}

// releaseTimeout bounds a launch slot's release; its lease frees it anyway.
const releaseTimeout = 5 * time.Second

// release frees a launch slot, logging what the answer changed.
func (w *Worker) release(log zerolog.Logger, slot *limits.Slot, r limits.Result) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	ev, err := slot.Release(ctx, r)
	w.released(log, ev, err)
}

// released logs what a slot's release changed, or that it failed.
func (w *Worker) released(log zerolog.Logger, ev limits.Events, err error) {
	switch {
	case err != nil:
		log.Warn().Err(err).Msg("cannot release launch slot; its lease frees it")
	case ev.CoolOffStarted:
		log.Warn().Dur("duration", w.opts.CoolOffDuration).Msg("account enters cool-off: RCS502 answers piled up")
	}
	if ev.Rate > 0 {
		log.Info().Float64("effective_rate", ev.Rate).Float64("rate_limit", ev.Limit).Msg("account's effective rate changed")
	}
}

// record frees the call's launch slot and turns its outcome into the job's
// next state.
func (w *Worker) record(log zerolog.Logger, slot *limits.Slot, job store.NewJob, attempt, retryMax int, out kaleyra.Outcome) error {
	id := job.ID
	now := time.Now()
	o := store.Outcome{
		Attempt: store.Attempt{
			N: attempt, Code: out.Code, Message: out.Message, HTTPStatus: out.HTTPStatus,
			Uncertain: out.Uncertain, StartedAt: now.Add(-out.Duration), FinishedAt: now,
		},
		AgentLaunchID: out.AgentLaunchID,
		Response:      out.Raw,
	}
	var after error
	switch out.Class {
	case kaleyra.Succeeded:
		o.Kind, o.Attempt.Outcome = store.FinishSucceeded, store.AttemptSucceeded
		if w.opts.FollowLaunch && out.AgentLaunchID != "" {
			o.FollowAt = runAt(now, w.opts.FollowInterval)
		}
	case kaleyra.Throttled:
		delay := out.RetryAfter
		if delay <= 0 {
			delay = w.policy.Next(0)
		}
		o.Kind, o.Attempt.Outcome, o.Attempt.N, o.NextRunAt = store.FinishDeferred, store.AttemptThrottled, 0, runAt(now, delay)
		after = &laterError{at: o.NextRunAt, reason: "throttled by Kaleyra (HTTP 429)"}
	case kaleyra.Retryable:
		o.Attempt.Outcome = store.AttemptRetryable
		if attempt <= retryMax {
			o.Kind, o.NextRunAt = store.FinishRetrying, runAt(now, w.policy.Next(attempt-1))
			after = &laterError{at: o.NextRunAt, reason: "retryable answer " + out.Code}
		} else {
			o.Kind = store.FinishDeadLettered
		}
	default:
		o.Kind, o.Attempt.Outcome = store.FinishDeadLettered, store.AttemptTerminal
	}

	state, err := w.finish(log, slot, health(out), id, o)
	if errors.Is(err, store.ErrNotFound) {
		// The record was deleted by hand while the call ran: there is
		// nothing to record the outcome in, and the task is done.
		state, err = "missing", nil
	}
	logAttempt(log, o.Kind, out, state, err)
	if err != nil {
		return err
	}
	if state == o.Kind.State() && state.Finished() {
		w.metrics.Attempts.Observe(float64(attempt))
	}
	if state == store.StateSucceeded && !o.FollowAt.IsZero() {
		// An error here leaves the task to asynq's retry, whose redelivery
		// finds the job succeeded and pushes the follow-up then.
		p := queue.FollowPayload{JobID: id, SID: job.SID, AgentNo: job.AgentNo, AgentLaunchID: out.AgentLaunchID}
		if err := w.pushFollow(log, p, o.FollowAt); err != nil {
			return err
		}
	}
	return after
}

// logAttempt logs one launch attempt's outcome, and the error recording it
// met, if any.
func logAttempt(log zerolog.Logger, kind store.FinishKind, out kaleyra.Outcome, state store.State, err error) {
	ev := log.Info()
	if kind == store.FinishDeadLettered {
		ev = log.Warn()
	}
	if err != nil {
		ev = log.Error().Err(err)
	}
	// Kaleyra's message goes under its own key: "message" is zerolog's key
	// for the event's own message, and a JSON object with the key twice
	// loses one of the two in most log pipelines.
	ev.Str("outcome", string(kind)).Str("code", out.Code).Int("http_status", out.HTTPStatus).
		Dur("duration", out.Duration).Bool("uncertain", out.Uncertain).Str("kaleyra_message", out.Message).
		Str("state", string(state)).Msg("launch attempt")
}

// finish frees the launch slot and records the outcome in one round trip (two
// scripts in a pipeline: their keys are in different cluster slots). When the
// record fails, it retries it alone while Redis is unreachable: the call has
// been made, and an unrecorded answer would make the redelivered job call
// Kaleyra again. It gives up after finishTimeout, leaving the task to asynq's
// recovery. The release is neither retried nor waits for those retries: a
// slot not released is freed by its lease.
func (w *Worker) finish(log zerolog.Logger, slot *limits.Slot, r limits.Result, id string, o store.Outcome) (store.State, error) {
	const finishTimeout = 2 * time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), finishTimeout)
	defer cancel()
	first, cancelFirst := context.WithTimeout(ctx, releaseTimeout)
	pipe := w.store.Redis().Pipeline()
	fin, err := w.store.QueueFinish(first, pipe, id, o, time.Now())
	if err != nil {
		cancelFirst()
		w.release(log, slot, r)
		return "", err
	}
	rel := slot.QueueRelease(first, pipe, r)
	_, _ = pipe.Exec(first)
	// Either script runs again alone, within first, when Redis answered
	// NOSCRIPT (a restart flushed its scripts): it did not run.
	ev, relErr := rel.Events(first)
	state, finErr := fin.State()
	cancelFirst()
	w.released(log, ev, relErr)
	if finErr == nil || errors.Is(finErr, store.ErrNotFound) {
		return state, finErr
	}
	delay := 100 * time.Millisecond
	for {
		state, err := w.store.Finish(ctx, id, o, time.Now())
		if err == nil || errors.Is(err, store.ErrNotFound) {
			return state, err
		}
		w.log.Warn().Err(err).Str("job_id", id).Msg("cannot record outcome yet; retrying")
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("record outcome of %s: %w", id, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}
