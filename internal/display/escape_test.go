package display

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/ops"
)

// hostile is text a terminal would act on: a colour change (ESC [31m), the
// bell, a carriage return that rewrites the line, a right-to-left override
// that reverses what follows, the one-character CSI (U+009B) and DEL, with
// a newline and a tab that would break a line or a table's columns.
const hostile = "\x1b[31mred\a\rover\u202egnp.exe\u009b2J\x7f\nnext\tcol"

// bidiControls are the Unicode characters that reorder the text around
// them on the screen.
func isBidiControl(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// assertClean fails unless line (one line, without its newline) holds no
// control or bidi character, tabs apart when it is a table row of tabs
// columns, and shows the hostile text escaped (not left out).
func assertClean(t *testing.T, what, line string, tabs int) {
	t.Helper()
	for _, r := range line {
		if (unicode.IsControl(r) && r != '\t') || isBidiControl(r) || r == 0x2028 || r == 0x2029 {
			t.Errorf("%s: raw %U in %q", what, r, line)
			return
		}
	}
	if n := strings.Count(line, "\t"); n != tabs {
		t.Errorf("%s: %d tabs, want %d: %q", what, n, tabs, line)
	}
	if !strings.Contains(line, `\u202egnp.exe`) {
		t.Errorf("%s: the hostile text is not shown escaped: %q", what, line)
	}
}

// assertCleanLines is assertClean for each line of out that holds the
// hostile text; at least one must.
func assertCleanLines(t *testing.T, what, out string) {
	t.Helper()
	seen := false
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if strings.Contains(line, "gnp.exe") {
			seen = true
			assertClean(t, what, line, 0)
		} else if strings.ContainsFunc(line, func(r rune) bool { return unicode.IsControl(r) || isBidiControl(r) }) {
			t.Errorf("%s: raw control character in %q", what, line)
		}
	}
	if !seen {
		t.Errorf("%s: the hostile text is missing:\n%s", what, out)
	}
}

func TestResultEscapes(t *testing.T) {
	for _, r := range []store.Result{
		{Outcome: string(store.StateSucceeded), JobID: hostile, AgentNo: hostile, Code: hostile, AgentLaunchID: hostile, LaunchState: hostile},
		{Outcome: string(store.StateDeadLettered), JobID: "j", AgentNo: hostile, Code: hostile, Message: hostile},
		{Outcome: string(store.StateDeadLettered), JobID: "j", AgentNo: "7", Code: "RCS502", Message: hostile},
		{Outcome: store.OutcomeLaunchState, JobID: hostile, AgentNo: hostile, PreviousLaunchState: hostile, LaunchState: "unknown",
			AgentLaunchID: hostile, Message: hostile},
		{Outcome: store.OutcomeLaunchState, JobID: "j", AgentNo: "7", LaunchState: "unknown", Message: hostile},
	} {
		assertClean(t, "results "+r.Outcome, Result(r), 0)
	}
}

func TestBriefEscapes(t *testing.T) {
	for _, r := range []store.Result{
		{Outcome: string(store.StateSucceeded), FinishedAt: hostile, AgentNo: hostile, Code: hostile, LaunchState: hostile},
		{Outcome: string(store.StateDeadLettered), AgentNo: "7", Code: hostile, Message: hostile},
		{Outcome: string(store.StateDeadLettered), AgentNo: "7", Code: "RCS502", Message: hostile},
		{Outcome: store.OutcomeLaunchState, AgentNo: hostile, PreviousLaunchState: hostile, LaunchState: "unknown", Message: hostile},
	} {
		assertClean(t, "demo "+r.Outcome, Brief(r), 0)
	}
}

func TestJobStateEscapes(t *testing.T) {
	for _, st := range []ops.State{ops.StateSucceeded, ops.StateDeadLettered, ops.StateRetrying} {
		r := ops.Record{ID: hostile, AgentNo: hostile, State: st, Code: hostile, Message: hostile, AgentLaunchID: hostile}
		assertClean(t, "status "+string(st), JobState(r), 0)
	}
	assertClean(t, "status, unknown state", JobState(ops.Record{State: ops.State(hostile)}), 0)
}

func TestLaunchEscapes(t *testing.T) {
	f := &ops.LaunchFollow{State: ops.LaunchState(hostile), Ended: hostile, Polls: 1, Code: hostile, Message: hostile}
	lines := Launch(f)
	if len(lines) != 2 {
		t.Fatalf("Launch: %q", lines)
	}
	for _, l := range lines {
		assertClean(t, "status launch line", l, 0)
	}
	f = &ops.LaunchFollow{State: "pending", Polls: 1, Message: hostile}
	assertClean(t, "status last poll, message only", Launch(f)[1], 0)
}

func TestAttemptEscapes(t *testing.T) {
	assertClean(t, "attempt", Attempt(ops.Attempt{N: 1, Outcome: hostile, Code: hostile, Message: hostile}), 0)
}

func TestAgentJobRowEscapes(t *testing.T) {
	r := ops.Record{ID: hostile, SID: hostile, State: ops.StateDeadLettered, Code: hostile, Message: hostile,
		Launch: &ops.LaunchFollow{State: ops.LaunchState(hostile)}}
	assertClean(t, "status --agent row", AgentJobRow(r), strings.Count(AgentJobHeader, "\t"))
}

func TestDeadLetterRowEscapes(t *testing.T) {
	r := ops.Record{ID: hostile, SID: hostile, AgentNo: hostile, Code: hostile, Message: hostile, Uncertain: true}
	assertClean(t, "dlq list row", DeadLetterRow(r), strings.Count(DeadLetterHeader, "\t"))
	r = ops.Record{ID: "j", SID: hostile, Code: "RCS904", Message: "m"}
	assertClean(t, "dlq list row, SID only", DeadLetterRow(r), strings.Count(DeadLetterHeader, "\t"))
	r = ops.Record{ID: "j", AgentNo: hostile, Code: "RCS904", Message: "m"}
	assertClean(t, "dlq list row, agent only", DeadLetterRow(r), strings.Count(DeadLetterHeader, "\t"))
}

func TestBatchEscapes(t *testing.T) {
	b := ops.BatchStatus{Batch: store.Batch{ID: hostile, Name: hostile, Total: 2, DeadLettered: 1,
		DeadLetteredByCode: map[string]int64{hostile: 1}}}
	var out strings.Builder
	Batch(&out, b)
	assertCleanLines(t, "batch status", out.String())
	assertClean(t, "batch status counts", Counts(b.Batch), 0)
	assertClean(t, "batch list row", BatchListRow(b.Batch), strings.Count(BatchListHeader, "\t"))
	b.ID = "b1"
	assertClean(t, "batch list row, name only", BatchListRow(b.Batch), strings.Count(BatchListHeader, "\t"))
}

func TestSummaryEscapes(t *testing.T) {
	id := hostile
	s := &ops.BatchSummary{BatchID: &id, Enqueued: 1, Invalid: 2, Errors: []ops.RowError{
		{Line: 2, Field: hostile, Reason: hostile}, {Line: 3, Reason: hostile}, {Field: hostile, Reason: hostile}}}
	var out, errw strings.Builder
	Summary(&out, &errw, s)
	assertCleanLines(t, "enqueue summary", out.String())
	assertCleanLines(t, "enqueue errors", errw.String())
}

func TestJobEscapes(t *testing.T) {
	r := ops.Record{ID: hostile, SID: hostile, AgentNo: hostile, State: ops.StateSucceeded, AgentLaunchID: hostile,
		Launch:  &ops.LaunchFollow{State: "unknown", Polls: 1, Code: hostile, Message: hostile},
		History: []ops.Attempt{{N: 1, Outcome: "succeeded", Code: hostile, Message: hostile}}}
	var out strings.Builder
	Job(&out, r)
	assertCleanLines(t, "status", out.String())
	if n := strings.Count(out.String(), "\n"); n != 4 {
		t.Errorf("status: %d lines, want 4:\n%s", n, out.String())
	}
}

func TestDeadLetterEscapes(t *testing.T) {
	// JSON escapes the C0 controls of a payload, not DEL, C1 or bidi.
	payload, _ := json.Marshal(map[string]string{"agent_no": hostile})
	r := ops.Record{ID: hostile, SID: hostile, AgentNo: hostile, Code: hostile, Message: hostile, Batch: hostile,
		Payload: payload,
		History: []ops.Attempt{{N: 1, Outcome: "terminal", Code: hostile, Message: hostile}}}
	var out strings.Builder
	DeadLetter(&out, r)
	assertCleanLines(t, "dlq show", out.String())
}

func TestBatchLinesEscape(t *testing.T) {
	b := ops.BatchStatus{Batch: store.Batch{ID: hostile, Total: 2, DeadLettered: 1, DeadLetteredByCode: map[string]int64{hostile: 1}}}
	assertClean(t, "batch close", BatchClosed(b.Batch), 0)
	assertClean(t, "batch status --watch", WatchLine(time.Now(), b), 0)
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "",
		"RCS904: plain text, é":    "RCS904: plain text, é",
		`a\x1b stays`:              `a\x1b stays`,
		"\x1b[31mred\x1b[0m":       `\x1b[31mred\x1b[0m`,
		"bell\a":                   `bell\x07`,
		"a\r\nb\tc":                `a\r\nb\tc`,
		"\x00\x7f":                 `\x00\x7f`,
		"\u0085\u009b2J":           `\u0085\u009b2J`,
		"exe.\u202etxt":            `exe.\u202etxt`,
		"\u2066\u2067\u2068\u2069": `\u2066\u2067\u2068\u2069`,
		"\u200e\u200f\u061c":       `\u200e\u200f\u061c`,
		"line\u2028sep":            `line\u2028sep`,
		"bad \xff\xfe utf-8":       `bad \xff\xfe utf-8`,
		"\ufffd is printable":      "\ufffd is printable",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzEscape: what Escape returns is UTF-8 without a control, bidi or
// separator character, and printable text comes back as it is.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "plain", hostile, "é日本", "\xff", "\u202e", "\u0085", `\x1b`, "a\r\n\t", "\ufffd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Escape(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Escape(%q) = %q is not UTF-8", s, got)
		}
		for _, r := range got {
			if unicode.IsControl(r) || isBidiControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == 0x2028 || r == 0x2029 {
				t.Fatalf("Escape(%q) = %q holds %U", s, got, r)
			}
		}
		printable := utf8.ValidString(s)
		for _, r := range s {
			printable = printable && unicode.IsPrint(r)
		}
		if printable && got != s {
			t.Fatalf("Escape(%q) = %q changed printable text", s, got)
		}
		if got == s && len(s) > 0 && !utf8.ValidString(s) {
			t.Fatalf("Escape(%q) left bytes that are not UTF-8", s)
		}
	})
}
