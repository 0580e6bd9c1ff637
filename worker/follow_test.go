package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
	"github.com/rcslaunch/rcslaunch/worker"
)

// following turns the follow-up on with short intervals: polls 1 s, 2 s,
// 2 s, ... after the launch.
func following(maxAge time.Duration) func(*worker.Options) {
	return func(o *worker.Options) {
		o.FollowLaunch = true
		o.FollowInterval = time.Second
		o.FollowMaxInterval = 2 * time.Second
		o.FollowMaxAge = maxAge
	}
}

// waitFollowEnded waits until every job's follow-up has ended, and returns
// the records.
func waitFollowEnded(t *testing.T, e *testenv.Env, timeout time.Duration, ids ...string) map[string]store.Record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := map[string]store.Record{}
		for _, id := range ids {
			r, err := e.Store.Get(context.Background(), id)
			if err == nil && r.Launch != nil && r.Launch.Ended != "" {
				out[id] = r
			}
		}
		if len(out) == len(ids) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d of %d follow-ups have not ended", timeout, len(ids)-len(out), len(ids))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFollowReachesScriptedStates: each launch is polled until its scripted
// final state, bad answers (an HTML page, RCS502) are survived and polled
// again, every poll is counted once, and each change of state is one
// results stream entry.
func TestFollowReachesScriptedStates(t *testing.T) {
	e := testenv.New(t, testenv.WithSim(sim.Config{LaunchStates: map[string][]sim.StatusStep{
		"300": {sim.StatusHTML, sim.StatusPending, sim.StatusGateway, sim.StatusLaunched},
		"400": {sim.StatusSuspended},
	}}))
	cases := []struct {
		agent     string
		state     store.LaunchState
		polls     int
		changes   []string // launch states in the results stream after the success
		lastPolls int      // status calls the simulator answered
	}{
		{"200", store.LaunchLaunched, 3, []string{"launched"}, 3},   // built-in: pending, pending, launched
		{"209", store.LaunchRejected, 2, []string{"rejected"}, 2},   // built-in for ...9: pending, rejected
		{"300", store.LaunchLaunched, 4, []string{"launched"}, 4},   // HTML, pending, RCS502, launched
		{"400", store.LaunchSuspended, 1, []string{"suspended"}, 1}, // final at once
	}
	ids := map[string]string{}
	for _, c := range cases {
		id, st := e.Enqueue(launchtest.Job(c.agent))
		if st != queue.Enqueued {
			t.Fatalf("agent %s: %s", c.agent, st)
		}
		ids[c.agent] = id
	}
	e.StartWorker(following(time.Hour))
	var all []string
	for _, id := range ids {
		all = append(all, id)
	}
	recs := waitFollowEnded(t, e, 60*time.Second, all...)
	results := e.Results()
	stats := e.Sim.Stats()
	for _, c := range cases {
		r := recs[ids[c.agent]]
		if r.LaunchState != c.state || r.Launch.Polls != c.polls || r.Launch.Ended != store.FollowFinal {
			t.Errorf("agent %s: launch %s after %d polls (ended %q), want %s after %d, final",
				c.agent, r.LaunchState, r.Launch.Polls, r.Launch.Ended, c.state, c.polls)
		}
		if !r.Launch.NextPollAt.IsZero() {
			t.Errorf("agent %s: next poll at %v after the final state", c.agent, r.Launch.NextPollAt)
		}
		if n := stats.StatusByAgent[c.agent]; n != c.lastPolls {
			t.Errorf("agent %s: %d status calls, want %d", c.agent, n, c.lastPolls)
		}
		var got []string
		for i, res := range results[ids[c.agent]] {
			switch {
			case i == 0 && (res.Outcome != "succeeded" || res.LaunchState != "pending"):
				t.Errorf("agent %s: first entry %s with launch state %q, want a success, pending", c.agent, res.Outcome, res.LaunchState)
			case i > 0 && res.Outcome != store.OutcomeLaunchState:
				t.Errorf("agent %s: entry %d has outcome %s", c.agent, i, res.Outcome)
			case i > 0:
				got = append(got, res.LaunchState)
			}
		}
		if len(got) != len(c.changes) || (len(got) > 0 && got[len(got)-1] != c.changes[len(c.changes)-1]) {
			t.Errorf("agent %s: launch state entries %v, want %v", c.agent, got, c.changes)
		}
	}
}

// TestFollowGivesUpAfterMaxAge: a launch still pending when the follow-up's
// age runs out stays pending, with following ended as expired.
func TestFollowGivesUpAfterMaxAge(t *testing.T) {
	e := testenv.New(t, testenv.WithSim(sim.Config{DefaultLaunchStates: []sim.StatusStep{sim.StatusPending}}))
	id, _ := e.Enqueue(launchtest.Job("500"))
	e.StartWorker(following(4 * time.Second))
	r := waitFollowEnded(t, e, 30*time.Second, id)[id]
	if r.LaunchState != store.LaunchPending || r.Launch.Ended != store.FollowExpired {
		t.Fatalf("launch %s, ended %q; want pending, expired", r.LaunchState, r.Launch.Ended)
	}
	// Polls at about 1 s, 3 s and 4 s (the end) after the launch.
	if calls := e.Sim.Stats().StatusByAgent["500"]; calls != r.Launch.Polls || calls < 2 || calls > 4 {
		t.Errorf("%d status calls, %d polls recorded; want the same, 2 to 4", calls, r.Launch.Polls)
	}
}

// TestNoFollowWithoutOption: without FollowLaunch nothing is polled and the
// record has no launch state.
func TestNoFollowWithoutOption(t *testing.T) {
	e := testenv.New(t)
	id, _ := e.Enqueue(launchtest.Job("600"))
	e.StartWorker(nil)
	r := e.WaitFinished(id)[id]
	time.Sleep(1500 * time.Millisecond)
	if r.LaunchState != "" || r.Launch != nil || e.Sim.Stats().StatusCalls != 0 {
		t.Fatalf("launch state %q, %d status calls; want none", r.LaunchState, e.Sim.Stats().StatusCalls)
	}
}
