package display

import (
	"strings"
	"testing"

	"github.com/rcslaunch/rcslaunch/internal/store"
)

func TestOneLine(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"a\nb\tc\rd", 10, "a b c d"},
		{"abcdefghij", 5, "abcd…"},
		{"ééééé", 5, "ééééé"},
	} {
		if got := OneLine(c.in, c.n); got != c.want {
			t.Errorf("OneLine(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestResult(t *testing.T) {
	ok := Result(store.Result{Outcome: string(store.StateSucceeded), FinishedAt: "T", JobID: "j1", AgentNo: "7",
		Code: "RCS902", AgentLaunchID: "L", Attempts: 1})
	if want := "T  succeeded      job j1  agent 7  RCS902  agent_launch_id L  attempts 1"; ok != want {
		t.Errorf("succeeded:\n got %q\nwant %q", ok, want)
	}
	dead := Result(store.Result{Outcome: string(store.StateDeadLettered), FinishedAt: "T", JobID: "j2", AgentNo: "8",
		Code: "RCS502", Message: "bad\ngateway", Attempts: 3, Uncertain: true})
	if want := "T  dead-lettered  job j2  agent 8  RCS502: bad gateway  attempts 3  [uncertain]"; dead != want {
		t.Errorf("dead-lettered:\n got %q\nwant %q", dead, want)
	}
	long := Result(store.Result{Outcome: string(store.StateDeadLettered), Message: strings.Repeat("x", 500)})
	if !strings.Contains(long, strings.Repeat("x", 119)+"…") {
		t.Errorf("a long message is not cut at 120 characters: %q", long)
	}
}

func TestByCode(t *testing.T) {
	if got := ByCode(store.Batch{}); got != "" {
		t.Errorf("no dead letters: %q", got)
	}
	b := store.Batch{DeadLetteredByCode: map[string]int64{"RCS904": 1, "RCS502": 3, "RCS601": 1}}
	if got, want := ByCode(b), " (RCS502 3, RCS601 1, RCS904 1)"; got != want {
		t.Errorf("ByCode = %q, want %q", got, want)
	}
}
