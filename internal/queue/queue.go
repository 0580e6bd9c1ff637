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
	"sync"
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

// Payload is a launch task's payload: the job (with its ID), the account it
// belongs to and its priority within the account.
type Payload struct {
	SID      string     `json:"sid"`
	Priority Priority   `json:"priority,omitempty"`
	Job      launch.Job `json:"job"`
}

// NewTask returns the asynq task for p on the queue qname; p's job must have
// its ID set.
func NewTask(qname string, p Payload) (*asynq.Task, error) {
	if p.Priority == PriorityDefault {
		p.Priority = ""
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", p.Job.ID, err)
	}
	return asynq.NewTask(TaskType, b, asynq.TaskID(p.Job.ID), asynq.Queue(qname), asynq.MaxRetry(maxRetry)), nil
}

// Push puts p's task on the queue qname. It reports false, without error,
// when a task with the job's ID is already there (queued, running or
// waiting to retry).
func Push(ctx context.Context, c *asynq.Client, qname string, p Payload) (bool, error) {
	task, err := NewTask(qname, p)
	if err != nil {
		return false, err
	}
	pushed, err := enqueue(ctx, c, task)
	if err != nil {
		return false, fmt.Errorf("push job %s: %w", p.Job.ID, err)
	}
	return pushed, nil
}

// enqueue puts task on its queue. It reports false, without error, when a
// task with its ID is already there: task IDs are what keeps one task per
// job (or per launch, for a follow-up), whoever pushes it.
func enqueue(ctx context.Context, c *asynq.Client, task *asynq.Task) (bool, error) {
	_, err := c.EnqueueContext(ctx, task)
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict):
		return false, nil
	case err != nil:
		return false, err
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
	Conflict        Status = "conflict"         // the ID exists with a different payload or SID
)

// Producer enqueues jobs: each for its own SID, or SID when it has none.
type Producer struct {
	Store  *store.Store
	Client *asynq.Client
	// SID is the account of jobs without a SID of their own.
	SID string
	// Fleet picks each job's queue; nil puts every job on the shared queue.
	Fleet *Fleet
	// Priority is the priority within their account of jobs without one
	// of their own; "" is default.
	Priority Priority
}

// At returns a copy of p that enqueues with priority prio.
func (p *Producer) At(prio Priority) *Producer {
	c := *p
	c.Priority = prio
	return &c
}

// pushFunc puts a task on a queue: Push, or pushReplacing.
type pushFunc func(ctx context.Context, c *asynq.Client, qname string, pl Payload) (bool, error)

// pushTo puts job's task on the queue qname ("" is the shared queue, the
// queue of records written before records kept theirs). The task names the
// priority of its account's queue, which is what the job runs at; on the
// shared queue, the job's (else p's), which it runs at once a worker moves
// it to its account's queue.
func (p *Producer) pushTo(ctx context.Context, pushFn pushFunc, qname, sid string, job launch.Job) (bool, error) {
	if qname == "" {
		qname = Name
	}
	prio := PriorityOf(sid, qname)
	if qname == Name {
		prio = p.priorityOf(job)
	}
	job.Priority = ""
	return pushFn(ctx, p.Client, qname, Payload{SID: sid, Priority: prio, Job: job})
}

// priorityOf is the priority job asks for: its own, else p's.
func (p *Producer) priorityOf(job launch.Job) Priority {
	if job.Priority != "" {
		return job.Priority
	}
	if p.Priority != "" {
		return p.Priority
	}
	return PriorityDefault
}

// pushRecorded pushes job's task to the queue its record names: a job has
// one task, and task IDs are unique within one queue only.
func (p *Producer) pushRecorded(ctx context.Context, job launch.Job) (bool, error) {
	qname, err := p.Store.JobQueue(ctx, job.ID)
	if err != nil {
		return false, err
	}
	return p.pushTo(ctx, Push, qname, job.AccountSID(p.SID), job)
}

// Enqueue creates the job's record and pushes its task, unless the ID is
// known: then it reports what the ID is (and repairs an unfinished record
// whose task went missing, say after a crash between the two steps). job must be
// valid and have its ID set.
func (p *Producer) Enqueue(ctx context.Context, job launch.Job, batch string, force bool) (Status, error) {
	nj, err := p.newJob(ctx, job, batch, force)
	if err != nil {
		return "", err
	}
	res, err := p.Store.Create(ctx, nj, time.Now())
	if err != nil {
		return "", err
	}
	return p.afterCreate(ctx, job, nj.Queue, res, force)
}

// Result is what EnqueueMany did with one job.
type Result struct {
	Status Status
	// Err, when not nil, means the job's fate is unknown: Redis failed
	// while its record or task was being written, so it may or may not be
	// on the queue. Enqueueing it again settles it either way.
	Err error
}

// pushersPerCall bounds the tasks one EnqueueMany pushes at once, so that
// a few concurrent calls do not queue up for the client's connections.
const pushersPerCall = 16

// EnqueueMany is Enqueue for many jobs: their records are created in one
// round trip and their tasks pushed concurrently. It returns one Result per
// job, in order.
func (p *Producer) EnqueueMany(ctx context.Context, jobs []launch.Job, batch string, force bool) []Result {
	out := make([]Result, len(jobs))
	nj := make([]store.NewJob, len(jobs))
	var err error
	for i, job := range jobs {
		if nj[i], err = p.newJob(ctx, job, batch, force); err != nil {
			break
		}
	}
	var res []store.CreateResult
	if err == nil {
		res, err = p.Store.CreateMany(ctx, nj, time.Now())
	}
	if err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	// A job offered twice in one call is pushed once: its first copy
	// created the record the others found (Pending, or Conflict for
	// another payload), and pushes racing each other would report the
	// first copy a duplicate and undo its record.
	first := make(map[string]int, len(jobs))
	var repeats []int
	sem := make(chan struct{}, pushersPerCall)
	var wg sync.WaitGroup
	for i, job := range jobs {
		_, seen := first[job.ID]
		switch {
		case seen && res[i] == store.Pending:
			repeats = append(repeats, i)
			continue
		case !seen && res[i] != store.Conflict:
			first[job.ID] = i // a copy whose payload matches the record
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i].Status, out[i].Err = p.afterCreate(ctx, job, nj[i].Queue, res[i], force)
		})
	}
	wg.Wait()
	for _, i := range repeats {
		out[i] = Result{Status: Duplicate, Err: out[first[jobs[i].ID]].Err}
	}
	return out
}

// newJob is job's record, with the queue its account and priority pick for
// a job created now: the job's own priority, else p's.
func (p *Producer) newJob(ctx context.Context, job launch.Job, batch string, force bool) (store.NewJob, error) {
	sid := job.AccountSID(p.SID)
	qname, err := p.Fleet.QueueFor(ctx, sid, p.priorityOf(job))
	if err != nil {
		return store.NewJob{}, fmt.Errorf("enqueue %s: %w", job.ID, err)
	}
	return store.NewJob{ID: job.ID, SID: sid, AgentNo: job.Launch.AgentNo, Payload: job.Body(), Batch: batch,
		Force: force, Queue: qname}, nil
}

// afterCreate pushes the job's task as its record's Create result res
// requires, and says what became of the job.
func (p *Producer) afterCreate(ctx context.Context, job launch.Job, qname string, res store.CreateResult, force bool) (Status, error) {
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
		pushed, err := p.pushRecorded(ctx, job)
		if err != nil {
			return "", err
		}
		if pushed {
			return Enqueued, nil
		}
		return Duplicate, nil
	case store.Created:
		pushed, err := p.pushNew(ctx, qname, job, force)
		if errors.Is(err, errTaskExists) {
			return Duplicate, nil
		}
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

// pushNew pushes the task of a record just created. Without force, a task
// that already holds the job's ID was pushed for this very record by a
// producer that found it queued (the same job offered twice at once), and
// runs it: the job is a duplicate, and its record must stay. A forced
// relaunch can find the previous run's task still there for the moment
// between its outcome being recorded and asynq deleting it, so there a
// conflict is retried briefly before it counts as a duplicate.
func (p *Producer) pushNew(ctx context.Context, qname string, job launch.Job, force bool) (bool, error) {
	sid := job.AccountSID(p.SID)
	if force {
		return p.pushTo(ctx, p.pushReplacing, qname, sid, job)
	}
	pushed, err := p.pushTo(ctx, Push, qname, sid, job)
	if err == nil && !pushed {
		return false, errTaskExists
	}
	return pushed, err
}

// pushReplacing pushes the task of a job that ran before (a forced relaunch,
// a retried dead letter), whose previous task asynq may not have deleted yet:
// its outcome is recorded just before its handler returns. That task may be
// on another of the job's queues (the job moves to its account's queue once
// a worker serves the account), where a push to qname would not see it: the
// push waits until no other queue of the account holds a task of the job.
// A task that stays, here or there, is waited for about 2 s before the push
// reports false.
func (p *Producer) pushReplacing(ctx context.Context, c *asynq.Client, qname string, pl Payload) (bool, error) {
	for try := 0; ; try++ {
		elsewhere, err := p.taskElsewhere(ctx, pl.SID, pl.Job.ID, qname)
		if err != nil {
			return false, err
		}
		if !elsewhere {
			pushed, err := Push(ctx, c, qname, pl)
			if err != nil || pushed {
				return pushed, err
			}
		}
		if try == 20 {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// taskElsewhere reports whether a task with the job's ID is on one of the
// queues of account sid other than qname: the shared queue or the account's
// own, of any priority.
func (p *Producer) taskElsewhere(ctx context.Context, sid, id, qname string) (bool, error) {
	insp := asynq.NewInspectorFromRedisClient(p.Store.Redis())
	for _, q := range append([]string{Name}, AccountQueues(sid)...) {
		if q == qname {
			continue
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		_, err := insp.GetTaskInfo(q, id)
		switch {
		case err == nil:
			return true, nil
		case !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound):
			return false, fmt.Errorf("look for job %s on queue %s: %w", id, q, err)
		}
	}
	return false, nil
}

// retryQueue is the queue a retried dead letter's task goes on. A fresh
// retry's run is over, so the job may move to the queue its account now
// has, of its priority (recorded first, so that a repair pushes there too);
// a resumed one keeps its recorded queue, where its task may already be.
func (p *Producer) retryQueue(ctx context.Context, res store.RequeueResult, sid, id string) (string, error) {
	recorded, err := p.Store.JobQueue(ctx, id)
	if err != nil || res == store.Resume {
		return recorded, err
	}
	// The job keeps the priority it was enqueued with, unless this
	// producer asks for another.
	prio := p.Priority
	if prio == "" || prio == PriorityDefault {
		prio = PriorityOf(sid, recorded)
	}
	qname, err := p.Fleet.QueueFor(ctx, sid, prio)
	if err != nil {
		return "", err
	}
	return qname, p.Store.SetJobQueue(ctx, id, qname)
}

// errTaskExists reports that a new record's task was pushed by another
// producer; see pushNew.
var errTaskExists = errors.New("task pushed by another producer")

// RetryDeadLetter puts a dead letter back on the queue with a fresh attempt
// budget and removes it from the dead-letter store once the task is safely
// pushed. It returns store.Requeued when the job is back on the queue;
// store.Uncertain when it was left alone; store.NotDeadLettered with the
// job's state; store.ErrNotFound when the ID is unknown.
func (p *Producer) RetryDeadLetter(ctx context.Context, id string, includeUncertain bool) (store.RequeueResult, store.State, error) {
	res, state, rj, err := p.Store.Requeue(ctx, id, includeUncertain, time.Now())
	if err != nil {
		return "", "", err
	}
	if res != store.Requeued && res != store.Resume {
		return res, state, nil
	}
	var body launch.Job
	if err := json.Unmarshal(rj.Payload, &body); err != nil {
		return "", "", fmt.Errorf("dead letter %s: stored payload: %w", id, err)
	}
	body.ID = id
	// A resumed retry's task, if there is one, is its own, pushed before the
	// retry was cut short: it runs the job. A fresh retry waits for the
	// dead-lettered run's task to go.
	qname, err := p.retryQueue(ctx, res, rj.SID, id)
	if err != nil {
		return "", "", errors.Join(err, p.Store.Restore(context.WithoutCancel(ctx), id))
	}
	push := pushFunc(p.pushReplacing)
	if res == store.Resume {
		push = Push
	}
	pushed, err := p.pushTo(ctx, push, qname, rj.SID, body)
	if err == nil && !pushed && res == store.Requeued {
		// Not the dead-lettered run's task, which would have gone by now:
		// the letter stays in the store rather than wait on a task that
		// may never run it.
		err = fmt.Errorf("dead letter %s: a task with its ID stays on the queue; retry it again later: %w", id, errTaskExists)
	}
	if err != nil {
		if rerr := p.Store.Restore(context.WithoutCancel(ctx), id); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return "", "", err
	}
	if err := p.Store.Unindex(ctx, id); err != nil {
		return "", "", err
	}
	return store.Requeued, store.StateQueued, nil
}
