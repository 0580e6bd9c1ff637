package main

// End-to-end tests: the rcslaunch binary, run as a user runs it, as separate
// processes, against a private redis-server (never the one on 6379) and the
// Kaleyra simulator. The harness is in e2e_helpers_test.go.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rcslaunch-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "rcslaunch")
	args := []string{"build", "-o", binPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestEnqueueJSONLValidation: a file with an invalid row enqueues nothing
// unless --skip-invalid; --dry-run never enqueues.
func TestEnqueueJSONLValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	valid1 := launchtest.Line("", "100", nil)
	invalid := launchtest.Line("", "101", func(l map[string]any) {
		l["video_uris"] = []string{"https://www.example.com/ok.mp4", "ftp://www.example.com/bad.mp4"}
		delete(l, "optin_description")
	})
	valid2 := launchtest.Line("e2e-json-3", "102", nil)
	// Line 2 is blank and skipped, so the invalid row is on line 3.
	mixed := e.writeFile("mixed.jsonl", valid1, "", invalid, valid2)
	derived := e.derivedID(valid1)
	if derived == "e2e-json-3" {
		t.Fatal("derived ID equals the given one")
	}

	checkErrors := func(s summaryJSON) {
		t.Helper()
		if s.Invalid != 1 {
			t.Errorf("invalid %d, want 1", s.Invalid)
		}
		fields := map[string]bool{}
		for _, er := range s.Errors {
			if er.Line != 3 {
				t.Errorf("error on line %d, want 3: %+v", er.Line, er)
			}
			if er.Reason == "" {
				t.Errorf("error without a reason: %+v", er)
			}
			fields[er.Field] = true
		}
		for _, f := range []string{"launch.video_uris[1]", "launch.optin_description"} {
			if !fields[f] {
				t.Errorf("no error names field %s; errors: %+v", f, s.Errors)
			}
		}
		if len(fields) != 2 {
			t.Errorf("errors name fields %v, want exactly the two broken ones", sortedKeys(fields))
		}
	}

	// Default: the invalid row stops the whole file.
	r := e.mustRun(1, "enqueue", "--file", mixed, "--json")
	s := parseSummary(t, r)
	checkErrors(s)
	if s.Enqueued != 0 || s.Duplicate != 0 || s.AlreadyLaunched != 0 || s.DeadLettered != 0 {
		t.Errorf("summary reports work done for a file that must enqueue nothing: %s", r.stdout)
	}
	e.assertNothingEnqueued(derived, "e2e-json-3")

	// Human output names the line and field on stderr.
	r = e.mustRun(1, "enqueue", "--file", mixed)
	if !strings.Contains(r.err, "line 3") || !strings.Contains(r.err, "launch.video_uris[1]") {
		t.Errorf("human output does not name line 3 and its field:\n%s", r)
	}

	// --dry-run: validates, enqueues nothing, for a bad and a good file.
	r = e.mustRun(1, "enqueue", "--file", mixed, "--dry-run", "--json")
	checkErrors(parseSummary(t, r))
	good := e.writeFile("good.jsonl", valid1, valid2)
	r = e.mustRun(0, "enqueue", "--file", good, "--dry-run", "--json")
	if s := parseSummary(t, r); s.Enqueued != 0 || s.Invalid != 0 || len(s.Errors) != 0 {
		t.Errorf("dry run of a good file: %s", r.stdout)
	}
	e.assertNothingEnqueued(derived, "e2e-json-3")

	// --skip-invalid: the valid rows go on the queue, the invalid is reported.
	r = e.mustRun(1, "enqueue", "--file", mixed, "--skip-invalid", "--json")
	s = parseSummary(t, r)
	checkErrors(s)
	if s.Enqueued != 2 {
		t.Errorf("--skip-invalid enqueued %d, want the 2 valid rows\n%s", s.Enqueued, r)
	}
	if s.BatchID == nil || *s.BatchID == "" {
		t.Errorf("--skip-invalid run has no batch_id\n%s", r)
	}
	insp := e.Inspector
	for _, id := range []string{derived, "e2e-json-3"} {
		if st := e.statusJSON(id); st.State != "queued" {
			t.Errorf("status %s: %s, want queued", id, st.State)
		}
		if _, err := insp.GetTaskInfo(queue.Name, id); err != nil {
			t.Errorf("no asynq task for enqueued job %s: %v", id, err)
		}
	}
	// The same id with another payload is a conflict, reported like an
	// invalid row (field "id"), and changes nothing.
	conflict := e.writeFile("conflict.jsonl", valid1, launchtest.Line("e2e-json-3", "999", nil))
	r = e.mustRun(1, "enqueue", "--file", conflict, "--json")
	s = parseSummary(t, r)
	if s.Invalid != 1 || s.Duplicate != 1 || len(s.Errors) != 1 || s.Errors[0].Line != 2 || s.Errors[0].Field != "id" {
		t.Errorf("conflicting id: want line 2 field id reported, the other row a duplicate\n%s", r)
	}
	if st := e.statusJSON("e2e-json-3"); st.AgentNo != "102" {
		t.Errorf("the conflicting row changed the job: agent %s", st.AgentNo)
	}

	// The human status of a queued job says so.
	if r := e.mustRun(0, "status", derived); !strings.Contains(r.stdout, "queued") || !strings.Contains(r.stdout, derived) {
		t.Errorf("status of a queued job:\n%s", r)
	}
}

// TestEnqueueCSV: the same rules for CSV, chosen by --format or by the
// .csv extension, with "|"-separated URIs and REGION_ID:REGION regions.
func TestEnqueueCSV(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	const regionID = "8346a250-d7a9-47dc-8202-a8b1c2d3e4e8"
	lines := []string{
		"id,agent_no,optin_description,trigger_description,interactions_description,optout_description,agent_access_instructions,video_uris,screenshot_uris,regions",
		"csv-1,200,Customers reply START,START,Order updates,Reply STOP,Test number +91 90000 00000,https://example.com/a.mp4 | https://example.com/b.mp4,https://example.com/s1.png|https://example.com/s2.png," + regionID + ":IN-north|IN-south",
		// A quoted cell with a comma, and one spanning lines 3 and 4.
		"csv-2,201,\"Opt in on our site, then reply START\",START,\"Order updates",
		"and delivery alerts\",Reply STOP,See the test plan,,,IN",
		// Line 5: a bad second URI and a region ID that is not a UUID.
		"csv-3,202,Opt in,START,Updates,Reply STOP,See the plan,https://example.com/ok.mp4|ftp://example.com/bad.mp4,,not-a-uuid:IN-east",
	}
	txt := e.writeFile("jobs.txt", lines...)
	csvPath := e.writeFile("jobs.csv", lines...)

	checkErrors := func(s summaryJSON) {
		t.Helper()
		if s.Invalid != 1 {
			t.Errorf("invalid %d, want 1", s.Invalid)
		}
		fields := map[string]bool{}
		for _, er := range s.Errors {
			if er.Line != 5 {
				t.Errorf("error on line %d, want 5 (the row after a two-line row): %+v", er.Line, er)
			}
			fields[er.Field] = true
		}
		for _, f := range []string{"launch.video_uris[1]", "regions[0].region_id"} {
			if !fields[f] {
				t.Errorf("no error names %s; errors: %+v", f, s.Errors)
			}
		}
	}

	for _, args := range [][]string{{"--file", txt, "--format", "csv"}, {"--file", csvPath}} {
		r := e.mustRun(1, append([]string{"enqueue", "--json"}, args...)...)
		s := parseSummary(t, r)
		checkErrors(s)
		if s.Enqueued != 0 {
			t.Errorf("%v: enqueued %d with an invalid row", args, s.Enqueued)
		}
		r = e.mustRun(1, append([]string{"enqueue", "--json", "--dry-run"}, args...)...)
		checkErrors(parseSummary(t, r))
	}
	e.assertNothingEnqueued("csv-1", "csv-2", "csv-3")

	// --format csv on a .txt file, with --skip-invalid.
	r := e.mustRun(1, "enqueue", "--file", txt, "--format", "csv", "--skip-invalid", "--json")
	s := parseSummary(t, r)
	checkErrors(s)
	if s.Enqueued != 2 {
		t.Fatalf("enqueued %d, want 2\n%s", s.Enqueued, r)
	}
	// By extension: the same rows are now duplicates.
	r = e.mustRun(1, "enqueue", "--file", csvPath, "--skip-invalid", "--json")
	s = parseSummary(t, r)
	checkErrors(s)
	if s.Enqueued != 0 || s.Duplicate != 2 {
		t.Errorf("re-enqueue of the .csv: enqueued %d, duplicate %d; want 0 and 2\n%s", s.Enqueued, s.Duplicate, r)
	}
	if r := e.run("status", "csv-3"); r.code != 1 {
		t.Errorf("the invalid row was enqueued:\n%s", r)
	}

	// The payloads are what the cells said.
	type payload struct {
		Launch struct {
			OptinDescription        string   `json:"optin_description"`
			InteractionsDescription string   `json:"interactions_description"`
			VideoURIs               []string `json:"video_uris"`
			ScreenshotURIs          []string `json:"screenshot_uris"`
			AgentNo                 string   `json:"agent_no"`
		} `json:"launch"`
		Regions []struct {
			RegionID string `json:"region_id"`
			Region   string `json:"region"`
		} `json:"regions"`
	}
	var p1, p2 payload
	if err := json.Unmarshal(e.statusJSON("csv-1").Payload, &p1); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(e.statusJSON("csv-2").Payload, &p2); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p1.Launch.VideoURIs, []string{"https://example.com/a.mp4", "https://example.com/b.mp4"}) {
		t.Errorf("video_uris %q", p1.Launch.VideoURIs)
	}
	if !slices.Equal(p1.Launch.ScreenshotURIs, []string{"https://example.com/s1.png", "https://example.com/s2.png"}) {
		t.Errorf("screenshot_uris %q", p1.Launch.ScreenshotURIs)
	}
	if len(p1.Regions) != 2 || p1.Regions[0].RegionID != regionID || p1.Regions[0].Region != "IN-north" ||
		p1.Regions[1].RegionID != "" || p1.Regions[1].Region != "IN-south" {
		t.Errorf("regions %+v", p1.Regions)
	}
	if p1.Launch.AgentNo != "200" || p2.Launch.AgentNo != "201" {
		t.Errorf("agent_no %q, %q", p1.Launch.AgentNo, p2.Launch.AgentNo)
	}
	if p2.Launch.OptinDescription != "Opt in on our site, then reply START" ||
		p2.Launch.InteractionsDescription != "Order updates\nand delivery alerts" {
		t.Errorf("quoted cells: %q, %q", p2.Launch.OptinDescription, p2.Launch.InteractionsDescription)
	}
	if len(p2.Regions) != 1 || p2.Regions[0].Region != "IN" || p2.Regions[0].RegionID != "" {
		t.Errorf("regions of csv-2: %+v", p2.Regions)
	}
}

// TestWorkerBatchStatusAndDLQ runs a mixed batch through a worker process and
// then drives status, results and every dlq subcommand on its outcomes; it
// also checks the logs and that the API key never shows.
func TestWorkerBatchStatusAndDLQ(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	const (
		okAgent       = "300" // succeeds at once
		flakyAgent    = "301" // RCS502 twice, then success
		terminalAgent = "302" // RCS904: terminal
		deadAgent     = "303" // RCS502 every time within the budget
		disabledAgent = "304" // RCS601: terminal
		flakyFailures = 2
	)
	agents := []string{okAgent, flakyAgent, terminalAgent, deadAgent, disabledAgent}
	for i := 0; i < flakyFailures; i++ {
		e.Sim.Script(flakyAgent, sim.StepGateway)
	}
	e.Sim.Script(terminalAgent, sim.StepMissingFields)
	for i := 0; i < e2eRetryMax+1; i++ {
		e.Sim.Script(deadAgent, sim.StepGateway)
	}
	e.Sim.Script(disabledAgent, sim.StepDisabled)
	var lines []string
	for _, a := range agents {
		lines = append(lines, launchtest.Line("", a, nil))
	}
	file := e.writeFile("batch.jsonl", lines...)

	r := e.mustRun(0, "enqueue", "--file", file, "--json")
	if s := parseSummary(t, r); s.Enqueued != len(agents) || s.BatchID == nil {
		t.Fatalf("first enqueue:\n%s", r)
	}
	follow := e.start(nil, "results", "--follow", "--json")
	w := e.startWorker(nil)
	rs := e.waitResults(30*time.Second, "every job's result", hasAgents(agents...))
	// `results --follow` saw them arrive, one JSON object per line, and
	// stops cleanly on SIGTERM.
	waitFor(t, 10*time.Second, "results --follow to print every result", func() bool {
		return strings.Count(follow.stdout.String(), "\n") >= len(rs)
	})
	if code, _ := follow.signal(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Errorf("results --follow exited %d on SIGTERM; stderr:\n%s", code, follow.stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(follow.stdout.String()), "\n") {
		var re resultEntry
		if err := json.Unmarshal([]byte(line), &re); err != nil || re.JobID == "" {
			t.Errorf("results --follow --json line %q: %v", line, err)
		}
	}

	// Outcomes and calls, per agent.
	want := []struct {
		agent, outcome, code string
		calls                int
	}{
		{okAgent, "succeeded", "RCS902", 1},
		{flakyAgent, "succeeded", "RCS902", 1 + flakyFailures},
		{terminalAgent, "dead_lettered", "RCS904", 1},
		{deadAgent, "dead_lettered", "RCS502", e2eRetryMax + 1},
		{disabledAgent, "dead_lettered", "RCS601", 1},
	}
	calls := e.Sim.Stats().ByAgent
	res := byAgent(rs)
	job := map[string]resultEntry{} // agent -> its result
	for _, wt := range want {
		if len(res[wt.agent]) != 1 {
			t.Errorf("agent %s: %d results entries, want 1: %+v", wt.agent, len(res[wt.agent]), res[wt.agent])
			continue
		}
		got := res[wt.agent][0]
		job[wt.agent] = got
		if got.Outcome != wt.outcome || got.Code != wt.code || got.Attempts != wt.calls {
			t.Errorf("agent %s: %s %s after %d attempts, want %s %s after %d", wt.agent, got.Outcome, got.Code, got.Attempts, wt.outcome, wt.code, wt.calls)
		}
		if calls[wt.agent] != wt.calls {
			t.Errorf("agent %s: Kaleyra called %d times, want %d", wt.agent, calls[wt.agent], wt.calls)
		}
		if (got.Outcome == "succeeded") != (got.AgentLaunchID != "") {
			t.Errorf("agent %s: %s with agent_launch_id %q", wt.agent, got.Outcome, got.AgentLaunchID)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	var deadIDs []string
	succeeded := 0
	for _, r := range rs {
		if r.Outcome == "dead_lettered" {
			deadIDs = append(deadIDs, r.JobID)
		} else {
			succeeded++
		}
	}
	// The human form lists every job too.
	if r := e.mustRun(0, "results"); strings.Count(r.stdout, "\n") != len(rs) {
		t.Errorf("results prints %d lines for %d results:\n%s", strings.Count(r.stdout, "\n"), len(rs), r)
	}

	// status --agent finds a job by its agent number.
	var byAgent []store.Record
	if err := json.Unmarshal([]byte(e.mustRun(0, "status", "--agent", terminalAgent, "--json").stdout), &byAgent); err != nil ||
		len(byAgent) != 1 || byAgent[0].AgentNo != terminalAgent || byAgent[0].Code != "RCS904" {
		t.Errorf("status --agent %s: %+v (%v)", terminalAgent, byAgent, err)
	}
	if r := e.mustRun(0, "status", "--agent", okAgent); !strings.Contains(r.stdout, "succeeded, agent_launch_id") {
		t.Errorf("status --agent %s (human):\n%s", okAgent, r)
	}
	e.mustRun(1, "status", "--agent", "999999")
	e.mustRun(2, "status", "some-id", "--agent", okAgent)

	// Re-running the same file enqueues nothing and calls nobody.
	before := e.Sim.Stats().Calls
	r = e.run("enqueue", "--file", file, "--json")
	s := parseSummary(t, r)
	if s.Enqueued != 0 || s.Duplicate != 0 || s.AlreadyLaunched != succeeded || s.DeadLettered != len(deadIDs) || s.Invalid != 0 {
		t.Errorf("re-run: want enqueued 0, already_launched %d, dead_lettered %d\n%s", succeeded, len(deadIDs), r)
	}
	// Dead-lettered rows are neither enqueued, duplicates nor already launched:
	// the run does not end with 0 (they wait for `dlq retry`).
	if r.code != 1 {
		t.Errorf("re-run with dead-lettered rows: want exit 1\n%s", r)
	}
	r = e.run("enqueue", "--file", file)
	if !strings.Contains(r.stdout, "enqueued 0") {
		t.Errorf("human re-run does not say enqueued 0:\n%s", r)
	}

	// status: succeeded, dead-lettered, unknown.
	flaky := job[flakyAgent]
	r = e.mustRun(0, "status", flaky.JobID)
	if !strings.Contains(r.stdout, "succeeded") || !strings.Contains(r.stdout, flaky.AgentLaunchID) {
		t.Errorf("status of a succeeded job does not show its agent_launch_id %s:\n%s", flaky.AgentLaunchID, r)
	}
	st := e.statusJSON(flaky.JobID)
	if st.State != "succeeded" || st.AgentLaunchID != flaky.AgentLaunchID || st.AgentNo != flakyAgent ||
		st.Attempts != 1+flakyFailures || len(st.History) != 1+flakyFailures {
		t.Errorf("status --json of the flaky job: %+v", st)
	}
	// A success keeps Kaleyra's answer on its results entry only, and one
	// at its first attempt reads that attempt from its record.
	okJob := job[okAgent]
	if st := e.statusJSON(okJob.JobID); st.State != "succeeded" || st.Response != nil || len(st.History) != 1 ||
		st.History[0].N != 1 || st.History[0].Outcome != "succeeded" || st.History[0].Code != "RCS902" {
		t.Errorf("status --json of a success at its first attempt: %+v", st)
	}
	if !strings.Contains(string(okJob.Response), okJob.AgentLaunchID) {
		t.Errorf("results entry of a success without Kaleyra's answer: %+v", okJob)
	}
	if r := e.mustRun(0, "status", okJob.JobID); !strings.Contains(r.stdout, "RCS902") {
		t.Errorf("status of a success at its first attempt does not show its attempt:\n%s", r)
	}
	dead := job[deadAgent]
	r = e.mustRun(0, "status", dead.JobID)
	if !strings.Contains(r.stdout, "dead-lettered") || !strings.Contains(r.stdout, dead.Code) || !strings.Contains(r.stdout, dead.Message) {
		t.Errorf("status of a dead letter does not show code %s and message %q:\n%s", dead.Code, dead.Message, r)
	}
	st = e.statusJSON(dead.JobID)
	if st.State != "dead_lettered" || st.Code != dead.Code || st.Message != dead.Message || st.Message == "" {
		t.Errorf("status --json of the dead letter: %+v, want code %s message %q", st, dead.Code, dead.Message)
	}
	r = e.mustRun(1, "status", "no-such-job-e2e")
	if !strings.Contains(r.err, "no-such-job-e2e") {
		t.Errorf("unknown job: stderr does not name it:\n%s", r)
	}
	e.mustRun(1, "status", "no-such-job-e2e", "--json")

	// dlq list: every dead letter, newest first.
	list := e.dlqList()
	if got := ids(list); !sameSet(got, deadIDs) {
		t.Errorf("dlq list: %v, want %v", got, deadIDs)
	}
	for i := 1; i < len(list); i++ {
		if list[i].FinishedAt.After(list[i-1].FinishedAt) {
			t.Errorf("dlq list is not newest first: %s at %s after %s at %s", list[i-1].JobID, list[i-1].FinishedAt, list[i].JobID, list[i].FinishedAt)
		}
	}
	human := e.mustRun(0, "dlq", "list")
	for _, id := range deadIDs {
		if !strings.Contains(human.stdout, id) {
			t.Errorf("dlq list (human) lacks %s:\n%s", id, human)
		}
	}
	if got := ids(e.dlqList("--code", "RCS502")); !slices.Equal(got, []string{dead.JobID}) {
		t.Errorf("dlq list --code RCS502: %v, want [%s]", got, dead.JobID)
	}
	if got := ids(e.dlqList("--since", "1h")); !sameSet(got, deadIDs) {
		t.Errorf("dlq list --since 1h: %v", got)
	}

	// dlq show: the whole history.
	r = e.mustRun(0, "dlq", "show", dead.JobID, "--json")
	var shown statusRecord
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil {
		t.Fatalf("dlq show --json: %v\n%s", err, r)
	}
	if len(shown.History) != calls[deadAgent] || shown.Attempts != calls[deadAgent] || shown.Code != "RCS502" ||
		!strings.Contains(string(shown.Response), "RCS502") {
		t.Errorf("dlq show: %d attempts, %d in history, want %d: %s", shown.Attempts, len(shown.History), calls[deadAgent], r.stdout)
	}
	for i, h := range shown.History {
		if h.N != i+1 || h.Code != "RCS502" {
			t.Errorf("history[%d]: attempt %d code %s", i, h.N, h.Code)
		}
	}
	var pl struct {
		Launch struct {
			AgentNo string `json:"agent_no"`
		} `json:"launch"`
	}
	if err := json.Unmarshal(shown.Payload, &pl); err != nil || pl.Launch.AgentNo != deadAgent {
		t.Errorf("dlq show payload: %s (%v)", shown.Payload, err)
	}
	if r := e.mustRun(0, "dlq", "show", dead.JobID); strings.Count(r.stdout, "RCS502") < calls[deadAgent] {
		t.Errorf("dlq show (human) does not list every attempt:\n%s", r)
	}
	e.mustRun(1, "dlq", "show", flaky.JobID) // succeeded: not a dead letter
	e.mustRun(1, "dlq", "show", "no-such-job-e2e")

	// dlq export is accepted by enqueue, which finds them still dead-lettered.
	r = e.mustRun(0, "dlq", "export")
	if n := strings.Count(strings.TrimSpace(r.stdout), "\n") + 1; n != len(deadIDs) {
		t.Errorf("dlq export wrote %d lines, want %d:\n%s", n, len(deadIDs), r)
	}
	exported := e.writeFile("export.jsonl", strings.TrimSuffix(r.stdout, "\n"))
	r = e.run("enqueue", "--file", exported, "--json")
	s = parseSummary(t, r)
	if s.Invalid != 0 || s.Enqueued != 0 || s.DeadLettered != len(deadIDs) {
		t.Errorf("enqueue of the export: want %d dead_lettered and nothing else\n%s", len(deadIDs), r)
	}
	r = e.mustRun(0, "dlq", "export", "--code", "RCS904")
	if !strings.Contains(r.stdout, job[terminalAgent].JobID) || strings.Count(strings.TrimSpace(r.stdout), "\n") != 0 {
		t.Errorf("dlq export --code RCS904:\n%s", r)
	}
	time.Sleep(300 * time.Millisecond)
	if after := e.Sim.Stats().Calls; after != before {
		t.Errorf("re-enqueueing made %d more Kaleyra calls", after-before)
	}

	// dlq retry: usage errors, then a relaunch that succeeds.
	e.mustRun(2, "dlq", "retry")
	e.mustRun(2, "dlq", "retry", "--all", "--code", "RCS502")
	e.mustRun(2, "dlq", "delete")
	e.Sim.Script(deadAgent, sim.StepSucceed)
	r = e.mustRun(0, "dlq", "retry", dead.JobID)
	if !strings.Contains(r.stdout, "retried 1") {
		t.Errorf("dlq retry does not report the retry:\n%s", r)
	}
	rs = e.waitResults(20*time.Second, "the retried job's new result", func(rs []resultEntry) bool {
		return len(byJob(rs)[dead.JobID]) == 2
	})
	if again := byJob(rs)[dead.JobID][1]; again.Outcome != "succeeded" || again.Attempts != 1 || again.AgentLaunchID == "" {
		t.Errorf("after dlq retry: %+v, want succeeded after 1 attempt", again)
	}
	if n := e.Sim.Stats().ByAgent[deadAgent]; n != calls[deadAgent]+1 {
		t.Errorf("after dlq retry agent %s was called %d times in all, want %d", deadAgent, n, calls[deadAgent]+1)
	}
	if got := ids(e.dlqList()); slices.Contains(got, dead.JobID) || len(got) != len(deadIDs)-1 {
		t.Errorf("after dlq retry, dlq list: %v", got)
	}
	// Retried to success, it reads as a success everywhere: its record
	// drops the dead letter's answer and keeps every attempt.
	if st := e.statusJSON(dead.JobID); st.State != "succeeded" || st.Response != nil || len(st.History) != calls[deadAgent]+1 ||
		st.History[len(st.History)-1].Outcome != "succeeded" || st.History[0].Code != "RCS502" {
		t.Errorf("status --json after dlq retry: %+v", st)
	}
	if r := e.mustRun(0, "status", dead.JobID); !strings.Contains(r.stdout, "succeeded") || strings.Count(r.stdout, "RCS502") < calls[deadAgent] {
		t.Errorf("status after dlq retry does not show the success and every attempt:\n%s", r)
	}
	e.mustRun(1, "dlq", "show", dead.JobID)
	if r := e.mustRun(0, "dlq", "export"); strings.Contains(r.stdout, dead.JobID) {
		t.Errorf("dlq export after dlq retry lists the retried job:\n%s", r)
	}
	e.mustRun(1, "dlq", "retry", flaky.JobID) // not a dead letter

	// dlq delete --code removes those letters and their records.
	e.mustRun(0, "dlq", "delete", "--code", "RCS904", "--yes")
	if got := e.dlqList("--code", "RCS904"); len(got) != 0 {
		t.Errorf("after dlq delete --code RCS904: %v", ids(got))
	}
	if got := ids(e.dlqList()); !slices.Equal(got, []string{job[disabledAgent].JobID}) {
		t.Errorf("after dlq delete, dlq list: %v, want [%s]", got, job[disabledAgent].JobID)
	}
	e.mustRun(1, "status", job[terminalAgent].JobID)

	// The worker stops cleanly; its logs are JSON, carry the job fields on
	// every launch event, and never the API key.
	w.stop()
	logs := checkLogs(t, w.stderr.String())
	launches := 0
	for _, ev := range logs {
		if _, ok := ev["outcome"]; !ok {
			continue
		}
		launches++
		for _, k := range []string{"job_id", "agent_no", "attempt"} {
			if v, ok := ev[k]; !ok || v == "" {
				t.Errorf("launch event without %s: %v", k, ev)
			}
		}
	}
	if total := e.Sim.Stats().Calls; launches != total {
		t.Errorf("%d launch events logged for %d Kaleyra calls", launches, total)
	}
	if strings.Contains(w.stderr.String(), testenv.APIKey) {
		t.Error("the worker's logs contain the KALEYRA_API_KEY value")
	}
	e.assertKeyNotInRedis(dead.JobID)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestSimProcess runs `rcslaunch sim` as a process, scripts it over
// /_sim/script, and points a worker process at it.
func TestSimProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	var simProc *proc
	var base string
	for try := 0; ; try++ { // the free port may be taken in between
		addr := freeAddr(t)
		simProc = e.start(nil, "sim", "--addr", addr)
		base = "http://" + addr
		up := false
		deadline := time.Now().Add(10 * time.Second)
		for !up && !simProc.exited() && time.Now().Before(deadline) {
			if resp, err := http.Get(base + "/_sim/stats"); err == nil {
				resp.Body.Close()
				up = resp.StatusCode == http.StatusOK
			}
			time.Sleep(50 * time.Millisecond)
		}
		if up {
			break
		}
		if try == 2 {
			t.Fatalf("rcslaunch sim did not come up; stderr:\n%s", simProc.stderr.String())
		}
		_ = simProc.cmd.Process.Kill()
		<-simProc.done
	}
	if !strings.Contains(simProc.stderr.String(), base) {
		t.Errorf("sim does not say where it listens:\n%s", simProc.stderr.String())
	}

	post := func(body string) int {
		t.Helper()
		resp, err := http.Post(base+"/_sim/script", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(`{"agent_no":"400","steps":["RCS502","RCS904"]}`); code != http.StatusNoContent {
		t.Fatalf("script: HTTP %d", code)
	}
	if code := post(`{"agent_no":"401","steps":["NOT_A_STEP"]}`); code != http.StatusBadRequest {
		t.Errorf("script with an unknown step: HTTP %d, want 400", code)
	}
	file := e.writeFile("jobs.jsonl", launchtest.Line("sim-400", "400", nil), launchtest.Line("sim-401", "401", nil))
	e.mustRun(0, "enqueue", "--file", file)
	w := e.startWorker(map[string]string{"KALEYRA_BASE_URL": base})
	rs := e.waitResults(30*time.Second, "both results", hasAgents("400", "401"))
	res := byAgent(rs)
	if r := res["400"]; len(r) != 1 || r[0].Outcome != "dead_lettered" || r[0].Code != "RCS904" || r[0].Attempts != 2 {
		t.Errorf("agent 400 (RCS502 then RCS904): %+v", r)
	}
	if r := res["401"]; len(r) != 1 || r[0].Outcome != "succeeded" || r[0].Attempts != 1 {
		t.Errorf("agent 401: %+v", r)
	}

	resp, err := http.Get(base + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats sim.Stats
	err = json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if stats.ByAgent["400"] != 2 || stats.ByAgent["401"] != 1 || stats.ByCode["RCS401"] != 0 {
		t.Errorf("/_sim/stats: %+v", stats)
	}
	resp, err = http.Get(base + "/_sim/calls")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	e.record(string(body))
	var got []sim.Call
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("/_sim/calls: %v", err)
	}
	var codes400 []string
	for _, c := range got {
		if c.SID != testenv.SID {
			t.Errorf("call for SID %q, want %q", c.SID, testenv.SID)
		}
		if c.AgentNo == "400" {
			codes400 = append(codes400, c.Code)
		}
	}
	if !slices.Equal(codes400, []string{"RCS502", "RCS904"}) {
		t.Errorf("agent 400 got %v, want the script", codes400)
	}
	if e.Sim.Stats().Calls != 0 {
		t.Errorf("the in-process simulator was called; the worker ignored KALEYRA_BASE_URL")
	}
	w.stop()
	simProc.stop()
}

// TestGracefulShutdown sends SIGTERM to a worker while launch calls are in
// flight: it exits 0, every call's outcome is recorded, and a new worker
// finishes the rest without calling anyone twice.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{Latency: time.Second})
	const n = 8
	var lines []string
	agents := map[string]string{} // job ID -> agent
	for i := 0; i < n; i++ {
		id, agent := fmt.Sprintf("shutdown-%d", i), fmt.Sprint(500+i)
		agents[id] = agent
		lines = append(lines, launchtest.Line(id, agent, nil))
	}
	file := e.writeFile("jobs.jsonl", lines...)
	e.mustRun(0, "enqueue", "--file", file)

	workerEnv := map[string]string{"WORKER_CONCURRENCY": "3"}
	w := e.startWorker(workerEnv)
	waitFor(t, 15*time.Second, "launch calls in flight", func() bool { return e.Sim.Stats().InFlight >= 3 })
	code, took := w.signal(syscall.SIGTERM, 15*time.Second)
	if code != 0 {
		t.Fatalf("worker exited %d after SIGTERM; stderr:\n%s", code, tail(w.stderr.String(), 3000))
	}
	t.Logf("worker exited %v after SIGTERM", took)

	// Every call made so far has its outcome recorded, exactly once.
	st := e.Sim.Stats()
	if st.InFlight != 0 {
		t.Errorf("%d calls still in flight after the worker exited", st.InFlight)
	}
	if st.Calls == 0 || st.Calls == n {
		t.Fatalf("%d calls before the shutdown; the test needs some in flight and some left", st.Calls)
	}
	res := byAgent(e.results())
	for agent, c := range st.ByAgent {
		if c != 1 || len(res[agent]) != 1 {
			t.Errorf("agent %s: %d calls, %d results entries; want 1 and 1", agent, c, len(res[agent]))
		}
	}
	for id := range agents {
		if s := e.statusJSON(id); s.State == "running" {
			t.Errorf("job %s left running after a graceful shutdown", id)
		}
	}

	// A new worker finishes the rest; nobody is called twice.
	w2 := e.startWorker(workerEnv)
	rs := e.waitResults(30*time.Second, "every job's result", func(rs []resultEntry) bool {
		return len(byJob(rs)) == n
	})
	w2.stop()
	for id, agent := range agents {
		r := byJob(rs)[id]
		if len(r) != 1 || r[0].Outcome != "succeeded" || r[0].AgentNo != agent {
			t.Errorf("job %s: results %+v, want one success", id, r)
		}
	}
	for agent, c := range e.Sim.Stats().ByAgent {
		if c != 1 {
			t.Errorf("agent %s called %d times, want 1", agent, c)
		}
	}
	for _, p := range []*proc{w, w2} {
		checkLogs(t, p.stderr.String())
	}
}

// TestUncertainDeadLetter: a call that times out is dead-lettered at once as
// uncertain, and `dlq retry` leaves it alone unless --include-uncertain. It
// also enqueues from stdin, alone and as --file -.
func TestUncertainDeadLetter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	e.vars["KALEYRA_TIMEOUT"] = "1s"
	e.Sim.Script("700", sim.StepHang)
	line := launchtest.Line("", "700", nil)
	r := e.runWith(nil, line, "enqueue", "--json")
	if r.code != 0 {
		t.Fatalf("enqueue from stdin:\n%s", r)
	}
	var one struct {
		JobID    string `json:"job_id"`
		Enqueued int    `json:"enqueued"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &one); err != nil || one.JobID == "" || one.Enqueued != 1 {
		t.Fatalf("enqueue from stdin: %v\n%s", err, r)
	}
	id := one.JobID
	r = e.runWith(nil, line+"\n", "enqueue", "--file", "-", "--json")
	if s := parseSummary(t, r); r.code != 0 || s.Duplicate != 1 || s.Enqueued != 0 {
		t.Errorf("the same job from --file -: want a duplicate, exit 0\n%s", r)
	}

	w := e.startWorker(nil)
	rs := e.waitResults(20*time.Second, "the timed-out job's result", hasAgents("700"))
	got := rs[0]
	if got.JobID != id || got.Outcome != "dead_lettered" || !got.Uncertain || got.Attempts != 1 {
		t.Fatalf("a timed-out call: %+v, want dead_lettered, uncertain, after 1 attempt", got)
	}
	if n := e.Sim.Stats().ByAgent["700"]; n != 1 {
		t.Errorf("a timed-out call was retried: %d calls", n)
	}
	if st := e.statusJSON(id); st.State != "dead_lettered" || !st.Uncertain {
		t.Errorf("status --json: %+v", st)
	}
	if r := e.mustRun(0, "status", id); !strings.Contains(r.stdout, "uncertain") {
		t.Errorf("status does not say the launch is uncertain:\n%s", r)
	}

	r = e.run("dlq", "retry", id)
	if !strings.Contains(r.stdout, "uncertain") {
		t.Errorf("dlq retry of an uncertain letter does not say it skipped it:\n%s", r)
	}
	time.Sleep(300 * time.Millisecond)
	if l := e.dlqList(); len(l) != 1 || l[0].JobID != id || !l[0].Uncertain {
		t.Errorf("after a plain dlq retry the uncertain letter must stay: %+v", l)
	}
	if n := e.Sim.Stats().ByAgent["700"]; n != 1 {
		t.Errorf("a plain dlq retry relaunched an uncertain letter: %d calls", n)
	}
	e.mustRun(0, "dlq", "retry", id, "--include-uncertain")
	rs = e.waitResults(20*time.Second, "the relaunch's result", func(rs []resultEntry) bool { return len(rs) == 2 })
	if rs[1].JobID != id || rs[1].Outcome != "succeeded" {
		t.Errorf("after dlq retry --include-uncertain: %+v", rs[1])
	}
	if l := e.dlqList(); len(l) != 0 {
		t.Errorf("dlq list after the relaunch: %v", ids(l))
	}
	w.stop()
	checkLogs(t, w.stderr.String())
}

// TestUsage: exit statuses of usage errors, --help, and missing credentials.
func TestUsage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	r := e.mustRun(2, "frobnicate")
	if !strings.Contains(r.err, "frobnicate") {
		t.Errorf("unknown command not named:\n%s", r)
	}
	e.mustRun(2)
	e.mustRun(0, "--help")
	e.mustRun(0, "help")
	for _, args := range [][]string{
		{"enqueue", "--no-such-flag"},
		{"worker", "--no-such-flag"},
		{"status", "--no-such-flag", "x"},
		{"status"},
		{"status", "a", "b"},
		{"results", "--no-such-flag"},
		{"sim", "--no-such-flag"},
		{"demo", "--no-such-flag"},
		{"bench", "--no-such-flag"},
		{"bench", "--runs", "0"},
		{"dlq"},
		{"dlq", "frobnicate"},
		{"dlq", "list", "--no-such-flag"},
		{"dlq", "list", "--since", "-1h"},
		{"dlq", "show"},
		{"dlq", "retry"},
		{"dlq", "delete", "--all", "x"},
		{"dlq", "delete", "--all"},
		{"dlq", "delete", "--code", "rcs904"},
		{"dlq", "retry", "--all", "--rate", "0"},
		{"dlq", "export", "extra"},
		{"enqueue", "--file", "x.jsonl", "--format", "xml"},
		{"enqueue", "stray-argument"},
	} {
		if r := e.run(args...); r.code != 2 {
			t.Errorf("want exit 2:\n%s", r)
		}
	}
	for _, args := range [][]string{
		{"worker"}, {"enqueue"}, {"status"}, {"dlq"}, {"results"}, {"sim"}, {"demo"}, {"bench"},
		{"dlq", "list"}, {"dlq", "show"}, {"dlq", "retry"}, {"dlq", "delete"}, {"dlq", "export"},
	} {
		for _, h := range []string{"--help", "-h"} {
			r := e.runWith(map[string]string{"KALEYRA_SID": unset, "KALEYRA_API_KEY": unset}, "", append(args, h)...)
			if r.code != 0 {
				t.Errorf("want exit 0:\n%s", r)
			}
			if !strings.Contains(r.stdout+r.err, "rcslaunch "+strings.Join(args, " ")) {
				t.Errorf("help does not mention %q:\n%s", strings.Join(args, " "), r)
			}
		}
	}

	r = e.runWith(map[string]string{"KALEYRA_API_KEY": unset}, "", "worker")
	if r.code != 1 || !strings.Contains(r.err, "KALEYRA_API_KEY") {
		t.Errorf("worker without KALEYRA_API_KEY: want exit 1 naming it\n%s", r)
	}
	r = e.runWith(map[string]string{"KALEYRA_SID": unset}, "", "worker")
	if r.code != 1 || !strings.Contains(r.err, "KALEYRA_SID") {
		t.Errorf("worker without KALEYRA_SID: want exit 1 naming it\n%s", r)
	}
	line := launchtest.Line("", "600", nil)
	r = e.runWith(map[string]string{"KALEYRA_SID": unset}, line, "enqueue")
	if r.code != 1 || !strings.Contains(r.err, "KALEYRA_SID") {
		t.Errorf("enqueue without KALEYRA_SID: want exit 1 naming it\n%s", r)
	}
	file := e.writeFile("one.jsonl", line)
	r = e.runWith(map[string]string{"KALEYRA_SID": unset}, "", "enqueue", "--file", file)
	if r.code != 1 || !strings.Contains(r.err, "KALEYRA_SID") {
		t.Errorf("enqueue --file without KALEYRA_SID: want exit 1 naming it\n%s", r)
	}
	// enqueue needs no API key, and a bad value is never echoed.
	if r := e.runWith(map[string]string{"KALEYRA_API_KEY": unset}, line, "enqueue"); r.code != 0 {
		t.Errorf("enqueue without KALEYRA_API_KEY:\n%s", r)
	}
	r = e.runWith(map[string]string{"KALEYRA_TIMEOUT": "soon"}, "", "worker")
	if r.code != 1 || !strings.Contains(r.err, "KALEYRA_TIMEOUT") {
		t.Errorf("worker with a bad KALEYRA_TIMEOUT: want exit 1 naming it\n%s", r)
	}
}

// TestDemo: the demo needs neither Redis nor credentials, and shows the
// launch follow-up taking a success to launched and another to rejected.
func TestDemo(t *testing.T) {
	t.Parallel()
	e := &env{t: t, dir: t.TempDir(), vars: map[string]string{"LOG_FORMAT": "json"}}
	r := e.mustRun(0, "demo")
	var ok, dead int
	for _, line := range strings.Split(r.stdout, "\n") {
		switch {
		case strings.Contains(line, "  succeeded (") && strings.Contains(line, "agent "):
			ok++
		case strings.Contains(line, "  dead-lettered (") && strings.Contains(line, "agent "):
			dead++
		}
	}
	if ok == 0 || dead == 0 {
		t.Errorf("demo printed %d succeeded and %d dead-lettered outcomes, want some of each:\n%s", ok, dead, r)
	}
	for _, want := range []string{"  launch pending -> launched", "  launch pending -> rejected"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r)
		}
	}
}
