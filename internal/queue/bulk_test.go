package queue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch"
)

func (e *env) enqueueMany(jobs []launch.Job, batch string, force bool) []queue.Result {
	e.t.Helper()
	res := e.Producer.EnqueueMany(ctxT(e.t), jobs, batch, force)
	if len(res) != len(jobs) {
		e.t.Fatalf("EnqueueMany gave %d results for %d jobs", len(res), len(jobs))
	}
	return res
}

// wantResults fails unless every job's result has its status and no error.
func (e *env) wantResults(res []queue.Result, want []queue.Status) {
	e.t.Helper()
	for i := range want {
		if res[i].Err != nil || res[i].Status != want[i] {
			e.t.Fatalf("job %d: %s, %v; want %s (all: %v)", i, res[i].Status, res[i].Err, want[i], res)
		}
	}
}

// queueSize is the number of tasks on the launch queue, and how many of them
// are pending.
func (e *env) queueSize() (size, pending int) {
	e.t.Helper()
	info, err := e.Inspector.GetQueueInfo(queue.Name)
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return 0, 0
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return info.Size, info.Pending
}

func (e *env) batch(id string) store.Batch {
	e.t.Helper()
	b, err := e.Store.GetBatch(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) createBatch(id string) {
	e.t.Helper()
	if err := e.Store.CreateBatch(context.Background(), id, "", time.Now()); err != nil {
		e.t.Fatal(err)
	}
}

func manyJobs(n, from int) []launch.Job {
	jobs := make([]launch.Job, n)
	for i := range jobs {
		jobs[i] = testJob(fmt.Sprint(from + i))
	}
	return jobs
}

func repeat(s queue.Status, n int) []queue.Status { return slices.Repeat([]queue.Status{s}, n) }

func TestEnqueueMany(t *testing.T) {
	e := newEnv(t)
	e.createBatch("batch-1")
	jobs := manyJobs(100, 48000)

	e.wantResults(e.enqueueMany(jobs, "batch-1", false), repeat(queue.Enqueued, 100))
	if size, pending := e.queueSize(); size != 100 || pending != 100 {
		t.Fatalf("queue: %d tasks, %d pending; want 100 pending", size, pending)
	}
	for _, j := range jobs {
		e.checkTask(j)
		if r := e.get(j.ID); r.State != store.StateQueued || r.SID != testenv.SID || r.AgentNo != j.Launch.AgentNo ||
			r.Batch != "batch-1" || string(r.Payload) != string(j.Body()) {
			t.Fatalf("record of %s: %+v", j.Launch.AgentNo, r)
		}
	}
	if b := e.batch("batch-1"); b.Total != 100 || b.Queued != 100 {
		t.Fatalf("batch: total %d, queued %d; want 100", b.Total, b.Queued)
	}

	// The same jobs again: all known and on the queue.
	e.wantResults(e.enqueueMany(jobs, "batch-1", false), repeat(queue.Duplicate, 100))
	if size, _ := e.queueSize(); size != 100 {
		t.Fatalf("queue: %d tasks after the duplicates, want 100", size)
	}
	if b := e.batch("batch-1"); b.Total != 100 {
		t.Fatalf("batch total %d after the duplicates, want 100", b.Total)
	}
}

func TestEnqueueManyNone(t *testing.T) {
	e := newEnv(t)
	if res := e.Producer.EnqueueMany(ctxT(t), nil, "", false); len(res) != 0 {
		t.Fatalf("EnqueueMany of no jobs = %v", res)
	}
}

// TestEnqueueManyMixed checks that each job of one call gets its own status,
// in order, as Enqueue gives it.
func TestEnqueueManyMixed(t *testing.T) {
	e := newEnv(t)
	queued, conflicting, done, dead, lost := testJob("1"), testJob("2"), testJob("3"), testJob("4"), testJob("5")
	for _, j := range []launch.Job{queued, conflicting, done, dead, lost} {
		if st := e.enqueue(j, false); st != queue.Enqueued {
			t.Fatalf("enqueue %s: %s", j.Launch.AgentNo, st)
		}
	}
	e.run(done, succeeded)
	e.run(dead, deadLetter("RCS904", false))
	e.deleteTask(lost.ID) // queued, but its task is gone
	other := testJob("20")
	other.ID = conflicting.ID // the same ID, another body
	new1, new2, new3 := testJob("10"), testJob("11"), testJob("12")

	jobs := []launch.Job{new1, queued, other, new2, done, dead, lost, new3}
	res := e.enqueueMany(jobs, "batch-1", false)
	e.wantResults(res, []queue.Status{queue.Enqueued, queue.Duplicate, queue.Conflict, queue.Enqueued, queue.AlreadyLaunched, queue.DeadLettered, queue.Enqueued, queue.Enqueued})
	for _, j := range []launch.Job{new1, queued, conflicting, new2, lost, new3} {
		e.checkTask(j)
	}
	for _, j := range []launch.Job{done, dead} {
		if e.Task(j.ID) != nil {
			t.Fatalf("a finished job (%s) was pushed", j.Launch.AgentNo)
		}
	}
	if r := e.get(conflicting.ID); r.AgentNo != "2" || string(r.Payload) != string(conflicting.Body()) {
		t.Fatalf("the conflicting job changed the record: %+v", r)
	}
	if size, _ := e.queueSize(); size != 6 {
		t.Fatalf("queue: %d tasks, want 6", size)
	}

	// force relaunches the success, and nothing else changes.
	res = e.enqueueMany([]launch.Job{done, dead, new1}, "batch-1", true)
	e.wantResults(res, []queue.Status{queue.Enqueued, queue.DeadLettered, queue.Duplicate})
	e.checkTask(done)
	if r := e.get(done.ID); r.State != store.StateQueued || r.Attempts != 0 {
		t.Fatalf("relaunched record: %+v", r)
	}
}

// TestEnqueueManySameJobTwice checks a call that holds the same job more
// than once (a file with a repeated row): as with Enqueue job by job, it
// is enqueued once, its other rows are duplicates, and its record stays.
func TestEnqueueManySameJobTwice(t *testing.T) {
	e := newEnv(t)
	e.createBatch("batch-1")
	a, b, c := testJob("1"), testJob("2"), testJob("3")
	jobs := []launch.Job{a, b, a, c, a, b, a, a, c}
	res := e.enqueueMany(jobs, "batch-1", false)
	for _, j := range []launch.Job{a, b, c} {
		var got []queue.Status
		for i, r := range res {
			if jobs[i].ID != j.ID {
				continue
			}
			if r.Err != nil {
				t.Fatalf("job %s: %v", j.Launch.AgentNo, r.Err)
			}
			got = append(got, r.Status)
		}
		if slices.Index(got, queue.Enqueued) < 0 || len(slices.DeleteFunc(slices.Clone(got), func(s queue.Status) bool { return s == queue.Duplicate })) != 1 {
			t.Errorf("job %s in the call %d times: %v; want one enqueued, the others duplicates", j.Launch.AgentNo, len(got), got)
		}
		e.checkTask(j)
		if r, err := e.Store.Get(context.Background(), j.ID); err != nil || r.State != store.StateQueued || r.Batch != "batch-1" {
			t.Errorf("record of job %s: %+v, %v; want it queued in batch-1", j.Launch.AgentNo, r, err)
		}
	}
	if bt := e.batch("batch-1"); bt.Total != 3 || bt.Queued != 3 {
		t.Errorf("batch: total %d, queued %d; want 3", bt.Total, bt.Queued)
	}
}

// TestEnqueueManyLeavesNothingWhenPushFails checks that a new job whose
// task cannot be pushed has an error and no record left (Uncreate ran,
// its batch put back), while a job known before keeps its record.
func TestEnqueueManyLeavesNothingWhenPushFails(t *testing.T) {
	e := newEnv(t)
	e.createBatch("batch-1")
	known := testJob("1")
	if st := e.enqueue(known, false); st != queue.Enqueued {
		t.Fatalf("enqueue: %s", st)
	}
	e.Producer.Client = brokenClient(t) // the records' Redis works, the queue's does not
	jobs := append(manyJobs(40, 100), known)
	res := e.enqueueMany(jobs, "batch-1", false)
	for i, r := range res {
		if r.Err == nil {
			t.Fatalf("job %d with the queue down: %s, no error", i, r.Status)
		}
	}
	for _, j := range jobs[:40] {
		if _, err := e.Store.Get(context.Background(), j.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("record of %s after a failed push: %v, want ErrNotFound", j.Launch.AgentNo, err)
		}
	}
	if r := e.get(known.ID); r.State != store.StateQueued || r.Batch != "batch-1" {
		t.Fatalf("record of the job known before: %+v", r)
	}
	if b := e.batch("batch-1"); b.Total != 1 || b.Queued != 1 {
		t.Fatalf("batch: total %d, queued %d; want only the job known before", b.Total, b.Queued)
	}
}

func TestEnqueueManyFailsWhenRedisIsDown(t *testing.T) {
	e := newEnv(t, testenv.FailFast())
	e.Redis.Kill()
	res := e.enqueueMany(manyJobs(10, 100), "", false)
	for i, r := range res {
		if r.Err == nil {
			t.Fatalf("job %d with Redis down: %s, no error", i, r.Status)
		}
	}
}

// TestEnqueueManyRepairAfterConflict: a copy of a known ID with another
// body comes first in the call (a conflict); the copy that matches the
// record, whose task was lost, still repairs it, and a further copy is a
// duplicate.
func TestEnqueueManyRepairAfterConflict(t *testing.T) {
	e := newEnv(t)
	lost := testJob("1")
	if st := e.enqueue(lost, false); st != queue.Enqueued {
		t.Fatalf("enqueue: %s", st)
	}
	e.deleteTask(lost.ID)
	other := testJob("2")
	other.ID = lost.ID
	res := e.enqueueMany([]launch.Job{other, lost, lost}, "", false)
	e.wantResults(res, []queue.Status{queue.Conflict, queue.Enqueued, queue.Duplicate})
	e.checkTask(lost)
}
