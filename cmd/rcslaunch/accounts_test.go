package main

import (
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/cli"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
)

// sidLine is the fixture job of agentNo as a JSONL line with id (when not
// empty) for the account sid.
func sidLine(id, agentNo, sid string) string {
	m := launchtest.Map(agentNo)
	m["sid"] = sid
	if id != "" {
		m["id"] = id
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// noSID is the environment change of a producer without KALEYRA_SID.
var noSID = map[string]string{"KALEYRA_SID": unset}

// TestEnqueueAccountsAndPriority: enqueue takes --priority (a bad one is a
// usage error naming the flag) and jobs that name their accounts without
// KALEYRA_SID; a job naming none is refused naming the field sid and
// KALEYRA_SID.
func TestEnqueueAccountsAndPriority(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	for _, args := range [][]string{{"enqueue", "--priority", "urgent"}, {"enqueue", "--file", "x.jsonl", "--priority", "HIGHEST"}} {
		if r := e.runWith(nil, launchtest.Line("", "900", nil), args...); r.code != cli.ExitUsage || !strings.Contains(r.err, "--priority") {
			t.Errorf("want exit 2 naming --priority:\n%s", r)
		}
	}
	r := e.runWith(noSID, launchtest.Line("", "900", nil), "enqueue", "--json")
	if s := parseSummary(t, r); r.code != cli.ExitFailed || s.Invalid != 1 || len(s.Errors) != 1 || s.Errors[0].Field != "sid" ||
		!strings.Contains(s.Errors[0].Reason, "KALEYRA_SID") {
		t.Errorf("a job without an account: want exit 1 and an error of field sid naming KALEYRA_SID:\n%s", r)
	}
	if r := e.runWith(noSID, launchtest.Line("", "900", nil), "enqueue", "--dry-run"); r.code != cli.ExitFailed ||
		!strings.Contains(r.err, "sid: is required") {
		t.Errorf("dry run of a job without an account:\n%s", r)
	}
	r = e.runWith(noSID, sidLine("", "901", "ACC_ONE"), "enqueue", "--priority", "high", "--json")
	if s := parseSummary(t, r); r.code != 0 || s.Enqueued != 1 {
		t.Fatalf("one job of its own account:\n%s", r)
	}
	var one struct {
		JobID string `json:"job_id"`
	}
	_ = json.Unmarshal([]byte(r.stdout), &one)
	if rec := e.statusJSON(one.JobID); rec.SID != "ACC_ONE" {
		t.Errorf("the job's record names %q, want ACC_ONE", rec.SID)
	}
	file := e.writeFile("accounts.jsonl", sidLine("", "902", "ACC_ONE"), sidLine("", "903", "ACC_TWO"))
	if s := parseSummary(t, e.runWith(noSID, "", "enqueue", "--file", file, "--priority", "low", "--json")); s.Enqueued != 2 {
		t.Errorf("a file of two accounts: %+v", s)
	}
}

// TestEnqueueRowPriorityCLI: a row's priority (CSV column or JSONL field)
// wins over --priority; a bad one is an invalid row naming the field and the
// line.
func TestEnqueueRowPriorityCLI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	if err := queue.Serve(t.Context(), e.Store.Redis(), "claim", []string{"ACC_ONE"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	fields := "agent_no,optin_description,trigger_description,interactions_description,optout_description,agent_access_instructions"
	row := ",Opt in,START,Updates,Reply STOP,Test number"
	file := e.writeFile("prio.csv", "id,sid,priority,"+fields, "p1,ACC_ONE,high,920"+row, "p2,ACC_ONE,,921"+row)
	if s := parseSummary(t, e.runWith(noSID, "", "enqueue", "--file", file, "--priority", "low", "--json")); s.Enqueued != 2 {
		t.Fatalf("enqueue: %+v", s)
	}
	for id, q := range map[string]string{"p1": "launch:ACC_ONE:high", "p2": "launch:ACC_ONE:low"} {
		if got, err := e.Store.JobQueue(t.Context(), id); err != nil || got != q {
			t.Errorf("%s is on %q (%v), want %s", id, got, err, q)
		}
	}
	bad := e.writeFile("bad.csv", "sid,priority,"+fields, "ACC_ONE,high,922"+row, "ACC_ONE,urgent,923"+row)
	r := e.runWith(noSID, "", "enqueue", "--file", bad, "--json")
	if s := parseSummary(t, r); r.code != cli.ExitFailed || s.Invalid != 1 || len(s.Errors) != 1 || s.Errors[0].Line != 3 ||
		s.Errors[0].Field != "priority" || !strings.Contains(s.Errors[0].Reason, `must be high, default or low`) {
		t.Errorf("a bad priority: want exit 1 and line 3, field priority:\n%s", r)
	}
}

// settleLetters makes, without a worker, dead letters in batch b_acc of
// agent 910: acc-1 (ACC_ONE, UNKNOWN_ACCOUNT), acc-2 (ACC_TWO, RCS904),
// acc-3 (ACC_TWO, UNKNOWN_ACCOUNT), and a success acc-4 (ACC_TWO).
func settleLetters(t *testing.T, e *env) {
	t.Helper()
	at := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	if err := e.Store.CreateBatch(t.Context(), "b_acc", "accounts", at); err != nil {
		t.Fatal(err)
	}
	for i, j := range []struct{ id, sid, code string }{
		{"acc-1", "ACC_ONE", "UNKNOWN_ACCOUNT"}, {"acc-2", "ACC_TWO", "RCS904"}, {"acc-3", "ACC_TWO", "UNKNOWN_ACCOUNT"}, {"acc-4", "ACC_TWO", ""},
	} {
		job := launchtest.Job("910")
		job.Launch.LaunchName = j.id
		kind := store.FinishDeadLettered
		if j.code == "" {
			kind = store.FinishSucceeded
		}
		e.Settle(store.NewJob{ID: j.id, SID: j.sid, AgentNo: "910", Payload: job.Body(), Batch: "b_acc"}, kind, j.code, false,
			at.Add(time.Duration(i)*time.Second))
	}
}

// TestFilterBySIDCLI: --sid on dlq list, retry, delete and export, status
// --agent and batch report; the SID in human and JSON output.
func TestFilterBySIDCLI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	settleLetters(t, e)

	if got := ids(e.dlqList("--sid", "ACC_TWO")); !sameStrings(got, "acc-3", "acc-2") {
		t.Errorf("dlq list --sid ACC_TWO: %v", got)
	}
	if l := e.dlqList("--sid", "ACC_TWO", "--code", "unknown_account"); len(l) != 1 || l[0].JobID != "acc-3" || l[0].SID != "ACC_TWO" {
		t.Errorf("dlq list --sid --code: %+v", l)
	}
	r := e.mustRun(0, "dlq", "list")
	if !strings.Contains(r.stdout, "SID") || !strings.Contains(r.stdout, "ACC_ONE") {
		t.Errorf("dlq list shows no SID column:\n%s", r)
	}
	if r := e.mustRun(0, "dlq", "show", "acc-1"); !strings.Contains(r.stdout, "sid:            ACC_ONE") {
		t.Errorf("dlq show:\n%s", r)
	}
	if r := e.mustRun(0, "status", "acc-4"); !strings.Contains(r.stdout, "sid ACC_TWO") {
		t.Errorf("status:\n%s", r)
	}
	r = e.mustRun(0, "status", "--agent", "910", "--sid", "ACC_ONE", "--json")
	var recs []statusRecord
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil || len(recs) != 1 || recs[0].JobID != "acc-1" {
		t.Errorf("status --agent --sid ACC_ONE (%v):\n%s", err, r)
	}
	if r := e.run("status", "--agent", "910", "--sid", "NOBODY"); r.code != 1 || !strings.Contains(r.err, `account "NOBODY"`) {
		t.Errorf("status --agent of an account without jobs:\n%s", r)
	}
	e.mustRun(2, "status", "acc-1", "--sid", "ACC_ONE")

	r = e.mustRun(0, "batch", "report", "b_acc", "--sid", "ACC_TWO")
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil || len(rows) != 4 || rows[0][len(rows[0])-1] != "sid" || rows[1][0] != "acc-2" || rows[3][len(rows[3])-1] != "ACC_TWO" {
		t.Errorf("batch report --sid ACC_TWO (%v):\n%s", err, r)
	}
	if r := e.mustRun(0, "dlq", "export", "--sid", "ACC_ONE"); strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, `"sid":"ACC_ONE"`) {
		t.Errorf("dlq export --sid ACC_ONE:\n%s", r)
	}

	if r := e.run("dlq", "delete", "--sid", "ACC_TWO"); r.code != cli.ExitUsage || !strings.Contains(r.err, "--yes") {
		t.Errorf("dlq delete --sid without --yes off a terminal:\n%s", r)
	}
	if r := e.mustRun(0, "dlq", "retry", "--sid", "ACC_TWO", "--dry-run"); !strings.Contains(r.stdout, "acc-2") || strings.Contains(r.stdout, "acc-1") ||
		!strings.Contains(r.stdout, "retried 2") {
		t.Errorf("dlq retry --sid --dry-run:\n%s", r)
	}
	if r := e.mustRun(0, "dlq", "retry", "--sid", "ACC_TWO", "--code", "UNKNOWN_ACCOUNT"); !strings.Contains(r.stdout, "retried 1") {
		t.Errorf("dlq retry --sid --code:\n%s", r)
	}
	if r := e.mustRun(0, "dlq", "delete", "--sid", "ACC_TWO", "--yes"); !strings.Contains(r.stdout, "deleted 1") {
		t.Errorf("dlq delete --sid --yes:\n%s", r)
	}
	if got := ids(e.dlqList()); !sameStrings(got, "acc-1") {
		t.Errorf("left: %v", got)
	}
}

// TestResultsBySIDCLI: results --sid prints the entries of one account's
// jobs only, with --follow too; a bad SID is a usage error naming --sid.
func TestResultsBySIDCLI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	settleLetters(t, e)

	jobsOf := func(out string) []string {
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var re resultEntry
			if err := json.Unmarshal([]byte(line), &re); err != nil {
				t.Fatalf("results --json line %q: %v", line, err)
			}
			got = append(got, re.JobID)
		}
		return got
	}
	if got := jobsOf(e.mustRun(0, "results", "--sid", "ACC_TWO", "--json").stdout); !sameStrings(got, "acc-2", "acc-3", "acc-4") {
		t.Errorf("results --sid ACC_TWO: %v", got)
	}
	if r := e.mustRun(0, "results", "--sid", "ACC_ONE"); strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, "acc-1") {
		t.Errorf("results --sid ACC_ONE:\n%s", r)
	}
	if r := e.mustRun(0, "results", "--sid", "NOBODY"); r.stdout != "" {
		t.Errorf("results of an account without jobs:\n%s", r)
	}
	for _, bad := range []string{"ACC ONE", strings.Repeat("A", 129)} {
		if r := e.run("results", "--sid", bad); r.code != cli.ExitUsage || !strings.Contains(r.err, "--sid") {
			t.Errorf("results --sid %q: want exit 2 naming --sid:\n%s", bad, r)
		}
	}

	follow := e.start(nil, "results", "--follow", "--sid", "ACC_ONE", "--json")
	waitFor(t, 10*time.Second, "results --follow --sid to print acc-1", func() bool {
		return strings.Contains(follow.stdout.String(), "acc-1")
	})
	at := time.Now().Truncate(time.Millisecond)
	for i, j := range []struct{ id, sid string }{{"acc-5", "ACC_TWO"}, {"acc-6", "ACC_ONE"}} {
		job := launchtest.Job("911")
		job.Launch.LaunchName = j.id
		e.Settle(store.NewJob{ID: j.id, SID: j.sid, AgentNo: "911", Payload: job.Body()}, store.FinishSucceeded, "RCS902", false,
			at.Add(time.Duration(i)*time.Second))
	}
	waitFor(t, 10*time.Second, "results --follow --sid to print acc-6", func() bool {
		return strings.Contains(follow.stdout.String(), "acc-6")
	})
	follow.stop()
	if got := jobsOf(follow.stdout.String()); !sameStrings(got, "acc-1", "acc-6") {
		t.Errorf("results --follow --sid ACC_ONE: %v", got)
	}
}

// TestFailedReportKeepsAccounts: batch report --failed and dlq export write
// each job's SID, so that enqueue --file of them, without KALEYRA_SID,
// sends each job to its own account again.
func TestFailedReportKeepsAccounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	settleLetters(t, e)
	failed := e.mustRun(0, "batch", "report", "b_acc", "--failed").stdout
	if export := e.mustRun(0, "dlq", "export").stdout; strings.Count(export, "\n") != 3 {
		t.Fatalf("dlq export:\n%s", export)
	}
	e.mustRun(0, "dlq", "delete", "--all", "--yes")
	r := e.runWith(noSID, "", "enqueue", "--file", e.writeFile("failed.jsonl", strings.Split(strings.TrimSpace(failed), "\n")...), "--json")
	if s := parseSummary(t, r); r.code != 0 || s.Enqueued != 3 {
		t.Fatalf("enqueue --file of batch report --failed, without KALEYRA_SID:\n%s", r)
	}
	for id, sid := range map[string]string{"acc-1": "ACC_ONE", "acc-2": "ACC_TWO", "acc-3": "ACC_TWO"} {
		if rec := e.statusJSON(id); rec.SID != sid || rec.State != string(store.StateQueued) {
			t.Errorf("%s enqueued again: sid %q, state %s; want %s, queued", id, rec.SID, rec.State, sid)
		}
	}
}

func sameStrings(got []string, want ...string) bool {
	return strings.Join(got, ",") == strings.Join(want, ",")
}
