// Package enqueue puts agent launches on rcslaunch's queue from Go code.
//
// A Client validates each job, gives it an ID (its own "id", or one derived
// from the account SID and the payload), and enqueues it once: enqueueing the
// same job again is reported, never launched twice.
//
//	c, err := enqueue.New(enqueue.Options{Redis: asynq.RedisClientOpt{Addr: "127.0.0.1:6379"}, SID: sid})
//	id, err := c.Enqueue(ctx, job)
//	switch {
//	case errors.Is(err, enqueue.ErrDuplicate): // already queued or running
//	case errors.Is(err, enqueue.ErrAlreadyLaunched): // succeeded before
//	}
package enqueue

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/launch"
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
	// ErrConflict: the ID exists with a different payload.
	ErrConflict = errors.New("ID exists with a different payload")
)

// Invalid jobs are reported as a *launch.ValidationError listing every
// problem by field path.

// Options configures a Client.
type Options struct {
	// Redis is the Redis the workers use. Required.
	Redis asynq.RedisConnOpt
	// SID is the Kaleyra account SID the jobs are for; it is part of every
	// derived job ID. Required.
	SID string
}

// Client enqueues launch jobs. It is safe for concurrent use.
type Client struct {
	producer *queue.Producer
}

// New returns a Client; Close it when done.
func New(opts Options) (*Client, error) {
	if opts.Redis == nil {
		return nil, errors.New("enqueue: Options.Redis is required")
	}
	if opts.SID == "" {
		return nil, errors.New("enqueue: Options.SID is required")
	}
	return &Client{producer: &queue.Producer{
		Store:  store.New(rdb.NewClient(opts.Redis)),
		Client: asynq.NewClient(opts.Redis),
		SID:    opts.SID,
	}}, nil
}

// Close releases the client's Redis connections.
func (c *Client) Close() error {
	return errors.Join(c.producer.Client.Close(), c.producer.Store.Redis().Close())
}

// Option changes one Enqueue call.
type Option func(*options)

type options struct{ force bool }

// Force launches a job again even though it already succeeded.
func Force() Option { return func(o *options) { o.force = true } }

// Enqueue validates job and puts it on the launch queue. It returns the job
// ID, also when the job was not enqueued because that ID is known (see the
// Err variables).
func (c *Client) Enqueue(ctx context.Context, job launch.Job, opts ...Option) (string, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	job.ApplyDefaults()
	if err := job.Validate(); err != nil {
		return "", err
	}
	job.ID = launch.IDFor(c.producer.SID, job)
	status, err := c.producer.Enqueue(ctx, job, "", o.force)
	if err != nil {
		return job.ID, fmt.Errorf("enqueue %s: %w", job.ID, err)
	}
	switch status {
	case queue.Duplicate:
		err = ErrDuplicate
	case queue.AlreadyLaunched:
		err = ErrAlreadyLaunched
	case queue.DeadLettered:
		err = ErrDeadLettered
	case queue.Conflict:
		err = ErrConflict
	default:
		return job.ID, nil
	}
	return job.ID, fmt.Errorf("enqueue %s: %w", job.ID, err)
}
