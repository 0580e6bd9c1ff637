package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch"
)

// otherSID is a second account, for jobs that carry their own SID.
const otherSID = "OTHERSID0002"

func TestAccountQueue(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p    queue.Priority
		want string
	}{
		{"", "launch:AC1"},
		{queue.PriorityDefault, "launch:AC1"},
		{queue.PriorityHigh, "launch:AC1:high"},
		{queue.PriorityLow, "launch:AC1:low"},
	} {
		if got := queue.AccountQueue("AC1", c.p); got != c.want {
			t.Errorf("AccountQueue(AC1, %q) = %q, want %q", c.p, got, c.want)
		}
	}
}

func TestQueues(t *testing.T) {
	t.Parallel()
	all := func(string) bool { return true }
	want := map[string]int{
		"launch:AC1:high": 6, "launch:AC1": 3, "launch:AC1:low": 1,
		"launch:AC2:high": 6, "launch:AC2": 3, "launch:AC2:low": 1,
		queue.Name: 3,
	}
	if got := queue.Queues([]string{"AC1", "AC2"}, false, all); !maps.Equal(got, want) {
		t.Errorf("Queues without follow: %v, want %v", got, want)
	}
	want[queue.FollowName] = 1
	if got := queue.Queues([]string{"AC1", "AC2"}, true, all); !maps.Equal(got, want) {
		t.Errorf("Queues with follow: %v, want %v", got, want)
	}
	// The follow-up queue keeps a weight with no account at all.
	if got := queue.Queues(nil, true, all); !maps.Equal(got, map[string]int{queue.Name: 3, queue.FollowName: 1}) {
		t.Errorf("Queues(nil, true) = %v", got)
	}
	// A high or low queue, and the shared one, are served when used; the
	// default one always.
	used := func(q string) bool { return q == "launch:AC2:low" }
	want = map[string]int{"launch:AC1": 3, "launch:AC2": 3, "launch:AC2:low": 1}
	if got := queue.Queues([]string{"AC1", "AC2"}, false, used); !maps.Equal(got, want) {
		t.Errorf("Queues with one low queue used: %v, want %v", got, want)
	}
	// With nothing else to serve, the shared queue; never no queue at all.
	none := func(string) bool { return false }
	if got := queue.Queues(nil, false, none); !maps.Equal(got, map[string]int{queue.Name: 3}) {
		t.Errorf("Queues(nil, false, none) = %v", got)
	}
	if got := queue.Queues(nil, true, none); !maps.Equal(got, map[string]int{queue.FollowName: 1}) {
		t.Errorf("Queues(nil, true, none) = %v", got)
	}
}

// serve records a live worker's claim to sids, made at now.
func (e *env) serve(now time.Time, sids ...string) {
	e.t.Helper()
	if err := queue.Serve(context.Background(), e.Redis.Client(), "w1", sids, now); err != nil {
		e.t.Fatal(err)
	}
}

func TestFleet(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	f := queue.NewFleet(e.Redis.Client())
	if sids, err := f.SIDs(ctx); err != nil || len(sids) != 0 {
		t.Fatalf("SIDs of an empty fleet: %v, %v", sids, err)
	}
	if err := queue.Serve(ctx, e.Redis.Client(), "w1", nil, time.Now()); err != nil {
		t.Fatalf("Serve of no account: %v", err)
	}
	// A claim made 31 s ago has run out; one made now has not.
	e.serve(time.Now().Add(-31*time.Second), "GONE")
	e.serve(time.Now(), "AC2", "AC1")
	if sids, err := f.SIDs(ctx); err != nil || !slices.Equal(sids, []string{"AC1", "AC2"}) {
		t.Fatalf("SIDs: %v, %v; want [AC1 AC2]", sids, err)
	}
	for sid, want := range map[string]bool{"AC1": true, "AC2": true, "GONE": false, "NONE": false} {
		if got, err := f.Served(ctx, sid); err != nil || got != want {
			t.Errorf("Served(%s) = %v, %v; want %v", sid, got, err, want)
		}
	}
	// An older claim never shortens a newer one (another worker's).
	e.serve(time.Now().Add(-31*time.Second), "AC1")
	if sids, _ := f.SIDs(ctx); !slices.Contains(sids, "AC1") {
		t.Fatalf("an older claim shortened AC1's: %v", sids)
	}

	// Served answers from a cache, which a new claim reaches within a few
	// seconds.
	e.serve(time.Now(), "AC3")
	deadline := time.Now().Add(5 * time.Second)
	for {
		served, err := f.Served(ctx, "AC3")
		if err != nil {
			t.Fatal(err)
		}
		if served {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a new claim is not seen after 5 s")
		}
		time.Sleep(100 * time.Millisecond)
	}

	var nilFleet *queue.Fleet
	if q, err := nilFleet.QueueFor(ctx, "AC1", queue.PriorityHigh); err != nil || q != queue.Name {
		t.Errorf("nil Fleet's queue: %s, %v; want the shared queue", q, err)
	}
	for p, want := range map[queue.Priority]string{queue.PriorityHigh: "launch:AC1:high", "": "launch:AC1"} {
		if q, err := f.QueueFor(ctx, "AC1", p); err != nil || q != want {
			t.Errorf("QueueFor(AC1, %q) = %s, %v; want %s", p, q, err, want)
		}
	}
	if q, err := f.QueueFor(ctx, "NONE", queue.PriorityHigh); err != nil || q != queue.Name {
		t.Errorf("QueueFor an unserved account: %s, %v; want the shared queue", q, err)
	}
}

// fleetProducer gives the environment's producer a Fleet, new: it has
// cached no answer.
func (e *env) fleetProducer() {
	e.Producer.Fleet = queue.NewFleet(e.Redis.Client())
}

// ranOnShared enqueues a job while no worker serves its account, so on the
// shared queue, and runs it to the outcome o.
func (e *env) ranOnShared(o store.Outcome) launch.Job {
	e.t.Helper()
	e.fleetProducer()
	j := testJob("48900")
	e.enqueue(j, false)
	e.run(j, o)
	return j
}

// claim records a live worker's claim to sids, seen by the producer at once.
func (e *env) claim(sids ...string) {
	e.t.Helper()
	e.serve(time.Now(), sids...)
	e.fleetProducer()
}

// unclaim ends every claim, seen by the producer at once: the workers are
// gone.
func (e *env) unclaim() {
	e.t.Helper()
	if err := e.Redis.Client().Del(context.Background(), rdb.FleetSIDs).Err(); err != nil {
		e.t.Fatal(err)
	}
	e.fleetProducer()
}

// tasksOf lists the queues that hold a task with the job's ID.
func (e *env) tasksOf(id string) []string {
	e.t.Helper()
	qs, err := e.Inspector.Queues()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, q := range qs {
		_, err := e.Inspector.GetTaskInfo(q, id)
		switch {
		case err == nil:
			out = append(out, q)
		case !errors.Is(err, asynq.ErrTaskNotFound):
			e.t.Fatal(err)
		}
	}
	return out
}

// wantOneTask fails unless the job has exactly one task, on qname, and its
// record names that queue.
func (e *env) wantOneTask(id, qname string) queue.Payload {
	e.t.Helper()
	if qs := e.tasksOf(id); !slices.Equal(qs, []string{qname}) {
		e.t.Fatalf("job %s has tasks on %v; want one, on %s", id, qs, qname)
	}
	if q, err := e.Store.JobQueue(context.Background(), id); err != nil || q != qname {
		e.t.Fatalf("record of %s names queue %q, %v; want %s", id, q, err, qname)
	}
	info, err := e.Inspector.GetTaskInfo(qname, id)
	if err != nil {
		e.t.Fatal(err)
	}
	var p queue.Payload
	if err := json.Unmarshal(info.Payload, &p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func TestEnqueueWithoutLiveWorkerUsesSharedQueue(t *testing.T) {
	e := newEnv(t)
	e.fleetProducer()
	e.serve(time.Now().Add(-time.Minute), testenv.SID) // a worker that died
	j := testJob("48900")
	if st := e.enqueue(j, false); st != queue.Enqueued {
		t.Fatalf("enqueue: %s", st)
	}
	if p := e.wantOneTask(j.ID, queue.Name); p.Priority != "" {
		t.Fatalf("default job's payload priority %q", p.Priority)
	}
	res := e.enqueueMany([]launch.Job{testJob("48901")}, "", false)
	e.wantResults(res, []queue.Status{queue.Enqueued})
	e.wantOneTask(testJob("48901").ID, queue.Name)

	// The task keeps the priority its job asks for, the job's own, else the
	// producer's: the worker that moves it to its account's queue needs it.
	own := testJob("48902")
	own.Priority = queue.PriorityLow
	for i, r := range e.Producer.At(queue.PriorityHigh).EnqueueMany(ctxT(t), []launch.Job{testJob("48903"), own}, "", false) {
		if r.Err != nil || r.Status != queue.Enqueued {
			t.Fatalf("job %d: %s, %v", i, r.Status, r.Err)
		}
	}
	for id, want := range map[string]queue.Priority{testJob("48903").ID: queue.PriorityHigh, own.ID: queue.PriorityLow} {
		if p := e.wantOneTask(id, queue.Name); p.Priority != want {
			t.Errorf("job %s on the shared queue: payload priority %q, want %q", id, p.Priority, want)
		}
	}
}

func TestEnqueueWithLiveWorkerUsesAccountQueue(t *testing.T) {
	e := newEnv(t)
	e.claim(testenv.SID)
	j := testJob("48900")
	if st := e.enqueue(j, false); st != queue.Enqueued {
		t.Fatalf("enqueue: %s", st)
	}
	p := e.wantOneTask(j.ID, queue.AccountQueue(testenv.SID, queue.PriorityDefault))
	if p.SID != testenv.SID || p.Priority != "" {
		t.Fatalf("payload: sid %s priority %q", p.SID, p.Priority)
	}

	high := e.Producer.At(queue.PriorityHigh)
	jobs := []launch.Job{testJob("48901"), testJob("48902")}
	for i, r := range high.EnqueueMany(ctxT(t), jobs, "", false) {
		if r.Err != nil || r.Status != queue.Enqueued {
			t.Fatalf("high job %d: %s, %v", i, r.Status, r.Err)
		}
		p := e.wantOneTask(jobs[i].ID, "launch:"+testenv.SID+":high")
		if p.Priority != queue.PriorityHigh {
			t.Fatalf("high job's payload priority %q", p.Priority)
		}
	}
	if e.Producer.Priority != "" {
		t.Fatal("At changed the producer it was called on")
	}
}

// A job queued on the shared queue stays there: a later enqueue of it, once
// its account has a worker, finds its task there (a duplicate), and a
// repair of a lost task pushes to the shared queue too, never a second task
// on the account's queue.
func TestEnqueueAgainKeepsRecordedQueue(t *testing.T) {
	e := newEnv(t)
	e.fleetProducer()
	j := testJob("48900")
	if st := e.enqueue(j, false); st != queue.Enqueued {
		t.Fatalf("enqueue: %s", st)
	}
	e.claim(testenv.SID)
	if q, _ := e.Producer.Fleet.QueueFor(ctxT(t), testenv.SID, ""); q == queue.Name {
		t.Fatal("the claim is not seen")
	}
	if st := e.enqueue(j, false); st != queue.Duplicate {
		t.Fatalf("enqueue once served: %s, want %s", st, queue.Duplicate)
	}
	if res := e.enqueueMany([]launch.Job{j}, "", false); res[0].Err != nil || res[0].Status != queue.Duplicate {
		t.Fatalf("EnqueueMany once served: %+v", res[0])
	}
	e.wantOneTask(j.ID, queue.Name)

	// The task lost: the repair puts it back where the record says.
	e.deleteTask(j.ID)
	if st := e.enqueue(j, false); st != queue.Enqueued {
		t.Fatalf("repair: %s, want %s", st, queue.Enqueued)
	}
	e.wantOneTask(j.ID, queue.Name)

	// Running without its task: the same.
	if _, _, err := e.Store.Start(context.Background(), store.NewJob{ID: j.ID}, 9, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.deleteTask(j.ID)
	if res := e.enqueueMany([]launch.Job{j}, "", false); res[0].Err != nil || res[0].Status != queue.Enqueued {
		t.Fatalf("EnqueueMany repair of a running job: %+v", res[0])
	}
	e.wantOneTask(j.ID, queue.Name)
}

// The same holds the other way round: a job on its account's queue stays
// there after the account's workers are gone.
func TestEnqueueAgainAfterWorkerLeft(t *testing.T) {
	e := newEnv(t)
	e.claim(testenv.SID)
	j := testJob("48900")
	if st := e.enqueue(j, false); st != queue.Enqueued {
		t.Fatalf("enqueue: %s", st)
	}
	acctQ := queue.AccountQueue(testenv.SID, "")
	e.wantOneTask(j.ID, acctQ)
	e.unclaim()
	if st := e.enqueue(j, false); st != queue.Duplicate {
		t.Fatalf("enqueue after the worker left: %s, want %s", st, queue.Duplicate)
	}
	e.wantOneTask(j.ID, acctQ)
	if err := e.Inspector.DeleteTask(acctQ, j.ID); err != nil {
		t.Fatal(err)
	}
	if st := e.enqueue(j, false); st != queue.Enqueued {
		t.Fatalf("repair: %s", st)
	}
	e.wantOneTask(j.ID, acctQ)
}

// A fresh dead-letter retry moves the job to the queue its account has now
// and records it; a resumed one keeps the queue its task may be on.
func TestRetryDeadLetterMovesToAccountQueue(t *testing.T) {
	e := newEnv(t)
	j := e.ranOnShared(deadLetter("UNKNOWN_ACCOUNT", false))
	if q, _ := e.Store.JobQueue(context.Background(), j.ID); q != queue.Name {
		t.Fatalf("dead letter's queue %q, want the shared one", q)
	}
	e.claim(testenv.SID)
	res, _, err := e.Producer.At(queue.PriorityHigh).RetryDeadLetter(ctxT(t), j.ID, false)
	if err != nil || res != store.Requeued {
		t.Fatalf("retry: %s, %v", res, err)
	}
	highQ := queue.AccountQueue(testenv.SID, queue.PriorityHigh)
	if p := e.wantOneTask(j.ID, highQ); p.SID != testenv.SID || p.Job.ID != j.ID {
		t.Fatalf("retried task's payload: %+v", p)
	}
	if st := e.enqueue(j, false); st != queue.Duplicate {
		t.Fatalf("enqueue after the retry: %s, want %s", st, queue.Duplicate)
	}
	e.wantOneTask(j.ID, highQ)
}

func TestRetryDeadLetterResumeKeepsQueue(t *testing.T) {
	e := newEnv(t)
	j := e.ranOnShared(deadLetter("RCS904", false))
	// A retry cut short after its push: the record is requeued, the letter
	// still indexed and the task on the queue the record names.
	e.claim(testenv.SID)
	if res, _, err := e.Producer.RetryDeadLetter(ctxT(t), j.ID, false); err != nil || res != store.Requeued {
		t.Fatalf("retry: %s, %v", res, err)
	}
	acctQ := queue.AccountQueue(testenv.SID, "")
	e.wantOneTask(j.ID, acctQ)
	if err := e.Inspector.DeleteTask(acctQ, j.ID); err != nil {
		t.Fatal(err)
	}
	e.run(j, deadLetter("RCS904", false))
	if _, _, _, err := e.Store.Requeue(context.Background(), j.ID, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := queue.Push(ctxT(t), e.Producer.Client, acctQ, queue.Payload{SID: testenv.SID, Job: j}); err != nil {
		t.Fatal(err)
	}
	// The workers have gone meanwhile: a resume still keeps the recorded queue.
	e.unclaim()
	if res, _, err := e.Producer.RetryDeadLetter(ctxT(t), j.ID, false); err != nil || res != store.Requeued {
		t.Fatalf("resumed retry: %s, %v", res, err)
	}
	e.wantOneTask(j.ID, acctQ)
	if n := e.dlqCount(); n != 0 {
		t.Fatalf("%d dead letters left", n)
	}
}

// A job with its own SID is that account's: its record, its derived ID,
// its queue and its task's payload, whatever the producer's SID.
func TestJobSIDOverridesProducerSID(t *testing.T) {
	e := newEnv(t)
	e.claim(otherSID)
	j := testJob("48900")
	j.ID = ""
	j.SID = otherSID
	j.ID = launch.IDFor(testenv.SID, j)
	if j.ID != launch.DeriveID(otherSID, j) || j.ID == launch.DeriveID(testenv.SID, j) {
		t.Fatal("the derived ID is not the job's account's")
	}
	if st := e.enqueue(j, false); st != queue.Enqueued {
		t.Fatalf("enqueue: %s", st)
	}
	if r := e.get(j.ID); r.SID != otherSID {
		t.Fatalf("record's SID %s, want %s", r.SID, otherSID)
	}
	if p := e.wantOneTask(j.ID, queue.AccountQueue(otherSID, "")); p.SID != otherSID {
		t.Fatalf("payload's SID %s, want %s", p.SID, otherSID)
	}
	// The producer's own account has no worker: its jobs use the shared queue.
	mine := testJob("48901")
	if st := e.enqueue(mine, false); st != queue.Enqueued {
		t.Fatalf("enqueue: %s", st)
	}
	if p := e.wantOneTask(mine.ID, queue.Name); p.SID != testenv.SID {
		t.Fatalf("payload's SID %s, want %s", p.SID, testenv.SID)
	}
}

// A job's ID names one account's job: the same ID offered for another
// account is a conflict, and its lost task is never put back under the
// other account (whose key the worker would send it with).
func TestEnqueueSameIDOtherAccount(t *testing.T) {
	e := newEnv(t)
	j := testJob("48900")
	j.ID = "order-1"
	e.enqueue(j, false)
	other := *e.Producer
	other.SID = otherSID
	for _, lost := range []bool{false, true} {
		if lost {
			e.deleteTask(j.ID)
		}
		st, err := other.Enqueue(ctxT(t), j, "", false)
		if err != nil || st != queue.Conflict {
			t.Fatalf("same ID for %s (task lost %v): %s, %v; want %s", otherSID, lost, st, err, queue.Conflict)
		}
		if res := other.EnqueueMany(ctxT(t), []launch.Job{j}, "", false); res[0].Err != nil || res[0].Status != queue.Conflict {
			t.Fatalf("EnqueueMany of the same ID for %s (task lost %v): %+v", otherSID, lost, res[0])
		}
	}
	if qs := e.tasksOf(j.ID); len(qs) != 0 {
		t.Fatalf("another account's enqueue pushed a task on %v", qs)
	}
	// Its own account repairs it.
	if st := e.enqueue(j, false); st != queue.Enqueued {
		t.Fatalf("repair by its own account: %s", st)
	}
	if p := e.wantOneTask(j.ID, queue.Name); p.SID != testenv.SID {
		t.Fatalf("repaired task's SID %s", p.SID)
	}
}

// oldTask puts back the task of the job's previous run on qname, as asynq
// holds it for the moment between the run's outcome and its deletion (or
// for a lease after its worker died), and returns a channel on which the
// task's deletion, 300 ms later, reports when goes.
func (e *env) oldTask(j launch.Job, qname string, goes bool) <-chan error {
	e.t.Helper()
	if pushed, err := queue.Push(ctxT(e.t), e.Producer.Client, qname, queue.Payload{SID: testenv.SID, Job: j}); err != nil || !pushed {
		e.t.Fatalf("push of the old task: %v, %v", pushed, err)
	}
	deleted := make(chan error, 1)
	if goes {
		go func() {
			time.Sleep(300 * time.Millisecond)
			deleted <- e.Inspector.DeleteTask(qname, j.ID)
		}()
	}
	return deleted
}

// A fresh dead-letter retry or a forced relaunch that moves the job to its
// account's queue waits, as one on the same queue does, for the previous
// run's task to leave the queue it is on: the job never has two tasks. A
// task that stays leaves the job as it was.
func TestMoveWaitsForOldTask(t *testing.T) {
	for _, c := range []struct {
		name string
		ran  store.Outcome
		// again puts the job back on the queue: whether it did, and its error.
		again func(e *env, j launch.Job) (bool, error)
		was   store.State
	}{
		{"dead-letter retry", deadLetter("RCS904", false), func(e *env, j launch.Job) (bool, error) {
			res, _, err := e.Producer.RetryDeadLetter(ctxT(e.t), j.ID, false)
			return res == store.Requeued, err
		}, store.StateDeadLettered},
		{"forced relaunch", succeeded, func(e *env, j launch.Job) (bool, error) {
			st, err := e.Producer.Enqueue(ctxT(e.t), j, "", true)
			return st == queue.Enqueued, err
		}, store.StateSucceeded},
	} {
		for _, goes := range []bool{true, false} {
			t.Run(c.name+map[bool]string{true: ", old task goes", false: ", old task stays"}[goes], func(t *testing.T) {
				e := newEnv(t)
				j := e.ranOnShared(c.ran)
				e.claim(testenv.SID)
				deleted := e.oldTask(j, queue.Name, goes)
				again, err := c.again(e, j)
				if !goes {
					if again {
						t.Fatalf("put back with the old task staying (%v); tasks on %v", err, e.tasksOf(j.ID))
					}
					if qs := e.tasksOf(j.ID); !slices.Equal(qs, []string{queue.Name}) {
						t.Fatalf("tasks on %v; want only the old one", qs)
					}
					if r := e.get(j.ID); r.State != c.was {
						t.Fatalf("record after the refused push: %s, want %s", r.State, c.was)
					}
					return
				}
				if err := <-deleted; err != nil {
					t.Fatalf("delete the old task: %v", err)
				}
				if err != nil || !again {
					t.Fatalf("not put back: %v", err)
				}
				e.wantOneTask(j.ID, queue.AccountQueue(testenv.SID, ""))
			})
		}
	}
}

// TestWithdraw: a worker's withdrawal ends its own claims only; an account
// stays served while another worker claims it.
func TestWithdraw(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	c := e.Redis.Client()
	f := queue.NewFleet(c)
	for _, w := range []string{"w1", "w2"} {
		if err := queue.Serve(ctx, c, w, []string{"AC1"}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := queue.Serve(ctx, c, "w1", []string{"AC2"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := queue.Withdraw(ctx, c, "w1", []string{"AC1", "AC2"}); err != nil {
		t.Fatal(err)
	}
	if sids, err := f.SIDs(ctx); err != nil || !slices.Equal(sids, []string{"AC1"}) {
		t.Fatalf("after w1 withdrew: %v, %v; want [AC1] (w2's claim)", sids, err)
	}
	if err := queue.Withdraw(ctx, c, "w2", []string{"AC1"}); err != nil {
		t.Fatal(err)
	}
	if served, err := f.ServedNow(ctx, "AC1"); err != nil || served {
		t.Fatalf("AC1 after both withdrew: served %v, %v", served, err)
	}
}

// A dead letter retried by a producer that asks for no priority goes back
// to the priority it was enqueued with.
func TestRetryDeadLetterKeepsPriority(t *testing.T) {
	e := newEnv(t)
	e.claim(testenv.SID)
	j := testJob("48912")
	if st, err := e.Producer.At(queue.PriorityLow).Enqueue(ctxT(t), j, "", false); err != nil || st != queue.Enqueued {
		t.Fatalf("enqueue at low priority: %s, %v", st, err)
	}
	lowQ := queue.AccountQueue(testenv.SID, queue.PriorityLow)
	if p := e.wantOneTask(j.ID, lowQ); p.Priority != queue.PriorityLow {
		t.Fatalf("task's priority %q, want low", p.Priority)
	}
	if err := e.Inspector.DeleteTask(lowQ, j.ID); err != nil {
		t.Fatal(err)
	}
	e.run(j, deadLetter("RCS904", false))
	if res, _, err := e.Producer.RetryDeadLetter(ctxT(t), j.ID, false); err != nil || res != store.Requeued {
		t.Fatalf("retry: %s, %v", res, err)
	}
	e.wantOneTask(j.ID, lowQ)
	if got := queue.PriorityOf(testenv.SID, queue.Name); got != queue.PriorityDefault {
		t.Errorf("PriorityOf(the shared queue) = %q, want default", got)
	}
}

// A job's own priority wins over the producer's (a row's "priority" over
// enqueue --priority); the task names its queue's priority, and the job in
// it none of its own.
func TestJobPriorityWinsOverProducer(t *testing.T) {
	e := newEnv(t)
	e.claim(testenv.SID)
	low := e.Producer.At(queue.PriorityLow)
	high, def, none := testJob("48920"), testJob("48921"), testJob("48922")
	high.Priority, def.Priority = queue.PriorityHigh, queue.PriorityDefault
	if st, err := low.Enqueue(ctxT(t), high, "", false); err != nil || st != queue.Enqueued {
		t.Fatalf("enqueue: %s, %v", st, err)
	}
	for i, r := range low.EnqueueMany(ctxT(t), []launch.Job{def, none}, "", false) {
		if r.Err != nil || r.Status != queue.Enqueued {
			t.Fatalf("job %d: %s, %v", i, r.Status, r.Err)
		}
	}
	for _, c := range []struct {
		job  launch.Job
		prio queue.Priority
	}{{high, queue.PriorityHigh}, {def, queue.PriorityDefault}, {none, queue.PriorityLow}} {
		p := e.wantOneTask(c.job.ID, queue.AccountQueue(testenv.SID, c.prio))
		if want := c.prio; p.Priority != want && (want != queue.PriorityDefault || p.Priority != "") || p.Job.Priority != "" {
			t.Errorf("job %s: task's priority %q and its job's %q; want %q and none", c.job.ID, p.Priority, p.Job.Priority, want)
		}
	}
}

// TestParseQueue: AccountQueue's names read back; any other name is no
// launch queue.
func TestParseQueue(t *testing.T) {
	for name, want := range map[string]struct {
		sid  string
		prio queue.Priority
		ok   bool
	}{
		"launch":               {"", queue.PriorityDefault, true},
		"launch:ACC_A":         {"ACC_A", queue.PriorityDefault, true},
		"launch:ACC_A:high":    {"ACC_A", queue.PriorityHigh, true},
		"launch:ACC_A:low":     {"ACC_A", queue.PriorityLow, true},
		"launch:ACC_A:default": {},
		"launch:ACC_A:urgent":  {},
		"launch:":              {},
		"launch::high":         {},
		"follow":               {},
		"launches":             {},
	} {
		sid, prio, ok := queue.ParseQueue(name)
		if sid != want.sid || prio != want.prio || ok != want.ok {
			t.Errorf("ParseQueue(%q) = %q, %q, %v; want %q, %q, %v", name, sid, prio, ok, want.sid, want.prio, want.ok)
		}
	}
}

// TestLayout: with two accounts or more, a server over the queues of no
// account and one per account over its own, each with the handlers it needs
// while the concurrency allows, else one each and the rest in proportion to
// what each needs beyond it; with one account (or none), one server over
// everything with every handler.
func TestLayout(t *testing.T) {
	a, ah, b := queue.AccountQueue("A", queue.PriorityDefault), queue.AccountQueue("A", queue.PriorityHigh), queue.AccountQueue("B", queue.PriorityDefault)
	six := func(string) int { return 6 }
	needs := func(m map[string]int) func(string) int { return func(sid string) int { return m[sid] } }
	q := func(sid string) string { return queue.AccountQueue(sid, queue.PriorityDefault) }
	for _, c := range []struct {
		name        string
		queues      map[string]int
		concurrency int
		need        func(string) int
		want        []queue.ServerShare
	}{
		{"one account and the rest", map[string]int{a: 3, ah: 6, queue.Name: 3, queue.FollowName: 1}, 10, six,
			[]queue.ServerShare{{Queues: map[string]int{a: 3, ah: 6, queue.Name: 3, queue.FollowName: 1}, Concurrency: 10, Need: 10}}},
		{"the shared queue alone", map[string]int{queue.Name: 3}, 0, six,
			[]queue.ServerShare{{Queues: map[string]int{queue.Name: 3}, Concurrency: 1, Need: 1}}},
		{"two accounts, enough handlers", map[string]int{b: 3, a: 3, ah: 6}, 20, six, []queue.ServerShare{
			{Queues: map[string]int{a: 3, ah: 6}, Concurrency: 6, Need: 6}, {Queues: map[string]int{b: 3}, Concurrency: 6, Need: 6}}},
		{"two accounts, too few", map[string]int{b: 3, a: 3, ah: 6}, 10, six, []queue.ServerShare{
			{Queues: map[string]int{a: 3, ah: 6}, Concurrency: 5, Need: 6}, {Queues: map[string]int{b: 3}, Concurrency: 5, Need: 6}}},
		// Beyond the first handler each: 7 left for needs of 3, 10 and 2.
		{"in proportion, the rest first", map[string]int{b: 3, a: 3, queue.Name: 3, queue.FollowName: 1}, 10,
			needs(map[string]int{"A": 11, "B": 3, "": 4}), []queue.ServerShare{
				{Queues: map[string]int{queue.Name: 3, queue.FollowName: 1}, Concurrency: 2, Need: 4},
				{Queues: map[string]int{a: 3}, Concurrency: 6, Need: 11}, {Queues: map[string]int{b: 3}, Concurrency: 2, Need: 3}}},
		{"never more than the concurrency while it covers one each", map[string]int{q("A"): 3, q("B"): 3, q("C"): 3, q("D"): 3, q("E"): 3}, 10,
			needs(map[string]int{"A": 51, "B": 2, "C": 2, "D": 2, "E": 51}), []queue.ServerShare{
				{Queues: map[string]int{q("A"): 3}, Concurrency: 4, Need: 51}, {Queues: map[string]int{q("B"): 3}, Concurrency: 1, Need: 2},
				{Queues: map[string]int{q("C"): 3}, Concurrency: 1, Need: 2}, {Queues: map[string]int{q("D"): 3}, Concurrency: 1, Need: 2},
				{Queues: map[string]int{q("E"): 3}, Concurrency: 3, Need: 51}}},
		{"fewer handlers than servers", map[string]int{b: 3, a: 3, queue.Name: 3}, 2, six, []queue.ServerShare{
			{Queues: map[string]int{queue.Name: 3}, Concurrency: 1, Need: 6},
			{Queues: map[string]int{a: 3}, Concurrency: 1, Need: 6}, {Queues: map[string]int{b: 3}, Concurrency: 1, Need: 6}}},
	} {
		got := queue.Layout(c.queues, c.concurrency, c.need)
		if !slices.EqualFunc(got, c.want, func(x, y queue.ServerShare) bool {
			return x.Concurrency == y.Concurrency && x.Need == y.Need && maps.Equal(x.Queues, y.Queues)
		}) {
			t.Errorf("%s: Layout(%v, %d) = %v, want %v", c.name, c.queues, c.concurrency, got, c.want)
		}
	}
}

// TestLayoutServesEveryQueueOnce: at scale, every queue is on exactly one
// server, the handlers add up to the concurrency, and equal needs get
// shares within one of each other.
func TestLayoutServesEveryQueueOnce(t *testing.T) {
	var sids []string
	for i := range 200 {
		sids = append(sids, fmt.Sprintf("SID%03d", i))
	}
	queues := queue.Queues(sids, true, func(q string) bool { return q == queue.Name || strings.HasSuffix(q, "7:high") })
	shares := queue.Layout(queues, 400, func(string) int { return 51 })
	if len(shares) != 201 {
		t.Fatalf("%d servers for 200 accounts and the rest; want 201", len(shares))
	}
	seen, handlers := map[string]int{}, 0
	for _, s := range shares {
		handlers += s.Concurrency
		for q, w := range s.Queues {
			if _, dup := seen[q]; dup {
				t.Errorf("queue %s on two servers", q)
			}
			seen[q] = w
		}
	}
	if !maps.Equal(seen, queues) {
		t.Errorf("the servers serve %d queues, want the %d given, with their weights", len(seen), len(queues))
	}
	if handlers != 400 {
		t.Errorf("%d handlers in all, want 400", handlers)
	}
	least, most := shares[0].Concurrency, shares[0].Concurrency
	for _, s := range shares {
		least, most = min(least, s.Concurrency), max(most, s.Concurrency)
	}
	if least != 1 || most != 2 {
		t.Errorf("servers of equal needs got %d to %d handlers, want 1 to 2", least, most)
	}
}
