package bench

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/testredis"
)

// The accounts phase, run small: every account is served, none over its
// limit, and the figures include the baseline of bare asynq over the same
// queues, which the absolute targets are read against.
func TestAccountsPhase(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a worker for several seconds")
	}
	srv := testredis.Start(t)
	o := Options{
		Config: config.Config{RedisURL: srv.URL()}, Jobs: 1, Concurrency: 1, Runs: 1, Rows: 1,
		LatencySamples: 2, Executable: "x", Phases: []string{PhaseAccounts},
		Accounts: 3, AccountRate: 20, AccountWindow: time.Second, AccountConcurrency: 8,
	}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := map[string]Figure{}
	for _, f := range rep.Figures {
		got[f.Name+" vs "+f.Baseline] = f
	}
	want := []string{
		"3 accounts: achieved rate, lowest account vs configured rate per account (20/s)",
		"3 accounts: largest 1-second window, any account vs limit + burst",
		"3 accounts: CPU per call, process + Redis vs bare asynq + POST, same queues",
		"3 accounts: bare asynq + POST, same queues, no limits vs accounts × rate",
		"3 accounts: bare asynq + POST + the pipeline's added Redis CPU, per call vs the machine's CPU per call at accounts × rate",
	}
	for _, name := range want {
		f, ok := got[name]
		if !ok {
			t.Fatalf("no figure %q in %v", name, strings.Join(slices.Sorted(maps.Keys(got)), "; "))
		}
		if f.Value <= 0 || f.Base <= 0 {
			t.Errorf("%s: value %g, baseline %g; both must be positive", name, f.Value, f.Base)
		}
	}
	if w := got[want[1]]; w.Value > w.Base {
		t.Errorf("an account made %g calls in one second, over its limit + burst %g", w.Value, w.Base)
	}
}
