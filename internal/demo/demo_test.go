package demo

import (
	"bytes"
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/store"
)

// TestRun runs the demo on an in-process Redis: every case ends as
// expected, the follow-up takes each success to its scripted launch state
// (one status call per scripted step), and the report shows both outcomes,
// the launch state changes and where to look.
func TestRun(t *testing.T) {
	var out, errs bytes.Buffer
	err := Run(context.Background(), Options{Config: config.Config{}, InProcessRedis: true,
		Out: &out, Err: &errs, Timeout: time.Minute})
	if err != nil {
		t.Fatalf("Run: %v\nstdout:\n%s\nstderr:\n%s", err, &out, &errs)
	}
	var ok, dead int
	for _, line := range strings.Split(out.String(), "\n") {
		switch {
		case strings.Contains(line, "  succeeded  ") && strings.Contains(line, "job demo-"):
			ok++
		case strings.Contains(line, "  dead-lettered  ") && strings.Contains(line, "job demo-"):
			dead++
		}
	}
	if ok != 4 || dead != 3 {
		t.Errorf("%d succeeded and %d dead-lettered outcomes, want 4 and 3:\n%s", ok, dead, &out)
	}
	// The launch state changes, after the section's header: one per
	// success, to its final state.
	section := out.String()
	if i := strings.Index(section, "\nLaunch states, as they change"); i >= 0 {
		section = section[i:]
	} else {
		t.Errorf("no launch states section:\n%s", &out)
	}
	changes := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		if _, change, found := strings.Cut(line, "  launch         job demo-"); found {
			f := strings.Fields(change)
			// "<id>  agent <no>  <from> -> <to>  agent_launch_id <id>"
			if len(f) != 8 || f[1] != "agent" || f[4] != "->" {
				t.Errorf("launch state line %q", line)
				continue
			}
			if _, dup := changes[f[2]]; dup {
				t.Errorf("agent %s: a second launch state change: %q", f[2], line)
			}
			changes[f[2]] = f[3] + " -> " + f[5]
		}
	}
	wantChanges := map[string]string{"48900": "pending -> launched", "48901": "pending -> rejected",
		"48902": "pending -> launched", "48903": "pending -> launched"}
	if !maps.Equal(changes, wantChanges) {
		t.Errorf("launch state changes %v, want %v:\n%s", changes, wantChanges, &out)
	}
	for _, want := range []string{"an in-process Redis", "one worker (RETRY_MAX=2, FOLLOW_LAUNCH=true)",
		"Kaleyra reviews it, and with FOLLOW_LAUNCH=true the worker polls its status until final.",
		"and 8 launch status calls: map[launched:3 pending:4 rejected:1]",
		"The batch: 4 succeeded, 3 dead-lettered (RCS502 1, RCS601 1, RCS904 1); launch states: pending 0, launched 3, rejected 1, suspended 0, unknown 0",
		"rcslaunch dlq list                the 3 dead letters", "rcslaunch dlq retry --code RCS502"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, &out)
		}
	}
	if errs.Len() > 0 {
		t.Errorf("unexpected stderr:\n%s", &errs)
	}
}

// TestRunGivesUp: a timeout too short for the batch is an error (which says
// how far it got, unless the deadline cut a read short).
func TestRunGivesUp(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{InProcessRedis: true, Out: &out, Err: &out, Timeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "gave up after 200ms") && !strings.Contains(err.Error(), "waiting for outcomes") {
		t.Fatalf("Run: %v, want a give-up error", err)
	}
}

func TestJobIsValid(t *testing.T) {
	j := Job("48900")
	j.ApplyDefaults()
	if err := j.Validate(); err != nil {
		t.Fatalf("Job: %v", err)
	}
}

// TestLaunchCounts: only the states some launch is in, in display order;
// nothing for a batch with no followed launch.
func TestLaunchCounts(t *testing.T) {
	b := store.Batch{LaunchStates: map[store.LaunchState]int64{store.LaunchRejected: 1, store.LaunchLaunched: 3, store.LaunchPending: 0}}
	if got, want := launchCounts(b), "; launch states: pending 0, launched 3, rejected 1, suspended 0, unknown 0"; got != want {
		t.Errorf("launchCounts = %q, want %q", got, want)
	}
	if got := launchCounts(store.Batch{}); got != "" {
		t.Errorf("launchCounts of an unfollowed batch = %q, want none", got)
	}
}
