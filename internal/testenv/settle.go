package testenv

import (
	"context"
	"fmt"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/store"
)

// Settle creates job j's record and, without a worker, takes it to an
// outcome at `at`: kind FinishSucceeded, FinishDeadLettered (with code and
// uncertain; message "refused: <code>", HTTP 400), or "" to leave it
// queued. A job with j.Batch joins that (open) batch. One attempt of 9.
func (e *Env) Settle(j store.NewJob, kind store.FinishKind, code string, uncertain bool, at time.Time) {
	e.T.Helper()
	e.settle(j, kind, code, uncertain, at, time.Time{})
}

// SettleFollowed is Settle of a success (RCS902, agent_launch_id
// "launch-<job ID>") whose launch is followed, as with FOLLOW_LAUNCH, then
// polled once per state of states, a second apart after at, as the worker
// records its polls: launch state pending at first; the record, the
// batch's launch state counts and the results stream follow each change.
// A final state ends following; otherwise the next poll is a minute after
// the last.
func (e *Env) SettleFollowed(j store.NewJob, at time.Time, states ...store.LaunchState) {
	e.T.Helper()
	e.settle(j, store.FinishSucceeded, "RCS902", false, at, at.Add(time.Second))
	ctx := context.Background()
	for i, st := range states {
		now := at.Add(time.Duration(i+1) * time.Second)
		p := store.Poll{AgentLaunchID: "launch-" + j.ID, PollsBefore: i, State: st, Code: "RCS200",
			Message: fmt.Sprintf("poll %d: %s", i+1, st)}
		if st.Final() {
			p.Ended = store.FollowFinal
		} else {
			p.NextPollAt = now.Add(time.Minute)
		}
		if res, err := e.Store.RecordLaunchPoll(ctx, j.ID, p, now); err != nil ||
			(res != store.PollChanged && res != store.PollRecorded) {
			e.T.Fatalf("poll %d of %s: %s %v", i+1, j.ID, res, err)
		}
	}
}

func (e *Env) settle(j store.NewJob, kind store.FinishKind, code string, uncertain bool, at, followAt time.Time) {
	e.T.Helper()
	if kind == "" {
		if res, err := e.Store.Create(context.Background(), j, at); err != nil || res != store.Created {
			e.T.Fatalf("create %s: %s %v", j.ID, res, err)
		}
		return
	}
	o := store.Outcome{Kind: kind, Attempt: store.Attempt{
		N: 1, Outcome: store.AttemptTerminal, Code: code, Message: "refused: " + code, Uncertain: uncertain,
		HTTPStatus: 400, StartedAt: at, FinishedAt: at,
	}}
	if kind == store.FinishSucceeded {
		o.Attempt.Outcome, o.Attempt.Message, o.Attempt.HTTPStatus = store.AttemptSucceeded, "submitted", 200
		o.AgentLaunchID = "launch-" + j.ID
		o.FollowAt = followAt
	}
	e.SettleOutcome(j, o, at)
}

// SettleOutcome is Settle with the outcome written out, for a test that
// needs its own code, message or agent_launch_id (text as Kaleyra might
// send it) in the record, the batch report and the results stream.
func (e *Env) SettleOutcome(j store.NewJob, o store.Outcome, at time.Time) {
	e.T.Helper()
	ctx := context.Background()
	if res, err := e.Store.Create(ctx, j, at); err != nil || res != store.Created {
		e.T.Fatalf("create %s: %s %v", j.ID, res, err)
	}
	if state, _, err := e.Store.Start(ctx, j, 9, at); err != nil || state != store.StateRunning {
		e.T.Fatalf("start %s: %s %v", j.ID, state, err)
	}
	if res, err := e.Store.Finish(ctx, j.ID, o, at); err != nil || res != o.Kind.State() {
		e.T.Fatalf("finish %s: %s %v", j.ID, res, err)
	}
}
