package store

import (
	"fmt"
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

// TestAgentIndexExpiresWithItsJobs: an agent's index is kept while any of
// its jobs is kept forever, and expires with the last of them once each
// expires, so that retained successes leave nothing behind.
func TestAgentIndexExpiresWithItsJobs(t *testing.T) {
	s, c := newStore(t)
	key := rdb.AgentKey("500")
	job := func(id string) NewJob {
		j := newJob(id)
		j.AgentNo = "500"
		return j
	}
	succeed := func(id string, retention time.Duration) {
		t.Helper()
		s.Retention = retention
		mustCreate(t, s, job(id), t0)
		_, n := mustStart(t, s, job(id), t0)
		mustFinish(t, s, id, success(n, t0), t0)
	}
	near := func(d, want time.Duration) bool { return d > want-time.Minute && d <= want }

	succeed("x1", time.Hour)
	if d := ttl(t, c, key); !near(d, time.Hour) {
		t.Fatalf("index of one success: TTL %v, want about 1h", d)
	}
	mustCreate(t, s, job("x2"), t0)
	if d := ttl(t, c, key); d != -1 {
		t.Fatalf("index with a queued job: TTL %v, want none", d)
	}
	_, n := mustStart(t, s, job("x2"), t0)
	mustFinish(t, s, "x2", terminal(n, "RCS904", false, t0), t0)
	if d := ttl(t, c, key); d != -1 {
		t.Fatalf("index with a dead letter: TTL %v, want none", d)
	}
	if deleted, _, err := s.DeleteDeadLetter(ctx, "x2"); err != nil || !deleted {
		t.Fatalf("delete x2: %v, %v", deleted, err)
	}
	if d := ttl(t, c, key); !near(d, time.Hour) {
		t.Fatalf("index after its dead letter was deleted: TTL %v, want about 1h", d)
	}
	// The last success to expire sets the index's end; one kept forever
	// keeps it forever.
	succeed("x3", 2*time.Hour)
	if d := ttl(t, c, key); !near(d, 2*time.Hour) {
		t.Fatalf("index of two successes: TTL %v, want about 2h", d)
	}
	succeed("x4", time.Minute)
	if d := ttl(t, c, key); !near(d, 2*time.Hour) {
		t.Fatalf("index after a shorter-lived success: TTL %v, want about 2h", d)
	}
	succeed("x5", 0)
	if d := ttl(t, c, key); d != -1 {
		t.Fatalf("index with a success kept forever: TTL %v, want none", d)
	}

	// Entries whose record is gone leave the index when it settles.
	other := rdb.AgentKey("600")
	for _, id := range []string{"y1", "y2"} {
		j := newJob(id)
		j.AgentNo = "600"
		mustCreate(t, s, j, t0)
	}
	c.Del(ctx, rdb.JobKey("y1"))
	s.Retention = time.Hour
	y2 := newJob("y2")
	y2.AgentNo = "600"
	_, n = mustStart(t, s, y2, t0)
	mustFinish(t, s, "y2", success(n, t0), t0)
	if got := c.ZRange(ctx, other, 0, -1).Val(); !slices.Equal(got, []string{"y2"}) || !near(ttl(t, c, other), time.Hour) {
		t.Fatalf("index 600: %v with TTL %v, want [y2] for about 1h", got, ttl(t, c, other))
	}

	// A large index is left to its readers.
	for i := range 17 {
		j := newJob(fmt.Sprint("z", i))
		j.AgentNo = "700"
		mustCreate(t, s, j, t0)
		_, n := mustStart(t, s, j, t0)
		mustFinish(t, s, j.ID, success(n, t0), t0)
	}
	if d := ttl(t, c, rdb.AgentKey("700")); d != -1 {
		t.Fatalf("index of 17 successes: TTL %v, want none", d)
	}
}
