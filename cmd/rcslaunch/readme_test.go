package main

// What the README and docs/configuration.md tell a newcomer to run must
// work as written: the sample files the recipe enqueues, the README's JSON
// job, and which commands need which credentials.

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/sim"
)

// repoFile is a file of the repository by its path from the root.
func repoFile(t *testing.T, path string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("../..", path))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(repoFile(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fencedBlocks returns the bodies of md's code blocks fenced as lang.
func fencedBlocks(md, lang string) []string {
	var blocks []string
	var cur *strings.Builder
	for _, line := range strings.Split(md, "\n") {
		switch {
		case cur == nil && strings.TrimSpace(line) == "```"+lang:
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return blocks
}

// TestReadmeRecipeAndJobExampleLaunch: the files the README's "try it
// locally" recipe enqueues, and its JSON job on stdin, are accepted as
// written (every row enqueued, exit 0), and a worker launches every one
// of them against the simulator; docs/jobs.md's JSON jobs validate.
func TestReadmeRecipeAndJobExampleLaunch(t *testing.T) {
	t.Parallel()
	readme := readRepoFile(t, "README.md")
	var files []string
	for _, block := range fencedBlocks(readme, "sh") {
		for _, m := range regexp.MustCompile(`enqueue --file (examples/\S+)`).FindAllStringSubmatch(block, -1) {
			files = append(files, m[1])
		}
	}
	if !slices.Contains(files, "examples/launches.jsonl") || !slices.Contains(files, "examples/launches.csv") {
		t.Fatalf("the README's recipe enqueues %v; want examples/launches.jsonl and examples/launches.csv", files)
	}
	jobs := fencedBlocks(readme, "json")
	if len(jobs) != 1 {
		t.Fatalf("the README has %d json blocks, want its one job example", len(jobs))
	}

	e := newEnv(t, sim.Config{})
	want := 0
	for _, f := range files {
		s := parseSummary(t, e.mustRun(0, "enqueue", "--file", repoFile(t, f), "--json"))
		if rows := sampleRows(t, f); s.Enqueued != rows || s.Invalid != 0 {
			t.Errorf("%s: enqueued %d, invalid %d; want all %d rows enqueued", f, s.Enqueued, s.Invalid, rows)
		}
		want += s.Enqueued
	}
	r := e.runWith(nil, jobs[0], "enqueue", "--json")
	if r.code != 0 {
		t.Fatalf("the README's JSON job on stdin:\n%s", r)
	}
	if s := parseSummary(t, r); s.Enqueued != 1 {
		t.Fatalf("the README's JSON job: enqueued %d, want 1\n%s", s.Enqueued, r)
	}
	want++
	// docs/jobs.md's examples: valid as written too (validated, not launched).
	for i, job := range fencedBlocks(readRepoFile(t, "docs/jobs.md"), "json") {
		if r := e.runWith(nil, job, "enqueue", "--dry-run"); r.code != 0 {
			t.Errorf("docs/jobs.md's JSON job %d:\n%s", i+1, r)
		}
	}

	w := e.startWorker(nil)
	rs := e.waitResults(60*time.Second, "every sample launch to finish", func(rs []resultEntry) bool { return len(rs) >= want })
	w.stop()
	for _, r := range rs {
		if r.Outcome != "succeeded" || r.Code != "RCS902" {
			t.Errorf("job %s (agent %s): %s %s %s, want succeeded RCS902", r.JobID, r.AgentNo, r.Outcome, r.Code, r.Message)
		}
	}
	if len(rs) != want {
		t.Errorf("%d results, want %d", len(rs), want)
	}
}

// sampleRows counts a sample file's jobs without rcslaunch's reader: its
// non-empty lines (JSONL), or its records after the header (CSV).
func sampleRows(t *testing.T, path string) int {
	t.Helper()
	data := readRepoFile(t, path)
	if strings.HasSuffix(path, ".csv") {
		records, err := csv.NewReader(strings.NewReader(data)).ReadAll()
		if err != nil || len(records) < 2 {
			t.Fatalf("%s: %d records, %v", path, len(records), err)
		}
		return len(records) - 1
	}
	n := 0
	for _, line := range strings.Split(data, "\n") {
		if strings.TrimSpace(line) != "" {
			n++
		}
	}
	return n
}

// TestDocsConfigurationRequiredVariables: the commands docs/configuration.md
// says require KALEYRA_SID or KALEYRA_API_KEY refuse to run without it,
// naming it, and the short commands it does not name run without it.
func TestDocsConfigurationRequiredVariables(t *testing.T) {
	t.Parallel()
	page := readRepoFile(t, "docs/configuration.md")
	e := newEnv(t, sim.Config{})
	// Jobs that name their account, which enqueue takes without KALEYRA_SID
	// (a job that names none is refused then: see
	// TestEnqueueAccountsAndPriority).
	jsonl := e.writeFile("own-account.jsonl", sidLine("", "48900", "OWN_ACCOUNT"))
	// Every command that needs no running server or worker to answer; the
	// long-running ones (worker, serve) are only run where they must fail.
	short := map[string][]string{
		"enqueue": {"enqueue", "--dry-run", "--file", jsonl},
		"status":  {"status", "no-such-job"},
		"results": {"results"},
		"dlq":     {"dlq", "list"},
		"batch":   {"batch", "list"},
	}
	// The long-running ones are started and stopped once they say they
	// are up; serve on a port of its own, beside the other tests.
	long := map[string][]string{"worker": {"worker"}, "serve": {"serve"}}
	up := map[string]string{"worker": "worker started", "serve": "serving the HTTP API"}
	for _, v := range []string{"KALEYRA_SID", "KALEYRA_API_KEY"} {
		required := requiredBy(t, page, v)
		for _, cmd := range required {
			args, ok := short[cmd]
			if !ok {
				args, ok = long[cmd]
			}
			if !ok {
				t.Errorf("docs/configuration.md: %s is required by %q, which this test does not know", v, cmd)
				continue
			}
			r := e.runWith(map[string]string{v: unset}, "", args...)
			if r.code != 1 || !strings.Contains(r.err, v+": is required") {
				t.Errorf("without %s, %s must refuse, naming it (the docs say it is required):\n%s", v, cmd, r)
			}
		}
		for cmd, args := range short {
			if slices.Contains(required, cmd) {
				continue
			}
			r := e.runWith(map[string]string{v: unset}, "", args...)
			if strings.Contains(r.err, v) {
				t.Errorf("without %s, %s complains about it, but the docs do not say it needs it:\n%s", v, cmd, r)
			}
		}
		for cmd, args := range long {
			if slices.Contains(required, cmd) {
				continue
			}
			p := e.start(map[string]string{v: unset, "HTTP_ADDR": "127.0.0.1:0"}, args...)
			waitFor(t, 20*time.Second, cmd+" to start or exit", func() bool {
				return p.exited() || strings.Contains(p.stderr.String(), up[cmd])
			})
			if p.exited() {
				t.Errorf("without %s, %s exited %d, but the docs do not say it needs it; stderr:\n%s", v, cmd, p.code, tail(p.stderr.String(), 2000))
				continue
			}
			p.stop()
		}
	}
}

// requiredBy reads the commands a variable's row in docs/configuration.md
// says require it: the backquoted names after "required** by", up to the
// first semicolon or the end of the cell.
func requiredBy(t *testing.T, page, variable string) []string {
	t.Helper()
	for _, line := range strings.Split(page, "\n") {
		if !strings.HasPrefix(line, "| `"+variable+"` |") {
			continue
		}
		_, after, ok := strings.Cut(line, "required** by")
		if !ok {
			t.Fatalf("docs/configuration.md: the %s row says no command requires it:\n%s", variable, line)
		}
		after, _, _ = strings.Cut(after, "|")
		after, _, _ = strings.Cut(after, ";")
		after = regexp.MustCompile(`\([^)]*\)`).ReplaceAllString(after, "")
		var cmds []string
		for _, m := range regexp.MustCompile("`([a-z]+)`").FindAllStringSubmatch(after, -1) {
			cmds = append(cmds, m[1])
		}
		if len(cmds) == 0 {
			t.Fatalf("docs/configuration.md: no command named in the %s row:\n%s", variable, line)
		}
		return cmds
	}
	t.Fatalf("docs/configuration.md has no row for %s", variable)
	return nil
}
