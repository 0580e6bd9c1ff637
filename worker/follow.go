package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/kaleyra"
	"github.com/rcslaunch/rcslaunch/internal/limits"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/store"
)

// The launch follow-up (Options.FollowLaunch)
//
// A launch answered RCS902 is finished as a success in launch state pending
// (store.Outcome.FollowAt), and its follow-up task is pushed before the
// launch task is acknowledged: one asynq task per launch, whose ID names the
// launch, on the follow queue. The task polls Kaleyra's launch status at
// the record's next poll time, records the answer (store.RecordLaunchPoll)
// and runs again at the next time, until the state is final or the
// follow-up's age has run out.
//
// The record, not the task, says when the next poll is due: a task run
// early (redelivered after its worker died between recording a poll and
// acknowledging the task) goes back to wait without polling, so a crash
// repeats a poll only when it hits the call itself.

// nextPoll is when to poll a launch again after its polls-th poll, made at
// now: FollowInterval doubled per poll, capped at FollowMaxInterval, and
// never after the follow-up's end at followedAt + FollowMaxAge. It reports
// false when that end has come: following stops.
func (o *Options) nextPoll(followedAt, now time.Time, polls int) (time.Time, bool) {
	end := followedAt.Add(o.FollowMaxAge)
	if !now.Before(end) {
		return time.Time{}, false
	}
	wait := o.FollowInterval
	for i := 0; i < polls && wait < o.FollowMaxInterval; i++ {
		wait *= 2
	}
	wait = min(wait, o.FollowMaxInterval)
	return runAt(now, min(wait, end.Sub(now))), true
}

// pushFollow pushes a launch's follow-up task to run at at; an existing one
// is left as it is.
func (w *Worker) pushFollow(log zerolog.Logger, p queue.FollowPayload, at time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	pushed, err := queue.PushFollow(ctx, w.tasks, p, at)
	if err != nil {
		log.Error().Err(err).Msg("cannot push the launch follow-up; the job's task will try again")
		return err
	}
	if pushed {
		log.Debug().Str("agent_launch_id", p.AgentLaunchID).Time("first_poll_at", at).Msg("launch follow-up scheduled")
	}
	return nil
}

// ensureFollow pushes the follow-up task of a success whose launch is
// followed and still polled, in case its worker died before pushing it.
func (w *Worker) ensureFollow(ctx context.Context, log zerolog.Logger, id string) error {
	if !w.opts.FollowLaunch {
		return nil
	}
	rec, err := w.store.FollowedLaunch(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	case rec.Follow == nil || rec.Follow.NextPollAt.IsZero():
		return nil
	}
	p := queue.FollowPayload{JobID: id, SID: rec.SID, AgentNo: rec.AgentNo, AgentLaunchID: rec.AgentLaunchID}
	return w.pushFollow(log, p, rec.Follow.NextPollAt)
}

// follow is the asynq handler of a follow-up task: one launch status poll
// when it is due.
func (w *Worker) follow(ctx context.Context, task *asynq.Task) error {
	var p queue.FollowPayload
	if err := json.Unmarshal(task.Payload(), &p); err != nil || p.JobID == "" || p.AgentLaunchID == "" {
		w.log.Error().Str("task_type", task.Type()).Msg("undecodable follow-up task; archived")
		return fmt.Errorf("decode follow-up task: %v: %w", err, asynq.SkipRetry)
	}
	log := w.log.With().Str("job_id", p.JobID).Str("agent_no", p.AgentNo).
		Str("agent_launch_id", p.AgentLaunchID).Logger()
	acct := w.account(p.SID)
	if acct == nil {
		// Only a worker that holds the account's key may poll; the task waits
		// for one (another worker, or this one after a reload).
		return &laterError{at: runAt(time.Now(), w.opts.FollowInterval), reason: "follow-up of an account this worker does not serve"}
	}
	rec, err := w.store.FollowedLaunch(ctx, p.JobID)
	if errors.Is(err, store.ErrNotFound) {
		log.Info().Msg("job record gone (deleted or expired); launch follow-up ends")
		return nil
	}
	if err != nil {
		return err
	}
	now := time.Now()
	switch {
	case rec.AgentLaunchID != p.AgentLaunchID:
		log.Info().Msg("job relaunched since; this launch's follow-up ends")
		return nil
	case rec.Follow == nil && rec.State != store.StateSucceeded:
		// A forced relaunch is queued or running: its outcome decides
		// whether this launch is still the job's (it may be undone).
		return &laterError{at: runAt(now, w.opts.FollowInterval), reason: "relaunch of the job in progress"}
	case rec.Follow == nil || rec.Follow.NextPollAt.IsZero():
		return nil
	case rec.Follow.NextPollAt.After(now.Add(time.Second)):
		return &laterError{at: rec.Follow.NextPollAt, reason: "next launch status poll not due"}
	}
	slot, _, err := w.acquire(ctx, log, acct, nil, 0)
	if err != nil {
		return err
	}
	log = log.With().Int("poll", rec.Follow.Polls+1).Logger()
	log.Debug().Msg("polling launch status")
	out := acct.client.LaunchStatus(context.WithoutCancel(ctx), p.AgentNo, p.AgentLaunchID)
	w.release(log, slot, pollHealth(out))
	return w.recordPoll(log, p, *rec.Follow, out)
}

// logPoll logs one status poll: its result (a launch state, or "failed"),
// what was recorded, and the error recording it met, if any.
func logPoll(log zerolog.Logger, result string, poll store.Poll, before store.LaunchState, out kaleyra.StatusOutcome,
	res store.PollResult, err error) {
	ev := log.Info()
	switch {
	case err != nil:
		ev = log.Error().Err(err)
	case out.Failed():
		ev = log.Warn()
	}
	ev.Str("result", result).Str("launch_state", string(poll.State)).Str("previous_launch_state", string(before)).
		Str("code", out.Code).Int("http_status", out.HTTPStatus).Dur("duration", out.Duration).
		Str("kaleyra_message", out.Message).Str("recorded", string(res)).Time("next_poll_at", poll.NextPollAt).
		Str("ended", poll.Ended).Msg("launch status poll")
}

// pollHealth is what a status poll's answer says about the account.
func pollHealth(out kaleyra.StatusOutcome) limits.Result {
	switch {
	case out.Class == kaleyra.Throttled:
		return limits.Throttled
	case out.Code == "RCS502":
		return limits.GatewayError
	}
	return limits.Answered
}

// recordPoll records a poll's answer and says when the task runs again (a
// laterError), or that the follow-up is over (nil).
func (w *Worker) recordPoll(log zerolog.Logger, p queue.FollowPayload, f store.LaunchFollow, out kaleyra.StatusOutcome) error {
	now := time.Now()
	if out.Class == kaleyra.Throttled {
		w.metrics.StatusPolls.WithLabelValues("throttled").Inc()
		delay := out.RetryAfter
		if delay <= 0 {
			delay = w.policy.Next(0)
		}
		log.Warn().Int("http_status", out.HTTPStatus).Dur("duration", out.Duration).Msg("launch status poll throttled by Kaleyra (HTTP 429)")
		return &laterError{at: runAt(now, delay), reason: "launch status poll throttled by Kaleyra (HTTP 429)"}
	}
	poll := store.Poll{AgentLaunchID: p.AgentLaunchID, PollsBefore: f.Polls, Code: out.Code,
		Message: out.Message, Response: out.Raw}
	result := "failed"
	if !out.Failed() {
		poll.State = store.LaunchState(out.State)
		result = string(poll.State)
	}
	w.metrics.StatusPolls.WithLabelValues(result).Inc()
	if poll.State.Final() {
		poll.Ended = store.FollowFinal
	} else if next, ok := w.opts.nextPoll(f.FollowedAt, now, f.Polls+1); ok {
		poll.NextPollAt = next
	} else {
		poll.Ended = store.FollowExpired
	}
	// The poll has been made: its answer is recorded even while the worker
	// shuts down.
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	res, err := w.store.RecordLaunchPoll(ctx, p.JobID, poll, now)
	logPoll(log, result, poll, f.State, out, res, err)
	if err != nil {
		return err
	}
	switch res {
	case store.PollChanged:
		w.metrics.LaunchStateChanges.WithLabelValues(string(poll.State)).Inc()
		fallthrough
	case store.PollRecorded:
		if poll.NextPollAt.IsZero() {
			return nil
		}
		return &laterError{at: poll.NextPollAt, reason: "next launch status poll"}
	case store.PollWaiting:
		return &laterError{at: runAt(now, w.opts.FollowInterval), reason: "relaunch of the job in progress"}
	case store.PollStale:
		// Another poll was recorded meanwhile: read the record again.
		return &laterError{at: runAt(now, time.Second), reason: "another poll was recorded first"}
	}
	return nil // missing, superseded, ended: nothing more to follow
}
