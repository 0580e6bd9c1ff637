package opstest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
	"github.com/rcslaunch/rcslaunch/ops/opstest"
)

// recorder is a TB that records the failure instead of stopping the test.
type recorder struct{ failed string }

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	if r.failed == "" {
		r.failed = fmt.Sprintf(format, args...)
	}
}

func TestRequireEnqueued(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	job := launchtest.Job("48900")
	if _, err := e.Ops.Enqueue(ctx, job, nil); err != nil {
		t.Fatal(err)
	}
	if rec := opstest.RequireEnqueued(ctx, t, e.Ops, job); rec.AgentNo != "48900" {
		t.Errorf("record of agent %s", rec.AgentNo)
	}
	opstest.RequireNotEnqueued(ctx, t, e.Ops, launchtest.Job("48901"))

	var r recorder
	opstest.RequireEnqueued(ctx, &r, e.Ops, launchtest.Job("48901"))
	if !strings.Contains(r.failed, "was not enqueued") {
		t.Errorf("RequireEnqueued of a job never enqueued: %q", r.failed)
	}
	r = recorder{}
	opstest.RequireNotEnqueued(ctx, &r, e.Ops, job)
	if !strings.Contains(r.failed, "was enqueued (state queued)") {
		t.Errorf("RequireNotEnqueued of an enqueued job: %q", r.failed)
	}
	r = recorder{}
	other := job
	other.ID = "own-id"
	if _, err := e.Ops.Enqueue(ctx, other, nil); err != nil {
		t.Fatal(err)
	}
	changed := other
	changed.Launch.LaunchName = "another name"
	opstest.RequireEnqueued(ctx, &r, e.Ops, changed)
	if !strings.Contains(r.failed, "another payload") {
		t.Errorf("RequireEnqueued of the ID with another payload: %q", r.failed)
	}
}
