package main

import (
	"context"
	"fmt"
	"time"

	"github.com/rcslaunch/rcslaunch/ops"
)

func runStatus(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "status", "JOB_ID [--json]", `Shows a job's state: queued, running, retrying (attempt n of m, next run at),
succeeded (agent_launch_id) or dead-lettered (code, message).`)
	asJSON := f.Bool("json", false, "print the job's record as JSON")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return f.usageError("need exactly one JOB_ID")
	}
	return withApp(ctx, io, 0, func(a *app) int {
		rec, err := a.Ops.Job(ctx, pos[0])
		if err != nil {
			return fail(io, err)
		}
		if *asJSON {
			printJSON(io.out, rec)
			return exitOK
		}
		fprintf(io.out, "job %s (agent %s): %s\n", rec.ID, rec.AgentNo, describeState(rec))
		for _, at := range rec.History {
			fprintf(io.out, "  %s\n", describeAttempt(at))
		}
		return exitOK
	})
}

// describeState is a record's state in one line, as `status` prints it.
func describeState(r ops.Record) string {
	switch r.State {
	case ops.StateSucceeded:
		return fmt.Sprintf("succeeded, agent_launch_id %s (attempts: %d, finished %s)", r.AgentLaunchID, r.Attempts, stamp(r.FinishedAt))
	case ops.StateDeadLettered:
		s := fmt.Sprintf("dead-lettered, code %s: %s (attempts: %d, at %s)", r.Code, r.Message, r.Attempts, stamp(r.FinishedAt))
		if r.Uncertain {
			s += " [uncertain: the agent may have been launched]"
		}
		return s
	case ops.StateRetrying:
		return fmt.Sprintf("retrying (attempt %d of %d, next run at %s), last code %s: %s",
			r.Attempts, r.MaxAttempts, stamp(r.NextRunAt), r.Code, r.Message)
	case ops.StateRunning:
		return fmt.Sprintf("running (attempt %d of %d)", r.Attempts, r.MaxAttempts)
	case ops.StateQueued:
		if !r.NextRunAt.IsZero() {
			return fmt.Sprintf("queued (deferred until %s)", stamp(r.NextRunAt))
		}
		return fmt.Sprintf("queued (since %s)", stamp(r.EnqueuedAt))
	}
	return string(r.State)
}

func describeAttempt(a ops.Attempt) string {
	n := "-"
	if a.N > 0 {
		n = fmt.Sprint(a.N)
	}
	s := fmt.Sprintf("attempt %s at %s: %s", n, stamp(a.FinishedAt), a.Outcome)
	if a.Code != "" {
		s += " " + a.Code
	}
	if a.HTTPStatus != 0 {
		s += fmt.Sprintf(" (HTTP %d)", a.HTTPStatus)
	}
	if a.Message != "" {
		s += ": " + a.Message
	}
	if a.Uncertain {
		s += " [uncertain]"
	}
	return s
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
