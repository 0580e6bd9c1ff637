package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/internal/testredis"
)

// t0 is a fixed, millisecond-exact clock for the tests.
var t0 = time.UnixMilli(1_700_000_000_000).UTC()

var ctx = context.Background()

// newStore gives the (parallel) test a store on its own redis-server.
func newStore(t *testing.T, opts ...testredis.Option) (*Store, *redis.Client) {
	t.Helper()
	t.Parallel()
	c := testredis.Start(t, opts...).Client()
	return New(c), c
}

func newJob(id string) NewJob {
	return NewJob{ID: id, SID: "SID1", AgentNo: "48900", Batch: "b1",
		Payload: []byte(`{"launch":{"agent_no":"48900","launch_type":"1"}}`)}
}

func mustCreate(t *testing.T, s *Store, j NewJob, now time.Time) CreateResult {
	t.Helper()
	res, err := s.Create(ctx, j, now)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func mustStart(t *testing.T, s *Store, j NewJob, now time.Time) (State, int) {
	t.Helper()
	state, n, err := s.Start(ctx, j, 9, now)
	if err != nil {
		t.Fatal(err)
	}
	return state, n
}

// succeedAtSecondAttempt creates job j and runs it to success at t0 after
// one retryable attempt, so that its attempt log holds two entries.
func succeedAtSecondAttempt(t *testing.T, s *Store, j NewJob) {
	t.Helper()
	mustCreate(t, s, j, t0)
	mustStart(t, s, j, t0)
	mustFinish(t, s, j.ID, retrying(1, t0, t0), t0)
	_, n := mustStart(t, s, j, t0)
	mustFinish(t, s, j.ID, success(n, t0), t0)
}

func mustFinish(t *testing.T, s *Store, id string, o Outcome, now time.Time) State {
	t.Helper()
	res, err := s.Finish(ctx, id, o, now)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func mustGet(t *testing.T, s *Store, id string) Record {
	t.Helper()
	r, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func success(n int, at time.Time) Outcome {
	return Outcome{Kind: FinishSucceeded,
		Attempt:       Attempt{N: n, Outcome: AttemptSucceeded, Code: "RCS902", Message: "launched", HTTPStatus: 200, FinishedAt: at},
		AgentLaunchID: "L-1", Response: json.RawMessage(`{"code":"RCS902","data":{"agent_launch_id":"L-1"}}`)}
}

func terminal(n int, code string, uncertain bool, at time.Time) Outcome {
	return Outcome{Kind: FinishDeadLettered,
		Attempt: Attempt{N: n, Outcome: AttemptTerminal, Code: code, Message: "failed " + code, HTTPStatus: 400,
			Uncertain: uncertain, FinishedAt: at},
		Response: json.RawMessage(`{"code":"` + code + `","data":[]}`)}
}

func retrying(n int, at, next time.Time) Outcome {
	return Outcome{Kind: FinishRetrying, NextRunAt: next,
		Attempt: Attempt{N: n, Outcome: AttemptRetryable, Code: "RCS502", Message: "bad gateway", HTTPStatus: 502, FinishedAt: at}}
}

// deadLetter makes id a dead letter with code, dead-lettered at `at`.
func deadLetter(t *testing.T, s *Store, id, code string, uncertain bool, at time.Time) {
	t.Helper()
	j := newJob(id)
	if res := mustCreate(t, s, j, at); res != Created {
		t.Fatalf("create %s: %s", id, res)
	}
	_, n := mustStart(t, s, j, at)
	if res := mustFinish(t, s, id, terminal(n, code, uncertain, at), at); res != StateDeadLettered {
		t.Fatalf("finish %s: %s", id, res)
	}
}

func ttl(t *testing.T, c *redis.Client, key string) time.Duration {
	t.Helper()
	d, err := c.TTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func xlen(t *testing.T, c *redis.Client) int64 {
	t.Helper()
	n, err := c.XLen(ctx, ResultsStream).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// indexed reports whether id is in the dead-letter index.
func indexed(t *testing.T, c *redis.Client, id string) bool {
	t.Helper()
	_, err := c.ZScore(ctx, rdb.DeadLetters, id).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	return err == nil
}

func pttl(t *testing.T, c *redis.Client, key string) time.Duration {
	t.Helper()
	d, err := c.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func hash(t *testing.T, c *redis.Client, id string) map[string]string {
	t.Helper()
	h, err := c.HGetAll(ctx, rdb.JobKey(id)).Result()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// restoreFields lists the record's restore_* fields.
func restoreFields(t *testing.T, c *redis.Client, id string) []string {
	t.Helper()
	var out []string
	for k := range hash(t, c, id) {
		if strings.HasPrefix(k, "restore_") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func field(t *testing.T, c *redis.Client, id, name string) (string, bool) {
	t.Helper()
	v, err := c.HGet(ctx, rdb.JobKey(id), name).Result()
	if errors.Is(err, redis.Nil) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return v, true
}

func TestCreate(t *testing.T) {
	s, c := newStore(t)
	s.Retention = time.Hour
	j := newJob("j1")

	if res := mustCreate(t, s, j, t0); res != Created {
		t.Fatalf("first create: %s, want %s", res, Created)
	}
	r := mustGet(t, s, "j1")
	if r.State != StateQueued || r.Attempts != 0 || r.SID != "SID1" || r.AgentNo != "48900" || r.Batch != "b1" ||
		string(r.Payload) != string(j.Payload) || !r.EnqueuedAt.Equal(t0) || len(r.History) != 0 {
		t.Fatalf("new record: %+v", r)
	}
	if res := mustCreate(t, s, j, t0); res != Pending {
		t.Fatalf("same payload again: %s, want %s", res, Pending)
	}
	other := j
	other.Payload = []byte(`{"launch":{"agent_no":"48901"}}`)
	if res := mustCreate(t, s, other, t0); res != Conflict {
		t.Fatalf("different payload: %s, want %s", res, Conflict)
	}

	mustStart(t, s, j, t0)
	if res := mustCreate(t, s, j, t0); res != InProgress {
		t.Fatalf("running: %s, want %s", res, InProgress)
	}
	if res := mustCreate(t, s, other, t0); res != Conflict {
		t.Fatalf("running, different payload: %s, want %s", res, Conflict)
	}
	mustFinish(t, s, "j1", retrying(1, t0, t0.Add(time.Second)), t0)
	if res := mustCreate(t, s, j, t0); res != InProgress {
		t.Fatalf("retrying: %s, want %s", res, InProgress)
	}
	_, n := mustStart(t, s, j, t0)
	mustFinish(t, s, "j1", success(n, t0), t0)
	if res := mustCreate(t, s, j, t0); res != AlreadyLaunched {
		t.Fatalf("succeeded: %s, want %s", res, AlreadyLaunched)
	}
	if d := ttl(t, c, rdb.JobKey("j1")); d <= 0 {
		t.Fatalf("succeeded record has TTL %v, want one", d)
	}

	// Force relaunches: the record is queued again and kept forever, while
	// the last success stays readable, with the TTL it had kept for Uncreate.
	before, err := c.HGetAll(ctx, rdb.JobKey("j1")).Result()
	if err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(time.Minute)
	forced := j
	forced.Force, forced.Batch = true, "b2"
	if res := mustCreate(t, s, forced, t1); res != Created {
		t.Fatalf("force: %s, want %s", res, Created)
	}
	h, err := c.HGetAll(ctx, rdb.JobKey("j1")).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"code", "message", "agent_launch_id", "http_status", "uncertain", "response",
		"finished_at", "max_attempts"} {
		if h[k] != before[k] {
			t.Errorf("after force, field %s is %q, want the success's %q", k, h[k], before[k])
		}
	}
	if h["agent_launch_id"] != "L-1" {
		t.Errorf("after force, agent_launch_id %q, want L-1", h["agent_launch_id"])
	}
	if h["state"] != string(StateQueued) || h["attempts"] != "0" || h["batch"] != "b2" || h["generation"] != "2" ||
		h["enqueued_at"] != fmt.Sprint(t1.UnixMilli()) {
		t.Errorf("after force: %v", h)
	}
	if ms, err := strconv.ParseInt(h["restore_ttl"], 10, 64); err != nil ||
		ms <= (time.Hour-time.Minute).Milliseconds() || ms > time.Hour.Milliseconds() {
		t.Errorf("after force, restore_ttl %q (%v), want the success's PTTL, about 1h", h["restore_ttl"], err)
	}
	for _, k := range []string{"attempts", "enqueued_at", "updated_at", "batch"} {
		if h["restore_"+k] != before[k] {
			t.Errorf("after force, restore_%s %q, want the success's %q", k, h["restore_"+k], before[k])
		}
	}
	for _, k := range []string{rdb.JobKey("j1"), rdb.AttemptsKey("j1")} {
		if d := ttl(t, c, k); d != -1 {
			t.Errorf("after force, %s has TTL %v, want none (-1)", k, d)
		}
	}
	// Force on a job that has not succeeded changes nothing.
	if res := mustCreate(t, s, forced, t1); res != Pending {
		t.Fatalf("force on queued: %s, want %s", res, Pending)
	}
	// Force with a different payload is still a conflict.
	otherForced := other
	otherForced.Force = true
	if res := mustCreate(t, s, otherForced, t1); res != Conflict {
		t.Fatalf("force, different payload: %s, want %s", res, Conflict)
	}

	deadLetter(t, s, "dl", "RCS904", false, t0)
	if res := mustCreate(t, s, newJob("dl"), t0); res != DeadLettered {
		t.Fatalf("dead-lettered: %s, want %s", res, DeadLettered)
	}
	f := newJob("dl")
	f.Force = true
	if res := mustCreate(t, s, f, t0); res != DeadLettered {
		t.Fatalf("dead-lettered with force: %s, want %s", res, DeadLettered)
	}
	if r := mustGet(t, s, "dl"); r.State != StateDeadLettered || r.Attempts != 1 {
		t.Fatalf("dead letter touched by create: %+v", r)
	}
}

func TestUncreate(t *testing.T) {
	s, c := newStore(t)
	gone := func(id string) bool {
		n, err := c.Exists(ctx, rdb.JobKey(id), rdb.AttemptsKey(id)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 0
	}

	mustCreate(t, s, newJob("fresh"), t0)
	if err := s.Uncreate(ctx, "fresh"); err != nil {
		t.Fatal(err)
	}
	if !gone("fresh") {
		t.Fatal("a fresh record survived Uncreate")
	}
	if err := s.Uncreate(ctx, "never"); err != nil {
		t.Fatalf("uncreate of a missing record: %v", err)
	}

	// Started (attempts 1): kept.
	mustCreate(t, s, newJob("started"), t0)
	mustStart(t, s, newJob("started"), t0)
	// Relaunched with force, then started: kept (Start dropped restore_ttl).
	forceRelaunch(t, s, "forced-started", 0)
	mustStart(t, s, newJob("forced-started"), t0)
	// Relaunched with force, started and deferred (queued, attempts 0 again): kept.
	forceRelaunch(t, s, "forced-deferred", 0)
	mustStart(t, s, newJob("forced-deferred"), t0)
	if res := mustFinish(t, s, "forced-deferred", Outcome{Kind: FinishDeferred, NextRunAt: t0.Add(time.Second),
		Attempt: Attempt{Outcome: AttemptThrottled, HTTPStatus: 429, FinishedAt: t0}}, t0); res != StateQueued {
		t.Fatalf("defer: %s", res)
	}
	// Requeued dead letter (generation 2, attempts 0, queued): kept.
	deadLetter(t, s, "requeued", "RCS904", false, t0)
	if res, _, _, err := s.Requeue(ctx, "requeued", false, t0); err != nil || res != Requeued {
		t.Fatalf("requeue: %s, %v", res, err)
	}
	// Finished: kept.
	deadLetter(t, s, "dead", "RCS904", false, t0)
	mustCreate(t, s, newJob("ok"), t0)
	mustStart(t, s, newJob("ok"), t0)
	mustFinish(t, s, "ok", success(1, t0), t0)

	for _, id := range []string{"started", "forced-started", "forced-deferred", "requeued", "dead", "ok"} {
		before := mustGet(t, s, id)
		if err := s.Uncreate(ctx, id); err != nil {
			t.Fatal(err)
		}
		if gone(id) {
			t.Errorf("Uncreate removed %s (state %s)", id, before.State)
			continue
		}
		if after := mustGet(t, s, id); after.State != before.State || after.Attempts != before.Attempts {
			t.Errorf("Uncreate changed %s: %+v -> %+v", id, before, after)
		}
	}
}

// forceRelaunch makes id a succeeded job (kept for retention) and relaunches
// it with force, as the producer does before pushing its task.
func forceRelaunch(t *testing.T, s *Store, id string, retention time.Duration) {
	t.Helper()
	j := newJob(id)
	s.Retention = retention
	mustCreate(t, s, j, t0)
	_, n := mustStart(t, s, j, t0)
	mustFinish(t, s, id, success(n, t0), t0)
	s.Retention = 0
	j.Force, j.Batch = true, "b2"
	if res := mustCreate(t, s, j, t0.Add(time.Minute)); res != Created {
		t.Fatalf("force %s: %s", id, res)
	}
}

// A forced relaunch whose task could not be pushed goes back to the success
// it was, with its TTL.
func TestUncreateForcedRelaunch(t *testing.T) {
	for _, retention := range []time.Duration{time.Hour, 0} {
		t.Run(retention.String(), func(t *testing.T) {
			s, c := newStore(t)
			j := newJob("f")
			s.Retention = retention
			mustCreate(t, s, j, t0)
			_, n := mustStart(t, s, j, t0)
			mustFinish(t, s, "f", success(n, t0), t0)
			s.Retention = 0
			was := mustGet(t, s, "f")
			wasHash := hash(t, c, "f")
			wasTTL := pttl(t, c, rdb.JobKey("f"))

			forced := j
			forced.Force, forced.Batch = true, "b2"
			if res := mustCreate(t, s, forced, t0.Add(time.Minute)); res != Created {
				t.Fatalf("force: %s", res)
			}
			for _, k := range []string{rdb.JobKey("f"), rdb.AttemptsKey("f")} {
				if d := ttl(t, c, k); d != -1 {
					t.Fatalf("relaunched %s has TTL %v, want none", k, d)
				}
			}
			if err := s.Uncreate(ctx, "f"); err != nil {
				t.Fatal(err)
			}
			r := mustGet(t, s, "f")
			if r.State != StateSucceeded || r.AgentLaunchID != "L-1" || !reflect.DeepEqual(r, was) {
				t.Fatalf("after Uncreate: %+v\nwas %+v", r, was)
			}
			// Field for field the success it was (generation aside).
			h := hash(t, c, "f")
			delete(h, "generation")
			delete(wasHash, "generation")
			if !maps.Equal(h, wasHash) {
				t.Fatalf("after Uncreate: %v\nwas %v", h, wasHash)
			}
			for _, k := range []string{rdb.JobKey("f"), rdb.AttemptsKey("f")} {
				d := pttl(t, c, k)
				if retention == 0 {
					if d != -1 {
						t.Errorf("TTL of %s: %v, want none as before", k, d)
					}
				} else if d <= wasTTL-time.Minute || d > wasTTL {
					t.Errorf("TTL of %s: %v, want about %v as before", k, d, wasTTL)
				}
			}
			// It is the success it was: not relaunched without force, and
			// relaunched again with it.
			if res := mustCreate(t, s, j, t0); res != AlreadyLaunched {
				t.Fatalf("create after Uncreate: %s, want %s", res, AlreadyLaunched)
			}
			if res := mustCreate(t, s, forced, t0); res != Created {
				t.Fatalf("force after Uncreate: %s, want %s", res, Created)
			}
			// A second Uncreate (of the second relaunch) restores it again;
			// a third, with nothing to undo, changes nothing.
			for range 2 {
				if err := s.Uncreate(ctx, "f"); err != nil {
					t.Fatal(err)
				}
				if r := mustGet(t, s, "f"); r.State != StateSucceeded || r.AgentLaunchID != "L-1" {
					t.Fatalf("after another Uncreate: %+v", r)
				}
			}
			if d := pttl(t, c, rdb.JobKey("f")); (retention == 0) != (d == -1) || d > wasTTL {
				t.Errorf("TTL after a second relaunch undone: %v (was %v)", d, wasTTL)
			}
		})
	}
}

// A success without a batch (its record recreated by Start) gets none back.
func TestUncreateForcedRelaunchWithoutBatch(t *testing.T) {
	s, c := newStore(t)
	j := newJob("f")
	mustStart(t, s, j, t0)
	mustFinish(t, s, "f", success(1, t0), t0)
	was := hash(t, c, "f")
	if _, ok := was["batch"]; ok {
		t.Fatalf("recreated record has a batch: %v", was)
	}
	j.Force = true
	if res := mustCreate(t, s, j, t0.Add(time.Minute)); res != Created {
		t.Fatalf("force: %s", res)
	}
	if err := s.Uncreate(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	h := hash(t, c, "f")
	delete(h, "generation")
	delete(was, "generation")
	if !maps.Equal(h, was) {
		t.Fatalf("after Uncreate: %v\nwas %v", h, was)
	}
}

// Start takes a forced relaunch over: restore_ttl goes, and the relaunch's
// own outcome replaces the last success.
func TestForcedRelaunchRuns(t *testing.T) {
	s, c := newStore(t)
	forceRelaunch(t, s, "f", time.Hour)
	if r := mustGet(t, s, "f"); r.State != StateQueued || r.AgentLaunchID != "L-1" {
		t.Fatalf("relaunched record: %+v", r)
	}
	t1 := t0.Add(2 * time.Minute)
	state, n := mustStart(t, s, newJob("f"), t1)
	if state != StateRunning || n != 1 {
		t.Fatalf("start: %s %d", state, n)
	}
	if rf := restoreFields(t, c, "f"); len(rf) != 0 {
		t.Fatalf("%v kept by Start", rf)
	}
	if d := ttl(t, c, rdb.JobKey("f")); d != -1 {
		t.Fatalf("running relaunch has TTL %v", d)
	}
	s.Retention = time.Hour
	o := success(n, t1)
	o.AgentLaunchID = "L-2"
	if res := mustFinish(t, s, "f", o, t1); res != StateSucceeded {
		t.Fatalf("finish: %s", res)
	}
	r := mustGet(t, s, "f")
	if r.State != StateSucceeded || r.AgentLaunchID != "L-2" || r.Attempts != 1 || !r.FinishedAt.Equal(t1) ||
		r.Batch != "b2" || len(r.History) != 2 {
		t.Fatalf("relaunch's success: %+v", r)
	}
	if d := ttl(t, c, rdb.JobKey("f")); d <= 0 {
		t.Fatalf("relaunch's success has TTL %v, want one", d)
	}
	// The relaunch failing for good replaces the success too.
	forced := newJob("f")
	forced.Force = true
	mustCreate(t, s, forced, t1)
	_, n = mustStart(t, s, forced, t1)
	mustFinish(t, s, "f", terminal(n, "RCS904", false, t1), t1)
	r = mustGet(t, s, "f")
	if r.State != StateDeadLettered || r.AgentLaunchID != "" || r.Code != "RCS904" || r.Response == nil ||
		string(r.Response) == string(o.Response) {
		t.Fatalf("relaunch's dead letter: %+v", r)
	}
	if !indexed(t, c, "f") {
		t.Fatal("relaunch's dead letter not indexed")
	}
	if err := s.Uncreate(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, s, "f"); r.State != StateDeadLettered {
		t.Fatalf("Uncreate touched a dead letter: %+v", r)
	}
}

func TestStartFinishAttemptNumbers(t *testing.T) {
	s, c := newStore(t)
	j := newJob("j")
	mustCreate(t, s, j, t0)

	state, n := mustStart(t, s, j, t0)
	if state != StateRunning || n != 1 {
		t.Fatalf("first start: %s %d", state, n)
	}
	next := t0.Add(3 * time.Second)
	if res := mustFinish(t, s, "j", retrying(n, t0, next), t0); res != StateRetrying {
		t.Fatalf("finish retrying: %s", res)
	}
	r := mustGet(t, s, "j")
	if r.State != StateRetrying || !r.NextRunAt.Equal(next) || r.Code != "RCS502" || r.HTTPStatus != 502 ||
		r.Attempts != 1 || r.MaxAttempts != 9 || !r.FinishedAt.IsZero() {
		t.Fatalf("after retrying: %+v", r)
	}
	if n := xlen(t, c); n != 0 {
		t.Fatalf("a retry wrote %d results", n)
	}

	t1 := t0.Add(4 * time.Second)
	state, n = mustStart(t, s, j, t1)
	if state != StateRunning || n != 2 {
		t.Fatalf("second start: %s %d", state, n)
	}
	if r := mustGet(t, s, "j"); r.State != StateRunning || !r.NextRunAt.IsZero() || !r.UpdatedAt.Equal(t1) {
		t.Fatalf("running again: %+v", r)
	}
	mustFinish(t, s, "j", success(n, t1), t1)

	// A redelivered task of a finished job: no new attempt.
	state, n = mustStart(t, s, j, t1.Add(time.Second))
	if state != StateSucceeded || n != 2 {
		t.Fatalf("start after success: %s %d, want %s 2", state, n, StateSucceeded)
	}
	r = mustGet(t, s, "j")
	if r.Attempts != 2 || r.State != StateSucceeded || len(r.History) != 2 {
		t.Fatalf("after a start on a finished job: %+v", r)
	}
	if r.History[0].N != 1 || r.History[0].Outcome != AttemptRetryable || r.History[1].N != 2 ||
		r.History[1].Outcome != AttemptSucceeded {
		t.Fatalf("history: %+v", r.History)
	}

	deadLetter(t, s, "d", "RCS904", false, t0)
	if state, n := mustStart(t, s, newJob("d"), t1); state != StateDeadLettered || n != 1 {
		t.Fatalf("start after dead letter: %s %d", state, n)
	}
	if r := mustGet(t, s, "d"); r.Attempts != 1 || len(r.History) != 1 {
		t.Fatalf("dead letter after start: %+v", r)
	}
}

func TestStartOnRunningLogsLostAttempt(t *testing.T) {
	s, _ := newStore(t)
	j := newJob("j")
	mustCreate(t, s, j, t0)
	mustStart(t, s, j, t0)
	t1 := t0.Add(time.Minute)
	// The worker died during attempt 1; the task is redelivered.
	state, n := mustStart(t, s, j, t1)
	if state != StateRunning || n != 2 {
		t.Fatalf("start of a running job: %s %d, want running 2", state, n)
	}
	r := mustGet(t, s, "j")
	if len(r.History) != 1 {
		t.Fatalf("history: %+v, want one lost attempt", r.History)
	}
	if a := r.History[0]; a.N != 1 || a.Outcome != AttemptLost || a.Message == "" || !a.FinishedAt.Equal(t1) {
		t.Fatalf("lost attempt: %+v", a)
	}
}

// MoveFromShared moves the record of an unfinished job off the shared queue
// only: a record on another queue keeps it (its task is elsewhere), a
// finished one is left as it was, and no record is made.
func TestMoveFromShared(t *testing.T) {
	s, c := newStore(t)
	const shared, to = "launch", "launch:SID1:high"
	for _, tc := range []struct {
		name, queue string // the record's queue; "-" for no record, "" for no queue field
		finished    bool
		want        MoveResult
		after       string
	}{
		{"on the shared queue", shared, false, Moved, to},
		{"written before records kept their queue", "", false, Moved, to},
		{"moved before", to, false, Moved, to},
		{"on its account's queue", "launch:SID1", false, Elsewhere, "launch:SID1"},
		{"finished", shared, true, NotMoved, shared},
		{"no record", "-", false, NotMoved, ""},
	} {
		id := "move-" + strings.ReplaceAll(tc.name, " ", "-")
		if tc.queue != "-" {
			j := newJob(id)
			j.Queue = tc.queue
			mustCreate(t, s, j, t0)
			if tc.queue == "" {
				c.HDel(ctx, rdb.JobKey(id), "queue")
			}
			if tc.finished {
				mustStart(t, s, j, t0)
				mustFinish(t, s, id, success(1, t0), t0)
			}
		}
		res, err := s.MoveFromShared(ctx, id, shared, to)
		if err != nil || res != tc.want {
			t.Errorf("%s: %s, %v; want %s", tc.name, res, err, tc.want)
		}
		if q, err := s.JobQueue(ctx, id); err != nil || q != tc.after {
			t.Errorf("%s: queue after %q, %v; want %q", tc.name, q, err, tc.after)
		}
		if n := c.Exists(ctx, rdb.JobKey(id)).Val(); tc.queue == "-" && n != 0 {
			t.Errorf("%s: a record was made", tc.name)
		}
	}
}

func TestStartRecreatesMissingRecord(t *testing.T) {
	s, _ := newStore(t)
	j := newJob("gone")
	j.Queue = "launch:SID1"
	state, n := mustStart(t, s, j, t0)
	if state != StateRunning || n != 1 {
		t.Fatalf("start without record: %s %d", state, n)
	}
	// It keeps its task's queue, where a repair must push it.
	if q, err := s.JobQueue(context.Background(), "gone"); err != nil || q != j.Queue {
		t.Fatalf("recreated record's queue: %q, %v; want %q", q, err, j.Queue)
	}
	r := mustGet(t, s, "gone")
	if r.ID != "gone" || r.SID != j.SID || r.AgentNo != j.AgentNo || string(r.Payload) != string(j.Payload) ||
		r.State != StateRunning || r.Attempts != 1 || r.MaxAttempts != 9 || !r.EnqueuedAt.Equal(t0) {
		t.Fatalf("recreated record: %+v", r)
	}
	// The recreated record behaves like any other.
	if res := mustFinish(t, s, "gone", success(1, t0), t0); res != StateSucceeded {
		t.Fatalf("finish: %s", res)
	}
	if res := mustCreate(t, s, j, t0); res != AlreadyLaunched {
		t.Fatalf("create after: %s", res)
	}
}

func TestFinishDeferredDoesNotCountTheAttempt(t *testing.T) {
	s, c := newStore(t)
	j := newJob("j")
	mustCreate(t, s, j, t0)
	_, n := mustStart(t, s, j, t0)
	next := t0.Add(2 * time.Second)
	o := Outcome{Kind: FinishDeferred, NextRunAt: next,
		Attempt: Attempt{N: 0, Outcome: AttemptThrottled, Code: "", HTTPStatus: 429, FinishedAt: t0}}
	if res := mustFinish(t, s, "j", o, t0); res != StateQueued {
		t.Fatalf("deferred: %s, want %s", res, StateQueued)
	}
	r := mustGet(t, s, "j")
	if r.State != StateQueued || r.Attempts != n-1 || !r.NextRunAt.Equal(next) || r.Code != "" {
		t.Fatalf("after deferral: %+v", r)
	}
	if len(r.History) != 1 || r.History[0].Outcome != AttemptThrottled || r.History[0].N != 0 {
		t.Fatalf("history: %+v", r.History)
	}
	if res := mustCreate(t, s, j, t0); res != Pending {
		t.Fatalf("create of a deferred job: %s, want %s", res, Pending)
	}
	if _, n2 := mustStart(t, s, j, next); n2 != n {
		t.Fatalf("attempt after a deferral: %d, want %d again", n2, n)
	}
	if n := xlen(t, c); n != 0 {
		t.Fatalf("deferral wrote %d results", n)
	}
}

func TestFinishSucceededWritesOneResult(t *testing.T) {
	s, c := newStore(t)
	s.Retention = time.Hour
	j := newJob("j")
	mustCreate(t, s, j, t0)
	mustStart(t, s, j, t0)
	t1 := t0.Add(1500 * time.Millisecond)
	o := success(1, t1)
	o.Attempt.StartedAt = t0.Add(300 * time.Millisecond)
	if res := mustFinish(t, s, "j", o, t1); res != StateSucceeded {
		t.Fatalf("finish: %s", res)
	}

	msgs, err := c.XRange(ctx, ResultsStream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d stream entries, want 1", len(msgs))
	}
	want := map[string]string{
		"job_id": "j", "agent_no": "48900", "outcome": "succeeded", "code": "RCS902", "message": "launched",
		"agent_launch_id": "L-1", "attempts": "1", "finished_at": t1.Format(time.RFC3339Nano),
		"response": string(o.Response),
	}
	for k, v := range want {
		if got, ok := msgs[0].Values[k]; !ok || got != v {
			t.Errorf("stream field %s = %v (present %v), want %q", k, got, ok, v)
		}
	}
	rs, err := s.ReadResults(ctx, "0", 10, 0)
	if err != nil || len(rs) != 1 {
		t.Fatalf("ReadResults: %v, %v", rs, err)
	}
	if got := rs[0]; got.JobID != "j" || got.SID != "SID1" || got.Outcome != string(StateSucceeded) || got.Attempts != 1 || got.AgentLaunchID != "L-1" ||
		got.BatchID != "b1" || got.Uncertain || string(got.Response) != string(o.Response) || got.StreamID != msgs[0].ID {
		t.Fatalf("ReadResults: %+v", got)
	}
	if more, err := s.ReadResults(ctx, rs[0].StreamID, 10, 0); err != nil || len(more) != 0 {
		t.Fatalf("ReadResults after the last entry: %v, %v", more, err)
	}

	// The record keeps no response (the stream entry has it), and a success
	// at the first attempt no attempt log: its attempt is read from the record.
	r := mustGet(t, s, "j")
	if r.State != StateSucceeded || r.AgentLaunchID != "L-1" || !r.FinishedAt.Equal(t1) || r.Code != "RCS902" ||
		r.Response != nil || !r.NextRunAt.IsZero() {
		t.Fatalf("record: %+v", r)
	}
	if len(r.History) != 1 || !reflect.DeepEqual(r.History[0], o.Attempt) {
		t.Fatalf("history %+v, want the one attempt %+v", r.History, o.Attempt)
	}
	if n, _ := c.Exists(ctx, rdb.AttemptsKey("j")).Result(); n != 0 {
		t.Fatal("a success at the first attempt wrote an attempt log")
	}
	// Nor what its key or other fields tell (BENCHMARKS.md, the 1 KiB
	// record budget), which the record reads back.
	for _, f := range []string{"response", "id", "updated_at", "uncertain", "max_attempts", "generation"} {
		if n, _ := c.HExists(ctx, rdb.JobKey("j"), f).Result(); n {
			t.Errorf("a success's record keeps %s", f)
		}
	}
	if r.ID != "j" || !r.UpdatedAt.Equal(t1) || r.Uncertain {
		t.Fatalf("record read back: ID %q, updated_at %v, uncertain %v", r.ID, r.UpdatedAt, r.Uncertain)
	}
	if d := ttl(t, c, rdb.JobKey("j")); d <= time.Hour-time.Minute || d > time.Hour {
		t.Errorf("TTL of the record: %v, want about 1h", d)
	}

	// A late or repeated Finish changes nothing.
	for _, late := range []Outcome{terminal(1, "RCS904", false, t1), success(2, t1), retrying(1, t1, t1)} {
		if res := mustFinish(t, s, "j", late, t1.Add(time.Second)); res != StateSucceeded {
			t.Fatalf("late finish %s: %s, want %s", late.Kind, res, StateSucceeded)
		}
	}
	if n := xlen(t, c); n != 1 {
		t.Fatalf("%d stream entries after late finishes, want 1", n)
	}
	if after := mustGet(t, s, "j"); after.State != r.State || after.Code != r.Code || len(after.History) != 1 ||
		!after.UpdatedAt.Equal(r.UpdatedAt) {
		t.Fatalf("late finishes changed the record: %+v", after)
	}
	if indexed(t, c, "j") {
		t.Fatal("late dead letter of a succeeded job was indexed")
	}
}

// A success after other attempts keeps its log, every attempt in it.
func TestFinishSucceededAfterRetriesKeepsLog(t *testing.T) {
	s, c := newStore(t)
	j := newJob("j")
	succeedAtSecondAttempt(t, s, j)
	r := mustGet(t, s, "j")
	if n, _ := c.LLen(ctx, rdb.AttemptsKey("j")).Result(); n != 2 || len(r.History) != 2 || r.Response != nil ||
		r.History[0].Outcome != AttemptRetryable || r.History[1] != success(2, t0).Attempt {
		t.Fatalf("success after a retry: log of %d, %+v", n, r)
	}
}

// A forced relaunch of a success that kept no log writes the log from the
// record first (create_jobs.lua's rfc3339 turns its Unix ms into times), so
// that the success stays in the job's history.
func TestForcedRelaunchLogsTheSuccess(t *testing.T) {
	s, c := newStore(t)
	for i, at := range []time.Time{
		time.Date(2024, 2, 29, 23, 59, 59, 999e6, time.UTC),
		time.Date(2000, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1999, 12, 31, 12, 30, 45, 7e6, time.UTC),
		time.Date(2100, 2, 28, 1, 2, 3, 40e6, time.UTC),
		time.Date(2026, 12, 6, 9, 53, 0, 500e6, time.UTC),
	} {
		id := fmt.Sprint("f", i)
		j := newJob(id)
		mustCreate(t, s, j, at)
		mustStart(t, s, j, at)
		o := success(1, at.Add(time.Second))
		o.Attempt.StartedAt = at
		mustFinish(t, s, id, o, at.Add(time.Second))
		was := mustGet(t, s, id)
		j.Force = true
		mustCreate(t, s, j, at.Add(time.Hour))
		raw, err := c.LRange(ctx, rdb.AttemptsKey(id), 0, -1).Result()
		if err != nil || len(raw) != 1 {
			t.Fatalf("log after relaunch: %q, %v", raw, err)
		}
		if got := decodeAttempts(raw); len(got) != 1 || !reflect.DeepEqual(got[0], o.Attempt) || !reflect.DeepEqual(got, was.History) {
			t.Fatalf("%s: logged %s as %+v, want %+v", at, raw[0], got, o.Attempt)
		}
		_, n := mustStart(t, s, j, at.Add(time.Hour))
		mustFinish(t, s, id, success(n, at.Add(time.Hour)), at.Add(time.Hour))
		if r := mustGet(t, s, id); len(r.History) != 2 || r.History[0] != o.Attempt {
			t.Fatalf("relaunched success's history: %+v", r.History)
		}
	}
}

func TestFinishWithoutRetentionKeepsRecordForever(t *testing.T) {
	s, c := newStore(t)
	j := newJob("j")
	succeedAtSecondAttempt(t, s, j)
	for _, k := range []string{rdb.JobKey("j"), rdb.AttemptsKey("j")} {
		if d := ttl(t, c, k); d != -1 {
			t.Errorf("TTL of %s: %v, want none (-1)", k, d)
		}
	}
}

func TestFinishDeadLettered(t *testing.T) {
	s, c := newStore(t)
	s.Retention = time.Hour
	j := newJob("j")
	mustCreate(t, s, j, t0)
	mustStart(t, s, j, t0)
	if res := mustFinish(t, s, "j", terminal(1, "RCS904", true, t0), t0); res != StateDeadLettered {
		t.Fatalf("finish: %s", res)
	}
	score, err := c.ZScore(ctx, rdb.DeadLetters, "j").Result()
	if err != nil || int64(score) != t0.UnixMilli() {
		t.Errorf("dead-letter index score: %v, %v; want %d", score, err, t0.UnixMilli())
	}
	if n, _ := c.ZCard(ctx, rdb.DeadLetters).Result(); n != 1 {
		t.Errorf("dead-letter index holds %d entries, want 1", n)
	}
	msgs, err := c.XRange(ctx, ResultsStream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d stream entries, want 1", len(msgs))
	}
	v := msgs[0].Values
	if v["job_id"] != "j" || v["outcome"] != "dead_lettered" || v["code"] != "RCS904" || v["message"] != "failed RCS904" ||
		v["agent_launch_id"] != "" || v["attempts"] != "1" || v["uncertain"] != "1" || v["agent_no"] != "48900" ||
		v["finished_at"] != t0.Format(time.RFC3339Nano) {
		t.Errorf("stream entry: %v", v)
	}
	r := mustGet(t, s, "j")
	if r.State != StateDeadLettered || !r.Uncertain || r.Code != "RCS904" || !r.FinishedAt.Equal(t0) || r.HTTPStatus != 400 ||
		r.MaxAttempts == 0 || !r.UpdatedAt.Equal(t0) ||
		string(r.Response) != `{"code":"RCS904","data":[]}` || len(r.History) != 1 || r.History[0].Outcome != AttemptTerminal {
		t.Fatalf("record: %+v", r)
	}
	// Dead letters are a store of record: no TTL, whatever the retention.
	for _, k := range []string{rdb.JobKey("j"), rdb.AttemptsKey("j")} {
		if d := ttl(t, c, k); d != -1 {
			t.Errorf("TTL of dead letter key %s: %v, want none", k, d)
		}
	}

	// A second final outcome changes nothing.
	t1 := t0.Add(time.Minute)
	if res := mustFinish(t, s, "j", terminal(2, "RCS601", false, t1), t1); res != StateDeadLettered {
		t.Fatalf("second finish: %s", res)
	}
	if res := mustFinish(t, s, "j", success(2, t1), t1); res != StateDeadLettered {
		t.Fatalf("success after dead letter: %s", res)
	}
	if n := xlen(t, c); n != 1 {
		t.Fatalf("%d stream entries, want 1", n)
	}
	if !indexed(t, c, "j") {
		t.Fatal("second finish dropped the index entry")
	}
	if n, _ := s.CountDeadLetters(ctx, Filter{Code: "RCS601"}); n != 0 {
		t.Fatalf("second finish's code counted: %d", n)
	}
	if score, _ := c.ZScore(ctx, rdb.DeadLetters, "j").Result(); int64(score) != t0.UnixMilli() {
		t.Fatalf("second finish moved the index entry to %v", score)
	}
	if r2 := mustGet(t, s, "j"); r2.Code != "RCS904" || len(r2.History) != 1 {
		t.Fatalf("record after second finish: %+v", r2)
	}
}

// Dead letters never expire, even when their keys carried a TTL: here the
// job's record expired before its attempt log, and its task ran again.
func TestFinishDeadLetteredPersists(t *testing.T) {
	s, c := newStore(t)
	s.Retention = time.Hour
	j := newJob("j")
	succeedAtSecondAttempt(t, s, j)
	if err := c.Del(ctx, rdb.JobKey("j")).Err(); err != nil {
		t.Fatal(err)
	}
	if d := ttl(t, c, rdb.AttemptsKey("j")); d <= 0 {
		t.Fatalf("attempt log TTL %v, want one", d)
	}
	if state, _ := mustStart(t, s, j, t0); state != StateRunning {
		t.Fatalf("start: %s", state)
	}
	// and a record that carries a TTL of its own
	if err := c.Expire(ctx, rdb.JobKey("j"), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if res := mustFinish(t, s, "j", terminal(1, "RCS904", false, t0), t0); res != StateDeadLettered {
		t.Fatalf("finish: %s", res)
	}
	for _, k := range []string{rdb.JobKey("j"), rdb.AttemptsKey("j")} {
		if d := ttl(t, c, k); d != -1 {
			t.Errorf("TTL of dead letter key %s: %v, want none", k, d)
		}
	}
	if r := mustGet(t, s, "j"); r.State != StateDeadLettered || len(r.History) != 3 || !indexed(t, c, "j") {
		t.Fatalf("dead letter: %+v", r)
	}
}

func TestFinishMissingRecord(t *testing.T) {
	s, c := newStore(t)
	res, err := s.Finish(ctx, "nope", success(1, t0), t0)
	if !errors.Is(err, ErrNotFound) || res != "" {
		t.Fatalf("finish of a missing record: %q, %v; want ErrNotFound", res, err)
	}
	if n := xlen(t, c); n != 0 {
		t.Fatalf("%d stream entries for a missing record", n)
	}
	if n, _ := c.Exists(ctx, rdb.JobKey("nope"), rdb.AttemptsKey("nope")).Result(); n != 0 {
		t.Fatal("finish created keys for a missing record")
	}
}

func TestResultsMaxLenTrimsApproximately(t *testing.T) {
	const nodeEntries, maxLen, total = 10, 50, 300
	s, c := newStore(t, testredis.WithArgs("--stream-node-max-entries", fmt.Sprint(nodeEntries)))
	s.ResultsMaxLen = maxLen
	for i := range total {
		id := fmt.Sprintf("j%d", i)
		mustCreate(t, s, newJob(id), t0)
		if res := mustFinish(t, s, id, success(1, t0), t0); res != StateSucceeded {
			t.Fatalf("finish %s: %s", id, res)
		}
		if n := xlen(t, c); n > maxLen+nodeEntries {
			t.Fatalf("after %d results the stream holds %d, want at most %d", i+1, n, maxLen+nodeEntries)
		}
	}
	n := xlen(t, c)
	if n < maxLen || n > maxLen+nodeEntries {
		t.Fatalf("XLEN %d, want between %d and %d", n, maxLen, maxLen+nodeEntries)
	}
	// The newest entry is kept.
	last, err := c.XRevRangeN(ctx, ResultsStream, "+", "-", 1).Result()
	if err != nil || len(last) != 1 || last[0].Values["job_id"] != fmt.Sprintf("j%d", total-1) {
		t.Fatalf("newest entry: %v, %v", last, err)
	}
}

func ids(rs []Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func TestListAndCountDeadLetters(t *testing.T) {
	s, _ := newStore(t)
	// d0 .. d9, one second apart; even ones RCS904, odd ones RCS601.
	code := func(i int) string { return []string{"RCS904", "RCS601"}[i%2] }
	for i := range 10 {
		deadLetter(t, s, fmt.Sprintf("d%d", i), code(i), false, t0.Add(time.Duration(i)*time.Second))
	}
	// A queued and a succeeded job are not dead letters.
	mustCreate(t, s, newJob("q"), t0)
	mustCreate(t, s, newJob("ok"), t0)
	mustFinish(t, s, "ok", success(1, t0.Add(time.Hour)), t0.Add(time.Hour))

	list := func(f Filter, offset, limit int) []string {
		t.Helper()
		rs, err := s.ListDeadLetters(ctx, f, offset, limit)
		if err != nil {
			t.Fatal(err)
		}
		return ids(rs)
	}
	count := func(f Filter) int64 {
		t.Helper()
		n, err := s.CountDeadLetters(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	cases := []struct {
		name          string
		f             Filter
		offset, limit int
		want          []string
		count         int64
	}{
		{"all", Filter{}, 0, 100, []string{"d9", "d8", "d7", "d6", "d5", "d4", "d3", "d2", "d1", "d0"}, 10},
		{"page", Filter{}, 2, 3, []string{"d7", "d6", "d5"}, 10},
		{"past the end", Filter{}, 10, 3, []string{}, 10},
		{"code", Filter{Code: "RCS904"}, 0, 100, []string{"d8", "d6", "d4", "d2", "d0"}, 5},
		{"code page", Filter{Code: "RCS601"}, 1, 2, []string{"d7", "d5"}, 5},
		{"code first page", Filter{Code: "RCS904"}, 0, 2, []string{"d8", "d6"}, 5},
		{"code last page", Filter{Code: "RCS904"}, 3, 5, []string{"d2", "d0"}, 5},
		{"code past the end", Filter{Code: "RCS601"}, 5, 3, []string{}, 5},
		{"code, no limit", Filter{Code: "RCS904"}, 0, 0, []string{}, 5},
		{"code, since and page", Filter{Code: "RCS601", Since: t0.Add(3 * time.Second)}, 1, 2, []string{"d7", "d5"}, 4},
		{"since (inclusive)", Filter{Since: t0.Add(6 * time.Second)}, 0, 100, []string{"d9", "d8", "d7", "d6"}, 4},
		{"code and since", Filter{Code: "RCS904", Since: t0.Add(5 * time.Second)}, 0, 100, []string{"d8", "d6"}, 2},
		{"unknown code", Filter{Code: "RCS000"}, 0, 100, []string{}, 0},
		{"since the future", Filter{Since: t0.Add(time.Hour)}, 0, 100, []string{}, 0},
	}
	for _, tc := range cases {
		if got := list(tc.f, tc.offset, tc.limit); !slices.Equal(got, tc.want) {
			t.Errorf("%s: list %v, want %v", tc.name, got, tc.want)
		}
		if got := count(tc.f); got != tc.count {
			t.Errorf("%s: count %d, want %d", tc.name, got, tc.count)
		}
	}
	rs, err := s.ListDeadLetters(ctx, Filter{}, 0, 1)
	if err != nil || len(rs) != 1 {
		t.Fatal(rs, err)
	}
	if r := rs[0]; r.State != StateDeadLettered || r.Code != "RCS601" || len(r.History) != 1 || r.History[0].Code != "RCS601" {
		t.Fatalf("listed record: %+v", r)
	}
}

// seedDeadLetters makes n dead letters and returns their IDs: the first 150
// one second apart, then 600 sharing one timestamp (more than a page), then
// 150 sharing another, then the rest one millisecond apart.
func seedDeadLetters(t *testing.T, s *Store, n int) (idsByCode map[string][]string) {
	t.Helper()
	idsByCode = map[string][]string{}
	for i := range n {
		var at time.Time
		switch {
		case i < 150:
			at = t0.Add(time.Duration(i) * time.Second)
		case i < 750:
			at = t0.Add(200 * time.Second)
		case i < 900:
			at = t0.Add(300 * time.Second)
		default:
			at = t0.Add(400*time.Second + time.Duration(i)*time.Millisecond)
		}
		code := []string{"RCS904", "RCS601", "RCS502"}[i%3]
		id := fmt.Sprintf("d%04d", i)
		deadLetter(t, s, id, code, false, at)
		idsByCode[code] = append(idsByCode[code], id)
	}
	return idsByCode
}

// TestDeadLettersBySID: a SID filter lists, counts and walks one
// account's dead letters, alone or with a code.
func TestDeadLettersBySID(t *testing.T) {
	s, _ := newStore(t)
	for i, id := range []string{"a1", "b1", "a2", "b2"} {
		j := newJob(id)
		if id[0] == 'b' {
			j.SID = "SID2"
		}
		at := t0.Add(time.Duration(i) * time.Second)
		mustCreate(t, s, j, at)
		_, n := mustStart(t, s, j, at)
		mustFinish(t, s, id, terminal(n, []string{"RCS904", "RCS601"}[i/2], false, at), at)
	}
	for _, tc := range []struct {
		f    Filter
		want []string
	}{
		{Filter{SID: "SID2"}, []string{"b2", "b1"}},
		{Filter{SID: "SID1"}, []string{"a2", "a1"}},
		{Filter{SID: "SID1", Code: "RCS601"}, []string{"a2"}},
		{Filter{SID: "SID3"}, []string{}},
	} {
		rs, err := s.ListDeadLetters(ctx, tc.f, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		n, err := s.CountDeadLetters(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(rs); !slices.Equal(got, tc.want) || n != int64(len(tc.want)) {
			t.Errorf("%+v: listed %v and counted %d, want %v", tc.f, got, n, tc.want)
		}
	}
}

func TestEachDeadLetterVisitsEveryLetterOnce(t *testing.T) {
	const n = 1300
	for _, mode := range []string{"read", "delete", "requeue", "requeue-without-unindex"} {
		t.Run(mode, func(t *testing.T) {
			s, c := newStore(t)
			byCode := seedDeadLetters(t, s, n)
			walk := func(f Filter, want int) (order []string) {
				t.Helper()
				seen := map[string]int{}
				lastAt := time.Time{}
				err := s.EachDeadLetter(ctx, f, func(r Record) error {
					if seen[r.ID]++; seen[r.ID] > 1 {
						return fmt.Errorf("%s visited twice", r.ID) // stop a walk that would not end
					}
					if !lastAt.IsZero() && r.FinishedAt.After(lastAt) {
						t.Errorf("%s (%v) after %v: not newest first", r.ID, r.FinishedAt, lastAt)
					}
					lastAt = r.FinishedAt
					order = append(order, r.ID)
					if f.Code != "" && r.Code != f.Code {
						t.Errorf("%s has code %s, filter %s", r.ID, r.Code, f.Code)
					}
					switch mode {
					case "delete":
						if deleted, state, err := s.DeleteDeadLetter(ctx, r.ID); err != nil || !deleted {
							return fmt.Errorf("delete %s: deleted %t (state %s), %v", r.ID, deleted, state, err)
						}
					case "requeue", "requeue-without-unindex":
						res, _, rj, err := s.Requeue(ctx, r.ID, false, t0.Add(time.Hour))
						if err != nil || (res != Requeued && res != Resume) || rj.ID != r.ID {
							return fmt.Errorf("requeue %s: %s %+v, %v", r.ID, res, rj, err)
						}
						if mode == "requeue" {
							if err := s.Unindex(ctx, r.ID); err != nil {
								return err
							}
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(seen) != want {
					t.Errorf("filter %+v: visited %d letters, want %d", f, len(seen), want)
				}
				for id, k := range seen {
					if k != 1 {
						t.Errorf("%s visited %d times", id, k)
					}
				}
				return order
			}
			if mode == "read" {
				all := walk(Filter{}, n)
				f601 := Filter{Code: "RCS601"}
				by601 := walk(f601, len(byCode["RCS601"]))
				// Since t0+200s: the 600 tied letters and everything newer.
				walk(Filter{Since: t0.Add(200 * time.Second)}, n-150)
				f904 := Filter{Code: "RCS904", Since: t0.Add(300 * time.Second)}
				by904 := walk(f904, len(byCode["RCS904"])-250)

				// The code filter agrees with the unfiltered walk.
				var want601 []string
				for _, id := range all {
					if slices.Contains(byCode["RCS601"], id) {
						want601 = append(want601, id)
					}
				}
				if !slices.Equal(by601, want601) {
					t.Fatalf("RCS601 walk differs from the unfiltered one filtered")
				}
				// Counting and paging with a code, over more than one page of the index.
				for _, tc := range []struct {
					f    Filter
					want []string
				}{{f601, by601}, {f904, by904}} {
					if got, err := s.CountDeadLetters(ctx, tc.f); err != nil || got != int64(len(tc.want)) {
						t.Errorf("count %+v: %d, %v; want %d", tc.f, got, err, len(tc.want))
					}
					for _, pg := range [][2]int{{0, 10}, {150, 300}, {len(tc.want) - 7, 100}, {len(tc.want), 5}} {
						rs, err := s.ListDeadLetters(ctx, tc.f, pg[0], pg[1])
						if err != nil {
							t.Fatal(err)
						}
						end := min(pg[0]+pg[1], len(tc.want))
						if got := ids(rs); !slices.Equal(got, tc.want[pg[0]:end]) {
							t.Errorf("list %+v offset %d limit %d: %d letters %.40v..., want %d", tc.f, pg[0], pg[1],
								len(got), got, end-pg[0])
						}
					}
				}
				return
			}
			// Walk one code first, then the rest.
			walk(Filter{Code: "RCS502"}, len(byCode["RCS502"]))
			rest := n - len(byCode["RCS502"])
			if mode == "requeue-without-unindex" {
				rest = n // requeued letters stay indexed (state queued)
			}
			walk(Filter{}, rest)
			left, err := s.CountDeadLetters(ctx, Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]int64{"delete": 0, "requeue": 0, "requeue-without-unindex": n}[mode]; left != want {
				t.Fatalf("%d letters left in the index, want %d", left, want)
			}
			if mode == "delete" {
				// Only the results stream and the outcome counts stay: they
				// are the history of what finished, not dead letters.
				keys, err := c.Keys(ctx, "*").Result()
				slices.Sort(keys)
				if err != nil || !slices.Equal(keys, []string{ResultsStream, rdb.Outcomes}) {
					t.Fatalf("keys left after deleting every letter: %v, %v", keys, err)
				}
			}
		})
	}
}

func TestEachDeadLetterStopsOnError(t *testing.T) {
	s, _ := newStore(t)
	for i := range 5 {
		deadLetter(t, s, fmt.Sprintf("d%d", i), "RCS904", false, t0.Add(time.Duration(i)*time.Second))
	}
	stop := errors.New("stop")
	calls := 0
	err := s.EachDeadLetter(ctx, Filter{}, func(Record) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("EachDeadLetter: %v after %d calls, want stop after 1", err, calls)
	}
}

func TestRequeueUnindexRestore(t *testing.T) {
	s, c := newStore(t)
	deadLetter(t, s, "a", "RCS904", false, t0)
	t1 := t0.Add(time.Hour)

	res, _, rj, err := s.Requeue(ctx, "a", false, t1)
	if err != nil || res != Requeued {
		t.Fatalf("requeue: %s, %v", res, err)
	}
	j := newJob("a")
	if rj.ID != "a" || rj.SID != j.SID || rj.AgentNo != j.AgentNo || string(rj.Payload) != string(j.Payload) {
		t.Fatalf("requeued job: %+v", rj)
	}
	r := mustGet(t, s, "a")
	// Queued with a fresh budget; the dead letter's own fields stay until
	// the new run records its outcome, so that Restore can put them back.
	if r.State != StateQueued || r.Attempts != 0 || r.FinishedAt.IsZero() || r.Code != "RCS904" ||
		!r.UpdatedAt.Equal(t1) || len(r.History) != 1 {
		t.Fatalf("requeued record: %+v", r)
	}
	if !indexed(t, c, "a") {
		t.Fatal("requeue removed the index entry before Unindex")
	}
	// A half-requeued letter keeps its code, and so still matches its filter.
	if n, _ := s.CountDeadLetters(ctx, Filter{Code: "RCS904"}); n != 1 {
		t.Fatalf("count of RCS904 after requeue: %d, want 1", n)
	}
	// Stopped half-way (no push, no Unindex): a second requeue resumes.
	res, _, rj2, err := s.Requeue(ctx, "a", false, t1.Add(time.Minute))
	if err != nil || res != Resume || rj2.ID != "a" || rj2.SID != rj.SID || rj2.AgentNo != rj.AgentNo ||
		string(rj2.Payload) != string(j.Payload) {
		t.Fatalf("second requeue: %s %+v, %v; want %s", res, rj2, err, Resume)
	}
	if r := mustGet(t, s, "a"); !r.UpdatedAt.Equal(t1) {
		t.Fatalf("resume changed the record: %+v", r)
	}
	if err := s.Unindex(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if indexed(t, c, "a") {
		t.Fatal("after Unindex still indexed")
	}
	for _, f := range []Filter{{}, {Code: "RCS904"}} {
		if n, _ := s.CountDeadLetters(ctx, f); n != 0 {
			t.Fatalf("count %+v after unindex: %d", f, n)
		}
	}
	if err := s.Unindex(ctx, "a"); err != nil {
		t.Fatalf("second Unindex: %v", err)
	}
	if err := s.Unindex(ctx, "nope"); err != nil {
		t.Fatalf("Unindex of a missing job: %v", err)
	}
	// Now it is just a queued job.
	if res, state, rj, err := s.Requeue(ctx, "a", false, t1); err != nil || res != NotDeadLettered ||
		state != StateQueued || rj.ID != "" {
		t.Fatalf("requeue of a queued job: %s (%s) %+v, %v", res, state, rj, err)
	}
	// Its fresh budget starts at attempt 1.
	if _, n := mustStart(t, s, j, t1); n != 1 {
		t.Fatalf("first attempt after requeue: %d", n)
	}
	if res, state, _, err := s.Requeue(ctx, "a", false, t1); err != nil || res != NotDeadLettered || state != StateRunning {
		t.Fatalf("requeue of a running job: %s (%s), %v", res, state, err)
	}
	mustFinish(t, s, "a", success(1, t1), t1)
	// The dead letter's answer goes with its success; its log keeps both.
	if r := mustGet(t, s, "a"); r.State != StateSucceeded || r.Response != nil || len(r.History) != 2 ||
		r.History[0].Outcome != AttemptTerminal || r.History[1].Outcome != AttemptSucceeded {
		t.Fatalf("dead letter retried to success: %+v", r)
	}
	if res, state, _, err := s.Requeue(ctx, "a", true, t1); err != nil || res != NotDeadLettered || state != StateSucceeded {
		t.Fatalf("requeue of a succeeded job: %s (%s), %v", res, state, err)
	}
	if _, _, _, err := s.Requeue(ctx, "nope", true, t1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("requeue of a missing job: %v", err)
	}
}

func TestRequeueLeavesUncertainAlone(t *testing.T) {
	s, c := newStore(t)
	deadLetter(t, s, "u", "TIMEOUT", true, t0)
	res, _, rj, err := s.Requeue(ctx, "u", false, t0.Add(time.Hour))
	if err != nil || res != Uncertain || rj.ID != "" {
		t.Fatalf("requeue of an uncertain letter: %s %+v, %v", res, rj, err)
	}
	if r := mustGet(t, s, "u"); r.State != StateDeadLettered || r.Attempts != 1 || !r.Uncertain {
		t.Fatalf("uncertain letter changed: %+v", r)
	}
	res, _, rj, err = s.Requeue(ctx, "u", true, t0.Add(time.Hour))
	if err != nil || res != Requeued || rj.ID != "u" || rj.SID != "SID1" {
		t.Fatalf("requeue with includeUncertain: %s %+v, %v", res, rj, err)
	}
	if r := mustGet(t, s, "u"); r.State != StateQueued || r.Attempts != 0 || !r.Uncertain {
		t.Fatalf("requeued uncertain letter: %+v", r)
	}
	// A push that fails puts it back exactly, uncertain mark and attempts.
	if err := s.Restore(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, s, "u"); r.State != StateDeadLettered || r.Attempts != 1 || !r.Uncertain {
		t.Fatalf("restored uncertain letter: %+v", r)
	}
	if res, _, _, err := s.Requeue(ctx, "u", false, t0.Add(2*time.Hour)); err != nil || res != Uncertain {
		t.Fatalf("after restore, a plain requeue: %s, %v; want it left alone", res, err)
	}
	if res, _, _, err = s.Requeue(ctx, "u", true, t0.Add(3*time.Hour)); err != nil || res != Requeued {
		t.Fatalf("requeue again with includeUncertain: %s, %v", res, err)
	}
	if !indexed(t, c, "u") {
		t.Fatal("requeue dropped the index entry")
	}
}

func TestRestore(t *testing.T) {
	s, c := newStore(t)
	deadLetter(t, s, "a", "RCS904", false, t0)
	res, _, _, err := s.Requeue(ctx, "a", false, t0.Add(time.Hour))
	if err != nil || res != Requeued {
		t.Fatal(res, err)
	}
	// The push failed: put it back.
	if err := s.Restore(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	r := mustGet(t, s, "a")
	if r.State != StateDeadLettered || r.Code != "RCS904" {
		t.Fatalf("restored record: %+v", r)
	}
	if !indexed(t, c, "a") {
		t.Fatal("restored letter not indexed")
	}
	if res, _, _, err := s.Requeue(ctx, "a", false, t0.Add(time.Hour)); err != nil || res != Requeued {
		t.Fatalf("requeue after restore: %s, %v", res, err)
	}
	if deleted, state, err := s.DeleteDeadLetter(ctx, "a"); err != nil || deleted || state != StateQueued {
		t.Fatalf("delete of a requeued letter: deleted %t (state %s), %v", deleted, state, err)
	}

	// Restore leaves alone a job that is not a half-requeued dead letter.
	mustCreate(t, s, newJob("q"), t0)
	if err := s.Restore(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, s, "q"); r.State != StateQueued {
		t.Fatalf("restore of a plain queued job: %s", r.State)
	}
	if err := s.Restore(ctx, "nope"); err != nil {
		t.Fatalf("restore of a missing job: %v", err)
	}
	if n, _ := c.Exists(ctx, rdb.JobKey("nope")).Result(); n != 0 {
		t.Fatal("restore created a record")
	}
}

func TestUnindexKeepsLetterDeadLetteredAgain(t *testing.T) {
	for _, newCode := range []string{"RCS904", "RCS601"} {
		t.Run(newCode, func(t *testing.T) {
			s, c := newStore(t)
			deadLetter(t, s, "a", "RCS904", false, t0)
			t1 := t0.Add(time.Hour)
			if res, _, _, err := s.Requeue(ctx, "a", false, t1); err != nil || res != Requeued {
				t.Fatal(res, err)
			}
			// The worker runs it and dead-letters it again before Unindex.
			_, n := mustStart(t, s, newJob("a"), t1)
			mustFinish(t, s, "a", terminal(n, newCode, false, t1), t1)
			if err := s.Unindex(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			score, err := c.ZScore(ctx, rdb.DeadLetters, "a").Result()
			if err != nil || int64(score) != t1.UnixMilli() {
				t.Fatalf("dead-letter index: %v, %v; want the new time", score, err)
			}
			// The code filter follows the letter's code now.
			for _, code := range []string{"RCS904", "RCS601"} {
				want := int64(0)
				if code == newCode {
					want = 1
				}
				if got, err := s.CountDeadLetters(ctx, Filter{Code: code}); err != nil || got != want {
					t.Errorf("count of %s: %d, %v; want %d", code, got, err, want)
				}
				rs, err := s.ListDeadLetters(ctx, Filter{Code: code}, 0, 10)
				if err != nil || len(rs) != int(want) || (want == 1 && (rs[0].ID != "a" || rs[0].Code != newCode)) {
					t.Errorf("list of %s: %+v, %v; want %d", code, rs, err, want)
				}
			}
			// Deleting it leaves no index entry behind.
			if deleted, state, err := s.DeleteDeadLetter(ctx, "a"); err != nil || !deleted {
				t.Fatal(deleted, state, err)
			}
			if n, _ := c.ZCard(ctx, rdb.DeadLetters).Result(); n != 0 {
				t.Errorf("%s still holds %d entries", rdb.DeadLetters, n)
			}
		})
	}
}

// A dlq retry that pushed the task but stopped before Unindex is healed when
// the job runs: Start takes it out of the dead-letter index.
func TestStartUnindexesRequeuedLetter(t *testing.T) {
	s, c := newStore(t)
	deadLetter(t, s, "a", "RCS904", false, t0)
	deadLetter(t, s, "b", "RCS904", false, t0)
	t1 := t0.Add(time.Hour)
	if res, _, _, err := s.Requeue(ctx, "a", false, t1); err != nil || res != Requeued {
		t.Fatal(res, err)
	}
	if !indexed(t, c, "a") {
		t.Fatal("not indexed before the run")
	}
	if state, n := mustStart(t, s, newJob("a"), t1); state != StateRunning || n != 1 {
		t.Fatalf("start: %s %d", state, n)
	}
	if indexed(t, c, "a") {
		t.Fatal("a running job is still in the dead-letter index")
	}
	if !indexed(t, c, "b") {
		t.Fatal("Start of a unindexed b")
	}
	for _, f := range []Filter{{}, {Code: "RCS904"}} {
		if n, _ := s.CountDeadLetters(ctx, f); n != 1 {
			t.Errorf("count %+v: %d, want 1 (b)", f, n)
		}
	}
	// No longer a half-done retry: a second retry finds it running.
	if res, state, _, err := s.Requeue(ctx, "a", false, t1); err != nil || res != NotDeadLettered || state != StateRunning {
		t.Fatalf("requeue after the run started: %s (%s), %v", res, state, err)
	}
	// The late Unindex of the stopped retry changes nothing.
	if err := s.Unindex(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	// Succeeding, it stays out of the index.
	mustFinish(t, s, "a", success(1, t1), t1)
	if indexed(t, c, "a") {
		t.Fatal("a success is in the dead-letter index")
	}
	// A redelivered task of a dead letter does not run, and leaves it indexed.
	if state, _ := mustStart(t, s, newJob("b"), t1); state != StateDeadLettered {
		t.Fatalf("start of a dead letter: %s", state)
	}
	if !indexed(t, c, "b") {
		t.Fatal("Start of a dead letter unindexed it")
	}
}

func TestDeleteDeadLetter(t *testing.T) {
	s, c := newStore(t)
	deadLetter(t, s, "a", "RCS904", false, t0)
	deadLetter(t, s, "b", "RCS904", false, t0)
	if deleted, state, err := s.DeleteDeadLetter(ctx, "a"); err != nil || !deleted {
		t.Fatalf("delete: deleted %t (state %s), %v", deleted, state, err)
	}
	if n, _ := c.Exists(ctx, rdb.JobKey("a"), rdb.AttemptsKey("a")).Result(); n != 0 {
		t.Fatalf("%d keys of the deleted letter left", n)
	}
	if indexed(t, c, "a") {
		t.Fatal("deleted letter still indexed")
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of a deleted letter: %v", err)
	}
	if !indexed(t, c, "b") {
		t.Fatal("deleting a touched b")
	}
	if _, _, err := s.DeleteDeadLetter(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	// The results stream is a log: the entry stays.
	if n := xlen(t, c); n != 2 {
		t.Fatalf("stream length %d, want 2", n)
	}

	mustCreate(t, s, newJob("q"), t0)
	mustCreate(t, s, newJob("ok"), t0)
	mustFinish(t, s, "ok", success(1, t0), t0)
	for id, state := range map[string]State{"q": StateQueued, "ok": StateSucceeded} {
		if deleted, res, err := s.DeleteDeadLetter(ctx, id); err != nil || deleted || res != state {
			t.Errorf("delete of %s job: deleted %t (state %s), %v; want not deleted, %s", state, deleted, res, err, state)
		}
		if _, err := s.Get(ctx, id); err != nil {
			t.Errorf("delete of a %s job removed it: %v", state, err)
		}
	}
}

// TestIDsDoNotCollide: job IDs may contain ':' and '.', so no ID's keys may
// equal another ID's.
func TestIDsDoNotCollide(t *testing.T) {
	idsToTry := []string{"a", "a:attempts", "a:attempts:attempts", "attempts", "dlq", "code:x", "a.b"}
	seen := map[string]string{}
	for _, id := range idsToTry {
		for _, k := range []string{rdb.JobKey(id), rdb.AttemptsKey(id)} {
			if prev, ok := seen[k]; ok {
				t.Errorf("key %s belongs to %s and %s", k, prev, id)
			}
			seen[k] = id
		}
	}
	for _, k := range []string{rdb.DeadLetters, ResultsStream} {
		if prev, ok := seen[k]; ok {
			t.Errorf("index key %s is also a key of job %s", k, prev)
		}
	}

	// Both jobs go through their whole life side by side.
	s, _ := newStore(t)
	for _, id := range []string{"order-1", "order-1:attempts"} {
		deadLetter(t, s, id, "RCS904", false, t0)
	}
	for _, id := range []string{"order-1", "order-1:attempts"} {
		r := mustGet(t, s, id)
		if r.ID != id || r.State != StateDeadLettered || len(r.History) != 1 {
			t.Errorf("%s: %+v", id, r)
		}
	}
	if deleted, state, err := s.DeleteDeadLetter(ctx, "order-1"); err != nil || !deleted {
		t.Fatal(deleted, state, err)
	}
	if r, err := s.Get(ctx, "order-1:attempts"); err != nil || r.State != StateDeadLettered {
		t.Fatalf("deleting order-1 hurt order-1:attempts: %+v, %v", r, err)
	}
	// Undoing a create removes that job's keys only.
	mustCreate(t, s, newJob("b:attempts"), t0)
	mustCreate(t, s, newJob("b"), t0)
	if err := s.Uncreate(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "b:attempts"); err != nil {
		t.Fatalf("Uncreate(b) hurt b:attempts: %v", err)
	}
}

// crc16 is CRC-16/XMODEM (poly 0x1021, init 0), the checksum of Redis Cluster.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// keySlot is the Redis Cluster slot of key, with the hash-tag rule: if the
// key has a '{' followed later by a '}' with something in between, only that
// part (from the first '{' to the next '}') is hashed.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16([]byte(key)) % 16384)
}

func TestKeySlotReference(t *testing.T) {
	// From the Redis Cluster specification.
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	if keySlot("{user1000}.following") != keySlot("{user1000}.followers") ||
		keySlot("foo{}{bar}") != int(crc16([]byte("foo{}{bar}"))%16384) ||
		keySlot("foo{{bar}}zap") != keySlot("{bar") || keySlot("foo{bar}{zap}") != keySlot("bar") {
		t.Fatal("hash tag rule")
	}
}

func TestKeysShareTheResultsStreamSlot(t *testing.T) {
	keys := []string{rdb.DeadLetters, rdb.JobKey("j1"), rdb.AttemptsKey("j1"),
		rdb.JobKey("0123456789abcdef0123456789abcdef"), rdb.AttemptsKey("x:y.z@w-1"), rdb.JobKey("a:b{c}d")}
	want := keySlot(ResultsStream)
	if !strings.HasPrefix(ResultsStream, "rcslaunch:") {
		t.Errorf("%s lacks the rcslaunch: prefix", ResultsStream)
	}
	tag := "{" + ResultsStream + "}"
	for _, k := range keys {
		if !strings.HasPrefix(k, "rcslaunch:") {
			t.Errorf("%s lacks the rcslaunch: prefix", k)
		}
		if !strings.Contains(k, tag) {
			t.Errorf("%s lacks the hash tag %s", k, tag)
		}
		if got := keySlot(k); got != want {
			t.Errorf("%s is in slot %d, the results stream in %d", k, got, want)
		}
	}
}

// A record with a generation of '1' may come from an earlier version, which
// wrote it on every record and bumped a missing one to '1' on a relaunch or
// a requeue: its start and finish still delete every field such a record
// may have, which a record without a generation skips.
func TestGenerationOneFromAnEarlierVersion(t *testing.T) {
	s, c := newStore(t)
	j := newJob("j")
	mustCreate(t, s, j, t0)
	if err := c.HSet(ctx, rdb.JobKey("j"), "generation", "1", "restore_attempts", "3", "uncertain", "1",
		"launch_state", "launched", "launch_polls", "4").Err(); err != nil {
		t.Fatal(err)
	}
	mustStart(t, s, j, t0)
	if _, ok := field(t, c, "j", "restore_attempts"); ok {
		t.Error("start left restore_attempts")
	}
	mustFinish(t, s, "j", success(1, t0), t0)
	for _, f := range []string{"uncertain", "launch_state", "launch_polls"} {
		if v, ok := field(t, c, "j", f); ok {
			t.Errorf("finish left %s = %q", f, v)
		}
	}
}
