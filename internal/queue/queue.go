// Package queue puts launch jobs on the asynq queue and keeps our job records
// in step with it: a job is pushed only after its record says it should run,
// and a dead letter leaves the dead-letter store only after its task is safely
// back on the queue.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/launch"
)

const (
	// Name is the asynq queue launch jobs run on.
	Name = "launch"
	// TaskType is the asynq task type of a launch job.
	TaskType = "rcs:launch"
)

// maxRetry is the asynq MaxRetry of every task. asynq archives a task once
// its retry count reaches MaxRetry, even for errors it does not count as
// failures, and its crash recovery archives such a task without calling the
// handler; so asynq's budget is set out of reach and the worker enforces
// RETRY_MAX from the job's own attempt count.
const maxRetry = math.MaxInt32

// Payload is a launch task's payload: the job (with its ID) and the account
// it belongs to.
type Payload struct {
	SID string     `json:"sid"`
	Job launch.Job `json:"job"`
}

// NewTask returns the asynq task for job, whose ID must be set.
func NewTask(sid string, job launch.Job) (*asynq.Task, error) {
	b, err := json.Marshal(Payload{SID: sid, Job: job})
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", job.ID, err)
	}
	return asynq.NewTask(TaskType, b, asynq.TaskID(job.ID), asynq.Queue(Name), asynq.MaxRetry(maxRetry)), nil
}

// Push puts the job's task on the queue. It reports false, without error,
// when a task with the job's ID is already there (queued, running or
// waiting to retry).
func Push(ctx context.Context, c *asynq.Client, sid string, job launch.Job) (bool, error) {
	task, err := NewTask(sid, job)
	if err != nil {
		return false, err
	}
	_, err = c.EnqueueContext(ctx, task)
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("push job %s: %w", job.ID, err)
	}
	return true, nil
}

// Status is what happened to one job a producer offered.
type Status string

const (
	Enqueued        Status = "enqueued"         // now on the queue
	Duplicate       Status = "duplicate"        // already queued, running or retrying
	AlreadyLaunched Status = "already_launched" // succeeded before; not launched again
	DeadLettered    Status = "dead_lettered"    // in the dead-letter store; use dlq retry
	Conflict        Status = "conflict"         // the ID exists with a different payload
)

// Producer enqueues jobs for one account.
type Producer struct {
	Store  *store.Store
	Client *asynq.Client
	SID    string
}

// Enqueue creates the job's record and pushes its task, unless the ID is
// known: then it reports what the ID is (and repairs an unfinished record
// whose task went missing, say after a crash between the two steps). job must be
// valid and have its ID set.
func (p *Producer) Enqueue(ctx context.Context, job launch.Job, batch string, force bool) (Status, error) {
	res, err := p.Store.Create(ctx, store.NewJob{
		ID: job.ID, SID: p.SID, AgentNo: job.Launch.AgentNo, Payload: job.Body(), Batch: batch, Force: force,
	}, time.Now())
	if err != nil {
		return "", err
	}
	switch res {
	case store.Conflict:
		return Conflict, nil
	case store.AlreadyLaunched:
		return AlreadyLaunched, nil
	case store.DeadLettered:
		return DeadLettered, nil
	case store.Pending, store.InProgress:
		// A record that says queued, running or retrying normally has its
		// task, and the push is refused as a duplicate; one whose task was
		// lost (a crash between the two writes, a Redis failover that kept
		// one and not the other) is repaired by pushing it again.
		pushed, err := Push(ctx, p.Client, p.SID, job)
		if err != nil {
			return "", err
		}
		if pushed {
			return Enqueued, nil
		}
		return Duplicate, nil
	case store.Created:
		pushed, err := p.pushNew(ctx, job)
		if err != nil || !pushed {
			// Leave nothing behind for a row reported as failed; if even this
			// fails, the queued record is repaired by the next enqueue of the job.
			if uerr := p.Store.Uncreate(context.WithoutCancel(ctx), job.ID); uerr != nil {
				err = errors.Join(err, uerr)
			}
		}
		switch {
		case err != nil:
			return "", err
		case !pushed:
			return Duplicate, nil
		}
		return Enqueued, nil
	}
	return "", fmt.Errorf("enqueue %s: unexpected record state %q", job.ID, res)
}

// pushNew pushes the task of a record just created. A forced relaunch can
// find the previous run's task still there for the moment between its
// outcome being recorded and asynq deleting it, so a conflict is retried
// briefly before it counts as a duplicate.
func (p *Producer) pushNew(ctx context.Context, job launch.Job) (bool, error) {
	for try := 0; ; try++ {
		pushed, err := Push(ctx, p.Client, p.SID, job)
		if err != nil || pushed || try == 20 {
			return pushed, err
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Requeue results beyond the store's.
const (
	Retried = "retried" // back on the queue with a fresh attempt budget
)

// RetryDeadLetter puts a dead letter back on the queue with a fresh attempt
// budget and removes it from the dead-letter store once the task is safely
// pushed. It returns Retried, store.Uncertain (left alone), or the job's
// state when it is not a dead letter; store.ErrNotFound when unknown.
func (p *Producer) RetryDeadLetter(ctx context.Context, id string, includeUncertain bool) (string, error) {
	res, rj, err := p.Store.Requeue(ctx, id, includeUncertain, time.Now())
	if err != nil {
		return "", err
	}
	if res != store.Requeued && res != store.Resume {
		return res, nil
	}
	var body launch.Job
	if err := json.Unmarshal(rj.Payload, &body); err != nil {
		return "", fmt.Errorf("dead letter %s: stored payload: %w", id, err)
	}
	body.ID = id
	if _, err := Push(ctx, p.Client, rj.SID, body); err != nil {
		if rerr := p.Store.Restore(context.WithoutCancel(ctx), id); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return "", err
	}
	if err := p.Store.Unindex(ctx, id); err != nil {
		return "", err
	}
	return Retried, nil
}
