package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/rdb"
)

// counts is a batch's counters as the tests compare them.
type counts struct {
	Total, Queued, Running, Retrying, Succeeded, DeadLettered int64
	ByCode                                                    string // "RCS502=1,RCS904=2"
	Deleted, Relaunched                                       int64
}

func countsOf(b Batch) counts {
	var codes []string
	for c, n := range b.DeadLetteredByCode {
		codes = append(codes, fmt.Sprintf("%s=%d", c, n))
	}
	slices.Sort(codes)
	return counts{b.Total, b.Queued, b.Running, b.Retrying, b.Succeeded, b.DeadLettered,
		strings.Join(codes, ","), b.Deleted, b.Relaunched}
}

func mustBatch(t *testing.T, s *Store, id string) Batch {
	t.Helper()
	b, err := s.GetBatch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustCreateBatch(t *testing.T, s *Store, id string, now time.Time) {
	t.Helper()
	if err := s.CreateBatch(ctx, id, "name of "+id, now); err != nil {
		t.Fatal(err)
	}
}

// wantCounts checks the batch's counters, and that they agree with the job
// records (the rule batch.go states): each counter is the number of records
// of the batch in that state, total their sum.
func wantCounts(t *testing.T, s *Store, c *redis.Client, id string, want counts) Batch {
	t.Helper()
	b := mustBatch(t, s, id)
	if got := countsOf(b); got != want {
		t.Fatalf("batch %s counters:\n got %+v\nwant %+v", id, got, want)
	}
	if sum := b.Queued + b.Running + b.Retrying + b.Succeeded + b.DeadLettered; sum != b.Total {
		t.Fatalf("batch %s: counters sum to %d, total %d", id, sum, b.Total)
	}
	var byCode int64
	for _, n := range b.DeadLetteredByCode {
		byCode += n
	}
	if byCode != b.DeadLettered {
		t.Fatalf("batch %s: %d dead letters by code, %d in all", id, byCode, b.DeadLettered)
	}
	fromRecords := counts{DeadLettered: 0}
	codes := map[string]int64{}
	keys, err := c.Keys(ctx, rdb.JobPrefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		h, err := c.HGetAll(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if h["batch"] != id {
			continue
		}
		fromRecords.Total++
		switch State(h["state"]) {
		case StateQueued:
			fromRecords.Queued++
		case StateRunning:
			fromRecords.Running++
		case StateRetrying:
			fromRecords.Retrying++
		case StateSucceeded:
			fromRecords.Succeeded++
		case StateDeadLettered:
			fromRecords.DeadLettered++
			codes[h["code"]]++
		}
	}
	got := countsOf(b)
	got.ByCode, got.Deleted, got.Relaunched = "", 0, 0
	if got != fromRecords {
		t.Fatalf("batch %s counters %+v, its job records say %+v", id, got, fromRecords)
	}
	for code, n := range codes {
		if b.DeadLetteredByCode[code] != n {
			t.Fatalf("batch %s: %d dead letters with %s, records say %d", id, b.DeadLetteredByCode[code], code, n)
		}
	}
	return b
}

func batchJobIDs(t *testing.T, s *Store, id string) []string {
	t.Helper()
	var out []string
	if err := s.EachBatchJob(ctx, id, func(j BatchJob) error { out = append(out, j.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func inBatch(id, batch string) NewJob {
	j := newJob(id)
	j.Batch = batch
	return j
}

func TestBatchCreateGetListClose(t *testing.T) {
	s, c := newStore(t)
	if _, err := s.GetBatch(ctx, "nope"); !errors.Is(err, ErrBatchNotFound) {
		t.Fatalf("unknown batch: %v", err)
	}
	if err := s.CloseBatch(ctx, "nope", t0); !errors.Is(err, ErrBatchNotFound) {
		t.Fatalf("close of an unknown batch: %v", err)
	}
	if err := s.EachBatchJob(ctx, "nope", func(BatchJob) error { return nil }); !errors.Is(err, ErrBatchNotFound) {
		t.Fatalf("jobs of an unknown batch: %v", err)
	}
	for i := range 5 {
		mustCreateBatch(t, s, fmt.Sprintf("B%d", i), t0.Add(time.Duration(i)*time.Minute))
	}
	if err := s.CreateBatch(ctx, "B1", "again", t0); err == nil {
		t.Fatal("a batch ID was taken twice")
	}
	b := wantCounts(t, s, c, "B1", counts{})
	if b.ID != "B1" || b.Name != "name of B1" || !b.CreatedAt.Equal(t0.Add(time.Minute)) || b.Closed ||
		b.FinishedAt != nil || !b.StartedAt.IsZero() || b.DeadLetteredByCode == nil {
		t.Fatalf("new batch: %+v", b)
	}
	var got []string
	for _, page := range [][2]int{{0, 2}, {2, 2}, {4, 2}, {6, 2}} {
		bs, err := s.ListBatches(ctx, page[0], page[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			got = append(got, b.ID)
		}
	}
	if want := []string{"B4", "B3", "B2", "B1", "B0"}; !slices.Equal(got, want) {
		t.Fatalf("ListBatches pages: %v, want newest first %v", got, want)
	}
	if n, err := s.CountBatches(ctx); err != nil || n != 5 {
		t.Fatalf("CountBatches: %d %v", n, err)
	}
	// An empty batch is finished when closed.
	if err := s.CloseBatch(ctx, "B0", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if b := mustBatch(t, s, "B0"); !b.Closed || b.FinishedAt == nil || !b.FinishedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("closed empty batch: %+v", b)
	}
	// Closing again changes nothing.
	if err := s.CloseBatch(ctx, "B0", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if b := mustBatch(t, s, "B0"); !b.FinishedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("second close moved finished_at: %v", b.FinishedAt)
	}
	// A batch whose keys expired leaves the index at the next listing.
	c.Del(ctx, rdb.BatchKey("B3"), rdb.BatchKey("B2"))
	bs, err := s.ListBatches(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, b := range bs {
		got = append(got, b.ID)
	}
	if want := []string{"B4", "B1", "B0"}; !slices.Equal(got, want) {
		t.Fatalf("ListBatches after expiry: %v, want %v", got, want)
	}
	if n, _ := s.CountBatches(ctx); n != 3 {
		t.Fatalf("index keeps %d entries, want 3", n)
	}
	if bs, err := s.ListBatches(ctx, 1, 1); err != nil || len(bs) != 1 || bs[0].ID != "B1" {
		t.Fatalf("ListBatches(1, 1): %+v %v", bs, err)
	}
}

// TestBatchCountsEveryTransition walks jobs of one batch through every
// state change a worker makes, checking the counters after each step.
func TestBatchCountsEveryTransition(t *testing.T) {
	s, c := newStore(t)
	mustCreateBatch(t, s, "B", t0)
	for _, id := range []string{"ok", "flaky", "terminal", "throttled", "crash"} {
		if res := mustCreate(t, s, inBatch(id, "B"), t0); res != Created {
			t.Fatalf("create %s: %s", id, res)
		}
	}
	wantCounts(t, s, c, "B", counts{Total: 5, Queued: 5})
	if got := batchJobIDs(t, s, "B"); !slices.Equal(got, []string{"ok", "flaky", "terminal", "throttled", "crash"}) {
		t.Fatalf("batch jobs: %v", got)
	}

	t1 := t0.Add(time.Second)
	// queued -> running; the batch has started.
	mustStart(t, s, inBatch("ok", "B"), t1)
	b := wantCounts(t, s, c, "B", counts{Total: 5, Queued: 4, Running: 1})
	if !b.StartedAt.Equal(t1) {
		t.Fatalf("started_at %v, want %v", b.StartedAt, t1)
	}
	// running -> succeeded
	mustFinish(t, s, "ok", success(1, t1), t1)
	wantCounts(t, s, c, "B", counts{Total: 5, Queued: 4, Succeeded: 1})
	// A late or repeated Finish changes nothing.
	mustFinish(t, s, "ok", success(1, t1), t1)
	// A redelivered task of a finished job: Start changes nothing.
	if st, _ := mustStart(t, s, inBatch("ok", "B"), t1); st != StateSucceeded {
		t.Fatalf("start of a finished job: %s", st)
	}
	wantCounts(t, s, c, "B", counts{Total: 5, Queued: 4, Succeeded: 1})

	// running -> retrying -> running -> succeeded
	mustStart(t, s, inBatch("flaky", "B"), t1)
	mustFinish(t, s, "flaky", retrying(1, t1, t1.Add(time.Second)), t1)
	wantCounts(t, s, c, "B", counts{Total: 5, Queued: 3, Retrying: 1, Succeeded: 1})
	mustStart(t, s, inBatch("flaky", "B"), t1)
	wantCounts(t, s, c, "B", counts{Total: 5, Queued: 3, Running: 1, Succeeded: 1})
	mustFinish(t, s, "flaky", success(2, t1), t1)
	wantCounts(t, s, c, "B", counts{Total: 5, Queued: 3, Succeeded: 2})

	// running -> dead_lettered, by code
	mustStart(t, s, inBatch("terminal", "B"), t1)
	mustFinish(t, s, "terminal", terminal(1, "RCS904", false, t1), t1)
	wantCounts(t, s, c, "B", counts{Total: 5, Queued: 2, Succeeded: 2, DeadLettered: 1, ByCode: "RCS904=1"})

	// running -> queued (a 429 defers the job) -> running -> dead_lettered
	mustStart(t, s, inBatch("throttled", "B"), t1)
	deferred := Outcome{Kind: FinishDeferred, NextRunAt: t1.Add(time.Second),
		Attempt: Attempt{Outcome: AttemptThrottled, HTTPStatus: 429, FinishedAt: t1}}
	if st := mustFinish(t, s, "throttled", deferred, t1); st != StateQueued {
		t.Fatalf("deferred: %s", st)
	}
	wantCounts(t, s, c, "B", counts{Total: 5, Queued: 2, Succeeded: 2, DeadLettered: 1, ByCode: "RCS904=1"})
	mustStart(t, s, inBatch("throttled", "B"), t1)
	wantCounts(t, s, c, "B", counts{Total: 5, Queued: 1, Running: 1, Succeeded: 2, DeadLettered: 1, ByCode: "RCS904=1"})
	mustFinish(t, s, "throttled", terminal(1, "RCS502", false, t1), t1)
	wantCounts(t, s, c, "B", counts{Total: 5, Queued: 1, Succeeded: 2, DeadLettered: 2, ByCode: "RCS502=1,RCS904=1"})

	// A worker dies during the call: the redelivered task's Start finds the
	// job running and leaves it counted once.
	mustStart(t, s, inBatch("crash", "B"), t1)
	wantCounts(t, s, c, "B", counts{Total: 5, Running: 1, Succeeded: 2, DeadLettered: 2, ByCode: "RCS502=1,RCS904=1"})
	if _, n := mustStart(t, s, inBatch("crash", "B"), t1); n != 2 {
		t.Fatalf("redelivered attempt %d, want 2", n)
	}
	wantCounts(t, s, c, "B", counts{Total: 5, Running: 1, Succeeded: 2, DeadLettered: 2, ByCode: "RCS502=1,RCS904=1"})

	// Every job has its outcome, but the batch is not closed: not finished.
	t2 := t0.Add(time.Minute)
	mustFinish(t, s, "crash", success(2, t2), t2)
	b = wantCounts(t, s, c, "B", counts{Total: 5, Succeeded: 3, DeadLettered: 2, ByCode: "RCS502=1,RCS904=1"})
	if b.FinishedAt != nil {
		t.Fatalf("an open batch is finished: %v", b.FinishedAt)
	}
	// Closed: finished now.
	t3 := t0.Add(2 * time.Minute)
	if err := s.CloseBatch(ctx, "B", t3); err != nil {
		t.Fatal(err)
	}
	if b := mustBatch(t, s, "B"); b.FinishedAt == nil || !b.FinishedAt.Equal(t3) || !b.Closed {
		t.Fatalf("closed batch: %+v", b)
	}
	if got := batchJobIDs(t, s, "B"); len(got) != 5 {
		t.Fatalf("batch jobs: %v", got)
	}
}

// A batch closed while jobs still run is finished by the last outcome.
func TestBatchFinishedByLastOutcome(t *testing.T) {
	s, c := newStore(t)
	s.Retention = time.Hour
	mustCreateBatch(t, s, "B", t0)
	mustCreate(t, s, inBatch("a", "B"), t0)
	mustCreate(t, s, inBatch("b", "B"), t0)
	if err := s.CloseBatch(ctx, "B", t0); err != nil {
		t.Fatal(err)
	}
	mustStart(t, s, inBatch("a", "B"), t0)
	mustFinish(t, s, "a", success(1, t0), t0)
	if b := mustBatch(t, s, "B"); b.FinishedAt != nil {
		t.Fatal("finished with a job queued")
	}
	if d := ttl(t, c, rdb.BatchKey("B")); d != -1 {
		t.Fatalf("unfinished batch has TTL %v", d)
	}
	t1 := t0.Add(time.Minute)
	mustStart(t, s, inBatch("b", "B"), t1)
	mustFinish(t, s, "b", terminal(1, "RCS601", false, t1), t1)
	b := wantCounts(t, s, c, "B", counts{Total: 2, Succeeded: 1, DeadLettered: 1, ByCode: "RCS601=1"})
	if b.FinishedAt == nil || !b.FinishedAt.Equal(t1) {
		t.Fatalf("finished_at %v, want %v", b.FinishedAt, t1)
	}
	// Finished: its keys expire with the retention, like its jobs' records.
	for _, k := range []string{rdb.BatchKey("B"), rdb.BatchJobsKey("B")} {
		if d := ttl(t, c, k); d <= 59*time.Minute || d > time.Hour {
			t.Errorf("TTL of %s: %v, want the retention", k, d)
		}
	}
}

// A row whose job ID is known does not join the later batch; a closed
// batch takes no job.
func TestBatchJobBelongsToOneBatch(t *testing.T) {
	s, c := newStore(t)
	for _, id := range []string{"A", "B", "C"} {
		mustCreateBatch(t, s, id, t0)
	}
	mustCreate(t, s, inBatch("queued", "A"), t0)
	mustCreate(t, s, inBatch("done", "A"), t0)
	mustStart(t, s, inBatch("done", "A"), t0)
	mustFinish(t, s, "done", success(1, t0), t0)
	mustCreate(t, s, inBatch("dead", "A"), t0)
	mustStart(t, s, inBatch("dead", "A"), t0)
	mustFinish(t, s, "dead", terminal(1, "RCS904", false, t0), t0)
	mustCreate(t, s, inBatch("running", "A"), t0)
	mustStart(t, s, inBatch("running", "A"), t0)
	for id, want := range map[string]CreateResult{"queued": Pending, "done": AlreadyLaunched, "dead": DeadLettered, "running": InProgress} {
		if res := mustCreate(t, s, inBatch(id, "B"), t0); res != want {
			t.Fatalf("%s again in B: %s, want %s", id, res, want)
		}
		if r := mustGet(t, s, id); r.Batch != "A" {
			t.Fatalf("%s moved to batch %q", id, r.Batch)
		}
	}
	// The same row twice in one run counts once.
	mustCreate(t, s, inBatch("queued", "A"), t0)
	wantCounts(t, s, c, "A", counts{Total: 4, Queued: 1, Running: 1, Succeeded: 1, DeadLettered: 1, ByCode: "RCS904=1"})
	wantCounts(t, s, c, "B", counts{})
	if got := batchJobIDs(t, s, "B"); len(got) != 0 {
		t.Fatalf("B lists %v", got)
	}

	if err := s.CloseBatch(ctx, "C", t0); err != nil {
		t.Fatal(err)
	}
	if res := mustCreate(t, s, inBatch("late", "C"), t0); res != Created {
		t.Fatalf("create in a closed batch: %s", res)
	}
	if r := mustGet(t, s, "late"); r.Batch != "" {
		t.Fatalf("a job joined closed batch %q", r.Batch)
	}
	if b := wantCounts(t, s, c, "C", counts{}); b.FinishedAt == nil {
		t.Fatal("closed empty batch not finished")
	}
	// A batch ID that names no batch is kept on the record, uncounted.
	mustCreate(t, s, inBatch("free", "no-such-batch"), t0)
	if r := mustGet(t, s, "free"); r.Batch != "no-such-batch" {
		t.Fatalf("batch field %q", r.Batch)
	}
	if n, _ := c.Exists(ctx, rdb.BatchKey("no-such-batch"), rdb.BatchJobsKey("no-such-batch")).Result(); n != 0 {
		t.Fatal("a job made batch keys for a batch that does not exist")
	}
}

// A job whose task could not be pushed leaves its batch as it was.
func TestBatchUncreate(t *testing.T) {
	s, c := newStore(t)
	mustCreateBatch(t, s, "B", t0)
	mustCreate(t, s, inBatch("a", "B"), t0)
	mustCreate(t, s, inBatch("b", "B"), t0)
	mustCreate(t, s, inBatch("c", "B"), t0)
	if err := s.Uncreate(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, s, c, "B", counts{Total: 2, Queued: 2})
	if got := batchJobIDs(t, s, "B"); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("batch jobs after Uncreate: %v", got)
	}
	if n, _ := c.LLen(ctx, rdb.BatchJobsKey("B")).Result(); n != 2 {
		t.Fatalf("job list holds %d IDs", n)
	}
	// Nothing to undo: nothing changes.
	mustStart(t, s, inBatch("a", "B"), t0)
	if err := s.Uncreate(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, s, c, "B", counts{Total: 2, Queued: 1, Running: 1})
}

// dlq retry: dead_lettered -> queued, the batch open again; Restore puts it
// back, finished as it was; a new outcome finishes it anew.
func TestBatchDLQRetryAndRestore(t *testing.T) {
	s, c := newStore(t)
	s.Retention = time.Hour
	mustCreateBatch(t, s, "B", t0)
	mustCreate(t, s, inBatch("ok", "B"), t0)
	mustCreate(t, s, inBatch("dead", "B"), t0)
	mustCreate(t, s, inBatch("dead2", "B"), t0)
	if err := s.CloseBatch(ctx, "B", t0); err != nil {
		t.Fatal(err)
	}
	mustStart(t, s, inBatch("ok", "B"), t0)
	mustFinish(t, s, "ok", success(1, t0), t0)
	mustStart(t, s, inBatch("dead", "B"), t0)
	mustFinish(t, s, "dead", terminal(1, "RCS502", false, t0), t0)
	t1 := t0.Add(time.Minute)
	mustStart(t, s, inBatch("dead2", "B"), t1)
	mustFinish(t, s, "dead2", terminal(1, "RCS502", false, t1), t1)
	finished := counts{Total: 3, Succeeded: 1, DeadLettered: 2, ByCode: "RCS502=2"}
	if b := wantCounts(t, s, c, "B", finished); b.FinishedAt == nil || !b.FinishedAt.Equal(t1) {
		t.Fatalf("finished_at %v", b.FinishedAt)
	}

	t2 := t0.Add(time.Hour)
	if res, _, _, err := s.Requeue(ctx, "dead", false, t2); err != nil || res != Requeued {
		t.Fatalf("requeue: %s %v", res, err)
	}
	b := wantCounts(t, s, c, "B", counts{Total: 3, Queued: 1, Succeeded: 1, DeadLettered: 1, ByCode: "RCS502=1"})
	if b.FinishedAt != nil {
		t.Fatalf("a batch with a requeued job is finished: %v", b.FinishedAt)
	}
	for _, k := range []string{rdb.BatchKey("B"), rdb.BatchJobsKey("B")} {
		if d := ttl(t, c, k); d != -1 {
			t.Fatalf("reopened batch key %s has TTL %v", k, d)
		}
	}
	// A second requeue resumes: no change.
	if res, _, _, _ := s.Requeue(ctx, "dead", false, t2); res != Resume {
		t.Fatalf("second requeue: %s", res)
	}
	wantCounts(t, s, c, "B", counts{Total: 3, Queued: 1, Succeeded: 1, DeadLettered: 1, ByCode: "RCS502=1"})

	// The push failed: back to how it was, finished as of before.
	if err := s.Restore(ctx, "dead"); err != nil {
		t.Fatal(err)
	}
	if b := wantCounts(t, s, c, "B", finished); b.FinishedAt == nil || !b.FinishedAt.Equal(t1) {
		t.Fatalf("after Restore finished_at %v, want %v as before", b.FinishedAt, t1)
	}
	if d := ttl(t, c, rdb.BatchKey("B")); d <= 0 {
		t.Fatalf("restored finished batch: TTL %v", d)
	}

	// Requeued for good: it runs, and its new outcome finishes the batch again.
	s.Requeue(ctx, "dead", false, t2)
	s.Requeue(ctx, "dead2", false, t2)
	if err := s.Unindex(ctx, "dead"); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, s, c, "B", counts{Total: 3, Queued: 2, Succeeded: 1})
	// Two requeued, one restored: still open.
	if err := s.Restore(ctx, "dead2"); err != nil {
		t.Fatal(err)
	}
	if b := wantCounts(t, s, c, "B", counts{Total: 3, Queued: 1, Succeeded: 1, DeadLettered: 1, ByCode: "RCS502=1"}); b.FinishedAt != nil {
		t.Fatal("finished with a job queued")
	}
	mustStart(t, s, inBatch("dead", "B"), t2)
	wantCounts(t, s, c, "B", counts{Total: 3, Running: 1, Succeeded: 1, DeadLettered: 1, ByCode: "RCS502=1"})
	t3 := t2.Add(time.Minute)
	mustFinish(t, s, "dead", success(1, t3), t3)
	b = wantCounts(t, s, c, "B", counts{Total: 3, Succeeded: 2, DeadLettered: 1, ByCode: "RCS502=1"})
	if b.FinishedAt == nil || !b.FinishedAt.Equal(t3) {
		t.Fatalf("finished_at after the retried job's success: %v, want %v", b.FinishedAt, t3)
	}
	// Requeue of a dead letter whose batch has expired touches no batch key.
	c.Del(ctx, rdb.BatchKey("B"), rdb.BatchJobsKey("B"))
	if res, _, _, _ := s.Requeue(ctx, "dead2", false, t3); res != Requeued {
		t.Fatalf("requeue: %s", res)
	}
	if n, _ := c.Exists(ctx, rdb.BatchKey("B"), rdb.BatchJobsKey("B")).Result(); n != 0 {
		t.Fatal("requeue recreated an expired batch")
	}
}

// dlq delete: the job leaves its batch (total and dead_lettered down,
// deleted up); enqueued again, it joins the new batch.
func TestBatchDeleteDeadLetter(t *testing.T) {
	s, c := newStore(t)
	mustCreateBatch(t, s, "B", t0)
	for _, id := range []string{"ok", "d1", "d2"} {
		mustCreate(t, s, inBatch(id, "B"), t0)
		mustStart(t, s, inBatch(id, "B"), t0)
	}
	mustFinish(t, s, "ok", success(1, t0), t0)
	mustFinish(t, s, "d1", terminal(1, "RCS904", false, t0), t0)
	mustFinish(t, s, "d2", terminal(1, "RCS601", false, t0), t0)
	if err := s.CloseBatch(ctx, "B", t0); err != nil {
		t.Fatal(err)
	}
	if deleted, state, err := s.DeleteDeadLetter(ctx, "d1"); err != nil || !deleted {
		t.Fatalf("delete: deleted %t (state %s) %v", deleted, state, err)
	}
	b := wantCounts(t, s, c, "B", counts{Total: 2, Succeeded: 1, DeadLettered: 1, ByCode: "RCS601=1", Deleted: 1})
	if b.FinishedAt == nil {
		t.Fatal("deleting a dead letter unfinished the batch")
	}
	if got := batchJobIDs(t, s, "B"); !slices.Equal(got, []string{"ok", "d2"}) {
		t.Fatalf("batch jobs after delete: %v", got)
	}
	// Not a dead letter: nothing changes.
	if deleted, state, _ := s.DeleteDeadLetter(ctx, "ok"); deleted || state != StateSucceeded {
		t.Fatalf("delete of a success: deleted %t (state %s)", deleted, state)
	}
	wantCounts(t, s, c, "B", counts{Total: 2, Succeeded: 1, DeadLettered: 1, ByCode: "RCS601=1", Deleted: 1})

	mustCreateBatch(t, s, "B2", t0)
	if res := mustCreate(t, s, inBatch("d1", "B2"), t0); res != Created {
		t.Fatalf("enqueue after delete: %s", res)
	}
	wantCounts(t, s, c, "B2", counts{Total: 1, Queued: 1})
	wantCounts(t, s, c, "B", counts{Total: 2, Succeeded: 1, DeadLettered: 1, ByCode: "RCS601=1", Deleted: 1})
	if got := batchJobIDs(t, s, "B"); !slices.Equal(got, []string{"ok", "d2"}) {
		t.Fatalf("old batch lists %v", got)
	}
}

// A forced relaunch counts in its new batch; Uncreate puts it back.
func TestBatchForcedRelaunch(t *testing.T) {
	s, c := newStore(t)
	mustCreateBatch(t, s, "B1", t0)
	mustCreate(t, s, inBatch("f", "B1"), t0)
	mustCreate(t, s, inBatch("g", "B1"), t0)
	for _, id := range []string{"f", "g"} {
		mustStart(t, s, inBatch(id, "B1"), t0)
		mustFinish(t, s, id, success(1, t0), t0)
	}
	if err := s.CloseBatch(ctx, "B1", t0); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, s, c, "B1", counts{Total: 2, Succeeded: 2})

	mustCreateBatch(t, s, "B2", t0)
	forced := inBatch("f", "B2")
	forced.Force = true
	if res := mustCreate(t, s, forced, t0.Add(time.Minute)); res != Created {
		t.Fatalf("force: %s", res)
	}
	if b := wantCounts(t, s, c, "B1", counts{Total: 1, Succeeded: 1, Relaunched: 1}); b.FinishedAt == nil {
		t.Fatal("the old batch is no longer finished")
	}
	wantCounts(t, s, c, "B2", counts{Total: 1, Queued: 1})
	if got := batchJobIDs(t, s, "B1"); !slices.Equal(got, []string{"g"}) {
		t.Fatalf("old batch lists %v", got)
	}

	// The push failed: back in B1 as the success it was.
	if err := s.Uncreate(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, s, c, "B1", counts{Total: 2, Succeeded: 2})
	wantCounts(t, s, c, "B2", counts{})
	if got := batchJobIDs(t, s, "B2"); len(got) != 0 {
		t.Fatalf("B2 lists %v", got)
	}

	// Relaunched for good, it runs and counts in B2.
	mustCreate(t, s, forced, t0.Add(time.Minute))
	mustStart(t, s, forced, t0.Add(time.Minute))
	wantCounts(t, s, c, "B2", counts{Total: 1, Running: 1})
	mustFinish(t, s, "f", terminal(1, "RCS601", false, t0), t0)
	wantCounts(t, s, c, "B2", counts{Total: 1, DeadLettered: 1, ByCode: "RCS601=1"})
	wantCounts(t, s, c, "B1", counts{Total: 1, Succeeded: 1, Relaunched: 1})

	// Forced without a batch (POST /v1/launches): it leaves B1 all the same.
	single := newJob("g")
	single.Batch, single.Force = "", true
	mustCreate(t, s, single, t0)
	wantCounts(t, s, c, "B1", counts{Relaunched: 2})
	if err := s.Uncreate(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, s, c, "B1", counts{Total: 1, Succeeded: 1, Relaunched: 1})

	// Forced within the batch it succeeded in (a repeated row with --force
	// in one run): it starts over there, listed once.
	mustCreateBatch(t, s, "B3", t0)
	mustCreate(t, s, inBatch("h", "B3"), t0)
	mustStart(t, s, inBatch("h", "B3"), t0)
	mustFinish(t, s, "h", success(1, t0), t0)
	again := inBatch("h", "B3")
	again.Force = true
	mustCreate(t, s, again, t0)
	wantCounts(t, s, c, "B3", counts{Total: 1, Queued: 1})
	if n, _ := c.LLen(ctx, rdb.BatchJobsKey("B3")).Result(); n != 1 {
		t.Fatalf("B3 lists the job %d times", n)
	}
	if err := s.Uncreate(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, s, c, "B3", counts{Total: 1, Succeeded: 1})
}

func TestEachBatchJob(t *testing.T) {
	s, _ := newStore(t)
	mustCreateBatch(t, s, "B", t0)
	const n = pageSize*2 + 7
	var want []string
	for i := range n {
		id := fmt.Sprintf("j%04d", i)
		want = append(want, id)
		mustCreate(t, s, inBatch(id, "B"), t0)
	}
	mustStart(t, s, inBatch("j0001", "B"), t0)
	mustFinish(t, s, "j0001", success(1, t0), t0)
	mustStart(t, s, inBatch("j0002", "B"), t0)
	mustFinish(t, s, "j0002", terminal(1, "RCS904", false, t0), t0)
	got := map[string]BatchJob{}
	var order []string
	err := s.EachBatchJob(ctx, "B", func(j BatchJob) error {
		order = append(order, j.ID)
		got[j.ID] = j
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, want) {
		t.Fatalf("%d jobs listed, want %d in enqueue order", len(order), len(want))
	}
	if j := got["j0001"]; j.State != StateSucceeded || j.AgentLaunchID != "L-1" || j.Code != "RCS902" || j.Attempts != 1 || j.AgentNo != "48900" || j.SID != "SID1" {
		t.Errorf("succeeded job: %+v", j)
	}
	if j := got["j0002"]; j.State != StateDeadLettered || j.Code != "RCS904" || j.Message != "failed RCS904" || string(j.Payload) != string(newJob("x").Payload) {
		t.Errorf("dead letter: %+v", j)
	}
	if j := got["j0003"]; j.State != StateQueued || j.Code != "" || j.Attempts != 0 {
		t.Errorf("queued job: %+v", j)
	}
	// A job that comes back to the batch after leaving it (deleted, then
	// enqueued again while the run is still open) is listed once.
	if _, _, err := s.DeleteDeadLetter(ctx, "j0002"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, inBatch("j0002", "B"), t0)
	count := 0
	_ = s.EachBatchJob(ctx, "B", func(j BatchJob) error {
		if j.ID == "j0002" {
			count++
		}
		return nil
	})
	if count != 1 {
		t.Fatalf("j0002 listed %d times", count)
	}
	stop := errors.New("stop")
	if err := s.EachBatchJob(ctx, "B", func(BatchJob) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("fn's error: %v", err)
	}
}

// Workers racing on one batch: the counters equal the records at the end,
// and at every look the finished never outnumber the results stream.
func TestBatchCountsUnderConcurrency(t *testing.T) {
	s, c := newStore(t)
	mustCreateBatch(t, s, "B", t0)
	const n = 300
	for i := range n {
		mustCreate(t, s, inBatch(fmt.Sprintf("j%d", i), "B"), t0)
	}
	if err := s.CloseBatch(ctx, "B", t0); err != nil {
		t.Fatal(err)
	}
	jobs := make(chan int, n)
	for i := range n {
		jobs <- i
	}
	close(jobs)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range jobs {
				id := fmt.Sprintf("j%d", i)
				j := inBatch(id, "B")
				for try := 1; ; try++ {
					_, a, err := s.Start(ctx, j, 9, t0)
					if err != nil {
						errs <- err
						return
					}
					var o Outcome
					switch r := rng.IntN(10); {
					case r < 5 || try == 4:
						o = success(a, t0)
					case r < 7:
						o = terminal(a, "RCS904", false, t0)
					case r < 8:
						o = Outcome{Kind: FinishDeferred, Attempt: Attempt{Outcome: AttemptThrottled, FinishedAt: t0}}
					default:
						o = retrying(a, t0, t0)
					}
					st, err := s.Finish(ctx, id, o, t0)
					if err != nil {
						errs <- err
						return
					}
					if st == StateSucceeded || st == StateDeadLettered {
						break
					}
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for looking := true; looking; {
		select {
		case <-done:
			looking = false
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		b := mustBatch(t, s, "B")
		if sum := b.Queued + b.Running + b.Retrying + b.Succeeded + b.DeadLettered; sum != n || b.Total != n {
			t.Fatalf("mid-run: counters sum to %d, total %d, want %d", sum, b.Total, n)
		}
		if x := xlen(t, c); b.Done() > x {
			t.Fatalf("mid-run: %d finished, the results stream has %d", b.Done(), x)
		}
	}
	b := mustBatch(t, s, "B")
	wantCounts(t, s, c, "B", countsOf(b))
	if b.Done() != n || b.Done() != xlen(t, c) || b.FinishedAt == nil {
		t.Fatalf("at the end: %+v, %d results", countsOf(b), xlen(t, c))
	}
}

func TestBatchKeysShareTheResultsStreamSlot(t *testing.T) {
	want := keySlot(ResultsStream)
	for _, k := range []string{rdb.BatchIndex, rdb.BatchKey("b_20261127T080101_1a2b3c4d"), rdb.BatchJobsKey("b_x"), rdb.BatchKey("a:b{c}")} {
		if !strings.HasPrefix(k, "rcslaunch:{rcslaunch:results}:") || keySlot(k) != want {
			t.Errorf("%s: slot %d, the results stream's is %d", k, keySlot(k), want)
		}
	}
	if rdb.BatchKey("x:jobs") == rdb.BatchJobsKey("x") || rdb.BatchJobsKey("x") == rdb.BatchKey("jobs:x") {
		t.Error("batch keys collide")
	}
}
