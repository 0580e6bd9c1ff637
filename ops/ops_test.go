package ops_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
	"github.com/rcslaunch/rcslaunch/ops"
)

func TestEnqueueFlagsDuplicatesAndRefusesConflicts(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	job := launchtest.Job("100")
	res, err := e.Ops.Enqueue(ctx, job, nil)
	if err != nil || res.Status != ops.StatusEnqueued || res.SkippedAsDuplicate || res.JobID != e.Ops.JobID(job) {
		t.Fatalf("first enqueue: %+v, %v", res, err)
	}
	res, err = e.Ops.Enqueue(ctx, job, nil)
	if err != nil || res.Status != ops.StatusDuplicate || !res.SkippedAsDuplicate {
		t.Fatalf("second enqueue: %+v, %v; want a duplicate flagged, no error", res, err)
	}
	own := launchtest.Job("101")
	own.ID = "own-101"
	if _, err := e.Ops.Enqueue(ctx, own, nil); err != nil {
		t.Fatal(err)
	}
	own.Launch.LaunchName = "changed"
	if res, err := e.Ops.Enqueue(ctx, own, nil); !errors.Is(err, ops.ErrConflict) || res.Status != ops.StatusConflict {
		t.Fatalf("same ID, other payload: %+v, %v; want ErrConflict", res, err)
	}
	var invalid *launch.ValidationError
	if _, err := e.Ops.Enqueue(ctx, launch.Job{}, nil); !errors.As(err, &invalid) {
		t.Fatalf("invalid job: %v, want a *launch.ValidationError", err)
	}
	if _, err := e.Ops.Job(ctx, "no-such-job"); !errors.Is(err, ops.ErrNotFound) {
		t.Fatalf("unknown job: %v, want ErrNotFound", err)
	}
}

func TestBatchFromFileToReport(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "jobs.jsonl")
	lines := []string{launchtest.Line("", "200", nil), launchtest.Line("", "201", nil), launchtest.Line("", "200", nil)}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var progress []ops.BatchProgress
	sum, err := e.Ops.EnqueueFile(ctx, path, ops.FormatJSONL, &ops.BatchOpts{Name: "file",
		OnProgress: func(p ops.BatchProgress) { progress = append(progress, p) }})
	if err != nil || sum.BatchID == nil || sum.Enqueued != 2 || sum.Duplicate != 1 || !sum.OK() {
		t.Fatalf("EnqueueFile: %+v, %v", sum, err)
	}
	if len(progress) != 2 || !progress[0].Validating || progress[1].Validating || progress[1].Done != 3 || progress[1].Total != 3 {
		t.Errorf("progress: %+v; want a validation pass, then the enqueue pass of 3 rows", progress)
	}
	e.StartWorker(nil)
	st, err := e.Ops.WatchBatch(ctx, *sum.BatchID, 50*time.Millisecond, func(ops.BatchStatus) {})
	if err != nil || !st.Finished() || st.Total != 2 || st.Succeeded != 2 {
		t.Fatalf("WatchBatch: %+v, %v", st, err)
	}
	if left, ok := st.TimeLeft(); !ok || left != 0 {
		t.Errorf("time left of a finished batch: %v, %v", left, ok)
	}
	var report strings.Builder
	if err := e.Ops.WriteBatchReport(ctx, *sum.BatchID, ops.BatchJobFilter{}, ops.ReportCSV, &report); err != nil {
		t.Fatal(err)
	}
	if rows := strings.Split(strings.TrimSpace(report.String()), "\n"); len(rows) != 3 || !strings.Contains(rows[1], ",succeeded,RCS902,") {
		t.Errorf("report:\n%s", report.String())
	}
	if err := e.Ops.WriteBatchReport(ctx, "no-such-batch", ops.BatchJobFilter{}, ops.ReportCSV, &report); !errors.Is(err, ops.ErrNotFound) {
		t.Errorf("report of an unknown batch: %v, want ErrNotFound", err)
	}
}

func TestEnqueueJobsInvalidEnqueuesNothing(t *testing.T) {
	e := testenv.New(t)
	sum, err := e.Ops.EnqueueJobs(context.Background(), []launch.Job{launchtest.Job("300"), {}}, nil)
	if err != nil || sum.BatchID != nil || sum.Invalid != 1 || sum.Enqueued != 0 || sum.Errors[0].Line != 2 {
		t.Fatalf("EnqueueJobs with an invalid job: %+v, %v", sum, err)
	}
	if n, err := e.Store.CountBatches(context.Background()); err != nil || n != 0 {
		t.Errorf("batches after an invalid list: %d, %v", n, err)
	}
}

// deadLetters makes a dead letter with code RCS904 of each agent.
func deadLetters(t *testing.T, e *testenv.Env, agents ...string) []string {
	t.Helper()
	ids := make([]string, len(agents))
	for i, a := range agents {
		e.Sim.Script(a, sim.StepMissingFields)
		res, err := e.Ops.Enqueue(context.Background(), launchtest.Job(a), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = res.JobID
	}
	stop := e.StartWorker(nil)
	e.WaitFinished(ids...)
	stop()
	return ids
}

// TestRetryDeadLetterVanishingMidWalk: a letter deleted while a bulk retry
// walks the store is counted as not found, never under an empty key.
func TestRetryDeadLetterVanishingMidWalk(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	deadLetters(t, e, "400", "401", "402")
	first := true
	tally, err := e.Ops.RetryDeadLetters(ctx, ops.Selection{All: true}, &ops.BulkOpts{OnEach: func(r ops.DeadLetterResult) {
		if !first {
			return
		}
		first = false
		// The others go while the walk holds their page.
		_, _ = e.Ops.DeleteDeadLetters(ctx, ops.Selection{Code: "RCS904"}, nil)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := tally.Counts(); len(got) != 2 || got["retried"] != 1 || got["not_found"] != 2 {
		t.Errorf("tally %v, want retried 1, not_found 2", got)
	}
}

func TestDeadLettersByIDAndCode(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	ids := deadLetters(t, e, "500", "501")
	queued, err := e.Ops.Enqueue(ctx, launchtest.Job("502"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var each []ops.DeadLetterResult
	tally, err := e.Ops.RetryDeadLetters(ctx, ops.Selection{IDs: []string{ids[0], queued.JobID, "gone"}},
		&ops.BulkOpts{OnEach: func(r ops.DeadLetterResult) { each = append(each, r) }})
	if err != nil || tally.String() != "retried 1, not dead-lettered (queued) 1, not found 1" {
		t.Fatalf("retry by ID: %s, %v", tally.String(), err)
	}
	if len(each) != 3 || !each[0].OK() || each[1].OK() || each[1].State != ops.StateQueued || each[2].Action != ops.NotFound {
		t.Errorf("each result: %+v", each)
	}
	if _, err := e.Ops.DeadLetter(ctx, queued.JobID); !errors.Is(err, ops.ErrNotDeadLettered) {
		t.Errorf("DeadLetter of a queued job: %v, want ErrNotDeadLettered", err)
	}
	if n, err := e.Ops.CountSelected(ctx, ops.Selection{Code: "RCS904"}); err != nil || n != 1 {
		t.Errorf("dead letters left with RCS904: %d, %v", n, err)
	}
	tally, err = e.Ops.DeleteDeadLetters(ctx, ops.Selection{Code: "RCS904"}, nil)
	if err != nil || tally.String() != "deleted 1" {
		t.Errorf("delete by code: %s, %v", tally.String(), err)
	}
	if _, err := e.Ops.RetryDeadLetters(ctx, ops.Selection{}, nil); !errors.Is(err, ops.ErrBadSelection) {
		t.Errorf("an empty selection: %v, want ErrBadSelection", err)
	}
}
