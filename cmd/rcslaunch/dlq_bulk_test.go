package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/cli"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
)

// ttyIn is a stdin that says it is a terminal: an operator at the keyboard.
type ttyIn struct{ io.Reader }

func (ttyIn) IsTerminal() bool { return true }

// deadLetters makes a dead letter with code RCS904 of each agent, with an
// in-process worker, and returns their job IDs.
func (e *env) deadLetters(agents ...string) []string {
	e.t.Helper()
	ids := make([]string, len(agents))
	for i, a := range agents {
		e.Sim.Script(a, sim.StepMissingFields)
		res, err := e.Ops.Enqueue(context.Background(), launchtest.Job(a), nil)
		if err != nil {
			e.t.Fatal(err)
		}
		ids[i] = res.JobID
	}
	stop := e.StartWorker(nil)
	e.WaitFinished(ids...)
	stop()
	return ids
}

// runIn runs a command in-process with stdin in, as an operator at a
// terminal would; the environment must already be set (t.Setenv).
func runIn(in string, args ...string) result {
	var out, errw bytes.Buffer
	code := run(context.Background(), args, cli.Stdio{In: ttyIn{strings.NewReader(in)}, Out: &out, Err: &errw})
	return result{args: args, stdout: out.String(), err: errw.String(), code: code}
}

// TestDLQBulkSafety: deleting by --all or --code needs --yes or the count
// typed at a terminal; --dry-run changes nothing; codes are found in any
// case; --rate paces a retry. Not parallel: it sets the environment for
// the in-process runs that stand in for a terminal.
func TestDLQBulkSafety(t *testing.T) {
	e := newEnv(t, sim.Config{})
	jobs := e.deadLetters("8100", "8101", "8102")
	left := func(want int) {
		t.Helper()
		if got := e.dlqList(); len(got) != want {
			t.Fatalf("%d dead letters left, want %d: %v", len(got), want, ids(got))
		}
	}

	// Off a terminal, without --yes: refused before anything is read.
	for _, args := range [][]string{{"dlq", "delete", "--all"}, {"dlq", "delete", "--code", "rcs904"}} {
		if r := e.run(args...); r.code != cli.ExitUsage || !strings.Contains(r.err, "--yes") {
			t.Errorf("want exit 2 and a hint to pass --yes:\n%s", r)
		}
	}
	left(3)

	// --dry-run lists what would go, and changes nothing.
	r := e.mustRun(0, "dlq", "delete", "--code", "rcs904", "--dry-run")
	for _, id := range jobs {
		if !strings.Contains(r.stdout, id) {
			t.Errorf("dry run does not list %s:\n%s", id, r)
		}
	}
	if !strings.Contains(r.stdout, "DEAD-LETTERED AT") || !strings.Contains(r.stdout, "dry run (nothing changed): deleted 3") {
		t.Errorf("dry run: want a table and the tally it would make:\n%s", r)
	}
	r = e.run("dlq", "retry", jobs[0], "nope", "--dry-run")
	if r.code != 1 || !strings.Contains(r.stdout, jobs[0]) || !strings.Contains(r.err, "nope: not found") || e.Task(jobs[0]) != nil {
		t.Errorf("dry-run retry by ID: want exit 1, the letter listed, nope not found, no task:\n%s", r)
	}
	left(3)

	// Lower-case codes for list and export.
	if got := e.dlqList("--code", "rcs904"); len(got) != 3 {
		t.Errorf("dlq list --code rcs904: %d letters, want 3", len(got))
	}
	if r := e.mustRun(0, "dlq", "export", "--code", "Rcs904"); strings.Count(r.stdout, "\n") != 3 {
		t.Errorf("dlq export --code Rcs904:\n%s", r)
	}

	// At a terminal: the wrong count aborts, the right one deletes.
	for k, v := range e.vars {
		t.Setenv(k, v)
	}
	r = runIn("2\n", "dlq", "delete", "--code", "rcs904")
	if r.code != cli.ExitFailed || !strings.Contains(r.err, "Type 3") || !strings.Contains(r.err, "aborted") {
		t.Errorf("wrong count: want exit 1 after asking for 3:\n%s", r)
	}
	r = runIn("", "dlq", "delete", "--all")
	if r.code != cli.ExitFailed || !strings.Contains(r.err, "aborted") {
		t.Errorf("no answer: want exit 1:\n%s", r)
	}
	left(3)

	// --rate: 2 letters at 10/s take at least 100 ms (the first goes at once).
	start := time.Now()
	r = e.mustRun(0, "dlq", "retry", jobs[0], jobs[1], "--rate", "10")
	if took := time.Since(start); !strings.Contains(r.stdout, "retried 2") || took < 80*time.Millisecond {
		t.Errorf("paced retry of 2 at 10/s took %v (want at least 100 ms less slack):\n%s", took, r)
	}
	for _, bad := range []string{"0", "-1", "fast", "NaN", "+Inf"} {
		if r := e.run("dlq", "retry", "--all", "--rate", bad); r.code != cli.ExitUsage || !strings.Contains(r.err, "positive") {
			t.Errorf("--rate %s: want exit 2 saying it must be positive:\n%s", bad, r)
		}
	}
	left(1)

	r = runIn("1\n", "dlq", "delete", "--code", "rcs904")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "deleted 1") {
		t.Errorf("right count: want exit 0 and deleted 1:\n%s", r)
	}
	left(0)
	e.deadLetters("8103")
	if r := e.mustRun(0, "dlq", "delete", "--all", "--yes"); !strings.Contains(r.stdout, "deleted 1") {
		t.Errorf("--yes:\n%s", r)
	}
	left(0)
}
