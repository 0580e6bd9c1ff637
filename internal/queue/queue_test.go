package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
)

// env is one test's environment, with the helpers of these tests.
type env struct {
	*testenv.Env
	t *testing.T
}

// newEnv gives the (parallel) test its own environment.
func newEnv(t *testing.T, opts ...testenv.Option) *env {
	t.Helper()
	t.Parallel()
	return &env{Env: testenv.New(t, opts...), t: t}
}

// brokenClient is an asynq client whose Redis is gone.
func brokenClient(t *testing.T) *asynq.Client {
	t.Helper()
	dead := testenv.New(t, testenv.FailFast())
	dead.Redis.Kill()
	return dead.Producer.Client
}

// testJob is the fixture job for agentNo as the producer queues it:
// defaults applied, ID derived.
func testJob(agentNo string) launch.Job {
	j := launchtest.Job(agentNo)
	j.ApplyDefaults()
	j.ID = launch.IDFor(testenv.SID, j)
	return j
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (e *env) enqueue(j launch.Job, force bool) queue.Status {
	e.t.Helper()
	st, err := e.Producer.Enqueue(ctxT(e.t), j, "batch-1", force)
	if err != nil {
		e.t.Fatalf("enqueue %s: %v", j.ID, err)
	}
	return st
}

// checkTask fails unless the job's task is on the queue as NewTask makes it.
func (e *env) checkTask(j launch.Job) {
	e.t.Helper()
	info := e.Task(j.ID)
	if info == nil {
		e.t.Fatalf("no task for %s", j.ID)
	}
	if info.ID != j.ID || info.Queue != queue.Name || info.Type != queue.TaskType || info.MaxRetry != math.MaxInt32 {
		e.t.Fatalf("task: id %s queue %s type %s max retry %d", info.ID, info.Queue, info.Type, info.MaxRetry)
	}
	var p queue.Payload
	if err := json.Unmarshal(info.Payload, &p); err != nil {
		e.t.Fatal(err)
	}
	if p.SID != testenv.SID || !reflect.DeepEqual(p.Job, j) {
		e.t.Fatalf("task payload: %+v, want sid %s job %+v", p, testenv.SID, j)
	}
}

func (e *env) deleteTask(id string) {
	e.t.Helper()
	if err := e.Inspector.DeleteTask(queue.Name, id); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) get(id string) store.Record {
	e.t.Helper()
	r, err := e.Store.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// run plays the worker's part: the job's task is taken off the queue and
// the attempt ends with o (with a dead letter of code when o is empty).
func (e *env) run(j launch.Job, o store.Outcome) {
	e.t.Helper()
	ctx := context.Background()
	if e.Task(j.ID) != nil {
		e.deleteTask(j.ID)
	}
	now := time.Now()
	state, n, err := e.Store.Start(ctx, store.NewJob{ID: j.ID, SID: testenv.SID, AgentNo: j.Launch.AgentNo, Payload: j.Body()}, 9, now)
	if err != nil || state != store.StateRunning {
		e.t.Fatalf("start %s: %s, %v", j.ID, state, err)
	}
	o.Attempt.N, o.Attempt.FinishedAt = n, now
	if _, err := e.Store.Finish(ctx, j.ID, o, now); err != nil {
		e.t.Fatal(err)
	}
}

func deadLetter(code string, uncertain bool) store.Outcome {
	return store.Outcome{Kind: store.FinishDeadLettered,
		Attempt: store.Attempt{Outcome: store.AttemptTerminal, Code: code, Message: "no", Uncertain: uncertain}}
}

var succeeded = store.Outcome{Kind: store.FinishSucceeded, AgentLaunchID: "L-1",
	Attempt: store.Attempt{Outcome: store.AttemptSucceeded, Code: "RCS902"}}

func (e *env) dlqCount() int64 {
	e.t.Helper()
	n, err := e.Store.CountDeadLetters(context.Background(), store.Filter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestNewTask(t *testing.T) {
	t.Parallel()
	j := testJob("48900")
	j.ID = "order-1"
	task, err := queue.NewTask(queue.Name, queue.Payload{SID: testenv.SID, Job: j})
	if err != nil {
		t.Fatal(err)
	}
	if task.Type() != queue.TaskType {
		t.Fatalf("type %s", task.Type())
	}
	var p queue.Payload
	if err := json.Unmarshal(task.Payload(), &p); err != nil {
		t.Fatal(err)
	}
	if p.SID != testenv.SID || !reflect.DeepEqual(p.Job, j) {
		t.Fatalf("payload round trip: %+v, want %s %+v", p, testenv.SID, j)
	}

	// The options show on the enqueued task.
	info, err := testenv.New(t).Producer.Client.Enqueue(task)
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != "order-1" || info.Queue != queue.Name || info.MaxRetry != math.MaxInt32 {
		t.Fatalf("task: id %s queue %s max retry %d", info.ID, info.Queue, info.MaxRetry)
	}
	if queue.MaxRetry < 1<<30 {
		t.Fatalf("maxRetry %d is within reach", queue.MaxRetry)
	}
}

func TestEnqueue(t *testing.T) {
	e := newEnv(t)
	j := testJob("48900")

	if st := e.enqueue(j, false); st != queue.Enqueued {
		t.Fatalf("first enqueue: %s", st)
	}
	e.checkTask(j)
	r := e.get(j.ID)
	if r.State != store.StateQueued || r.SID != testenv.SID || r.AgentNo != "48900" || r.Batch != "batch-1" ||
		string(r.Payload) != string(j.Body()) {
		t.Fatalf("record: %+v", r)
	}
	if st := e.enqueue(j, false); st != queue.Duplicate {
		t.Fatalf("second enqueue: %s, want %s", st, queue.Duplicate)
	}

	// Same ID, different payload.
	other := testJob("48901")
	other.ID = j.ID
	if st := e.enqueue(other, false); st != queue.Conflict {
		t.Fatalf("same id, other payload: %s, want %s", st, queue.Conflict)
	}
	if r := e.get(j.ID); r.AgentNo != "48900" {
		t.Fatalf("conflict changed the record: %+v", r)
	}

	// A crash between record and push: the task is missing, and the next
	// enqueue puts it back.
	e.deleteTask(j.ID)
	if st := e.enqueue(j, false); st != queue.Enqueued {
		t.Fatalf("repair: %s, want %s", st, queue.Enqueued)
	}
	e.checkTask(j)
	if st := e.enqueue(j, false); st != queue.Duplicate {
		t.Fatalf("after repair: %s, want %s", st, queue.Duplicate)
	}

	// Running with its task (as while a worker has it): a duplicate.
	if _, _, err := e.Store.Start(context.Background(), store.NewJob{ID: j.ID}, 9, time.Now()); err != nil {
		t.Fatal(err)
	}
	if st := e.enqueue(j, false); st != queue.Duplicate {
		t.Fatalf("running: %s, want %s", st, queue.Duplicate)
	}
	// Running without a task (lost in a Redis failover): the task is put back,
	// or the job would never finish.
	e.deleteTask(j.ID)
	if st := e.enqueue(j, false); st != queue.Enqueued {
		t.Fatalf("running without its task: %s, want %s", st, queue.Enqueued)
	}
	e.checkTask(j)
}

func TestEnqueueFinishedJobs(t *testing.T) {
	e := newEnv(t)
	ok, dead := testJob("100"), testJob("101")
	for _, j := range []launch.Job{ok, dead} {
		if st := e.enqueue(j, false); st != queue.Enqueued {
			t.Fatalf("enqueue: %s", st)
		}
	}
	e.run(ok, succeeded)
	e.run(dead, deadLetter("RCS904", false))

	if st := e.enqueue(ok, false); st != queue.AlreadyLaunched {
		t.Fatalf("succeeded job: %s, want %s", st, queue.AlreadyLaunched)
	}
	if e.Task(ok.ID) != nil {
		t.Fatal("a succeeded job was pushed again")
	}
	for _, force := range []bool{false, true} {
		if st := e.enqueue(dead, force); st != queue.DeadLettered {
			t.Fatalf("dead letter (force %v): %s, want %s", force, st, queue.DeadLettered)
		}
	}
	if e.Task(dead.ID) != nil {
		t.Fatal("a dead letter was pushed by enqueue")
	}

	if st := e.enqueue(ok, true); st != queue.Enqueued {
		t.Fatalf("force: %s, want %s", st, queue.Enqueued)
	}
	e.checkTask(ok)
	// Queued again; the last success stays readable until the relaunch's own outcome.
	if r := e.get(ok.ID); r.State != store.StateQueued || r.Attempts != 0 || r.AgentLaunchID != "L-1" {
		t.Fatalf("relaunched record: %+v", r)
	}
}

// recordPTTL is the PTTL of the job's record key, found by its name's end
// (the key names are the store's own).
func (e *env) recordPTTL(id string) time.Duration {
	e.t.Helper()
	c := e.Redis.Client()
	keys, err := c.Keys(context.Background(), "rcslaunch:*:job:"+id).Result()
	if err != nil || len(keys) != 1 {
		e.t.Fatalf("record key of %s: %v, %v", id, keys, err)
	}
	d, err := c.PTTL(context.Background(), keys[0]).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// A forced relaunch can find the previous run's task still on its way out:
// the push is retried until it has gone, and given up (the record put back
// to its success) if it does not go.
func TestEnqueueForcedWaitsForOldTask(t *testing.T) {
	for _, goes := range []bool{true, false} {
		name := map[bool]string{true: "old task goes", false: "old task stays"}[goes]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.Store.Retention = time.Hour
			j := testJob("48900")
			if st := e.enqueue(j, false); st != queue.Enqueued {
				t.Fatalf("enqueue: %s", st)
			}
			e.run(j, succeeded)
			wasTTL := e.recordPTTL(j.ID)
			if wasTTL <= 0 {
				t.Fatalf("success has PTTL %v, want one", wasTTL)
			}
			// The previous run's task, not deleted yet (another SID tells it apart).
			if pushed, err := queue.Push(ctxT(t), e.Producer.Client, queue.Name, queue.Payload{SID: "OLDSID", Job: j}); err != nil || !pushed {
				t.Fatalf("push of the old task: %v, %v", pushed, err)
			}
			deleted := make(chan error, 1)
			if goes {
				go func() {
					time.Sleep(300 * time.Millisecond)
					deleted <- e.Inspector.DeleteTask(queue.Name, j.ID)
				}()
			}
			start := time.Now()
			st := e.enqueue(j, true)
			took := time.Since(start)

			if goes {
				if err := <-deleted; err != nil {
					t.Fatalf("delete the old task: %v", err)
				}
				if st != queue.Enqueued {
					t.Fatalf("forced relaunch once the old task went: %s, want %s", st, queue.Enqueued)
				}
				if took < 250*time.Millisecond {
					t.Fatalf("enqueued after %v, before the old task went", took)
				}
				e.checkTask(j) // the relaunch's task, with its own SID
				if r := e.get(j.ID); r.State != store.StateQueued || r.Attempts != 0 || r.Batch != "batch-1" {
					t.Fatalf("relaunched record: %+v", r)
				}
				if d := e.recordPTTL(j.ID); d != -1 {
					t.Fatalf("relaunched record has PTTL %v, want none", d)
				}
				return
			}
			if st != queue.Duplicate {
				t.Fatalf("forced relaunch with the old task staying: %s, want %s", st, queue.Duplicate)
			}
			if took < 1500*time.Millisecond || took > 5*time.Second {
				t.Fatalf("gave up after %v, want about 2s of retries", took)
			}
			// The old task is left alone, and the record is the success it was.
			info := e.Task(j.ID)
			if info == nil {
				t.Fatal("the old task went")
			}
			var p queue.Payload
			if err := json.Unmarshal(info.Payload, &p); err != nil || p.SID != "OLDSID" {
				t.Fatalf("task on the queue: %+v, %v; want the old one", p, err)
			}
			r := e.get(j.ID)
			if r.State != store.StateSucceeded || r.AgentLaunchID != "L-1" || r.Attempts != 1 || len(r.History) != 1 {
				t.Fatalf("record after giving up: %+v", r)
			}
			if d := e.recordPTTL(j.ID); d <= wasTTL-time.Minute || d > wasTTL {
				t.Fatalf("record PTTL after giving up: %v, want about %v", d, wasTTL)
			}
			if st := e.enqueue(j, false); st != queue.AlreadyLaunched {
				t.Fatalf("enqueue after giving up: %s, want %s", st, queue.AlreadyLaunched)
			}
			// Once the old task has gone, force relaunches at once.
			e.deleteTask(j.ID)
			if st := e.enqueue(j, true); st != queue.Enqueued {
				t.Fatalf("force after the old task went: %s, want %s", st, queue.Enqueued)
			}
			e.checkTask(j)
		})
	}
}

// A forced relaunch whose push fails goes back to the success it was.
func TestEnqueueForcedKeepsSuccessWhenPushFails(t *testing.T) {
	e := newEnv(t)
	e.Store.Retention = time.Hour
	j := testJob("48900")
	e.enqueue(j, false)
	e.run(j, succeeded)
	wasTTL := e.recordPTTL(j.ID)

	good := e.Producer.Client
	e.Producer.Client = brokenClient(t)
	if st, err := e.Producer.Enqueue(ctxT(t), j, "batch-2", true); err == nil {
		t.Fatalf("forced enqueue with the queue down: %s, no error", st)
	}
	r := e.get(j.ID)
	if r.State != store.StateSucceeded || r.AgentLaunchID != "L-1" || r.Attempts != 1 || r.Batch != "batch-1" {
		t.Fatalf("record after a failed forced push: %+v", r)
	}
	if d := e.recordPTTL(j.ID); d <= wasTTL-time.Minute || d > wasTTL {
		t.Fatalf("record PTTL after a failed forced push: %v, want about %v", d, wasTTL)
	}
	e.Producer.Client = good
	if st := e.enqueue(j, true); st != queue.Enqueued {
		t.Fatalf("force once the queue is back: %s", st)
	}
	e.checkTask(j)
}

func TestEnqueueFailsWhenRedisIsDown(t *testing.T) {
	e := newEnv(t, testenv.FailFast())
	e.Redis.Kill()
	j := testJob("48900")
	if st, err := e.Producer.Enqueue(ctxT(t), j, "", false); err == nil {
		t.Fatalf("enqueue with Redis down: %s, no error", st)
	}
}

func TestEnqueueLeavesNothingWhenPushFails(t *testing.T) {
	e := newEnv(t)
	e.Producer.Client = brokenClient(t) // the records' Redis works, the queue's does not
	j := testJob("48900")
	if st, err := e.Producer.Enqueue(ctxT(t), j, "", false); err == nil {
		t.Fatalf("enqueue with the queue down: %s, no error", st)
	}
	if _, err := e.Store.Get(context.Background(), j.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("record after a failed push: %v, want ErrNotFound", err)
	}
}

func TestRetryDeadLetter(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	j := testJob("48900")
	e.enqueue(j, false)
	e.run(j, deadLetter("RCS904", false))
	if e.dlqCount() != 1 {
		t.Fatal("not dead-lettered")
	}

	res, _, err := e.Producer.RetryDeadLetter(ctx, j.ID, false)
	if err != nil || res != store.Requeued {
		t.Fatalf("retry: %s, %v", res, err)
	}
	e.checkTask(j)
	if n := e.dlqCount(); n != 0 {
		t.Fatalf("%d dead letters left", n)
	}
	if n, _ := e.Store.CountDeadLetters(ctx, store.Filter{Code: "RCS904"}); n != 0 {
		t.Fatalf("%d left with its code", n)
	}
	r := e.get(j.ID)
	if r.State != store.StateQueued || r.Attempts != 0 {
		t.Fatalf("retried record: %+v", r)
	}
	// It is no dead letter any more.
	if res, st, err := e.Producer.RetryDeadLetter(ctx, j.ID, false); err != nil || res != store.NotDeadLettered || st != store.StateQueued {
		t.Fatalf("second retry: %s, %v; want %s", res, err, store.StateQueued)
	}
	e.run(j, succeeded)
	if res, st, err := e.Producer.RetryDeadLetter(ctx, j.ID, true); err != nil || res != store.NotDeadLettered || st != store.StateSucceeded {
		t.Fatalf("retry of a succeeded job: %s, %v", res, err)
	}
	if e.Task(j.ID) != nil {
		t.Fatal("retry of a succeeded job pushed a task")
	}

	if _, _, err := e.Producer.RetryDeadLetter(ctx, "no-such-job", false); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("retry of an unknown job: %v, want ErrNotFound", err)
	}
}

func TestRetryDeadLetterUncertain(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	j := testJob("48900")
	e.enqueue(j, false)
	e.run(j, deadLetter("TIMEOUT", true))

	res, _, err := e.Producer.RetryDeadLetter(ctx, j.ID, false)
	if err != nil || res != store.Uncertain {
		t.Fatalf("retry of an uncertain letter: %s, %v; want %s", res, err, store.Uncertain)
	}
	if e.Task(j.ID) != nil || e.dlqCount() != 1 || e.get(j.ID).State != store.StateDeadLettered {
		t.Fatal("an uncertain letter was touched")
	}
	if res, _, err := e.Producer.RetryDeadLetter(ctx, j.ID, true); err != nil || res != store.Requeued {
		t.Fatalf("retry with includeUncertain: %s, %v", res, err)
	}
	e.checkTask(j)
	if e.dlqCount() != 0 {
		t.Fatal("still indexed")
	}
}

func TestRetryDeadLetterRestoresWhenPushFails(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	j := testJob("48900")
	e.enqueue(j, false)
	e.run(j, deadLetter("RCS904", false))

	good := e.Producer.Client
	e.Producer.Client = brokenClient(t)
	if res, _, err := e.Producer.RetryDeadLetter(ctx, j.ID, false); err == nil {
		t.Fatalf("retry with the queue down: %s, no error", res)
	}
	if r := e.get(j.ID); r.State != store.StateDeadLettered {
		t.Fatalf("state after a failed push: %s, want %s", r.State, store.StateDeadLettered)
	}
	if e.dlqCount() != 1 {
		t.Fatal("the letter left the index although it was not pushed")
	}
	e.Producer.Client = good
	if res, _, err := e.Producer.RetryDeadLetter(ctx, j.ID, false); err != nil || res != store.Requeued {
		t.Fatalf("retry once the queue is back: %s, %v", res, err)
	}
	e.checkTask(j)
}

// A retry that stopped half-way (producer crash) is finished by the next one.
func TestRetryDeadLetterResumes(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	beforePush, afterPush := testJob("100"), testJob("101")
	for _, j := range []launch.Job{beforePush, afterPush} {
		e.enqueue(j, false)
		e.run(j, deadLetter("RCS904", false))
		res, _, _, err := e.Store.Requeue(ctx, j.ID, false, time.Now())
		if err != nil || res != store.Requeued {
			t.Fatalf("requeue: %s, %v", res, err)
		}
	}
	if pushed, err := queue.Push(ctx, e.Producer.Client, queue.Name, queue.Payload{SID: testenv.SID, Job: afterPush}); err != nil || !pushed {
		t.Fatalf("push: %v, %v", pushed, err)
	}
	if e.dlqCount() != 2 {
		t.Fatal("requeued letters must stay indexed until their task is pushed")
	}
	for _, j := range []launch.Job{beforePush, afterPush} {
		if res, _, err := e.Producer.RetryDeadLetter(ctx, j.ID, false); err != nil || res != store.Requeued {
			t.Fatalf("resumed retry of %s: %s, %v", j.Launch.AgentNo, res, err)
		}
		e.checkTask(j)
	}
	if e.dlqCount() != 0 {
		t.Fatal("still indexed")
	}
}

// A retry that pushed the task but stopped before unindexing is healed when
// the job runs.
func TestRetryDeadLetterHealedByRun(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	j := testJob("48900")
	e.enqueue(j, false)
	e.run(j, deadLetter("RCS904", false))
	res, _, _, err := e.Store.Requeue(ctx, j.ID, false, time.Now())
	if err != nil || res != store.Requeued {
		t.Fatalf("requeue: %s, %v", res, err)
	}
	if pushed, err := queue.Push(ctx, e.Producer.Client, queue.Name, queue.Payload{SID: testenv.SID, Job: j}); err != nil || !pushed {
		t.Fatalf("push: %v, %v", pushed, err)
	}
	if e.dlqCount() != 1 {
		t.Fatal("requeued letter not indexed")
	}
	// The worker takes the task.
	e.deleteTask(j.ID)
	state, n, err := e.Store.Start(ctx, store.NewJob{ID: j.ID, SID: testenv.SID, AgentNo: j.Launch.AgentNo, Payload: j.Body()}, 9, time.Now())
	if err != nil || state != store.StateRunning || n != 1 {
		t.Fatalf("start: %s %d, %v", state, n, err)
	}
	if c := e.dlqCount(); c != 0 {
		t.Fatalf("%d dead letters while the job runs", c)
	}
	if res, st, err := e.Producer.RetryDeadLetter(ctx, j.ID, false); err != nil || res != store.NotDeadLettered || st != store.StateRunning {
		t.Fatalf("retry of the running job: %s, %v", res, err)
	}
	if e.Task(j.ID) != nil {
		t.Fatal("retry of a running job pushed a task")
	}
}

func TestPushReportsExistingTask(t *testing.T) {
	e := newEnv(t)
	j := testJob("48900")
	ctx := ctxT(t)
	if pushed, err := queue.Push(ctx, e.Producer.Client, queue.Name, queue.Payload{SID: testenv.SID, Job: j}); err != nil || !pushed {
		t.Fatalf("first push: %v, %v", pushed, err)
	}
	if pushed, err := queue.Push(ctx, e.Producer.Client, queue.Name, queue.Payload{SID: testenv.SID, Job: j}); err != nil || pushed {
		t.Fatalf("second push: %v, %v; want false, nil", pushed, err)
	}
}

// TestRetryDeadLetterWaitsForOldTask: a dead letter retried at once can find
// its dead-lettered run's task still on the queue (its outcome is recorded
// just before its handler returns and asynq deletes it). The retry waits for
// it to go and pushes its own task, instead of reporting a retry that
// pushed nothing; a task that stays leaves the letter in the store.
func TestRetryDeadLetterWaitsForOldTask(t *testing.T) {
	for _, goes := range []bool{true, false} {
		name := map[bool]string{true: "old task goes", false: "old task stays"}[goes]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			j := testJob("48900")
			e.enqueue(j, false)
			e.run(j, deadLetter("RCS904", false))
			if pushed, err := queue.Push(ctxT(t), e.Producer.Client, queue.Name, queue.Payload{SID: "OLDSID", Job: j}); err != nil || !pushed {
				t.Fatalf("push of the old task: %v, %v", pushed, err)
			}
			deleted := make(chan error, 1)
			if goes {
				go func() {
					time.Sleep(300 * time.Millisecond)
					deleted <- e.Inspector.DeleteTask(queue.Name, j.ID)
				}()
			}
			res, _, err := e.Producer.RetryDeadLetter(ctxT(t), j.ID, false)
			if !goes {
				if err == nil || res != "" {
					t.Fatalf("retry with the old task staying: %s, %v; want an error", res, err)
				}
				if n := e.dlqCount(); n != 1 {
					t.Fatalf("%d dead letters, want the letter back in the store", n)
				}
				if r := e.get(j.ID); r.State != store.StateDeadLettered {
					t.Fatalf("record after the failed retry: %s", r.State)
				}
				return
			}
			if err := <-deleted; err != nil {
				t.Fatalf("delete the old task: %v", err)
			}
			if err != nil || res != store.Requeued {
				t.Fatalf("retry: %s, %v", res, err)
			}
			e.checkTask(j) // the retry's own task, with the job's SID
			if n := e.dlqCount(); n != 0 {
				t.Fatalf("%d dead letters left", n)
			}
		})
	}
}
