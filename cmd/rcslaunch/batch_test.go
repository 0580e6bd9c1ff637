package main

// End-to-end tests of batches: a bulk run followed with `batch status`,
// checked at every look against the results stream (the record of every
// outcome), reported with `batch report`, and its failures enqueued again.

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
	"github.com/rcslaunch/rcslaunch/ops"
)

// batchStatusJSON is `batch status --json`, as the contract defines it.
type batchStatusJSON struct {
	BatchID            string         `json:"batch_id"`
	Name               string         `json:"name"`
	Total              int            `json:"total"`
	Queued             int            `json:"queued"`
	Running            int            `json:"running"`
	Retrying           int            `json:"retrying"`
	Succeeded          int            `json:"succeeded"`
	DeadLettered       int            `json:"dead_lettered"`
	DeadLetteredByCode map[string]int `json:"dead_lettered_by_code"`
	CreatedAt          time.Time      `json:"created_at"`
	FinishedAt         *time.Time     `json:"finished_at"`
	LaunchStates       map[string]int `json:"launch_states"`
}

// contractBatchKeys are the contract's members of `batch status --json`,
// with launch_states, one of its additions for the launch follow-up.
var contractBatchKeys = []string{"batch_id", "name", "total", "queued", "running", "retrying", "succeeded",
	"dead_lettered", "dead_lettered_by_code", "created_at", "finished_at", "launch_states"}

// parseBatchStatus checks that out is one JSON object with exactly the
// contract's members, RFC 3339 times and finished_at null or a time.
func parseBatchStatus(t testing.TB, out string) batchStatusJSON {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("batch status --json is not a JSON object: %v\n%s", err, out)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("batch status --json printed more than one JSON value:\n%s", out)
	}
	if keys := sortedKeys(raw); !slices.Equal(keys, sortedStrings(contractBatchKeys)) {
		t.Fatalf("batch status --json members %v, the contract's are %v", keys, sortedStrings(contractBatchKeys))
	}
	for _, k := range []string{"created_at", "finished_at"} {
		if raw[k] == nil && k == "finished_at" {
			continue
		}
		s, ok := raw[k].(string)
		if _, err := time.Parse(time.RFC3339, s); !ok || err != nil {
			t.Fatalf("%s is %v, want an RFC 3339 time", k, raw[k])
		}
	}
	if _, ok := raw["dead_lettered_by_code"].(map[string]any); !ok {
		t.Fatalf("dead_lettered_by_code is %v, want an object", raw["dead_lettered_by_code"])
	}
	if ls, ok := raw["launch_states"].(map[string]any); !ok || !slices.Equal(sortedKeys(ls), sortedStrings(launchStateNames)) {
		t.Fatalf("launch_states is %v, want an object with a count for each of %v", raw["launch_states"], launchStateNames)
	}
	var b batchStatusJSON
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sortedStrings(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func (e *env) batchStatus(id string) batchStatusJSON {
	e.t.Helper()
	return parseBatchStatus(e.t, e.mustRun(0, "batch", "status", id, "--json").stdout)
}

// streamTally is what the results stream holds for one batch.
type streamTally struct {
	entries   int
	succeeded int
	dead      int
	byCode    map[string]int // dead letters
	jobs      map[string][]store.Result
}

// batchStream reads the whole results stream from Redis and keeps the
// entries of batch.
func (e *env) batchStream(batch string) streamTally {
	e.t.Helper()
	msgs, err := e.Redis.Client().XRange(context.Background(), store.ResultsStream, "-", "+").Result()
	if err != nil {
		e.t.Fatal(err)
	}
	st := streamTally{byCode: map[string]int{}, jobs: map[string][]store.Result{}}
	for _, m := range msgs {
		str := func(k string) string { v, _ := m.Values[k].(string); return v }
		if str("batch_id") != batch {
			continue
		}
		if str("outcome") == store.OutcomeLaunchState {
			continue // a followed launch's change of state, not an outcome
		}
		st.entries++
		r := store.Result{JobID: str("job_id"), AgentNo: str("agent_no"), Outcome: str("outcome"), Code: str("code"),
			Message: str("message"), AgentLaunchID: str("agent_launch_id")}
		fmt.Sscan(str("attempts"), &r.Attempts)
		st.jobs[r.JobID] = append(st.jobs[r.JobID], r)
		if r.Outcome == string(store.StateSucceeded) {
			st.succeeded++
		} else {
			st.dead++
			st.byCode[r.Code]++
		}
	}
	return st
}

// checkAgainstStream is the acceptance check of one look: the counters add
// up to the total, and no count of finished jobs (in all, by outcome, by
// code) exceeds what the results stream holds, read after the counters.
func checkAgainstStream(t *testing.T, b batchStatusJSON, s streamTally, total int) {
	t.Helper()
	if sum := b.Queued + b.Running + b.Retrying + b.Succeeded + b.DeadLettered; sum != b.Total || b.Total != total {
		t.Fatalf("counters %+v sum to %d, total %d, want %d", b, sum, b.Total, total)
	}
	if b.Succeeded+b.DeadLettered > s.entries || b.Succeeded > s.succeeded || b.DeadLettered > s.dead {
		t.Fatalf("status says %d succeeded + %d dead-lettered; the results stream, read after it, has %d + %d",
			b.Succeeded, b.DeadLettered, s.succeeded, s.dead)
	}
	n := 0
	for code, c := range b.DeadLetteredByCode {
		n += c
		if c > s.byCode[code] {
			t.Fatalf("status says %d dead letters with %s; the results stream has %d", c, code, s.byCode[code])
		}
	}
	if n != b.DeadLettered {
		t.Fatalf("dead_lettered_by_code %v sums to %d, dead_lettered %d", b.DeadLetteredByCode, n, b.DeadLettered)
	}
}

// checkFinalAgainstStream: at the end the counts equal the stream's, each
// job has one entry, and the batch is finished.
func checkFinalAgainstStream(t *testing.T, b batchStatusJSON, s streamTally, total int) {
	t.Helper()
	checkAgainstStream(t, b, s, total)
	if b.FinishedAt == nil || b.FinishedAt.Before(b.CreatedAt) {
		t.Fatalf("finished_at %v (created %v)", b.FinishedAt, b.CreatedAt)
	}
	if b.Succeeded != s.succeeded || b.DeadLettered != s.dead || s.entries != total || len(s.jobs) != total {
		t.Fatalf("at the end: status %d succeeded, %d dead-lettered; the stream %d + %d in %d entries for %d jobs; total %d",
			b.Succeeded, b.DeadLettered, s.succeeded, s.dead, s.entries, len(s.jobs), total)
	}
	for code, c := range s.byCode {
		if b.DeadLetteredByCode[code] != c {
			t.Fatalf("dead letters with %s: status %d, stream %d", code, b.DeadLetteredByCode[code], c)
		}
	}
	for id, rs := range s.jobs {
		if len(rs) != 1 {
			t.Fatalf("job %s has %d results stream entries", id, len(rs))
		}
	}
}

// mixedBatch scripts the simulator for a batch of n jobs (agents from base)
// and writes its file: a fifth get RCS502 once or twice and then launch,
// a tenth each RCS904 and RCS601, a tenth RCS502 every time; the rest
// launch at once. It returns the file and the expected outcome per agent.
func (e *env) mixedBatch(name string, base, n int) (string, map[string]string) {
	e.t.Helper()
	want := map[string]string{}
	lines := make([]string, n)
	for i := range n {
		agent := fmt.Sprint(base + i)
		lines[i] = launchtest.Line("", agent, nil)
		switch i % 10 {
		case 1, 2:
			for range 1 + i%2 {
				e.Sim.Script(agent, sim.StepGateway)
			}
			want[agent] = "succeeded RCS902"
		case 3:
			e.Sim.Script(agent, sim.StepMissingFields)
			want[agent] = "dead_lettered RCS904"
		case 4:
			e.Sim.Script(agent, sim.StepDisabled)
			want[agent] = "dead_lettered RCS601"
		case 5:
			for range e2eRetryMax + 1 {
				e.Sim.Script(agent, sim.StepGateway)
			}
			want[agent] = "dead_lettered RCS502"
		default:
			want[agent] = "succeeded RCS902"
		}
	}
	return e.writeFile(name, lines...), want
}

// TestBatchAcceptance runs a mixed batch of 300 jobs through two worker
// processes, polling `batch status --json` all along; then reports it and
// enqueues its failures again.
func TestBatchAcceptance(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	e := newEnv(t, sim.Config{Latency: 5 * time.Millisecond})
	const n = 300
	file, want := e.mixedBatch("onboarding.jsonl", 70000, n)

	r := e.mustRun(0, "enqueue", "--file", file, "--batch-name", "acceptance run", "--json")
	s := parseSummary(t, r)
	if s.Enqueued != n || s.BatchID == nil {
		t.Fatalf("enqueue:\n%s", r)
	}
	id := *s.BatchID
	b := e.batchStatus(id)
	if b.BatchID != id || b.Name != "acceptance run" || b.Total != n || b.Queued != n || b.FinishedAt != nil ||
		len(b.DeadLetteredByCode) != 0 || time.Since(b.CreatedAt) > time.Minute {
		t.Fatalf("before any worker: %+v", b)
	}
	if r := e.mustRun(0, "batch", "status", id); !strings.Contains(r.stdout, "not started yet") || !strings.Contains(r.stdout, "acceptance run") {
		t.Errorf("human status before any worker:\n%s", r)
	}

	// A watcher, from the start: it waits for the end and exits 1 (there
	// are dead letters), printing lines on its non-terminal stderr.
	watcher := e.start(nil, "batch", "status", id, "--watch", "--json")
	mod := map[string]string{"KALEYRA_RATE_LIMIT": "120", "KALEYRA_RATE_BURST": "5", "WORKER_CONCURRENCY": "4"}
	w1, w2 := e.startWorker(mod), e.startWorker(mod)

	polls, midway := 0, 0
	deadline := time.Now().Add(90 * time.Second)
	for {
		b = e.batchStatus(id)
		st := e.batchStream(id) // after the status: it can only have grown
		checkAgainstStream(t, b, st, n)
		polls++
		if d := b.Succeeded + b.DeadLettered; d > 0 && d < n {
			midway++
		}
		if b.FinishedAt != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch not finished after 90s: %+v", b)
		}
	}
	took := time.Since(begin)
	st := e.batchStream(id)
	checkFinalAgainstStream(t, b, st, n)
	t.Logf("%d polls of `batch status --json`, %d while the batch ran; finished %v after the test began", polls, midway, took.Round(time.Millisecond))
	if midway < 3 {
		t.Errorf("only %d polls saw the batch half done: the checks proved little", midway)
	}
	wantDead, dead := map[string]int{}, 0
	for _, w := range want {
		if c, ok := strings.CutPrefix(w, "dead_lettered "); ok {
			wantDead[c]++
			dead++
		}
	}
	if !reflect.DeepEqual(b.DeadLetteredByCode, wantDead) || b.DeadLettered != dead || b.Succeeded != n-dead {
		t.Errorf("at the end %+v, want %d dead letters %v", b, dead, wantDead)
	}

	// The watcher ended with the batch: exit 1, the final status as JSON.
	select {
	case <-watcher.done:
	case <-time.After(10 * time.Second):
		t.Fatal("batch status --watch still running after the batch finished")
	}
	if watcher.code != 1 {
		t.Errorf("batch status --watch exited %d for a batch with dead letters, want 1\n%s", watcher.code, watcher.stderr.String())
	}
	if wb := parseBatchStatus(t, watcher.stdout.String()); wb.FinishedAt == nil || wb.DeadLettered != b.DeadLettered || wb.Succeeded != b.Succeeded {
		t.Errorf("watcher's final status %+v, want %+v", wb, b)
	}
	if lines := strings.Count(watcher.stderr.String(), id); lines < 2 || !strings.Contains(watcher.stderr.String(), "finished") {
		t.Errorf("watcher printed %d progress lines:\n%s", lines, watcher.stderr.String())
	}

	// Human output: times, codes, rate.
	hr := e.mustRun(0, "batch", "status", id)
	for _, s := range []string{"created", "started", "finished", "took", "RCS904", "RCS502", "RCS601", "jobs/s", fmt.Sprintf("%d of %d done", n, n)} {
		if !strings.Contains(hr.stdout, s) {
			t.Errorf("human status lacks %q:\n%s", s, hr.stdout)
		}
	}
	var list []batchStatusJSON
	if err := json.Unmarshal([]byte(e.mustRun(0, "batch", "list", "--json").stdout), &list); err != nil || len(list) != 1 || list[0].BatchID != id || list[0].Total != n {
		t.Errorf("batch list --json: %+v (%v)", list, err)
	}
	if r := e.mustRun(0, "batch", "list"); !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "acceptance run") {
		t.Errorf("batch list:\n%s", r)
	}

	// The report lists every job once, as the stream has it.
	checkReport := func(rows []ops.ReportRow) {
		t.Helper()
		seen := map[string]bool{}
		for _, row := range rows {
			if seen[row.JobID] {
				t.Fatalf("report lists %s twice", row.JobID)
			}
			seen[row.JobID] = true
			rs := st.jobs[row.JobID]
			if len(rs) != 1 {
				t.Fatalf("report row %+v: no results entry", row)
			}
			res := rs[0]
			if row.AgentNo != res.AgentNo || row.Outcome != res.Outcome || row.Code != res.Code || row.Message != res.Message ||
				row.AgentLaunchID != res.AgentLaunchID || row.Attempts != res.Attempts {
				t.Fatalf("report row %+v, results entry %+v", row, res)
			}
			if got := row.Outcome + " " + row.Code; got != want[row.AgentNo] {
				t.Fatalf("agent %s: %s, want %s", row.AgentNo, got, want[row.AgentNo])
			}
		}
		if len(rows) != n {
			t.Fatalf("report has %d rows, want %d", len(rows), n)
		}
	}
	jr := e.mustRun(0, "batch", "report", id, "--format", "jsonl")
	var rows []ops.ReportRow
	for i, line := range strings.Split(strings.TrimSuffix(jr.stdout, "\n"), "\n") {
		var raw map[string]any
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			t.Fatalf("report line %d: %v", i+1, err)
		}
		if keys := sortedKeys(raw); !slices.Equal(keys, sortedStrings(append(slices.Clone(contractReportColumns), "sid"))) {
			t.Fatalf("report line %d has members %v", i+1, keys)
		}
		var row ops.ReportRow
		_ = json.Unmarshal([]byte(line), &row)
		rows = append(rows, row)
	}
	checkReport(rows)
	cr := e.mustRun(0, "batch", "report", id) // CSV by default
	recs, err := csv.NewReader(strings.NewReader(cr.stdout)).ReadAll()
	if err != nil || len(recs) != n+1 || !slices.Equal(recs[0], append(slices.Clone(contractReportColumns), "launch_state", "sid")) {
		t.Fatalf("CSV report: %d records, header %v (%v)", len(recs), recs[0], err)
	}
	rows = rows[:0]
	for _, rec := range recs[1:] {
		row := ops.ReportRow{JobID: rec[0], AgentNo: rec[1], Outcome: rec[2], Code: rec[3], Message: rec[4], AgentLaunchID: rec[5]}
		fmt.Sscan(rec[6], &row.Attempts)
		rows = append(rows, row)
	}
	checkReport(rows)

	// --failed: the dead letters as jobs enqueue takes; still in the store,
	// they are reported dead-lettered, nothing is enqueued or called.
	fr := e.mustRun(0, "batch", "report", id, "--failed")
	failedLines := strings.Split(strings.TrimSuffix(fr.stdout, "\n"), "\n")
	if len(failedLines) != b.DeadLettered {
		t.Fatalf("report --failed: %d lines, want %d", len(failedLines), b.DeadLettered)
	}
	failed := e.writeFile("failed.jsonl", failedLines...)
	calls := e.Sim.Stats().Calls
	r = e.run("enqueue", "--file", failed, "--json")
	s = parseSummary(t, r)
	if r.code != 1 || s.DeadLettered != b.DeadLettered || s.Enqueued != 0 || s.Invalid != 0 || len(s.Errors) != 0 {
		t.Fatalf("enqueue of report --failed: want exit 1, %d dead_lettered and nothing else\n%s", b.DeadLettered, r)
	}
	if again := e.batchStatus(*s.BatchID); again.Total != 0 || again.FinishedAt == nil {
		t.Errorf("a run of known jobs only: batch %+v, want empty and finished", again)
	}
	if !reflect.DeepEqual(e.batchStatus(id), b) {
		t.Errorf("the first batch changed when its failures were offered again")
	}

	// After dlq delete they leave the batch, and enqueue fresh into a new
	// one, which (the simulator's scripts used up) succeeds in full.
	if r := e.mustRun(0, "dlq", "delete", "--all", "--yes"); !strings.Contains(r.stdout, fmt.Sprintf("deleted %d", b.DeadLettered)) {
		t.Fatalf("dlq delete:\n%s", r)
	}
	after := e.batchStatus(id)
	if after.Total != n-b.DeadLettered || after.DeadLettered != 0 || len(after.DeadLetteredByCode) != 0 ||
		after.Succeeded != b.Succeeded || after.FinishedAt == nil || !after.FinishedAt.Equal(*b.FinishedAt) {
		t.Fatalf("after dlq delete: %+v", after)
	}
	if hr := e.mustRun(0, "batch", "status", id); !strings.Contains(hr.stdout, fmt.Sprintf("%d deleted", b.DeadLettered)) {
		t.Errorf("human status does not say how many were deleted:\n%s", hr.stdout)
	}
	r = e.mustRun(0, "enqueue", "--file", failed, "--batch-name", "second chance", "--json")
	s = parseSummary(t, r)
	if s.Enqueued != b.DeadLettered || s.DeadLettered != 0 {
		t.Fatalf("enqueue after dlq delete:\n%s", r)
	}
	second := *s.BatchID
	wr := e.mustRun(0, "batch", "status", second, "--watch") // exit 0: nothing dead-lettered
	if !strings.Contains(wr.stdout, "second chance") || !strings.Contains(wr.stdout, fmt.Sprintf("succeeded      %d", b.DeadLettered)) {
		t.Errorf("watch of the second run:\n%s", wr)
	}
	final := e.batchStatus(second)
	checkFinalAgainstStream(t, final, e.batchStream(second), b.DeadLettered)
	if got := e.Sim.Stats().Calls - calls; got != b.DeadLettered {
		t.Errorf("%d calls for the second run of %d jobs", got, b.DeadLettered)
	}
	if r := e.mustRun(0, "batch", "report", id, "--format", "jsonl"); strings.Count(r.stdout, "\n") != n-b.DeadLettered {
		t.Errorf("the first batch's report after its dead letters left: %d rows, want %d", strings.Count(r.stdout, "\n"), n-b.DeadLettered)
	}
	w1.stop()
	w2.stop()
	t.Logf("whole test %v", time.Since(begin).Round(time.Millisecond))
}

// TestBatchUsage: exit statuses and help of the batch commands.
func TestBatchUsage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	for _, args := range [][]string{
		{"batch"}, {"batch", "frobnicate"}, {"batch", "status"}, {"batch", "status", "a", "b"},
		{"batch", "report"}, {"batch", "report", "x", "--format", "xml"}, {"batch", "report", "x", "--failed", "--format", "csv"},
		{"batch", "list", "extra"}, {"batch", "list", "--no-such-flag"},
	} {
		if r := e.run(args...); r.code != 2 {
			t.Errorf("want exit 2:\n%s", r)
		}
	}
	for _, args := range [][]string{{"batch", "status", "no-such-batch"}, {"batch", "status", "no-such-batch", "--json"},
		{"batch", "status", "no-such-batch", "--watch"}, {"batch", "report", "no-such-batch"}, {"batch", "report", "no-such-batch", "--failed"}} {
		r := e.run(args...)
		if r.code != 1 || !strings.Contains(r.err, "no-such-batch") || r.stdout != "" {
			t.Errorf("unknown batch: want exit 1 naming it, nothing on stdout\n%s", r)
		}
	}
	if r := e.mustRun(0, "batch", "list", "--json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("batch list --json of none: %q", r.stdout)
	}
	for _, args := range [][]string{{"batch"}, {"batch", "list"}, {"batch", "status"}, {"batch", "report"}} {
		r := e.runWith(map[string]string{"KALEYRA_SID": unset}, "", append(args, "--help")...)
		if r.code != 0 || !strings.Contains(r.stdout, "rcslaunch "+strings.Join(args, " ")) {
			t.Errorf("help:\n%s", r)
		}
	}
	if r := e.mustRun(0, "help"); !strings.Contains(r.stdout, "batch") {
		t.Errorf("help does not list batch:\n%s", r)
	}
	// --dry-run makes no batch; a run with invalid rows makes none either.
	good := e.writeFile("good.jsonl", launchtest.Line("", "71000", nil))
	e.mustRun(0, "enqueue", "--file", good, "--dry-run")
	bad := e.writeFile("bad.jsonl", launchtest.Line("", "71001", func(l map[string]any) { delete(l, "agent_no") }))
	e.mustRun(1, "enqueue", "--file", bad)
	if r := e.mustRun(0, "batch", "list", "--json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("a dry run or a refused file made a batch: %s", r.stdout)
	}
	// The default name is the file's.
	s := parseSummary(t, e.mustRun(0, "enqueue", "--file", good, "--json"))
	if b := e.batchStatus(*s.BatchID); b.Name != "good.jsonl" || b.Total != 1 {
		t.Errorf("batch of good.jsonl: %+v", b)
	}
}

// TestBatchWorkerKilled SIGKILLs one of two workers mid-batch: the jobs it
// held stay counted as running until asynq hands them to another worker
// (about a minute), and at the end the counts equal the results stream.
func TestBatchWorkerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for asynq's recovery of the killed worker's tasks (about a minute)")
	}
	t.Parallel()
	begin := time.Now()
	const latency = 400 * time.Millisecond
	e := newEnv(t, sim.Config{Latency: latency})
	const n = 120
	file, _ := e.mixedBatch("kill.jsonl", 72000, n)
	s := parseSummary(t, e.mustRun(0, "enqueue", "--file", file, "--json"))
	id := *s.BatchID
	mod := map[string]string{"KALEYRA_TIMEOUT": "2s", "KALEYRA_MAX_IN_FLIGHT": "8", "WORKER_CONCURRENCY": "4", "KALEYRA_RATE_LIMIT": "50"}
	a, b := e.startWorker(mod), e.startWorker(mod)

	look := func() batchStatusJSON {
		t.Helper()
		st := e.batchStatus(id)
		checkAgainstStream(t, st, e.batchStream(id), n)
		return st
	}
	waitFor(t, 60*time.Second, "a third of the batch", func() bool { st := look(); return st.Succeeded+st.DeadLettered >= n/3 })
	waitFor(t, 20*time.Second, "calls in flight", func() bool { return e.Sim.Stats().InFlight >= 2 })
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	killed := time.Now()
	atKill := look()
	t.Logf("killed a worker %v after the test began: %+v", killed.Sub(begin).Round(time.Millisecond), atKill)
	// A replacement whose recoverer starts after the kill finds the lost
	// tasks on its second pass (see TestFleetSIGKILLFreesSlots).
	c := e.startWorker(mod)

	var last batchStatusJSON
	waitFor(t, 150*time.Second, "the batch to finish after the kill", func() bool {
		last = look()
		time.Sleep(200 * time.Millisecond)
		return last.FinishedAt != nil
	})
	st := e.batchStream(id)
	checkFinalAgainstStream(t, last, st, n)
	rows := strings.Split(strings.TrimSuffix(e.mustRun(0, "batch", "report", id, "--format", "jsonl").stdout, "\n"), "\n")
	seen := map[string]bool{}
	for _, line := range rows {
		var row ops.ReportRow
		if err := json.Unmarshal([]byte(line), &row); err != nil || seen[row.JobID] || len(st.jobs[row.JobID]) != 1 {
			t.Fatalf("report row %q: %v, seen %v", line, err, seen[row.JobID])
		}
		seen[row.JobID] = true
	}
	if len(seen) != n {
		t.Fatalf("report lists %d jobs, want %d", len(seen), n)
	}
	// The kill cut calls off; their jobs, counted as running all the while,
	// were redelivered (their attempt logs say "lost") and counted once.
	cut := 0
	for _, c := range e.Sim.Calls() {
		if c.At.Before(killed) && c.Duration < latency {
			cut++
		}
	}
	lostJobs := 0
	for jobID := range st.jobs {
		log, err := e.Redis.Client().LRange(context.Background(), "rcslaunch:{rcslaunch:results}:attempts:"+jobID, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.Join(log, "\n"), `"outcome":"lost"`) {
			lostJobs++
		}
	}
	t.Logf("finished %v after the kill (%v in all); %d running at the kill, %d calls cut off, %d jobs with a lost attempt",
		time.Since(killed).Round(time.Millisecond), time.Since(begin).Round(time.Millisecond), atKill.Running, cut, lostJobs)
	if cut == 0 || lostJobs < cut {
		t.Errorf("the kill cut off %d calls and %d jobs logged a lost attempt: the redelivery was not exercised", cut, lostJobs)
	}
	b.stop()
	c.stop()
}

// TestEnqueueRepeatedRows: a file that holds some jobs more than once, in
// the same chunk and chunks apart, enqueues each job once: the first row
// is enqueued, the repeats are duplicates, every job keeps its record and
// is counted once in the batch. With --force after the jobs succeeded (and
// no worker running meanwhile), each is relaunched exactly once and its
// repeats are duplicates.
func TestEnqueueRepeatedRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	const unique = 150
	var lines []string
	for i := 0; i < unique; i++ {
		lines = append(lines, launchtest.Line(fmt.Sprintf("rep-%d", i), fmt.Sprint(70000+i), nil))
	}
	// Repeats: next to the original (one chunk), and a few chunks away.
	repeats := []int{0, 1, 1, 5, 70, 149, 0, 3}
	for _, i := range repeats {
		lines = append(lines, lines[i])
	}
	lines = append([]string{lines[0], lines[3]}, lines...)
	file := e.writeFile("repeated.jsonl", lines...)
	all := len(repeats) + 2

	check := func(r result, wantEnqueued int) summaryJSON {
		t.Helper()
		s := parseSummary(t, r)
		if s.Enqueued != wantEnqueued || s.Duplicate != len(lines)-wantEnqueued || s.Invalid+s.InDoubt+s.NotTried+s.Failed != 0 {
			t.Fatalf("want %d enqueued and %d duplicates:\n%s", wantEnqueued, len(lines)-wantEnqueued, r)
		}
		var b struct {
			Total int `json:"total"`
		}
		if err := json.Unmarshal([]byte(e.mustRun(0, "batch", "status", *s.BatchID, "--json").stdout), &b); err != nil {
			t.Fatal(err)
		}
		if b.Total != wantEnqueued {
			t.Errorf("batch total %d, want %d", b.Total, wantEnqueued)
		}
		return s
	}
	check(e.mustRun(0, "enqueue", "--file", file, "--json"), unique)
	if n := e.queueInfo().Pending; n != unique {
		t.Fatalf("%d tasks on the queue, want %d (rows %d, repeats %d)", n, unique, len(lines), all)
	}
	w := e.startWorker(nil)
	e.waitResultCount(unique, 60*time.Second)
	for i := 0; i < unique; i++ {
		if rec := e.statusJSON(fmt.Sprintf("rep-%d", i)); rec.State != "succeeded" || rec.Attempts != 1 {
			t.Fatalf("rep-%d: %+v", i, rec)
		}
	}
	// No worker while the forced run enqueues: a repeat read after its job
	// had been relaunched and had succeeded again would, with --force, rightly
	// relaunch it once more.
	w.stop()
	check(e.mustRun(0, "enqueue", "--file", file, "--force", "--json"), unique)
	w = e.startWorker(nil)
	e.waitResultCount(2*unique, 60*time.Second)
	w.stop()
	calls := map[string]int{}
	for _, c := range e.Sim.Calls() {
		calls[c.AgentNo]++
	}
	for i := 0; i < unique; i++ {
		if n := calls[fmt.Sprint(70000+i)]; n != 2 {
			t.Errorf("agent %d called %d times, want 2 (once, then once forced)", 70000+i, n)
		}
	}
}

// contractReportColumns are `batch report`'s columns as the contract names
// them. Every row adds sid (the job's account), a followed job's row
// (FOLLOW_LAUNCH) launch_state; the CSV header has launch_state, then sid,
// after the contract's.
var contractReportColumns = []string{"job_id", "agent_no", "outcome", "code", "message", "agent_launch_id", "attempts"}

// launchStateNames are the launch states, as launch_states' members name
// them.
var launchStateNames = []string{"pending", "launched", "rejected", "suspended", "unknown"}
