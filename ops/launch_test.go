package ops_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
	"github.com/rcslaunch/rcslaunch/ops"
)

// followedBatch settles a closed batch "b_follow" without a worker: j1
// followed to launched (pending twice first), j2 to rejected, j3 followed
// and not polled yet, j4 an answer of unknown, j5 a success not followed,
// j6 a dead letter. It returns the jobs' expected launch states.
func followedBatch(t *testing.T, e *testenv.Env) map[string]ops.LaunchState {
	t.Helper()
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	const id = "b_follow"
	if err := e.Store.CreateBatch(ctx, id, "followed", at); err != nil {
		t.Fatal(err)
	}
	job := func(n int) store.NewJob {
		agent := "70" + string(rune('0'+n))
		return store.NewJob{ID: "j" + string(rune('0'+n)), SID: testenv.SID, AgentNo: agent,
			Payload: launchtest.Job(agent).Body(), Batch: id}
	}
	e.SettleFollowed(job(1), at, ops.LaunchPending, ops.LaunchPending, ops.LaunchLaunched)
	e.SettleFollowed(job(2), at, ops.LaunchPending, ops.LaunchRejected)
	e.SettleFollowed(job(3), at)
	e.SettleFollowed(job(4), at, ops.LaunchUnknown)
	e.Settle(job(5), store.FinishSucceeded, "RCS902", false, at)
	e.Settle(job(6), store.FinishDeadLettered, "RCS904", false, at)
	if _, err := e.Ops.CloseBatch(ctx, id); err != nil {
		t.Fatal(err)
	}
	return map[string]ops.LaunchState{"j1": ops.LaunchLaunched, "j2": ops.LaunchRejected, "j3": ops.LaunchPending,
		"j4": ops.LaunchUnknown, "j5": "", "j6": ""}
}

// TestLaunchStatesRoundTrip: a followed job's launch state and follow-up,
// the batch's counts by launch state and the results stream's launch_state
// entries read back through ops as they were recorded, in Go and in JSON.
func TestLaunchStatesRoundTrip(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	followedBatch(t, e)

	b, err := e.Ops.BatchStatus(ctx, "b_follow")
	if err != nil {
		t.Fatal(err)
	}
	want := map[ops.LaunchState]int64{ops.LaunchPending: 1, ops.LaunchLaunched: 1, ops.LaunchRejected: 1,
		ops.LaunchSuspended: 0, ops.LaunchUnknown: 1}
	if !maps.Equal(b.LaunchStates, want) || !b.Finished() || b.Succeeded != 5 {
		t.Fatalf("batch: launch states %v, succeeded %d, finished %v; want %v, 5, finished", b.LaunchStates, b.Succeeded, b.Finished(), want)
	}
	var asJSON struct {
		LaunchStates map[string]int64 `json:"launch_states"`
	}
	raw, _ := json.Marshal(b.Batch)
	if err := json.Unmarshal(raw, &asJSON); err != nil || len(asJSON.LaunchStates) != len(ops.LaunchStates) ||
		asJSON.LaunchStates["launched"] != 1 || asJSON.LaunchStates["suspended"] != 0 {
		t.Errorf("batch JSON launch_states %v (%v):\n%s", asJSON.LaunchStates, err, raw)
	}

	r, err := e.Ops.Job(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if f := r.Launch; r.LaunchState != ops.LaunchLaunched || f == nil || f.State != ops.LaunchLaunched ||
		f.Polls != 3 || f.Ended != ops.FollowFinal || !f.NextPollAt.IsZero() || f.Code != "RCS200" {
		t.Fatalf("j1: launch state %s, follow-up %+v; want launched after 3 polls, ended final", r.LaunchState, f)
	}
	raw, _ = json.Marshal(r)
	var back ops.Record
	if err := json.Unmarshal(raw, &back); err != nil || back.LaunchState != ops.LaunchLaunched ||
		back.Launch == nil || back.Launch.Polls != 3 || !back.Launch.StateAt.Equal(r.Launch.StateAt) {
		t.Errorf("j1 through JSON: %+v (%v)\n%s", back.Launch, err, raw)
	}
	if r, _ := e.Ops.Job(ctx, "j3"); r.Launch == nil || r.Launch.Polls != 0 || r.Launch.NextPollAt.IsZero() {
		t.Errorf("j3 (not polled yet): %+v, want pending with a first poll due", r.Launch)
	}
	if r, _ := e.Ops.Job(ctx, "j5"); r.LaunchState != "" || r.Launch != nil {
		t.Errorf("j5 (not followed): launch state %q, %+v", r.LaunchState, r.Launch)
	}

	rs, err := e.Ops.ReadResults(ctx, "0", 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, res := range rs {
		if res.Outcome == ops.OutcomeLaunchState {
			changes = append(changes, res.JobID+" "+res.PreviousLaunchState+"->"+res.LaunchState)
		}
	}
	slices.Sort(changes)
	if w := []string{"j1 pending->launched", "j2 pending->rejected", "j4 pending->unknown"}; !slices.Equal(changes, w) {
		t.Errorf("launch_state entries %v, want %v", changes, w)
	}
}

// TestBatchReportLaunchState: the CSV report has a launch_state column after
// the contract's (then sid), JSONL rows a launch_state member for followed jobs only,
// and --failed is the dead letters' jobs as before.
func TestBatchReportLaunchState(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	want := followedBatch(t, e)

	var out strings.Builder
	if err := e.Ops.WriteBatchReport(ctx, "b_follow", ops.BatchJobFilter{}, ops.ReportCSV, &out); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(out.String())).ReadAll()
	header := []string{"job_id", "agent_no", "outcome", "code", "message", "agent_launch_id", "attempts", "launch_state", "sid"}
	if err != nil || len(recs) != len(want)+1 || !slices.Equal(recs[0], header) {
		t.Fatalf("CSV report (%v):\n%s", err, out.String())
	}
	for _, rec := range recs[1:] {
		if got := ops.LaunchState(rec[7]); got != want[rec[0]] {
			t.Errorf("CSV %s: launch_state %q, want %q", rec[0], got, want[rec[0]])
		}
	}

	out.Reset()
	if err := e.Ops.WriteBatchReport(ctx, "b_follow", ops.BatchJobFilter{}, ops.ReportJSONL, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("JSONL report: %d lines, want %d", len(lines), len(want))
	}
	for _, line := range lines {
		var raw map[string]any
		var row ops.ReportRow
		if err := json.Unmarshal([]byte(line), &raw); err != nil || json.Unmarshal([]byte(line), &row) != nil {
			t.Fatalf("JSONL line %q: %v", line, err)
		}
		followed := want[row.JobID] != ""
		keys := 8 // the contract's and sid
		if followed {
			keys++
		}
		if _, has := raw["launch_state"]; row.LaunchState != want[row.JobID] || has != followed || len(raw) != keys {
			t.Errorf("JSONL %s: %s; want launch_state %q, only when followed", row.JobID, line, want[row.JobID])
		}
	}

	jobs, total, err := e.Ops.ListBatchJobs(ctx, "b_follow", ops.BatchJobFilter{State: ops.StateSucceeded}, 0, 10)
	if err != nil || total != 5 || len(jobs) != 5 {
		t.Fatalf("ListBatchJobs: %d of %d (%v)", len(jobs), total, err)
	}
	for _, j := range jobs {
		if j.LaunchState != want[j.ID] {
			t.Errorf("ListBatchJobs %s: launch state %q, want %q", j.ID, j.LaunchState, want[j.ID])
		}
	}

	out.Reset()
	if err := e.Ops.WriteBatchReport(ctx, "b_follow", ops.BatchJobFilter{}, ops.ReportFailedJobs, &out); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"); len(lines) != 1 ||
		!strings.Contains(lines[0], `"j6"`) || strings.Contains(lines[0], "launch_state") {
		t.Errorf("--failed report:\n%s", out.String())
	}
}
