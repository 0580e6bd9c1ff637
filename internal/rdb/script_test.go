package rdb

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/testredis"
)

// flushScripts empties the server's script cache, as a Redis restart does.
func flushScripts(t *testing.T, c *redis.Client) {
	t.Helper()
	if err := c.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

// cached reports, for every script, whether the server's cache holds it.
func cached(t *testing.T, c *redis.Client) map[string]bool {
	t.Helper()
	shas := make([]string, len(scripts))
	for i, s := range scripts {
		shas[i] = s.sha
	}
	ok, err := c.ScriptExists(context.Background(), shas...).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for i, s := range scripts {
		out[s.name] = ok[i]
	}
	return out
}

// must fails the test on err, naming the call.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestScriptsAfterScriptFlush runs every wrapper on a server whose script
// cache is empty, so that each script's first EVALSHA meets NOSCRIPT and
// recovers through recover; at the end every script is cached, which shows
// that a wrapper runs each. Then a pipelined finish and release, queued
// after another SCRIPT FLUSH, recover the same way and run once.
func TestScriptsAfterScriptFlush(t *testing.T) {
	ctx := context.Background()
	c := testredis.Start(t).Client()
	now := time.Now()
	flushScripts(t, c)
	for name, ok := range cached(t, c) {
		if ok {
			t.Fatalf("%s cached after SCRIPT FLUSH", name)
		}
	}

	ok, err := CreateBatch(ctx, c, "b1", "first", now)
	must(t, "CreateBatch", err)
	if !ok {
		t.Fatal("CreateBatch: the ID is taken on a new server")
	}
	job := func(id string) NewJob {
		return NewJob{ID: id, SID: "AC1", AgentNo: "+15550001", Payload: []byte(`{"n":"` + id + `"}`), Batch: "b1"}
	}
	res, err := CreateJobs(ctx, c, []NewJob{job("j1"), job("j2"), job("j3")}, now)
	must(t, "CreateJobs", err)
	if strings.Join(res, " ") != "created created created" {
		t.Fatalf("CreateJobs: %q", res)
	}
	ok, err = UncreateJob(ctx, c, "j2")
	must(t, "UncreateJob", err)
	if !ok {
		t.Fatal("UncreateJob of a new job did nothing")
	}
	start := func(id string) {
		t.Helper()
		state, n, err := StartJob(ctx, c, StartArgs{ID: id, SID: "AC1", AgentNo: "+15550001", MaxAttempts: 3, Now: now})
		if err != nil || state != "running" || n < 1 {
			t.Fatalf("StartJob %s: %s, %d, %v", id, state, n, err)
		}
	}
	deadLetter := func(id string) {
		t.Helper()
		start(id)
		a := FinishArgs{ID: id, Kind: "dead_lettered", Entry: []byte(`{"attempt":1}`), Code: "RCS400", Now: now}
		state, err := FinishJob(ctx, c, a)
		must(t, "FinishJob", err)
		if state != "dead_lettered" {
			t.Fatalf("FinishJob %s: %s", id, state)
		}
	}
	deadLetter("j1")
	ok, err = CloseBatch(ctx, c, "b1", now, 0)
	must(t, "CloseBatch", err)
	if !ok {
		t.Fatal("CloseBatch: no batch")
	}
	r, err := RequeueDeadLetter(ctx, c, "j1", false, now)
	must(t, "RequeueDeadLetter", err)
	if r.Result != "requeued" || !r.HasJob || string(r.Payload) != `{"n":"j1"}` || r.SID != "AC1" || r.AgentNo != "+15550001" {
		t.Fatalf("RequeueDeadLetter: %+v", r)
	}
	ok, err = RestoreDeadLetter(ctx, c, "j1", now, 0)
	must(t, "RestoreDeadLetter", err)
	if !ok {
		t.Fatal("RestoreDeadLetter did nothing")
	}
	_, err = RequeueDeadLetter(ctx, c, "j1", false, now)
	must(t, "RequeueDeadLetter", err)
	ok, err = UnindexDeadLetter(ctx, c, "j1")
	must(t, "UnindexDeadLetter", err)
	if !ok {
		t.Fatal("UnindexDeadLetter did nothing")
	}
	deadLetter("j1")
	deleted, err := DeleteDeadLetter(ctx, c, "j1")
	must(t, "DeleteDeadLetter", err)
	if deleted != "deleted" {
		t.Fatalf("DeleteDeadLetter: %s", deleted)
	}
	if _, err := CreateJobs(ctx, c, []NewJob{job("j4")}, now); err != nil {
		t.Fatal(err)
	}
	start("j4")
	followed := FinishArgs{ID: "j4", Kind: "succeeded", Entry: []byte(`{"attempt":1}`), Code: "RCS902", AgentLaunchID: "L3",
		Now: now, FollowAt: now.Add(time.Minute)}
	if state, err := FinishJob(ctx, c, followed); err != nil || state != "succeeded" {
		t.Fatalf("FinishJob j4: %s, %v", state, err)
	}
	poll, err := RecordLaunchPoll(ctx, c, PollArgs{ID: "j4", AgentLaunchID: "L3", State: "launched", Now: now, Ended: "final"})
	must(t, "RecordLaunchPoll", err)
	if poll != "changed" {
		t.Fatalf("RecordLaunchPoll: %s", poll)
	}
	k := LimiterKeys("AC1")
	acq := AcquireArgs{Rate: 100, Burst: 10, MaxInFlight: 1, Lease: time.Minute, Token: "t1"}
	a, err := LimiterAcquire(ctx, c, k, acq)
	must(t, "LimiterAcquire", err)
	if !a.OK {
		t.Fatalf("LimiterAcquire: %+v", a)
	}
	rel := ReleaseArgs{Token: "t1", Result: ReleaseThrottled, Rate: 100, MinRate: 5}
	rep, err := LimiterRelease(ctx, c, k, rel)
	must(t, "LimiterRelease", err)
	if rep.Rate != 50 {
		t.Fatalf("LimiterRelease after a throttled call: %+v, want the rate halved", rep)
	}
	if _, err := CreateJobs(ctx, c, []NewJob{job("j5")}, now); err != nil {
		t.Fatal(err)
	}
	acq.Token = "t5"
	a, st, err := AcquireStart(ctx, c, LimiterKeys("AC5"), acq, StartArgs{ID: "j5", SID: "AC5", MaxAttempts: 3, Now: now})
	must(t, "AcquireStart", err)
	if !a.OK || st != (StartReply{State: "running", Attempt: 1}) {
		t.Fatalf("AcquireStart: %+v, %+v", a, st)
	}
	moved, err := MoveFromShared(ctx, c, "j5", "launch", "launch:AC5:high")
	must(t, "MoveFromShared", err)
	if q := c.HGet(ctx, JobKey("j5"), "queue").Val(); moved != "moved" || q != "launch:AC5:high" {
		t.Fatalf("MoveFromShared of a job with no queue (the shared one): %s, queue %q", moved, q)
	}
	must(t, "HoldQueues", HoldQueues(ctx, c, []string{"launch:AC1"}, time.Minute, now))
	if ttl := c.PTTL(ctx, AsynqPausedKey("launch:AC1")).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("HoldQueues: paused key's TTL %v, want up to a minute", ttl)
	}
	for name, ok := range cached(t, c) {
		if !ok {
			t.Errorf("%s did not run: no wrapper called above runs it", name)
		}
	}

	// Pipelined: the finish of j3 and the release of a slot share a round
	// trip, as in the worker.
	start("j3")
	acq.Token = "t2"
	a, err = LimiterAcquire(ctx, c, k, acq)
	must(t, "LimiterAcquire", err)
	if !a.OK {
		t.Fatalf("LimiterAcquire: %+v", a)
	}
	flushScripts(t, c)
	pipe := c.Pipeline()
	fin := QueueFinishJob(ctx, pipe, FinishArgs{ID: "j3", Kind: "succeeded", Entry: []byte(`{"attempt":1}`),
		Code: "RCS902", HTTPStatus: 200, Now: now})
	rel.Token, rel.Result = "t2", ReleaseGateway
	rel.CoolOffThreshold, rel.CoolOffWindow, rel.CoolOffDuration = 5, time.Minute, time.Minute
	release := QueueLimiterRelease(ctx, pipe, k, rel)
	_, _ = pipe.Exec(ctx)
	for _, cmd := range []*redis.Cmd{fin.cmd, release.cmd} {
		if !isNoScript(cmd.Err()) {
			t.Fatalf("pipelined %v after SCRIPT FLUSH: %v, want NOSCRIPT", cmd.Args()[0], cmd.Err())
		}
	}
	state, err := fin.Result(ctx, c)
	must(t, "pipelined FinishJob", err)
	if state != "succeeded" {
		t.Fatalf("pipelined FinishJob: %s", state)
	}
	_, err = release.Result(ctx, c)
	must(t, "pipelined LimiterRelease", err)
	if n := c.ZCard(ctx, k.InFlight()).Val(); n != 0 {
		t.Errorf("%d slots held after the pipelined release", n)
	}
	// Once each: one success in the stream (j1's two dead letters, j4's
	// success and launch state are the other entries), one gateway error
	// counted.
	if n := c.XLen(ctx, ResultsStream).Val(); n != 5 {
		t.Errorf("results stream holds %d entries, want 5", n)
	}
	if n, _ := c.Get(ctx, k.GatewayErrors()).Int(); n != 1 {
		t.Errorf("gateway errors: %d, want 1", n)
	}
	// Read again, the answers are the same, and nothing runs again.
	state, err = fin.Result(ctx, c)
	must(t, "pipelined FinishJob, read again", err)
	_, err = release.Result(ctx, c)
	must(t, "pipelined LimiterRelease, read again", err)
	if n, _ := c.Get(ctx, k.GatewayErrors()).Int(); state != "succeeded" || n != 1 {
		t.Errorf("read again: finish %s, %d gateway errors; want succeeded, 1", state, n)
	}
}

// TestRecoverLeavesOtherErrors: only NOSCRIPT runs a script again; any
// other error is the caller's, with the script named.
func TestRecoverLeavesOtherErrors(t *testing.T) {
	ctx := context.Background()
	c := testredis.Start(t).Client()
	if err := c.Set(ctx, JobKey("bad"), "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := FinishJob(ctx, c, FinishArgs{ID: "bad", Kind: "succeeded", Now: time.Now()})
	if err == nil || !strings.Contains(err.Error(), "WRONGTYPE") || !strings.Contains(err.Error(), "finish_job.lua") {
		t.Fatalf("FinishJob on a string key: %v, want WRONGTYPE naming the script", err)
	}
}

// TestHoldQueue: a hold pauses the queue for its time, is lengthened but
// never shortened, and leaves an operator's pause (no expiry) alone.
func TestHoldQueue(t *testing.T) {
	c := testredis.Start(t).Client()
	ctx := context.Background()
	now := time.Now()
	key := AsynqPausedKey("launch:S1")
	hold := func(d time.Duration) {
		t.Helper()
		if err := HoldQueues(ctx, c, []string{"launch:S1"}, d, now); err != nil {
			t.Fatal(err)
		}
	}
	hold(2 * time.Second)
	if ttl := c.PTTL(ctx, key).Val(); ttl <= time.Second || ttl > 2*time.Second {
		t.Fatalf("after a 2s hold: TTL %v", ttl)
	}
	hold(time.Second)
	if ttl := c.PTTL(ctx, key).Val(); ttl <= time.Second {
		t.Fatalf("a shorter hold shortened the longer one: TTL %v", ttl)
	}
	hold(time.Minute)
	if ttl := c.PTTL(ctx, key).Val(); ttl <= 2*time.Second {
		t.Fatalf("a longer hold did not lengthen it: TTL %v", ttl)
	}
	c.Set(ctx, key, now.Unix(), 0) // paused by hand, as asynqmon does
	hold(time.Second)
	if ttl := c.PTTL(ctx, key).Val(); ttl != -1 {
		t.Fatalf("a hold put an expiry on an operator's pause: TTL %v", ttl)
	}
}

// TestAcquireStart: the job starts only with a granted slot; a refusal
// leaves its record as it was, and a finished job is not started again.
func TestAcquireStart(t *testing.T) {
	ctx := context.Background()
	c := testredis.Start(t).Client()
	now := time.Now()
	if _, err := CreateJobs(ctx, c, []NewJob{{ID: "j1", SID: "AC1", AgentNo: "+15550001", Payload: []byte(`{}`)}}, now); err != nil {
		t.Fatal(err)
	}
	k := LimiterKeys("AC1")
	acq := AcquireArgs{Rate: 1000, Burst: 10, MaxInFlight: 1, Lease: time.Minute, Token: "t1"}
	start := StartArgs{ID: "j1", SID: "AC1", AgentNo: "+15550001", MaxAttempts: 3, Now: now}
	a, st, err := AcquireStart(ctx, c, k, acq, start)
	if err != nil || !a.OK || st != (StartReply{State: "running", Attempt: 1}) {
		t.Fatalf("first AcquireStart: %+v, %+v, %v", a, st, err)
	}
	// The one in-flight slot is taken: refused, and the job is not started
	// again (a second start would log a lost attempt and count attempt 2).
	acq.Token = "t2"
	a, st, err = AcquireStart(ctx, c, k, acq, start)
	if err != nil || a.OK || a.Reason != "in_flight" || st != (StartReply{}) {
		t.Fatalf("AcquireStart with no free slot: %+v, %+v, %v", a, st, err)
	}
	if n := c.HGet(ctx, JobKey("j1"), "attempts").Val(); n != "1" {
		t.Errorf("attempts after a refusal: %s, want 1", n)
	}
	if n := c.LLen(ctx, AttemptsKey("j1")).Val(); n != 0 {
		t.Errorf("attempt log after a refusal holds %d entries, want none", n)
	}
	if _, err := FinishJob(ctx, c, FinishArgs{ID: "j1", Kind: "succeeded", Entry: []byte(`{"attempt":1}`), Code: "RCS902", Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := LimiterRelease(ctx, c, k, ReleaseArgs{Token: "t1", Result: ReleaseAnswered, Rate: 1000, MinRate: 50}); err != nil {
		t.Fatal(err)
	}
	// Granted, the finished job says so: the caller releases the slot.
	acq.Token = "t3"
	a, st, err = AcquireStart(ctx, c, k, acq, start)
	if err != nil || !a.OK || st != (StartReply{State: "succeeded", Attempt: 1}) {
		t.Fatalf("AcquireStart of a finished job: %+v, %+v, %v", a, st, err)
	}
	if !CrossSlotScripts(c) {
		t.Error("CrossSlotScripts of a single server: false")
	}
}

// TestAcquireAhead: a call whose rate token comes within Ahead is granted at
// once with the delay until its token, and its lease runs from then; one
// further away is refused for the time until it comes within Ahead. The
// grant's Wait says when the next call's token comes within Ahead.
func TestAcquireAhead(t *testing.T) {
	ctx := context.Background()
	c := testredis.Start(t).Client()
	k := LimiterKeys("AC1")
	const interval, ahead = 10 * time.Millisecond, 35 * time.Millisecond
	acq := AcquireArgs{Rate: 100, Burst: 1, MaxInFlight: 10, Lease: time.Minute, Ahead: ahead}
	start := time.Now()
	// near reports whether d is want less at most what has passed since
	// start: Redis's clock and this one both advance by that much.
	near := func(d, want time.Duration) bool {
		return d <= want && d >= want-time.Since(start)-time.Millisecond
	}
	for i := range 4 {
		acq.Token = fmt.Sprint("t", i)
		before := time.Now()
		a, err := LimiterAcquire(ctx, c, k, acq)
		must(t, "LimiterAcquire", err)
		if token := time.Duration(i) * interval; !a.OK || !near(a.Delay, token) {
			t.Fatalf("call %d: %+v, want granted with a delay of about %v", i, a, token)
		}
		if next := max(0, time.Duration(i+1)*interval-ahead); !near(a.Wait, next) {
			t.Errorf("call %d: the next call may be asked for in %v, want about %v", i, a.Wait, next)
		}
		score := c.ZScore(ctx, k.InFlight(), acq.Token).Val()
		if at := time.UnixMicro(int64(score)).Add(-time.Minute); at.Before(before.Add(a.Delay).Add(-time.Millisecond)) {
			t.Errorf("call %d: lease from %v, before its token's time %v", i, at, before.Add(a.Delay))
		}
	}
	acq.Token = "t4"
	a, err := LimiterAcquire(ctx, c, k, acq)
	must(t, "LimiterAcquire", err)
	if wait := 4*interval - ahead; a.OK || a.Reason != "rate" || !near(a.Wait, wait) {
		t.Fatalf("call 4, its token %v away: %+v, want refused for the rate, to ask again in about %v", 4*interval, a, wait)
	}
	if n := c.ZCard(ctx, k.InFlight()).Val(); n != 4 {
		t.Errorf("%d slots held, want 4", n)
	}
}

// TestAcquireMargin: Margin widens the interval between grants by its share,
// as Interval says.
func TestAcquireMargin(t *testing.T) {
	ctx := context.Background()
	c := testredis.Start(t).Client()
	k := LimiterKeys("AC1")
	acq := AcquireArgs{Rate: 100, Burst: 1, MaxInFlight: 10, Lease: time.Minute, Ahead: time.Second, Margin: 0.5, Token: "t1"}
	if got := Interval(acq.Rate, acq.Margin); got != 15*time.Millisecond {
		t.Fatalf("Interval(100, 0.5) = %v, want 15ms", got)
	}
	start := time.Now()
	a, err := LimiterAcquire(ctx, c, k, acq)
	must(t, "LimiterAcquire", err)
	acq.Token = "t2"
	b, err := LimiterAcquire(ctx, c, k, acq)
	must(t, "LimiterAcquire", err)
	if !a.OK || !b.OK || a.Delay != 0 || b.Delay > 15*time.Millisecond || b.Delay < 15*time.Millisecond-time.Since(start)-time.Millisecond {
		t.Fatalf("two calls at 100/s with a margin of half: %+v, %+v, want the second 15ms after the first", a, b)
	}
}
