// Package opstest helps the tests of code that enqueues launches through
// package ops: they assert that a job was (or was not) enqueued, in the
// spirit of River's rivertest.
//
//	c, _ := ops.New(ops.Options{Redis: testRedis, SID: "TESTSID"})
//	signUp(ctx, c, "48900") // the code under test
//	rec := opstest.RequireEnqueued(ctx, t, c, expectedJob)
//	if rec.Batch != "" { ... }
package opstest

import (
	"context"
	"errors"

	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/ops"
)

// TB is the part of testing.TB the helpers use, so that they can be tested
// themselves.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// RequireEnqueued fails the test unless a job with job's ID (its own "id", or
// the one derived from c's SID and its payload) has been enqueued through c's
// Redis, and returns its record. A job that has run since is still found:
// its record says how far it got.
func RequireEnqueued(ctx context.Context, t TB, c *ops.Client, job launch.Job) ops.Record {
	t.Helper()
	id := c.JobID(job)
	job.ApplyDefaults()
	rec, err := c.Job(ctx, id)
	switch {
	case errors.Is(err, ops.ErrNotFound):
		t.Fatalf("opstest: job %s (agent %s) was not enqueued", id, job.Launch.AgentNo)
	case err != nil:
		t.Fatalf("opstest: read job %s: %v", id, err)
	case string(rec.Payload) != string(job.Body()):
		t.Fatalf("opstest: job %s was enqueued with another payload:\n got %s\nwant %s", id, rec.Payload, job.Body())
	}
	return rec
}

// RequireNotEnqueued fails the test when a job with job's ID has been
// enqueued through c's Redis.
func RequireNotEnqueued(ctx context.Context, t TB, c *ops.Client, job launch.Job) {
	t.Helper()
	id := c.JobID(job)
	rec, err := c.Job(ctx, id)
	switch {
	case errors.Is(err, ops.ErrNotFound):
	case err != nil:
		t.Fatalf("opstest: read job %s: %v", id, err)
	default:
		t.Fatalf("opstest: job %s (agent %s) was enqueued (state %s)", id, job.Launch.AgentNo, rec.State)
	}
}
