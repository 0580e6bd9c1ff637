// Package ops is rcslaunch's operations layer: one Client through which
// producers enqueue agent launches (one job, or a file or list as a batch)
// and operators follow them (job status, batch status and report) and steer
// the dead-letter store (retry, delete, export).
//
// The rcslaunch command, its HTTP API and its web UI are thin front ends over
// this package: they parse input and format output, and every operation is
// written here once.
//
//	c, err := ops.New(ops.Options{Redis: asynq.RedisClientOpt{Addr: "127.0.0.1:6379"}, SID: sid})
//	res, err := c.Enqueue(ctx, job, nil)
//	if res.SkippedAsDuplicate { /* res.Status says why: queued, already launched, dead-lettered */ }
package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/launch"
)

// Options configures a Client.
type Options struct {
	// Redis is the Redis the workers use (asynq.RedisClientOpt,
	// RedisFailoverClientOpt or RedisClusterClientOpt). Required.
	Redis asynq.RedisConnOpt
	// SID is the Kaleyra account SID of enqueued jobs that name none of
	// their own (launch.Job.SID); it is part of every derived job ID.
	// Required to enqueue such jobs; an operator's Client that only reads
	// and steers may leave it empty.
	SID string
	// JobRetention is how long a batch that finishes through this Client
	// (its last dead letter restored, a batch closed) is kept, like the
	// workers' JOB_RETENTION. Zero keeps it forever, as JOB_RETENTION=0 does.
	JobRetention time.Duration
}

// Client enqueues launch jobs and runs operations on them. It is safe for
// concurrent use; Close it when done.
type Client struct {
	store    *store.Store
	producer *queue.Producer
	// inspector reads asynq's queue statistics, on the store's client.
	inspector *asynq.Inspector
}

// Errors that callers tell apart with errors.Is.
var (
	// ErrNotFound: no job, dead letter or batch with that ID.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the job ID exists with a different payload or account.
	ErrConflict = errors.New("job ID exists with a different payload or account")
	// ErrNotDeadLettered: the job exists but is not in the dead-letter store.
	ErrNotDeadLettered = errors.New("not dead-lettered")
	// ErrNoSID: neither the job nor the Client has a SID, so the job has no
	// account to be launched with. It is a *launch.ValidationError of the
	// field "sid", so that front ends report it like any invalid field.
	ErrNoSID error = &launch.ValidationError{Errors: []launch.FieldError{{Field: "sid",
		Reason: "is required: the job names no account and none is configured (KALEYRA_SID)"}}}
)

// New returns a Client. It does not connect yet: Check does, and every
// operation connects on first use.
func New(opts Options) (*Client, error) {
	if opts.Redis == nil {
		return nil, errors.New("ops: Options.Redis is required")
	}
	made := opts.Redis.MakeRedisClient()
	rdb, ok := made.(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("ops: Options.Redis made a %T, not a go-redis client", made)
	}
	st := store.New(rdb)
	st.Retention = opts.JobRetention
	// One pool serves the store and asynq's client alike.
	return &Client{store: st, producer: &queue.Producer{Store: st, Client: asynq.NewClientFromRedisClient(rdb),
		SID: opts.SID, Fleet: queue.NewFleet(rdb)}, inspector: asynq.NewInspectorFromRedisClient(rdb)}, nil
}

// Close releases the Client's Redis connections.
func (c *Client) Close() error { return c.store.Redis().Close() }

// Check connects to Redis and fails with a clear message when it cannot be
// reached or is too old for asynq.
func (c *Client) Check(ctx context.Context) error { return rdb.Check(ctx, c.store.Redis()) }

// Ready is Check, then a write: whether enqueues and outcomes can be
// recorded now (a server's readiness).
func (c *Client) Ready(ctx context.Context) error {
	if err := c.Check(ctx); err != nil {
		return err
	}
	return rdb.CheckWritable(ctx, c.store.Redis())
}

// EnqueueOpts changes one Enqueue call; nil means the defaults.
type EnqueueOpts struct {
	// Force launches the job again even though it already succeeded.
	Force bool
	// Priority is the job's priority within its account when the job has
	// none of its own (launch.Job.Priority); "" is PriorityDefault.
	Priority Priority
}

// EnqueueResult is what became of one job offered to Enqueue.
type EnqueueResult struct {
	// JobID is the job's ID: its own "id", or one derived from the SID and
	// the payload.
	JobID string
	// Status is enqueued, or why the job was not enqueued again.
	Status Status
	// SkippedAsDuplicate is true when the job ID was already known (queued,
	// running, retrying, already launched or dead-lettered) and nothing was
	// enqueued; Status says which. It is not an error: enqueueing the same
	// job twice is how producers get exactly-once launches.
	SkippedAsDuplicate bool
}

func resultFor(id string, st Status) EnqueueResult {
	return EnqueueResult{JobID: id, Status: st, SkippedAsDuplicate: st != StatusEnqueued && st != StatusConflict}
}

// Enqueue validates job and puts it on the launch queue, once: a job whose ID
// is known is reported with SkippedAsDuplicate, never launched twice. An
// invalid job is a *launch.ValidationError listing every problem by field
// path; an ID that exists with another payload is ErrConflict.
func (c *Client) Enqueue(ctx context.Context, job launch.Job, opts *EnqueueOpts) (EnqueueResult, error) {
	if opts == nil {
		opts = &EnqueueOpts{}
	}
	prio, err := ParsePriority(string(opts.Priority))
	if err != nil {
		return EnqueueResult{}, fmt.Errorf("ops: EnqueueOpts.Priority: %w", err)
	}
	job.ApplyDefaults()
	if job.ID, err = c.Validate(job); err != nil {
		return EnqueueResult{}, err
	}
	st, err := c.producer.At(prio).Enqueue(ctx, job, "", opts.Force)
	if err != nil {
		return EnqueueResult{JobID: job.ID}, fmt.Errorf("enqueue %s: %w", job.ID, err)
	}
	res := resultFor(job.ID, st)
	if st == StatusConflict {
		return res, fmt.Errorf("enqueue %s: %w", job.ID, ErrConflict)
	}
	return res, nil
}

// Validate checks job as Enqueue does, without enqueueing it (a dry run):
// its fields, and that it has an account (ErrNoSID). It returns the ID
// Enqueue would give it.
func (c *Client) Validate(job launch.Job) (string, error) {
	if job.SID == "" && c.producer.SID == "" {
		return "", ErrNoSID
	}
	job.ApplyDefaults()
	if err := job.Validate(); err != nil {
		return "", err
	}
	return c.JobID(job), nil
}

// JobID is the ID Enqueue gives job: its own "id", or one derived from the
// Client's SID and the payload with its defaults applied.
func (c *Client) JobID(job launch.Job) string {
	job.ApplyDefaults()
	return launch.IDFor(c.producer.SID, job)
}

// Job returns everything known about one job: its state, payload, last
// answer and every attempt. An unknown ID is ErrNotFound.
func (c *Client) Job(ctx context.Context, id string) (Record, error) {
	r, err := c.store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return r, fmt.Errorf("no job with ID %q: %w", id, ErrNotFound)
	}
	return r, err
}

// JobsByAgent returns up to limit of an agent number's jobs that f selects
// by code, batch and SID (its Since is of dead letters only), newest first.
func (c *Client) JobsByAgent(ctx context.Context, agentNo string, f Filter, limit int) ([]Record, error) {
	return c.store.JobsByAgent(ctx, agentNo, normalized(f), limit)
}

// DeadLetter returns one dead letter's record. An unknown ID is ErrNotFound;
// a job in another state is returned with ErrNotDeadLettered.
func (c *Client) DeadLetter(ctx context.Context, id string) (Record, error) {
	r, err := c.store.Get(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return r, fmt.Errorf("no dead letter with ID %q: %w", id, ErrNotFound)
	case err != nil:
		return r, err
	case r.State != StateDeadLettered:
		return r, fmt.Errorf("job %s is %s: %w", id, r.State, ErrNotDeadLettered)
	}
	return r, nil
}

// ReadResults returns up to count entries of the results stream after the
// entry ID after ("0" for the start), waiting up to block for new ones when
// there are none (0: do not wait).
func (c *Client) ReadResults(ctx context.Context, after string, count int64, block time.Duration) ([]Result, error) {
	return c.store.ReadResults(ctx, after, count, block)
}

// ReadResultsPage is ReadResults of the entries f keeps (the results of one
// account, say). It also returns next, the entry ID to read on from: the
// last entry it looked at, kept or not. It reads past entries f skips until
// it has a result or reaches the end of the stream, so an empty page means
// that nothing after next is kept yet, and a reader that goes on from next
// reads each entry once.
func (c *Client) ReadResultsPage(ctx context.Context, after string, count int64, block time.Duration, f ResultsFilter) (rs []Result, next string, err error) {
	return c.store.ReadResultsPage(ctx, after, count, block, f)
}

// ResultsLen is the results stream's length.
func (c *Client) ResultsLen(ctx context.Context) (int64, error) { return c.store.ResultsLen(ctx) }
