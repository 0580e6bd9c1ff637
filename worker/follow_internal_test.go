package worker

import (
	"slices"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/kaleyra"
	"github.com/rcslaunch/rcslaunch/internal/store"
)

func TestNextPoll(t *testing.T) {
	o := Options{FollowInterval: time.Minute, FollowMaxInterval: 6 * time.Hour, FollowMaxAge: 336 * time.Hour}
	t0 := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	cases := []struct {
		now   time.Duration // since the launch
		polls int           // polls made, this one included
		want  time.Duration // wait until the next, 0 when following ends
	}{
		{time.Minute, 1, 2 * time.Minute},
		{3 * time.Minute, 2, 4 * time.Minute},
		{time.Hour, 8, 256 * time.Minute},
		{10 * time.Hour, 9, 6 * time.Hour},  // 512m capped
		{20 * time.Hour, 99, 6 * time.Hour}, // no overflow
		{335 * time.Hour, 60, time.Hour},    // not past the end
		{336 * time.Hour, 61, 0},            // the end
	}
	for _, c := range cases {
		now := t0.Add(c.now)
		next, ok := o.nextPoll(t0, now, c.polls)
		if c.want == 0 {
			if ok {
				t.Errorf("at %v after %d polls: next at %v, want the end", c.now, c.polls, next)
			}
			continue
		}
		if !ok || next.Sub(now) != c.want {
			t.Errorf("at %v after %d polls: wait %v (%v), want %v", c.now, c.polls, next.Sub(now), ok, c.want)
		}
	}
}

// TestLaunchStatesAgree: the worker stores kaleyra's launch state as the
// store's by name, so both must name the same five states.
func TestLaunchStatesAgree(t *testing.T) {
	for _, s := range store.LaunchStates {
		if !kaleyra.LaunchState(s).Valid() {
			t.Errorf("store's launch state %q is not kaleyra's", s)
		}
	}
	for _, s := range []kaleyra.LaunchState{kaleyra.StatePending, kaleyra.StateLaunched, kaleyra.StateRejected,
		kaleyra.StateSuspended, kaleyra.StateUnknown} {
		if !slices.Contains(store.LaunchStates, store.LaunchState(s)) {
			t.Errorf("kaleyra's launch state %q is not the store's", s)
		}
		if store.LaunchState(s).Final() != (s != kaleyra.StatePending && s != kaleyra.StateUnknown) {
			t.Errorf("launch state %q: final is %v", s, store.LaunchState(s).Final())
		}
	}
}
