package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// addResults appends n entries of account sid to the results stream, job
// IDs prefix-0, prefix-1, ...
func addResults(t *testing.T, c *redis.Client, sid, prefix string, n int) {
	t.Helper()
	pipe := c.Pipeline()
	for i := range n {
		vals := map[string]any{"job_id": fmt.Sprintf("%s-%d", prefix, i), "outcome": "succeeded"}
		if sid != "" {
			vals["sid"] = sid
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: ResultsStream, Values: vals})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

func jobIDs(rs []Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.JobID
	}
	return out
}

// A filtered read skips other accounts' entries, however many come first:
// it never returns an empty page while a kept entry follows, and reading on
// from next gives every kept entry once.
func TestReadResultsPageBySID(t *testing.T) {
	s, c := newStore(t)
	addResults(t, c, "B", "b", 2*resultsScan+5) // more than one scan of others first
	addResults(t, c, "A", "a", 3)
	addResults(t, c, "", "old", 2) // written before entries had a SID
	addResults(t, c, "B", "b2", 10)
	addResults(t, c, "A", "a2", 1)
	addResults(t, c, "B", "b3", 4)

	f := ResultsFilter{SID: "A"}
	var got []string
	after := "0"
	for page := 0; ; page++ {
		rs, next, err := s.ReadResultsPage(ctx, after, 2, 0, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			last, _ := c.XRevRangeN(ctx, ResultsStream, "+", "-", 1).Result()
			if next != last[0].ID {
				t.Fatalf("empty page's next = %s, want the last entry %s", next, last[0].ID)
			}
			break
		}
		for _, r := range rs {
			if r.SID != "A" {
				t.Fatalf("page %d has %s of account %q", page, r.JobID, r.SID)
			}
		}
		if next != rs[len(rs)-1].StreamID && len(rs) == 2 {
			t.Fatalf("full page's next = %s, want its last entry %s", next, rs[len(rs)-1].StreamID)
		}
		got = append(got, jobIDs(rs)...)
		after = next
	}
	if want := []string{"a-0", "a-1", "a-2", "a2-0"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("account A's results: %v, want %v", got, want)
	}

	// Without a filter, every entry, count at a time.
	rs, next, err := s.ReadResultsPage(ctx, "0", 3, 0, ResultsFilter{})
	if err != nil || len(rs) != 3 || next != rs[2].StreamID || rs[0].JobID != "b-0" {
		t.Fatalf("unfiltered: %v, %s, %v", jobIDs(rs), next, err)
	}
	if rs, _, err := s.ReadResultsPage(ctx, "0", 10, 0, ResultsFilter{SID: "NONE"}); err != nil || len(rs) != 0 {
		t.Fatalf("unknown account: %v, %v", jobIDs(rs), err)
	}
}

// A blocking filtered read waits past other accounts' new entries for one of
// its own, and on time-out returns none with next past those it skipped.
func TestReadResultsPageBySIDBlocks(t *testing.T) {
	s, c := newStore(t)
	addResults(t, c, "B", "b", 3)
	f := ResultsFilter{SID: "A"}

	start := time.Now()
	rs, next, err := s.ReadResultsPage(ctx, "0", 10, 300*time.Millisecond, f)
	if err != nil || len(rs) != 0 {
		t.Fatalf("nothing of A: %v, %v", jobIDs(rs), err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("returned after %v, want it to wait about 300ms", d)
	}
	last, _ := c.XRevRangeN(ctx, ResultsStream, "+", "-", 1).Result()
	if next != last[0].ID {
		t.Fatalf("next = %s, want the last skipped entry %s", next, last[0].ID)
	}

	added := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		err := c.XAdd(ctx, &redis.XAddArgs{Stream: ResultsStream, Values: map[string]any{"job_id": "b2", "sid": "B"}}).Err()
		time.Sleep(100 * time.Millisecond)
		if err == nil {
			err = c.XAdd(ctx, &redis.XAddArgs{Stream: ResultsStream, Values: map[string]any{"job_id": "a", "sid": "A"}}).Err()
		}
		added <- err
	}()
	rs, _, err = s.ReadResultsPage(ctx, next, 10, 5*time.Second, f)
	if aerr := <-added; aerr != nil {
		t.Fatal(aerr)
	}
	if err != nil || len(rs) != 1 || rs[0].JobID != "a" {
		t.Fatalf("waiting for A: %v, %v", jobIDs(rs), err)
	}
}
