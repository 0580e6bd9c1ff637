package store

import (
	"fmt"
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

func mustCreateMany(t *testing.T, s *Store, jobs []NewJob, now time.Time) []CreateResult {
	t.Helper()
	res, err := s.CreateMany(ctx, jobs, now)
	if err != nil {
		t.Fatalf("CreateMany: %v", err)
	}
	if len(res) != len(jobs) {
		t.Fatalf("CreateMany gave %d results for %d jobs", len(res), len(jobs))
	}
	return res
}

// snapshot is everything in a Redis database, key by key, for comparing two
// databases: stream entries without their IDs, which hold the server's clock.
func snapshot(t *testing.T, c *redis.Client) map[string]any {
	t.Helper()
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]any, len(keys))
	for _, k := range keys {
		typ, err := c.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch typ {
		case "string":
			v, err = c.Get(ctx, k).Result()
		case "hash":
			v, err = c.HGetAll(ctx, k).Result()
		case "list":
			v, err = c.LRange(ctx, k, 0, -1).Result()
		case "set":
			var m []string
			m, err = c.SMembers(ctx, k).Result()
			slices.Sort(m)
			v = m
		case "zset":
			v, err = c.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "stream":
			var xs []redis.XMessage
			xs, err = c.XRange(ctx, k, "-", "+").Result()
			var vals []map[string]any
			for _, x := range xs {
				vals = append(vals, x.Values)
			}
			v = vals
		default:
			t.Fatalf("key %s has type %s", k, typ)
		}
		if err != nil {
			t.Fatal(err)
		}
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = []any{typ, v, ttl > 0}
	}
	return out
}

// TestCreateManyAsCreate runs the same history on two stores, one creating
// with CreateMany and the other with Create job by job, and checks that
// every result and the whole database come out the same.
func TestCreateManyAsCreate(t *testing.T) {
	s, c := newStore(t)
	rc := testredis.Start(t).Client()
	ref := New(rc)
	both := func(f func(s *Store)) { f(s); f(ref) }
	t1 := t0.Add(time.Minute)

	both(func(s *Store) {
		mustCreateBatch(t, s, "A", t0)
		mustCreateBatch(t, s, "C", t0)
		if err := s.CloseBatch(ctx, "C", t0); err != nil {
			t.Fatal(err)
		}
	})
	other := inBatch("j1", "A")
	other.Payload = []byte(`{"launch":{"agent_no":"48901"}}`)

	call := func(jobs []NewJob, now time.Time, want []CreateResult) {
		t.Helper()
		got := mustCreateMany(t, s, jobs, now)
		var one []CreateResult
		for _, j := range jobs {
			one = append(one, mustCreate(t, ref, j, now))
		}
		if !slices.Equal(got, one) {
			t.Fatalf("CreateMany = %q\nCreate one by one = %q", got, one)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("CreateMany = %q, want %q", got, want)
		}
		if a, b := snapshot(t, c), snapshot(t, rc); !reflect.DeepEqual(a, b) {
			t.Fatalf("database after CreateMany:\n%v\nafter Create one by one:\n%v", a, b)
		}
	}

	call([]NewJob{
		inBatch("j1", "A"), inBatch("j2", "A"), inBatch("j3", "A"), inBatch("j4", "A"),
		inBatch("j1", "A"),               // the same job again in the same call
		other,                            // the same ID with another payload
		inBatch("late", "C"),             // a closed batch: created without it
		inBatch("free", "no-such-batch"), // no such batch: kept on the record, uncounted
	}, t0, []CreateResult{Created, Created, Created, Created, Pending, Conflict, Created, Created})
	wantCounts(t, s, c, "A", counts{Total: 4, Queued: 4})
	if got := batchJobIDs(t, s, "A"); !slices.Equal(got, []string{"j1", "j2", "j3", "j4"}) {
		t.Fatalf("batch A lists %v", got)
	}
	for _, id := range []string{"j1", "j4"} {
		r := mustGet(t, s, id)
		if r.ID != id || r.State != StateQueued || r.SID != "SID1" || r.AgentNo != "48900" || r.Batch != "A" ||
			string(r.Payload) != string(newJob(id).Payload) || !r.EnqueuedAt.Equal(t0) || !r.UpdatedAt.Equal(t0) {
			t.Fatalf("record %s: %+v", id, r)
		}
	}
	if r := mustGet(t, s, "late"); r.Batch != "" {
		t.Fatalf("a job joined closed batch %q", r.Batch)
	}
	if r := mustGet(t, s, "free"); r.Batch != "no-such-batch" {
		t.Fatalf("batch field %q", r.Batch)
	}

	// j2 runs, j3 succeeds, j4 is dead-lettered; a new batch B.
	both(func(s *Store) {
		mustStart(t, s, inBatch("j2", "A"), t0)
		_, n := mustStart(t, s, inBatch("j3", "A"), t0)
		mustFinish(t, s, "j3", success(n, t0), t0)
		_, n = mustStart(t, s, inBatch("j4", "A"), t0)
		mustFinish(t, s, "j4", terminal(n, "RCS904", false, t0), t0)
		mustCreateBatch(t, s, "B", t1)
	})
	forced := func(id string) NewJob { j := inBatch(id, "B"); j.Force = true; return j }
	call([]NewJob{
		inBatch("j1", "B"), // known: stays in A
		inBatch("j2", "B"),
		inBatch("j3", "B"),
		inBatch("j4", "B"),
		forced("j3"), // a forced relaunch moves it to B
		forced("j3"), // and is then queued
		inBatch("j5", "B"),
		forced("j4"), // force does not relaunch a dead letter
		other,
	}, t1, []CreateResult{Pending, InProgress, AlreadyLaunched, DeadLettered, Created, Pending, Created, DeadLettered, Conflict})
	wantCounts(t, s, c, "A", counts{Total: 3, Queued: 1, Running: 1, DeadLettered: 1, ByCode: "RCS904=1", Relaunched: 1})
	wantCounts(t, s, c, "B", counts{Total: 2, Queued: 2})
	if r := mustGet(t, s, "j5"); r.State != StateQueued || r.Batch != "B" || !r.EnqueuedAt.Equal(t1) {
		t.Fatalf("record j5: %+v", r)
	}
	if r := mustGet(t, s, "j3"); r.State != StateQueued || r.Batch != "B" || r.Attempts != 0 || !r.EnqueuedAt.Equal(t1) {
		t.Fatalf("relaunched j3: %+v", r)
	}
}

func TestCreateManyNone(t *testing.T) {
	s, _ := newStore(t)
	for _, jobs := range [][]NewJob{nil, {}} {
		res, err := s.CreateMany(ctx, jobs, t0)
		if err != nil || len(res) != 0 {
			t.Fatalf("CreateMany(%v) = %q, %v; want no results, no error", jobs, res, err)
		}
	}
}

// TestCreateManyLargeCall checks the order of the results over many jobs,
// most of them known, in one round trip.
func TestCreateManyLargeCall(t *testing.T) {
	s, c := newStore(t)
	mustCreateBatch(t, s, "A", t0)
	var first, second []NewJob
	var want []CreateResult
	for i := range 1000 {
		j := inBatch(fmt.Sprintf("job-%04d", i), "A")
		if i%3 == 0 {
			first = append(first, j)
		}
		switch {
		case i%5 == 0:
			j.Payload = []byte(fmt.Sprintf(`{"launch":{"agent_no":"%d"}}`, i))
			want = append(want, map[bool]CreateResult{true: Conflict, false: Created}[i%3 == 0])
		case i%3 == 0:
			want = append(want, Pending)
		default:
			want = append(want, Created)
		}
		second = append(second, j)
	}
	for i, res := range mustCreateMany(t, s, first, t0) {
		if res != Created {
			t.Fatalf("first call, job %d: %s", i, res)
		}
	}
	got := mustCreateMany(t, s, second, t0)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("second call, job %d (%s): %s, want %s", i, second[i].ID, got[i], want[i])
		}
	}
	wantCounts(t, s, c, "A", counts{Total: 1000, Queued: 1000})
}

// cachedScripts is the number of scripts in the server's script cache.
func cachedScripts(t *testing.T, c *redis.Client) int {
	t.Helper()
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "number_of_cached_scripts:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("INFO memory has no number_of_cached_scripts")
	return 0
}

// TestCreateManyAfterScriptFlush checks that a script cache emptied (as by
// a Redis restart) is loaded again and every job created once.
func TestCreateManyAfterScriptFlush(t *testing.T) {
	s, c := newStore(t)
	mustCreateBatch(t, s, "A", t0)
	var jobs []NewJob
	for i := range 30 {
		jobs = append(jobs, inBatch(fmt.Sprintf("j%02d", i), "A"))
	}

	// A new server has never seen the create script.
	before := cachedScripts(t, c)
	for i, res := range mustCreateMany(t, s, jobs[:10], t0) {
		if res != Created {
			t.Fatalf("job %d on a new server: %s", i, res)
		}
	}
	if cachedScripts(t, c) != before+1 {
		t.Fatal("the create script was not loaded")
	}

	// SCRIPT FLUSH, then jobs known and new.
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n := cachedScripts(t, c); n != 0 {
		t.Fatalf("SCRIPT FLUSH left %d scripts", n)
	}
	other := inBatch("j03", "A")
	other.Payload = []byte(`{"other":1}`)
	mixed := append(slices.Clone(jobs[:20]), other)
	got := mustCreateMany(t, s, mixed, t0)
	for i, res := range got {
		want := Created
		switch {
		case i < 10:
			want = Pending
		case i == 20:
			want = Conflict
		}
		if res != want {
			t.Fatalf("after SCRIPT FLUSH, job %d: %s, want %s (all: %q)", i, res, want, got)
		}
	}
	if cachedScripts(t, c) != 1 {
		t.Fatal("the create script was not loaded again")
	}

	got = mustCreateMany(t, s, jobs[20:], t0)
	for i, res := range got {
		if res != Created {
			t.Fatalf("job %d: %s (all: %q)", 20+i, res, got)
		}
	}
	wantCounts(t, s, c, "A", counts{Total: 30, Queued: 30})
	ids := batchJobIDs(t, s, "A")
	if len(ids) != 30 || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 30 {
		t.Fatalf("batch A lists %v", ids)
	}
	for _, j := range jobs {
		if r := mustGet(t, s, j.ID); r.State != StateQueued || r.Batch != "A" || string(r.Payload) != string(j.Payload) {
			t.Fatalf("record %s: %+v", j.ID, r)
		}
	}
}

func TestCreateManyRedisDown(t *testing.T) {
	t.Parallel()
	r := testredis.Start(t)
	r.Kill()
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { c.Close() })
	s := New(c)
	res, err := s.CreateMany(ctx, []NewJob{newJob("a"), newJob("b")}, t0)
	if err == nil || res != nil {
		t.Fatalf("CreateMany with Redis down = %q, %v; want an error", res, err)
	}
}

// TestCreateManyCommandError checks that an error of one job's script (a
// record key holding a string) fails the call.
func TestCreateManyCommandError(t *testing.T) {
	s, c := newStore(t)
	if err := c.Set(ctx, rdb.JobKey("bad"), "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := s.CreateMany(ctx, []NewJob{newJob("a"), newJob("bad"), newJob("b")}, t0)
	if err == nil || !strings.Contains(err.Error(), "WRONGTYPE") || res != nil {
		t.Fatalf("CreateMany with a bad record key = %q, %v; want the WRONGTYPE error", res, err)
	}
}
