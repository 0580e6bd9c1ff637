package demo

import (
	"bytes"
	"context"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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
		case strings.Contains(line, "  agent 489") && strings.Contains(line, "  succeeded ("):
			ok++
		case strings.Contains(line, "  agent 489") && strings.Contains(line, "  dead-lettered ("):
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
		if !strings.Contains(line, "  launch ") || strings.HasPrefix(line, " ") {
			continue
		}
		// "<hh:mm:ss>  agent <no>  launch <from> -> <to>"
		f := strings.Fields(line)
		if len(f) != 7 || f[1] != "agent" || f[3] != "launch" || f[5] != "->" {
			t.Errorf("launch state line %q", line)
			continue
		}
		if _, dup := changes[f[2]]; dup {
			t.Errorf("agent %s: a second launch state change: %q", f[2], line)
		}
		changes[f[2]] = f[4] + " -> " + f[6]
	}
	wantChanges := map[string]string{"48900": "pending -> launched", "48901": "pending -> rejected",
		"48902": "pending -> launched", "48903": "pending -> launched"}
	if !maps.Equal(changes, wantChanges) {
		t.Errorf("launch state changes %v, want %v:\n%s", changes, wantChanges, &out)
	}
	for _, want := range []string{"an in-process Redis", "one worker (RETRY_MAX=2, FOLLOW_LAUNCH=true)",
		"Kaleyra reviews it, and with FOLLOW_LAUNCH=true\nthe worker polls its status until final.",
		"The simulator received 11 launch calls: RCS502 5, RCS902 4, RCS601 1, RCS904 1\n",
		"and 8 launch status calls: pending 4, launched 3, rejected 1\n",
		"The batch: 4 succeeded, 3 dead-lettered (RCS502 1, RCS601 1, RCS904 1)\n" +
			"  launch states: pending 0, launched 3, rejected 1, suspended 0, unknown 0\n",
		"rcslaunch dlq list                the 3 dead letters", "rcslaunch dlq retry --code RCS502"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, &out)
		}
	}
	if errs.Len() > 0 {
		t.Errorf("unexpected stderr:\n%s", &errs)
	}
	checkReadable(t, out.String())
}

// checkReadable: every line of the demo's report fits in 100 columns and
// holds no Go value printed raw (a map prints as "map[k:v ...]") and no
// full timestamp (the story's times are clock times).
func checkReadable(t *testing.T, out string) {
	t.Helper()
	stamp := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d`)
	for i, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n >= 100 {
			t.Errorf("line %d has %d columns, want under 100: %q", i+1, n, line)
		}
		if strings.Contains(line, "map[") {
			t.Errorf("line %d prints a Go map: %q", i+1, line)
		}
		if stamp.MatchString(line) {
			t.Errorf("line %d has a full timestamp, want a clock time: %q", i+1, line)
		}
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
	if got, want := launchCounts(b), "  launch states: pending 0, launched 3, rejected 1, suspended 0, unknown 0\n"; got != want {
		t.Errorf("launchCounts = %q, want %q", got, want)
	}
	if got := launchCounts(store.Batch{}); got != "" {
		t.Errorf("launchCounts of an unfollowed batch = %q, want none", got)
	}
}
