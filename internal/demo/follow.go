package demo

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/display"
	"github.com/rcslaunch/rcslaunch/internal/store"
)

// The demo's follow-up intervals: the first poll a second after the
// launch, then every two seconds, so that the longest script (three polls)
// ends a few seconds after the last outcome. The age bounds what an
// interrupted demo leaves on a kept Redis: the next demo's worker polls
// such a leftover once and ends it as expired.
const (
	followInterval    = time.Second
	followMaxInterval = 2 * time.Second
	followMaxAge      = time.Minute
)

// followUp prints the follow-up of the batch's successes until each has
// reached a final launch state: every change of state as it lands on the
// results stream, and, as progress, every status poll that left a launch
// pending (read from the job's record). It reports on o.Err each launch
// that did not end in its expected state, and returns how many did not.
func (s session) followUp(ctx context.Context, o Options, st *stream, want map[string]demoCase) (surprises int, err error) {
	var ids []string // the followed jobs, in the batch's order (demo-<run>-<n>, n < 10)
	for _, id := range slices.Sorted(maps.Keys(want)) {
		if want[id].launch != "" {
			ids = append(ids, id)
		}
	}
	fmt.Fprintf(o.Out, "\nRCS902 only submits a launch: Kaleyra reviews it, and with FOLLOW_LAUNCH=true\n"+
		"the worker polls its status until final.\n"+
		"Launch states, as they change (FOLLOW_INTERVAL=%v, doubling up to FOLLOW_MAX_INTERVAL=%v):\n",
		followInterval, followMaxInterval)
	ended := map[string]bool{}
	polls := map[string]int{}
	change := func(r store.Result) {
		cs, ok := want[r.JobID]
		if !ok || r.Outcome != store.OutcomeLaunchState {
			return
		}
		fmt.Fprintln(o.Out, display.Brief(r))
		state := store.LaunchState(r.LaunchState)
		if !state.Final() {
			return
		}
		ended[r.JobID] = true
		if state != cs.launch {
			surprises++
			fmt.Fprintf(o.Err, "rcslaunch: job %s: expected launch state %s, got %s\n", r.JobID, cs.launch, state)
		}
	}
	for _, r := range st.changes {
		change(r)
	}
	for len(ended) < len(ids) {
		rs, err := st.read(ctx)
		if err != nil {
			return 0, fmt.Errorf("waiting for launch states: %w", err)
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("gave up after %v with %d of %d launch states final", o.Timeout, len(ended), len(ids))
		}
		for _, r := range rs {
			change(r)
		}
		for _, id := range ids {
			if ended[id] {
				continue
			}
			rec, err := s.Ops.Job(ctx, id)
			if err != nil {
				return 0, fmt.Errorf("waiting for launch states: %w", err)
			}
			f := rec.Launch
			switch {
			case f == nil:
			case f.Ended == store.FollowExpired:
				// No final state will come on the stream for it.
				ended[id] = true
				surprises++
				fmt.Fprintf(o.Err, "rcslaunch: job %s: following ended with the launch %s, expected %s\n", id, f.State, want[id].launch)
			case f.Ended == "" && f.Polls > polls[id]:
				fmt.Fprintf(o.Out, "  ... agent %s still %s after status poll %d, next poll at %s\n",
					rec.AgentNo, f.State, f.Polls, display.Clock(f.NextPollAt))
				polls[id] = f.Polls
			}
		}
	}
	return surprises, nil
}

// launchCounts is a batch's followed launches by state as a line under the
// batch's counts, "  launch states: pending 0, launched 3, ...\n", or ""
// when none is followed.
func launchCounts(b store.Batch) string {
	if b.Followed() > 0 {
		return "  launch states: " + display.LaunchCounts(b) + "\n"
	}
	return ""
}
