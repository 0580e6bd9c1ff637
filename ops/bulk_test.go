package ops_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/ops"
)

// TestCodeInAnyCase: every operation that takes a code finds RCS904 by
// "rcs904" (or " Rcs904 ").
func TestCodeInAnyCase(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	deadLetters(t, e, "700", "701")
	if n, err := e.Ops.CountDeadLetters(ctx, ops.Filter{Code: "rcs904"}); err != nil || n != 2 {
		t.Errorf("CountDeadLetters(rcs904) = %d, %v; want 2", n, err)
	}
	if recs, total, err := e.Ops.ListDeadLetters(ctx, ops.Filter{Code: " Rcs904 "}, 0, 10); err != nil || total != 2 || len(recs) != 2 {
		t.Errorf("ListDeadLetters(Rcs904) = %d of %d, %v; want 2", len(recs), total, err)
	}
	var out bytes.Buffer
	if err := e.Ops.ExportDeadLetters(ctx, ops.Filter{Code: "rcs904"}, &out); err != nil || strings.Count(out.String(), "\n") != 2 {
		t.Errorf("ExportDeadLetters(rcs904): %v\n%s", err, out.String())
	}
	if n, err := e.Ops.CountSelected(ctx, ops.Selection{Code: "rcs904"}); err != nil || n != 2 {
		t.Errorf("CountSelected(rcs904) = %d, %v; want 2", n, err)
	}
	if tally, err := e.Ops.DeleteDeadLetters(ctx, ops.Selection{Code: "rcs904"}, nil); err != nil || tally.String() != "deleted 2" {
		t.Errorf("DeleteDeadLetters(rcs904): %s, %v", tally.String(), err)
	}
}

// TestDryRunChangesNothing: a dry run reports each job as the operation
// would leave it, with the letter, and leaves the store as it was.
func TestDryRunChangesNothing(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	ids := deadLetters(t, e, "710", "711")
	var letters []string
	tally, err := e.Ops.DeleteDeadLetters(ctx, ops.Selection{Code: "rcs904"}, &ops.BulkOpts{DryRun: true, Rate: 0.001,
		OnEach: func(r ops.DeadLetterResult) {
			if r.Letter != nil && r.Letter.ID == r.JobID && r.Letter.Code == "RCS904" {
				letters = append(letters, r.JobID)
			}
		}})
	if err != nil || tally.String() != "deleted 2" || len(letters) != 2 {
		t.Errorf("dry-run delete: %s, %v, letters %v", tally.String(), err, letters)
	}
	tally, err = e.Ops.RetryDeadLetters(ctx, ops.Selection{IDs: []string{ids[0], "gone"}}, &ops.BulkOpts{DryRun: true})
	if err != nil || tally.String() != "retried 1, not found 1" {
		t.Errorf("dry-run retry by ID: %s, %v", tally.String(), err)
	}
	if n, err := e.Ops.CountDeadLetters(ctx, ops.Filter{}); err != nil || n != 2 {
		t.Errorf("after dry runs %d dead letters (%v), want 2", n, err)
	}
	if e.Task(ids[0]) != nil {
		t.Error("a dry-run retry put a task on the queue")
	}
}

// TestRetryPaced: n letters at rate r take at least (n-1)/r (the first goes
// at once); only a lower bound is asserted, with slack.
func TestRetryPaced(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	ids := deadLetters(t, e, "720", "721", "722", "723", "724")
	const rate = 20.0
	start := time.Now()
	tally, err := e.Ops.RetryDeadLetters(ctx, ops.Selection{Code: "rcs904"}, &ops.BulkOpts{Rate: rate})
	took := time.Since(start)
	if err != nil || tally.Count(string(ops.Retried)) != len(ids) {
		t.Fatalf("paced retry: %s, %v", tally.String(), err)
	}
	if least := time.Duration(float64(len(ids)-1)/rate*float64(time.Second)) - 20*time.Millisecond; took < least {
		t.Errorf("%d letters at %v/s took %v, want at least %v", len(ids), rate, took, least)
	}
	if _, err := e.Ops.RetryDeadLetters(ctx, ops.Selection{All: true}, &ops.BulkOpts{Rate: -1}); !errors.Is(err, ops.ErrBadRate) {
		t.Errorf("a negative rate: %v, want ErrBadRate", err)
	}
}

// TestPacedRetryStopsOnCancel: cancelling the context ends a paced run
// during its wait, not after it, and leaves the rest as they were.
func TestPacedRetryStopsOnCancel(t *testing.T) {
	e := testenv.New(t)
	deadLetters(t, e, "730", "731", "732")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	// At 0.5/s the second letter would wait 2 s.
	tally, err := e.Ops.RetryDeadLetters(ctx, ops.Selection{All: true}, &ops.BulkOpts{Rate: 0.5,
		OnEach: func(ops.DeadLetterResult) { cancel() }})
	if !errors.Is(err, context.Canceled) || tally.String() != "retried 1" {
		t.Errorf("cancelled paced retry: %s, %v; want retried 1 and context.Canceled", tally.String(), err)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("cancelled paced retry returned after %v: it sat out its wait", took)
	}
	if n, err := e.Ops.CountDeadLetters(context.Background(), ops.Filter{}); err != nil || n != 2 {
		t.Errorf("after a cancelled retry %d dead letters (%v), want 2", n, err)
	}
}
