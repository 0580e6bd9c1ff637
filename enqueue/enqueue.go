// Package enqueue puts agent launches on rcslaunch's queue from Go code,
// reporting a job whose ID is already known as an error.
//
// Deprecated: use package ops, whose Client enqueues single jobs and
// batches, reports a known job as a flag on the result (not as an error),
// and runs the operators' operations too. This package stays for code
// written against it, as a thin layer over ops.
package enqueue

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/ops"
)

// Errors that tell why a job was not enqueued. The job ID is returned with
// each, so the caller can follow the existing job.
var (
	// ErrDuplicate: a job with this ID is already queued, running or retrying.
	ErrDuplicate = errors.New("already queued")
	// ErrAlreadyLaunched: the job succeeded before; use Force to launch again.
	ErrAlreadyLaunched = errors.New("already launched")
	// ErrDeadLettered: the job is in the dead-letter store; replay it there.
	ErrDeadLettered = errors.New("in the dead-letter store")
	// ErrConflict: the ID exists with a different payload or account.
	ErrConflict = ops.ErrConflict
)

// Options configures a Client.
type Options struct {
	// Redis is the Redis the workers use. Required.
	Redis asynq.RedisConnOpt
	// SID is the Kaleyra account SID the jobs are for; it is part of every
	// derived job ID. Required.
	SID string
}

// Client enqueues launch jobs. It is safe for concurrent use.
type Client struct{ ops *ops.Client }

// New returns a Client; Close it when done.
func New(opts Options) (*Client, error) {
	if opts.SID == "" {
		return nil, errors.New("enqueue: Options.SID is required")
	}
	c, err := ops.New(ops.Options{Redis: opts.Redis, SID: opts.SID})
	if err != nil {
		return nil, err
	}
	return &Client{ops: c}, nil
}

// Close releases the client's Redis connections.
func (c *Client) Close() error { return c.ops.Close() }

// Option changes one Enqueue call.
type Option func(*ops.EnqueueOpts)

// Force launches a job again even though it already succeeded.
func Force() Option { return func(o *ops.EnqueueOpts) { o.Force = true } }

// Enqueue validates job and puts it on the launch queue. It returns the job
// ID, also when the job was not enqueued because that ID is known (see the
// Err variables). Invalid jobs are a *launch.ValidationError listing every
// problem by field path.
func (c *Client) Enqueue(ctx context.Context, job launch.Job, opts ...Option) (string, error) {
	var o ops.EnqueueOpts
	for _, opt := range opts {
		opt(&o)
	}
	res, err := c.ops.Enqueue(ctx, job, &o)
	if err != nil || !res.SkippedAsDuplicate {
		return res.JobID, err
	}
	known := map[ops.Status]error{ops.StatusDuplicate: ErrDuplicate, ops.StatusAlreadyLaunched: ErrAlreadyLaunched,
		ops.StatusDeadLettered: ErrDeadLettered}[res.Status]
	return res.JobID, fmt.Errorf("enqueue %s: %w", res.JobID, known)
}
