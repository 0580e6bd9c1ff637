package testenv

import (
	"context"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/store"
)

// Settle creates job j's record and, without a worker, takes it to an
// outcome at `at`: kind FinishSucceeded, FinishDeadLettered (with code and
// uncertain; message "refused: <code>", HTTP 400), or "" to leave it
// queued. A job with j.Batch joins that (open) batch. One attempt of 9.
func (e *Env) Settle(j store.NewJob, kind store.FinishKind, code string, uncertain bool, at time.Time) {
	e.T.Helper()
	ctx := context.Background()
	if res, err := e.Store.Create(ctx, j, at); err != nil || res != store.Created {
		e.T.Fatalf("create %s: %s %v", j.ID, res, err)
	}
	if kind == "" {
		return
	}
	if state, _, err := e.Store.Start(ctx, j, 9, at); err != nil || state != store.StateRunning {
		e.T.Fatalf("start %s: %s %v", j.ID, state, err)
	}
	o := store.Outcome{Kind: kind, Attempt: store.Attempt{
		N: 1, Outcome: store.AttemptTerminal, Code: code, Message: "refused: " + code, Uncertain: uncertain,
		HTTPStatus: 400, StartedAt: at, FinishedAt: at,
	}}
	if kind == store.FinishSucceeded {
		o.Attempt.Outcome, o.Attempt.Message, o.Attempt.HTTPStatus = store.AttemptSucceeded, "submitted", 200
		o.AgentLaunchID = "launch-" + j.ID
	}
	if res, err := e.Store.Finish(ctx, j.ID, o, at); err != nil || res != kind.State() {
		e.T.Fatalf("finish %s: %s %v", j.ID, res, err)
	}
}
