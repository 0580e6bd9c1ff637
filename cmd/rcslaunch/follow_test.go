package main

// End-to-end tests of what the commands show of the launch follow-up
// (FOLLOW_LAUNCH), on records the store settles without a worker.

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
)

// TestFollowedLaunchOutputs: status, batch status/list/report and results
// show the launch states of a batch with followed jobs: f1 launched, f2
// rejected, f3 pending (not polled yet), f4 not followed, f5 dead-lettered.
func TestFollowedLaunchOutputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	const id = "b_followed"
	if err := e.Store.CreateBatch(ctx, id, "followed run", at); err != nil {
		t.Fatal(err)
	}
	job := func(n int) store.NewJob {
		agent := fmt.Sprint(800 + n)
		return store.NewJob{ID: fmt.Sprint("f", n), SID: testenv.SID, AgentNo: agent, Payload: launchtest.Job(agent).Body(), Batch: id}
	}
	e.SettleFollowed(job(1), at, store.LaunchPending, store.LaunchPending, store.LaunchLaunched)
	e.SettleFollowed(job(2), at, store.LaunchRejected)
	e.SettleFollowed(job(3), at)
	e.Settle(job(4), store.FinishSucceeded, "RCS902", false, at)
	e.Settle(job(5), store.FinishDeadLettered, "RCS904", false, at)
	e.mustRun(0, "batch", "close", id)
	want := map[string]string{"f1": "launched", "f2": "rejected", "f3": "pending", "f4": "", "f5": ""}

	b := e.batchStatus(id)
	if w := map[string]int{"pending": 1, "launched": 1, "rejected": 1, "suspended": 0, "unknown": 0}; !maps.Equal(b.LaunchStates, w) {
		t.Errorf("batch status --json launch_states %v, want %v", b.LaunchStates, w)
	}
	if r := e.mustRun(0, "batch", "status", id); !strings.Contains(r.stdout,
		"launch states  pending 1, launched 1, rejected 1, suspended 0, unknown 0 (3 followed)") {
		t.Errorf("batch status:\n%s", r.stdout)
	}
	if r := e.mustRun(0, "batch", "list"); !strings.Contains(r.stdout, "LAUNCHED") || !strings.Contains(r.stdout, " 1/3 ") {
		t.Errorf("batch list:\n%s", r.stdout)
	}

	recs, err := csv.NewReader(strings.NewReader(e.mustRun(0, "batch", "report", id).stdout)).ReadAll()
	if err != nil || len(recs) != len(want)+1 || recs[0][7] != "launch_state" {
		t.Fatalf("CSV report: %v (%v)", recs, err)
	}
	for _, rec := range recs[1:] {
		if rec[7] != want[rec[0]] {
			t.Errorf("CSV report %s: launch_state %q, want %q", rec[0], rec[7], want[rec[0]])
		}
	}
	for _, line := range strings.Split(strings.TrimSuffix(e.mustRun(0, "batch", "report", id, "--format", "jsonl").stdout, "\n"), "\n") {
		var row struct {
			JobID       string  `json:"job_id"`
			LaunchState *string `json:"launch_state"`
		}
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatal(err)
		}
		if got := row.LaunchState; (got == nil) != (want[row.JobID] == "") || (got != nil && *got != want[row.JobID]) {
			t.Errorf("JSONL report: %s; want launch_state %q, left out when not followed", line, want[row.JobID])
		}
	}

	st := e.mustRun(0, "status", "f1").stdout
	for _, s := range []string{"launch state launched since", "3 polls): final, following ended", "last poll at", "RCS200"} {
		if !strings.Contains(st, s) {
			t.Errorf("status f1 lacks %q:\n%s", s, st)
		}
	}
	if st := e.mustRun(0, "status", "f3").stdout; !strings.Contains(st, "launch state pending since") || !strings.Contains(st, "first poll at") {
		t.Errorf("status f3:\n%s", st)
	}
	if st := e.mustRun(0, "status", "f4").stdout; strings.Contains(st, "launch state") {
		t.Errorf("status of a job not followed shows a launch state:\n%s", st)
	}
	var rec struct {
		LaunchState string `json:"launch_state"`
		Follow      *struct {
			State string `json:"launch_state"`
			Polls int    `json:"polls"`
			Ended string `json:"ended"`
		} `json:"launch_follow"`
	}
	if err := json.Unmarshal([]byte(e.mustRun(0, "status", "f1", "--json").stdout), &rec); err != nil ||
		rec.LaunchState != "launched" || rec.Follow == nil || rec.Follow.Polls != 3 || rec.Follow.Ended != "final" {
		t.Errorf("status f1 --json: %+v (%v)", rec, err)
	}
	if r := e.mustRun(0, "status", "--agent", "802").stdout; !strings.Contains(r, "LAUNCH") || !strings.HasSuffix(strings.TrimSpace(r), "rejected") {
		t.Errorf("status --agent 802:\n%s", r)
	}

	if r := e.mustRun(0, "results").stdout; !strings.Contains(r, "launch         job f1  agent 801  pending -> launched") ||
		!strings.Contains(r, "launch         job f2  agent 802  pending -> rejected") {
		t.Errorf("results:\n%s", r)
	}
	var changes []string
	for _, line := range strings.Split(strings.TrimSuffix(e.mustRun(0, "results", "--json").stdout, "\n"), "\n") {
		var res struct {
			JobID               string `json:"job_id"`
			Outcome             string `json:"outcome"`
			LaunchState         string `json:"launch_state"`
			PreviousLaunchState string `json:"previous_launch_state"`
		}
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			t.Fatalf("results --json: %v\n%s", err, line)
		}
		if res.Outcome == "launch_state" {
			changes = append(changes, res.JobID+" "+res.PreviousLaunchState+"->"+res.LaunchState)
		}
	}
	slices.Sort(changes)
	if w := []string{"f1 pending->launched", "f2 pending->rejected"}; !slices.Equal(changes, w) {
		t.Errorf("results --json launch_state entries %v, want %v", changes, w)
	}
}
