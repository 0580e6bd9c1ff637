package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/config"
)

// TestRun runs the demo on an in-process Redis: every case ends as
// expected and the report shows both outcomes and where to look.
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
	for _, want := range []string{"an in-process Redis", "The batch: 4 succeeded, 3 dead-lettered (RCS502 1, RCS601 1, RCS904 1)", "rcslaunch dlq list                the 3 dead letters"} {
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
