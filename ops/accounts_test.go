package ops_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
	"github.com/rcslaunch/rcslaunch/ops"
)

// noSIDClient is a Client on e's Redis without a default SID, as a producer
// whose jobs name their accounts has.
func noSIDClient(t *testing.T, e *testenv.Env) *ops.Client {
	t.Helper()
	c, err := ops.New(ops.Options{Redis: e.Conn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// accountsBatch settles, in batch "b_accounts", two dead letters of account
// ACC_A (a1, a2: RCS904, RCS601), one of ACC_B (b1: RCS904), and a success
// of ACC_B (b2); all of agent 48100.
func accountsBatch(t *testing.T, e *testenv.Env) {
	t.Helper()
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	if err := e.Store.CreateBatch(context.Background(), "b_accounts", "accounts", at); err != nil {
		t.Fatal(err)
	}
	for i, j := range []struct{ id, sid, code string }{
		{"a1", "ACC_A", "RCS904"}, {"a2", "ACC_A", "RCS601"}, {"b1", "ACC_B", "RCS904"}, {"b2", "ACC_B", ""},
	} {
		job := launchtest.Job("48100")
		job.Launch.LaunchName = j.id
		nj := store.NewJob{ID: j.id, SID: j.sid, AgentNo: "48100", Payload: job.Body(), Batch: "b_accounts"}
		kind := store.FinishDeadLettered
		if j.code == "" {
			kind = store.FinishSucceeded
		}
		e.Settle(nj, kind, j.code, false, at.Add(time.Duration(i)*time.Second))
	}
}

func letterIDs(recs []ops.Record) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

// TestFilterBySID: every listing, count, selection, export and report
// picks one account's jobs by its SID.
func TestFilterBySID(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	accountsBatch(t, e)

	recs, total, err := e.Ops.ListDeadLetters(ctx, ops.Filter{SID: "ACC_A"}, 0, 10)
	if got := letterIDs(recs); err != nil || total != 2 || !slices.Equal(got, []string{"a2", "a1"}) {
		t.Errorf("dead letters of ACC_A: %v of %d (%v)", got, total, err)
	}
	if n, err := e.Ops.CountDeadLetters(ctx, ops.Filter{SID: "ACC_A", Code: "rcs904"}); err != nil || n != 1 {
		t.Errorf("RCS904 of ACC_A: %d (%v), want 1", n, err)
	}
	if n, err := e.Ops.CountSelected(ctx, ops.Selection{SID: "ACC_B"}); err != nil || n != 1 {
		t.Errorf("selection of ACC_B: %d (%v), want 1", n, err)
	}
	jobs, err := e.Ops.JobsByAgent(ctx, "48100", ops.Filter{SID: "ACC_B"}, 10)
	if got := letterIDs(jobs); err != nil || !slices.Equal(got, []string{"b2", "b1"}) {
		t.Errorf("jobs of agent 48100 in ACC_B: %v (%v)", got, err)
	}
	bj, total, err := e.Ops.ListBatchJobs(ctx, "b_accounts", ops.BatchJobFilter{SID: "ACC_B"}, 1, 5)
	if err != nil || total != 2 || len(bj) != 1 || bj[0].ID != "b2" || bj[0].SID != "ACC_B" {
		t.Errorf("batch jobs of ACC_B from the second: %+v of %d (%v)", bj, total, err)
	}

	var out bytes.Buffer
	if err := e.Ops.WriteBatchReport(ctx, "b_accounts", ops.BatchJobFilter{SID: "ACC_B"}, ops.ReportCSV, &out); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil || len(rows) != 3 || rows[0][8] != "sid" || rows[1][0] != "b1" || rows[1][8] != "ACC_B" || rows[2][0] != "b2" {
		t.Errorf("CSV report of ACC_B (%v): %q", err, rows)
	}

	tally, err := e.Ops.DeleteDeadLetters(ctx, ops.Selection{SID: "ACC_A", Code: "RCS601"}, nil)
	if err != nil || tally.String() != "deleted 1" {
		t.Errorf("delete RCS601 of ACC_A: %s (%v)", tally.String(), err)
	}
	if _, err := e.Ops.DeadLetter(ctx, "a2"); !errors.Is(err, ops.ErrNotFound) {
		t.Errorf("a2 after its delete: %v", err)
	}
}

// TestExportKeepsAccounts: dlq export and batch report --failed write each
// job with its SID, so that a producer without a default SID enqueues the
// export again, each job for its own account under its own ID.
func TestExportKeepsAccounts(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	accountsBatch(t, e)

	var failed, exported bytes.Buffer
	if err := e.Ops.WriteBatchReport(ctx, "b_accounts", ops.BatchJobFilter{}, ops.ReportFailedJobs, &failed); err != nil {
		t.Fatal(err)
	}
	if err := e.Ops.ExportDeadLetters(ctx, ops.Filter{}, &exported); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a1": "ACC_A", "a2": "ACC_A", "b1": "ACC_B"}
	for name, out := range map[string]string{"--failed": failed.String(), "export": exported.String()} {
		got := map[string]string{}
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			j, err := launch.Parse([]byte(line))
			if err != nil {
				t.Fatalf("%s line %q: %v", name, line, err)
			}
			got[j.ID] = j.SID
		}
		if len(got) != len(want) || got["a1"] != "ACC_A" || got["a2"] != "ACC_A" || got["b1"] != "ACC_B" {
			t.Errorf("%s: jobs and SIDs %v, want %v", name, got, want)
		}
	}

	if tally, err := e.Ops.DeleteDeadLetters(ctx, ops.Selection{All: true}, nil); err != nil || tally.String() != "deleted 3" {
		t.Fatalf("delete all: %s (%v)", tally.String(), err)
	}
	path := filepath.Join(t.TempDir(), "export.jsonl")
	if err := os.WriteFile(path, exported.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err := noSIDClient(t, e).EnqueueFile(ctx, path, ops.FormatJSONL, nil)
	if err != nil || sum.Enqueued != 3 || !sum.OK() {
		t.Fatalf("enqueue the export without KALEYRA_SID: %+v (%v)", sum, err)
	}
	for id, sid := range want {
		if r, err := e.Ops.Job(ctx, id); err != nil || r.SID != sid || r.State != ops.StateQueued {
			t.Errorf("job %s enqueued again: sid %q, state %s (%v); want %s, queued", id, r.SID, r.State, err, sid)
		}
	}
}

// TestEnqueueNeedsAnAccount: without a default SID, a job without one is
// refused as a field error of "sid" naming KALEYRA_SID (ErrNoSID), before
// Redis is touched; with one of its own it goes to that account.
func TestEnqueueNeedsAnAccount(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	c := noSIDClient(t, e)
	job := launchtest.Job("48200")
	_, err := c.Enqueue(ctx, job, nil)
	var ve *launch.ValidationError
	if !errors.Is(err, ops.ErrNoSID) || !errors.As(err, &ve) || ve.Errors[0].Field != "sid" ||
		!strings.Contains(err.Error(), "KALEYRA_SID") {
		t.Fatalf("a job without an account: %v; want ErrNoSID, a field error of sid naming KALEYRA_SID", err)
	}
	if _, err := c.Validate(job); !errors.Is(err, ops.ErrNoSID) {
		t.Errorf("Validate of a job without an account: %v", err)
	}
	job.SID = "ACC_C"
	id, err := c.Validate(job)
	if err != nil || id != launch.DeriveID("ACC_C", job) {
		t.Fatalf("Validate: %q (%v), want the ID derived from ACC_C", id, err)
	}
	res, err := c.Enqueue(ctx, job, &ops.EnqueueOpts{Priority: ops.PriorityLow})
	if err != nil || res.JobID != id {
		t.Fatalf("enqueue with a sid: %+v (%v)", res, err)
	}
	if r, err := e.Ops.Job(ctx, id); err != nil || r.SID != "ACC_C" {
		t.Errorf("record: sid %q (%v), want ACC_C", r.SID, err)
	}
}

// TestLaunchQueues: the statistics sum every launch queue and break them
// down by account and priority; a job of an account no worker serves waits
// on the shared queue.
func TestLaunchQueues(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	if q, err := e.Ops.LaunchQueues(); err != nil || q.Total != nil || q.Shared != nil || len(q.Accounts) != 0 {
		t.Fatalf("before any task: %+v (%v)", q, err)
	}
	if err := queue.Serve(ctx, e.Store.Redis(), "w1", []string{"ACC_A"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	c := noSIDClient(t, e)
	for i, j := range []struct {
		sid  string
		prio ops.Priority
	}{{"ACC_A", ops.PriorityHigh}, {"ACC_A", ops.PriorityHigh}, {"ACC_A", ""}, {"ACC_B", ops.PriorityLow}} {
		job := launchtest.Job("48300")
		job.SID, job.ID = j.sid, "q"+string(rune('0'+i))
		if res, err := c.Enqueue(ctx, job, &ops.EnqueueOpts{Priority: j.prio}); err != nil || res.Status != ops.StatusEnqueued {
			t.Fatalf("enqueue %d: %+v (%v)", i, res, err)
		}
	}
	q, err := e.Ops.LaunchQueues()
	if err != nil || q.Total == nil || q.Total.Pending != 4 || q.Shared == nil || q.Shared.Pending != 1 || len(q.Accounts) != 1 {
		t.Fatalf("launch queues: %+v (%v); want 4 pending, 1 on the shared queue, one account", q, err)
	}
	a := q.Accounts["ACC_A"]
	if a == nil || a.Pending != 3 || a.PendingByPriority[ops.PriorityHigh] != 2 || a.PendingByPriority[ops.PriorityDefault] != 1 {
		t.Fatalf("ACC_A: %+v", a)
	}
}

// TestJobPriorityRoundTrip: a job's own priority wins over
// BatchOpts.Priority; dlq export and batch report --failed write the
// priority of each job that ran at high or low, so that enqueueing the
// export again, without a priority, puts each job back on its queue.
func TestJobPriorityRoundTrip(t *testing.T) {
	e := testenv.New(t, testenv.WithSim(sim.Config{DisabledSIDs: []string{testenv.SID}}))
	ctx := context.Background()
	// A claim of the account, so that jobs go to its own queues, whatever
	// the worker started below does with its own.
	if err := queue.Serve(ctx, e.Store.Redis(), "claim", []string{testenv.SID}, time.Now()); err != nil {
		t.Fatal(err)
	}
	jobs := map[ops.Priority]launch.Job{}
	for _, p := range []ops.Priority{ops.PriorityHigh, ops.PriorityDefault, ""} {
		j := launchtest.Job("48400")
		j.ID, j.Priority = "prio-"+string(p), p
		jobs[p] = j
	}
	sum, err := e.Ops.EnqueueJobs(ctx, slices.Collect(maps.Values(jobs)), &ops.BatchOpts{Name: "prio", Priority: ops.PriorityLow})
	if err != nil || sum.Enqueued != 3 {
		t.Fatalf("enqueue: %+v (%v)", sum, err)
	}
	// The job without a priority of its own runs at the batch's.
	want := map[string]ops.Priority{"prio-high": ops.PriorityHigh, "prio-default": ops.PriorityDefault, "prio-": ops.PriorityLow}
	wantQueues := func(when string) {
		t.Helper()
		for id, p := range want {
			if q, err := e.Store.JobQueue(ctx, id); err != nil || q != queue.AccountQueue(testenv.SID, p) {
				t.Errorf("%s: %s is on %q (%v), want the account's %s queue", when, id, q, err, p)
			}
		}
	}
	wantQueues("enqueued")

	stop := e.StartWorker(nil)
	e.WaitFinished(slices.Collect(maps.Keys(want))...)
	stop()
	var failed, exported bytes.Buffer
	if err := e.Ops.WriteBatchReport(ctx, *sum.BatchID, ops.BatchJobFilter{}, ops.ReportFailedJobs, &failed); err != nil {
		t.Fatal(err)
	}
	if err := e.Ops.ExportDeadLetters(ctx, ops.Filter{}, &exported); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"--failed": failed.String(), "export": exported.String()} {
		got := map[string]ops.Priority{}
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			j, err := launch.Parse([]byte(line))
			if err != nil {
				t.Fatalf("%s line %q: %v", name, line, err)
			}
			got[j.ID] = j.Priority
		}
		if w := map[string]ops.Priority{"prio-high": ops.PriorityHigh, "prio-default": "", "prio-": ops.PriorityLow}; !maps.Equal(got, w) {
			t.Errorf("%s: priorities %v, want %v:\n%s", name, got, w, out)
		}
	}

	if tally, err := e.Ops.DeleteDeadLetters(ctx, ops.Selection{All: true}, nil); err != nil || tally.String() != "deleted 3" {
		t.Fatalf("delete all: %s (%v)", tally.String(), err)
	}
	path := filepath.Join(t.TempDir(), "export.jsonl")
	if err := os.WriteFile(path, exported.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if sum, err := e.Ops.EnqueueFile(ctx, path, ops.FormatJSONL, nil); err != nil || sum.Enqueued != 3 {
		t.Fatalf("enqueue the export: %+v (%v)", sum, err)
	}
	wantQueues("enqueued again")
}
