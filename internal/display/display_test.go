package display

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/ops"
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

// TestTally: most frequent first, names in order among equals, the same
// for int and int64 counts.
func TestTally(t *testing.T) {
	if got := Tally(map[string]int{}); got != "" {
		t.Errorf("no counts: %q", got)
	}
	if got, want := Tally(map[string]int{"RCS902": 4, "RCS601": 1, "RCS502": 5, "RCS904": 1}), "RCS502 5, RCS902 4, RCS601 1, RCS904 1"; got != want {
		t.Errorf("Tally = %q, want %q", got, want)
	}
	if got, want := Tally(map[string]int64{"b": 2, "a": 2, "c\x1b": 3}), `c\x1b 3, a 2, b 2`; got != want {
		t.Errorf("Tally = %q, want %q", got, want)
	}
}

func TestClock(t *testing.T) {
	at := time.Date(2026, 12, 6, 4, 52, 50, 500224172, time.FixedZone("IST", 5*3600+1800))
	if got := Clock(at); got != "23:22:50" {
		t.Errorf("Clock = %q, want the UTC time of day", got)
	}
	if got := Clock(time.Time{}); got != "-" {
		t.Errorf("Clock(zero) = %q", got)
	}
}

// TestBrief: the demo's story lines, a clock time and no job or launch
// ID; a long message is cut so that the line fits in BriefWidth.
func TestBrief(t *testing.T) {
	const at = "2026-12-06T04:52:50.500224172Z"
	for _, c := range []struct {
		r    store.Result
		want string
	}{
		{store.Result{Outcome: string(store.StateSucceeded), FinishedAt: at, JobID: "j1", AgentNo: "48901",
			Code: "RCS902", AgentLaunchID: "L", Attempts: 1, LaunchState: "pending"},
			"04:52:50  agent 48901  succeeded (RCS902, 1 attempt), launch pending"},
		{store.Result{Outcome: string(store.StateSucceeded), FinishedAt: at, AgentNo: "48903", Code: "RCS902", Attempts: 3},
			"04:52:50  agent 48903  succeeded (RCS902, 3 attempts)"},
		{store.Result{Outcome: string(store.StateDeadLettered), FinishedAt: at, AgentNo: "48904",
			Code: "RCS502", Message: "Internal Gateway Error", Attempts: 3, Uncertain: true},
			"04:52:50  agent 48904  dead-lettered (RCS502, 3 attempts, uncertain): Internal Gateway Error"},
		{store.Result{Outcome: store.OutcomeLaunchState, FinishedAt: at, AgentNo: "48903", Code: "RCS200",
			Message: "fetched", LaunchState: "launched", PreviousLaunchState: "pending"},
			"04:52:50  agent 48903  launch pending -> launched"},
		{store.Result{Outcome: store.OutcomeLaunchState, FinishedAt: at, AgentNo: "48903",
			Message: `launch state "WEIRD"`, LaunchState: "unknown"},
			`04:52:50  agent 48903  launch - -> unknown: launch state "WEIRD"`},
		{store.Result{Outcome: string(store.StateDeadLettered), FinishedAt: "not\x1ba time", AgentNo: "1\n2", Code: "X", Attempts: 1},
			`not\x1ba time  agent 1 2  dead-lettered (X, 1 attempt)`},
	} {
		if got := Brief(c.r); got != c.want {
			t.Errorf("Brief:\n got %q\nwant %q", got, c.want)
		}
	}
	long := Brief(store.Result{Outcome: string(store.StateDeadLettered), FinishedAt: at, AgentNo: "48905", Code: "RCS904",
		Message: "Failed to create Agent launch request: Missing required fields in launch payload: " + strings.Repeat("x", 200), Attempts: 1})
	if n := utf8.RuneCountInString(long); n != BriefWidth || !strings.HasSuffix(long, "…") ||
		!strings.HasPrefix(long, "04:52:50  agent 48905  dead-lettered (RCS904, 1 attempt): Failed to create") {
		t.Errorf("long message: %d columns, want %d, cut: %q", n, BriefWidth, long)
	}
}

func TestResultLaunchState(t *testing.T) {
	ok := Result(store.Result{Outcome: string(store.StateSucceeded), FinishedAt: "T", JobID: "j1", AgentNo: "7",
		Code: "RCS902", AgentLaunchID: "L", Attempts: 1, LaunchState: "pending"})
	if want := "T  succeeded      job j1  agent 7  RCS902  agent_launch_id L  attempts 1  launch pending"; ok != want {
		t.Errorf("followed success:\n got %q\nwant %q", ok, want)
	}
	change := Result(store.Result{Outcome: store.OutcomeLaunchState, FinishedAt: "T", JobID: "j1", AgentNo: "7",
		Code: "RCS200", Message: "fetched", AgentLaunchID: "L", Attempts: 1, LaunchState: "launched", PreviousLaunchState: "pending"})
	if want := "T  launch         job j1  agent 7  pending -> launched  agent_launch_id L"; change != want {
		t.Errorf("launch state change:\n got %q\nwant %q", change, want)
	}
	unknown := Result(store.Result{Outcome: store.OutcomeLaunchState, FinishedAt: "T", JobID: "j1", AgentNo: "7",
		Message: `launch state "WEIRD" not recognised`, AgentLaunchID: "L", LaunchState: "unknown"})
	if want := `T  launch         job j1  agent 7  - -> unknown  agent_launch_id L  launch state "WEIRD" not recognised`; unknown != want {
		t.Errorf("unknown state:\n got %q\nwant %q", unknown, want)
	}
}

func TestLaunch(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	if got := Launch(nil); got != nil {
		t.Errorf("not followed: %q", got)
	}
	for _, c := range []struct {
		name string
		f    ops.LaunchFollow
		want []string
	}{
		{"not polled yet", ops.LaunchFollow{State: "pending", StateAt: t0, FollowedAt: t0, NextPollAt: t0.Add(time.Minute)},
			[]string{"launch state pending since 2026-12-06T04:00:00Z (followed since 2026-12-06T04:00:00Z, 0 polls): first poll at 2026-12-06T04:01:00Z"}},
		{"polled, failed", ops.LaunchFollow{State: "pending", StateAt: t0, FollowedAt: t0, Polls: 1, PolledAt: t0.Add(time.Minute),
			NextPollAt: t0.Add(3 * time.Minute), LastPollFailed: true, Code: "BAD_RESPONSE", Message: "body is\nnot valid JSON"},
			[]string{"launch state pending since 2026-12-06T04:00:00Z (followed since 2026-12-06T04:00:00Z, 1 poll): next poll at 2026-12-06T04:03:00Z",
				"last poll failed at 2026-12-06T04:01:00Z: BAD_RESPONSE: body is not valid JSON"}},
		{"final", ops.LaunchFollow{State: "launched", StateAt: t0.Add(time.Hour), FollowedAt: t0, Polls: 3, PolledAt: t0.Add(time.Hour),
			Ended: ops.FollowFinal, Code: "RCS200"},
			[]string{"launch state launched since 2026-12-06T05:00:00Z (followed since 2026-12-06T04:00:00Z, 3 polls): final, following ended",
				"last poll at 2026-12-06T05:00:00Z: RCS200"}},
		{"expired", ops.LaunchFollow{State: "pending", StateAt: t0, FollowedAt: t0, Polls: 9, PolledAt: t0.Add(time.Hour),
			Ended: ops.FollowExpired, Message: "still under review"},
			[]string{"launch state pending since 2026-12-06T04:00:00Z (followed since 2026-12-06T04:00:00Z, 9 polls): following ended: FOLLOW_MAX_AGE passed without a final state",
				"last poll at 2026-12-06T05:00:00Z: still under review"}},
	} {
		if got := Launch(&c.f); !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

func TestAgentJobRow(t *testing.T) {
	rec := ops.Record{ID: "j1", SID: "S1", State: ops.StateQueued}
	if got := AgentJobRow(rec); !strings.HasPrefix(got, "j1\tS1\tqueued") || !strings.HasSuffix(got, "\t-") {
		t.Errorf("not followed: %q", got)
	}
	rec = ops.Record{ID: "j1", SID: "S1", State: ops.StateSucceeded, AgentLaunchID: "L", LaunchState: "rejected",
		Launch: &ops.LaunchFollow{State: "rejected", Ended: ops.FollowFinal}}
	if got := AgentJobRow(rec); !strings.HasPrefix(got, "j1\tS1\tsucceeded, agent_launch_id L") || !strings.HasSuffix(got, "\trejected") {
		t.Errorf("followed: %q", got)
	}
	rec.Launch = &ops.LaunchFollow{State: "pending", Ended: ops.FollowExpired}
	if got := LaunchBrief(rec); got != "pending, expired" {
		t.Errorf("expired: %q", got)
	}
	if n := strings.Count(AgentJobHeader, "\t"); n != strings.Count(AgentJobRow(rec), "\t") {
		t.Errorf("header has %d tabs, a row %d", n, strings.Count(AgentJobRow(rec), "\t"))
	}
}

func TestBatchLaunchStates(t *testing.T) {
	b := ops.BatchStatus{Batch: store.Batch{ID: "b1", Name: "n", Total: 3, Succeeded: 3, Closed: true,
		LaunchStates: map[store.LaunchState]int64{"pending": 0, "launched": 0, "rejected": 0, "suspended": 0, "unknown": 0}}}
	var out strings.Builder
	Batch(&out, b)
	if strings.Contains(out.String(), "launch") {
		t.Errorf("nothing followed, yet a launch line:\n%s", out.String())
	}
	launched := slices.Index(strings.Split(BatchListHeader, "\t"), "LAUNCHED")
	if got := strings.Split(BatchListRow(b.Batch), "\t"); got[launched] != "-" {
		t.Errorf("list row, nothing followed: %q", got)
	}
	b.LaunchStates["pending"], b.LaunchStates["launched"], b.LaunchStates["rejected"] = 1, 180, 19
	out.Reset()
	Batch(&out, b)
	if want := "  launch states  pending 1, launched 180, rejected 19, suspended 0, unknown 0 (200 followed)\n"; !strings.Contains(out.String(), want) {
		t.Errorf("batch status lacks %q:\n%s", want, out.String())
	}
	row := strings.Split(BatchListRow(b.Batch), "\t")
	if row[launched] != "180/200" || len(row) != strings.Count(BatchListHeader, "\t")+1 {
		t.Errorf("list row %q for header %q", row, BatchListHeader)
	}
}

// TestWrap: lines of at most the width, broken at spaces, hanging under
// the prefix; a word longer than the width alone on its line.
func TestWrap(t *testing.T) {
	for _, c := range []struct {
		prefix, text string
		width        int
		want         string
	}{
		{"p: ", "", 10, "p: "},
		{"p: ", "short text", 20, "p: short text"},
		{"p: ", "one two three four", 13, "p: one two\n   three four"},
		{"p: ", "a  b\n c", 20, "p: a b c"},
		{"p: ", "tiny enormousword x", 8, "p: tiny\n   enormousword\n   x"},
		{"é: ", "ab cd", 6, "é: ab\n   cd"},
	} {
		got := Wrap(c.prefix, c.text, c.width)
		if got != c.want {
			t.Errorf("Wrap(%q, %q, %d) =\n%s\nwant\n%s", c.prefix, c.text, c.width, got, c.want)
		}
	}
}

// TestSIDShown: status, dlq show and dlq list show the job's account.
func TestSIDShown(t *testing.T) {
	r := ops.Record{ID: "j1", SID: "ACC_A", AgentNo: "48900", State: ops.StateDeadLettered, Code: "UNKNOWN_ACCOUNT"}
	var job, letter strings.Builder
	Job(&job, r)
	DeadLetter(&letter, r)
	if !strings.HasPrefix(job.String(), "job j1 (agent 48900, sid ACC_A): dead-lettered, code UNKNOWN_ACCOUNT") {
		t.Errorf("status: %q", job.String())
	}
	if !strings.Contains(letter.String(), "\nsid:            ACC_A\n") {
		t.Errorf("dlq show:\n%s", letter.String())
	}
	if row := strings.Split(DeadLetterRow(r), "\t"); row[2] != "ACC_A" || strings.Split(DeadLetterHeader, "\t")[2] != "SID" {
		t.Errorf("dlq list row %q under %q", row, DeadLetterHeader)
	}
}
