package store

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// followed makes id a success of batch b1 whose launch L-1 is followed,
// and returns its job.
func followed(t *testing.T, s *Store, id string, at time.Time) NewJob {
	t.Helper()
	j := newJob(id)
	if res := mustCreate(t, s, j, at); res != Created {
		t.Fatalf("create %s: %s", id, res)
	}
	_, n := mustStart(t, s, j, at)
	o := success(n, at)
	o.FollowAt = at.Add(time.Minute)
	if res := mustFinish(t, s, id, o, at); res != StateSucceeded {
		t.Fatalf("finish %s: %s", id, res)
	}
	return j
}

func mustPoll(t *testing.T, s *Store, id string, p Poll, now time.Time, want PollResult) {
	t.Helper()
	res, err := s.RecordLaunchPoll(ctx, id, p, now)
	if err != nil {
		t.Fatal(err)
	}
	if res != want {
		t.Fatalf("poll of %s (%s after %d polls): %s, want %s", id, p.State, p.PollsBefore, res, want)
	}
}

// wantLaunchStates checks batch b1's launch state counters, and that they
// agree with the job records: each is the number of b1's records in that
// launch state.
func wantLaunchStates(t *testing.T, s *Store, c *redis.Client, want map[LaunchState]int64) {
	t.Helper()
	b := mustBatch(t, s, "b1")
	fromRecords := map[LaunchState]int64{}
	for _, st := range LaunchStates {
		fromRecords[st] = 0
		if b.LaunchStates[st] != want[st] {
			t.Fatalf("batch launch states %v, want %v", b.LaunchStates, want)
		}
	}
	keys, _ := c.Keys(ctx, "rcslaunch:*job:*").Result()
	for _, k := range keys {
		h, _ := c.HMGet(ctx, k, "batch", "launch_state").Result()
		if h[0] == "b1" && h[1] != nil {
			fromRecords[LaunchState(h[1].(string))]++
		}
	}
	for st, n := range fromRecords {
		if b.LaunchStates[st] != n {
			t.Fatalf("batch launch states %v, the records say %v", b.LaunchStates, fromRecords)
		}
	}
}

func TestLaunchFollowRecordsPollsAndChanges(t *testing.T) {
	s, c := newStore(t)
	mustCreateBatch(t, s, "b1", t0)
	followed(t, s, "j1", t0)
	r := mustGet(t, s, "j1")
	if r.LaunchState != LaunchPending || r.Launch == nil || r.Launch.Polls != 0 || !r.Launch.NextPollAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after the success: %+v, %+v", r.LaunchState, r.Launch)
	}
	wantLaunchStates(t, s, c, map[LaunchState]int64{LaunchPending: 1})

	t1 := t0.Add(time.Minute)
	p := Poll{AgentLaunchID: "L-1", PollsBefore: 0, Code: "BAD_RESPONSE", Message: "HTML", NextPollAt: t1.Add(2 * time.Minute)}
	mustPoll(t, s, "j1", p, t1, PollRecorded) // a failed poll: counted, state kept
	mustPoll(t, s, "j1", p, t1, PollStale)    // the same poll again, as a redelivered task would
	if r := mustGet(t, s, "j1"); !r.Launch.LastPollFailed || r.Launch.Polls != 1 || r.LaunchState != LaunchPending {
		t.Fatalf("after a failed poll: %+v", r.Launch)
	}
	p = Poll{AgentLaunchID: "L-2", PollsBefore: 1, State: LaunchLaunched, Ended: FollowFinal}
	mustPoll(t, s, "j1", p, t1, PollSuperseded)
	p.AgentLaunchID = "L-1"
	t2 := t1.Add(2 * time.Minute)
	mustPoll(t, s, "j1", p, t2, PollChanged)
	p.PollsBefore = 2
	mustPoll(t, s, "j1", p, t2, PollEnded)

	r = mustGet(t, s, "j1")
	if r.LaunchState != LaunchLaunched || r.Launch.Polls != 2 || r.Launch.Ended != FollowFinal || r.Launch.LastPollFailed ||
		!r.Launch.NextPollAt.IsZero() || !r.Launch.StateAt.Equal(t2) || !r.Launch.FollowedAt.Equal(t0) {
		t.Fatalf("after the final poll: %+v", r.Launch)
	}
	wantLaunchStates(t, s, c, map[LaunchState]int64{LaunchLaunched: 1})
	rs, err := s.ReadResults(ctx, "0", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].LaunchState != "pending" || rs[1].Outcome != OutcomeLaunchState ||
		rs[1].LaunchState != "launched" || rs[1].PreviousLaunchState != "pending" || rs[1].BatchID != "b1" || rs[1].SID != "SID1" {
		t.Fatalf("results: %+v", rs)
	}
}

// TestLaunchFollowAcrossForcedRelaunch: a forced relaunch takes the job's
// launch state out of its batch's counts until it has its own outcome; an
// undone relaunch puts it back; the relaunch's success is pending again.
func TestLaunchFollowAcrossForcedRelaunch(t *testing.T) {
	s, c := newStore(t)
	mustCreateBatch(t, s, "b1", t0)
	j := followed(t, s, "j1", t0)
	mustPoll(t, s, "j1", Poll{AgentLaunchID: "L-1", State: LaunchRejected, Ended: FollowFinal}, t0, PollChanged)
	wantLaunchStates(t, s, c, map[LaunchState]int64{LaunchRejected: 1})

	j.Force = true
	if res := mustCreate(t, s, j, t0); res != Created {
		t.Fatalf("forced relaunch: %s", res)
	}
	wantLaunchStates(t, s, c, map[LaunchState]int64{})
	mustPoll(t, s, "j1", Poll{AgentLaunchID: "L-1", PollsBefore: 1, State: LaunchLaunched}, t0, PollWaiting)
	if err := s.Uncreate(ctx, "j1"); err != nil {
		t.Fatal(err)
	}
	wantLaunchStates(t, s, c, map[LaunchState]int64{LaunchRejected: 1})

	mustCreate(t, s, j, t0)
	_, n := mustStart(t, s, j, t0)
	o := success(n, t0)
	o.AgentLaunchID, o.FollowAt = "L-2", t0.Add(time.Minute)
	mustFinish(t, s, "j1", o, t0)
	r := mustGet(t, s, "j1")
	if r.LaunchState != LaunchPending || r.Launch.Polls != 0 || r.Launch.Ended != "" {
		t.Fatalf("after the relaunch: %+v", r.Launch)
	}
	wantLaunchStates(t, s, c, map[LaunchState]int64{LaunchPending: 1})
	mustPoll(t, s, "j1", Poll{AgentLaunchID: "L-1", State: LaunchLaunched}, t0, PollSuperseded)

	// A relaunch without the follow-up leaves no launch state behind.
	mustCreate(t, s, j, t0)
	_, n = mustStart(t, s, j, t0)
	mustFinish(t, s, "j1", success(n, t0), t0)
	if r := mustGet(t, s, "j1"); r.Launch != nil {
		t.Fatalf("unfollowed relaunch keeps %+v", r.Launch)
	}
	wantLaunchStates(t, s, c, map[LaunchState]int64{})
}

// TestLaunchFollowExpires: following ends with the launch still pending.
func TestLaunchFollowExpires(t *testing.T) {
	s, _ := newStore(t)
	mustCreateBatch(t, s, "b1", t0)
	followed(t, s, "j1", t0)
	mustPoll(t, s, "j1", Poll{AgentLaunchID: "L-1", State: LaunchPending, Ended: FollowExpired}, t0, PollRecorded)
	r := mustGet(t, s, "j1")
	if r.LaunchState != LaunchPending || r.Launch.Ended != FollowExpired || !r.Launch.NextPollAt.IsZero() {
		t.Fatalf("after expiry: %+v", r.Launch)
	}
}
