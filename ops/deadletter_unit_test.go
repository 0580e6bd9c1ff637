package ops

import (
	"errors"
	"math"
	"testing"
)

func TestSelectionCheck(t *testing.T) {
	for _, c := range []struct {
		sel Selection
		ok  bool
	}{
		{Selection{IDs: []string{"a"}}, true},
		{Selection{All: true}, true},
		{Selection{Code: "RCS904"}, true},
		{Selection{Batch: "b_1"}, true},
		{Selection{Batch: "b_1", Code: "RCS904"}, true},
		{Selection{Batch: "b_1", All: true}, false},
		{Selection{}, false},
		{Selection{All: true, Code: "RCS904"}, false},
		{Selection{IDs: []string{"a"}, All: true}, false},
		{Selection{SID: "ACC_A"}, true},
		{Selection{SID: "ACC_A", Code: "RCS904", Batch: "b_1"}, true},
		{Selection{SID: "ACC_A", All: true}, false},
		{Selection{SID: "ACC_A", IDs: []string{"a"}}, false},
	} {
		err := c.sel.Check()
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrBadSelection)) {
			t.Errorf("Check(%+v) = %v, want ok %v", c.sel, err, c.ok)
		}
	}
}

func TestTally(t *testing.T) {
	var tl Tally
	if got := tl.String(); got != "nothing selected" {
		t.Errorf("empty tally: %q", got)
	}
	for _, r := range []DeadLetterResult{
		{Action: Retried}, {Action: SkippedUncertain}, {Action: Retried},
		{Action: NotDeadLettered, State: StateQueued}, {Action: NotFound},
	} {
		tl.Add(r)
	}
	if got, want := tl.String(), "retried 2, skipped as uncertain 1, not dead-lettered (queued) 1, not found 1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	counts := tl.Counts()
	want := map[string]int{"retried": 2, "uncertain": 1, "queued": 1, "not_found": 1}
	if len(counts) != len(want) {
		t.Fatalf("Counts() = %v, want %v", counts, want)
	}
	for k, n := range want {
		if counts[k] != n || tl.Count(k) != n {
			t.Errorf("count of %q: %d (Count %d), want %d", k, counts[k], tl.Count(k), n)
		}
	}
	if _, ok := counts[""]; ok {
		t.Error("a result was counted under the empty key")
	}
}

func TestDeadLetterResultOK(t *testing.T) {
	for a, ok := range map[Action]bool{Retried: true, Deleted: true, SkippedUncertain: true, NotFound: false, NotDeadLettered: false} {
		if got := (DeadLetterResult{Action: a}).OK(); got != ok {
			t.Errorf("%s: OK() = %v, want %v", a, got, ok)
		}
	}
}

func TestBatchSummaryAdd(t *testing.T) {
	var s BatchSummary
	for i, st := range []Status{StatusEnqueued, StatusDuplicate, StatusAlreadyLaunched, StatusDeadLettered, StatusConflict, StatusEnqueued} {
		s.Add(i+1, resultFor("id", st))
	}
	if s.Enqueued != 2 || s.Duplicate != 1 || s.AlreadyLaunched != 1 || s.DeadLettered != 1 || s.Invalid != 1 || s.Conflict != 1 {
		t.Errorf("counts: %+v", s)
	}
	if len(s.Errors) != 1 || s.Errors[0].Line != 5 || s.Errors[0].Field != "id" {
		t.Errorf("the conflict's error: %+v", s.Errors)
	}
	if s.OK() {
		t.Error("a summary with a conflict and a dead letter is OK")
	}
}

func TestResultForFlagsDuplicates(t *testing.T) {
	for st, dup := range map[Status]bool{StatusEnqueued: false, StatusConflict: false,
		StatusDuplicate: true, StatusAlreadyLaunched: true, StatusDeadLettered: true} {
		if got := resultFor("x", st).SkippedAsDuplicate; got != dup {
			t.Errorf("%s: SkippedAsDuplicate %v, want %v", st, got, dup)
		}
	}
}

func TestNormalizeCode(t *testing.T) {
	for in, want := range map[string]string{"rcs904": "RCS904", " Timeout\n": "TIMEOUT", "RCS502": "RCS502", " ": ""} {
		if got := NormalizeCode(in); got != want {
			t.Errorf("NormalizeCode(%q) = %q, want %q", in, got, want)
		}
	}
	// A code of blanks names nothing: it must never widen to every letter.
	if err := (Selection{Code: "  "}).Check(); !errors.Is(err, ErrBadSelection) {
		t.Errorf("Check of a blank code: %v, want ErrBadSelection", err)
	}
}

func TestPacer(t *testing.T) {
	for _, o := range []*BulkOpts{nil, {}, {Rate: 5, DryRun: true}} {
		if p, err := pacer(o); p != nil || err != nil {
			t.Errorf("pacer(%+v) = %v, %v; want unpaced", o, p, err)
		}
	}
	for _, r := range []float64{-1, math.NaN()} {
		if _, err := pacer(&BulkOpts{Rate: r}); !errors.Is(err, ErrBadRate) {
			t.Errorf("pacer with rate %v: %v, want ErrBadRate", r, err)
		}
	}
	p, err := pacer(&BulkOpts{Rate: 2})
	if err != nil || p == nil || p.Limit() != 2 || p.Burst() != 1 {
		t.Fatalf("pacer at 2/s: %v, %v", p, err)
	}
}
