package store

import (
	"slices"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/rdb"
)

func TestJobsByAgent(t *testing.T) {
	s, c := newStore(t)
	t0 := time.UnixMilli(1_700_000_000_000)
	for i, id := range []string{"a1", "a2", "a3"} {
		j := newJob(id)
		j.AgentNo = "48900"
		mustCreate(t, s, j, t0.Add(time.Duration(i)*time.Second))
	}
	other := newJob("b1")
	other.AgentNo = "48901"
	mustCreate(t, s, other, t0)
	ids := func(agent string, limit int) []string {
		t.Helper()
		return jobsOf(t, s, agent, Filter{}, limit)
	}
	if got := ids("48900", 10); len(got) != 3 || got[0] != "a3" || got[2] != "a1" {
		t.Fatalf("jobs of 48900: %v, want a3 a2 a1 (newest first)", got)
	}
	if got := ids("48900", 2); len(got) != 2 || got[0] != "a3" {
		t.Fatalf("two jobs of 48900: %v", got)
	}
	if got := ids("48901", 10); len(got) != 1 || got[0] != "b1" {
		t.Fatalf("jobs of 48901: %v", got)
	}
	// A record gone (expired after its retention) leaves the index when met;
	// one undone by Uncreate leaves it at once.
	c.Del(ctx, rdb.JobKey("a2"))
	if err := s.Uncreate(ctx, "a3"); err != nil {
		t.Fatal(err)
	}
	if n := c.ZCard(ctx, rdb.AgentKey("48900")).Val(); n != 2 {
		t.Errorf("index after Uncreate: %d entries, want 2 (a1 and the expired a2)", n)
	}
	if got := ids("48900", 10); len(got) != 1 || got[0] != "a1" {
		t.Fatalf("jobs of 48900 after a2 expired and a3 was undone: %v, want a1", got)
	}
	if n := c.ZCard(ctx, rdb.AgentKey("48900")).Val(); n != 1 {
		t.Errorf("index after the read: %d entries, want 1", n)
	}
	if got := ids("nobody", 10); len(got) != 0 {
		t.Errorf("jobs of an unknown agent: %v", got)
	}
}

// jobsOf is the IDs of JobsByAgent's answer.
func jobsOf(t *testing.T, s *Store, agent string, f Filter, limit int) []string {
	t.Helper()
	recs, err := s.JobsByAgent(ctx, agent, f, limit)
	if err != nil {
		t.Fatal(err)
	}
	return ids(recs)
}

// TestJobsByAgentOfAccount: the filter picks an account's jobs among the
// agent's, and the limit counts those only.
func TestJobsByAgentOfAccount(t *testing.T) {
	s, _ := newStore(t)
	t0 := time.UnixMilli(1_700_000_000_000)
	for i, id := range []string{"a1", "b1", "a2", "b2"} {
		j := newJob(id)
		if id[0] == 'b' {
			j.SID = "SID2"
		}
		mustCreate(t, s, j, t0.Add(time.Duration(i)*time.Second))
	}
	if got := jobsOf(t, s, "48900", Filter{SID: "SID2"}, 10); !slices.Equal(got, []string{"b2", "b1"}) {
		t.Errorf("jobs of SID2: %v, want b2 b1", got)
	}
	if got := jobsOf(t, s, "48900", Filter{SID: "SID1"}, 1); !slices.Equal(got, []string{"a2"}) {
		t.Errorf("one job of SID1: %v, want a2", got)
	}
	if got := jobsOf(t, s, "48900", Filter{SID: "SID3"}, 10); len(got) != 0 {
		t.Errorf("jobs of an account with none: %v", got)
	}
}
