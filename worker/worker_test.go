package worker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rcslaunch/rcslaunch/enqueue"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/internal/testredis"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
	"github.com/rcslaunch/rcslaunch/worker"
)

func TestMixedBatchLandsWhereItShould(t *testing.T) {
	e := testenv.New(t, testenv.WithRedis(testredis.WithArgs("--rdbcompression", "no")))
	const retryMax = 3
	e.Sim.Script("100", sim.StepSucceed)
	e.Sim.Script("101", sim.StepGateway, sim.StepGateway) // then success
	e.Sim.Script("102", sim.StepMissingFields)
	e.Sim.Script("103", sim.StepGateway, sim.StepGateway, sim.StepGateway, sim.StepGateway) // retryMax+1 times
	e.Sim.Script("104", sim.StepServerError)                                                // RCS500 is not retryable by default
	e.Sim.Script("105", sim.StepDisabled)

	agents := []string{"100", "101", "102", "103", "104", "105"}
	ids := map[string]string{}
	for _, a := range agents {
		id, st := e.Enqueue(launchtest.Job(a))
		if st != queue.Enqueued {
			t.Fatalf("agent %s: %s, want enqueued", a, st)
		}
		ids[a] = id
	}
	e.StartWorker(func(o *worker.Options) { o.RetryMax = retryMax })
	var all []string
	for _, id := range ids {
		all = append(all, id)
	}
	recs := e.WaitFinished(all...)

	want := []struct {
		agent, code string
		state       store.State
		calls       int
	}{
		{"100", "RCS902", store.StateSucceeded, 1},
		{"101", "RCS902", store.StateSucceeded, 3},               // 1 + failures
		{"102", "RCS904", store.StateDeadLettered, 1},            // terminal: once
		{"103", "RCS502", store.StateDeadLettered, retryMax + 1}, // always 502
		{"104", "RCS500", store.StateDeadLettered, 1},
		{"105", "RCS601", store.StateDeadLettered, 1},
	}
	byAgent := e.Sim.Stats().ByAgent
	results := e.Results()
	for _, w := range want {
		r := recs[ids[w.agent]]
		if r.State != w.state || r.Code != w.code {
			t.Errorf("agent %s: %s %s, want %s %s", w.agent, r.State, r.Code, w.state, w.code)
		}
		if byAgent[w.agent] != w.calls {
			t.Errorf("agent %s: Kaleyra called %d times, want %d", w.agent, byAgent[w.agent], w.calls)
		}
		if r.Attempts != w.calls || len(r.History) != w.calls {
			t.Errorf("agent %s: %d attempts, %d logged; want %d", w.agent, r.Attempts, len(r.History), w.calls)
		}
		rs := results[ids[w.agent]]
		if len(rs) != 1 {
			t.Errorf("agent %s: %d results stream entries, want 1", w.agent, len(rs))
			continue
		}
		if rs[0].Outcome != string(w.state) || rs[0].Code != w.code || rs[0].Attempts != w.calls {
			t.Errorf("agent %s: result %+v", w.agent, rs[0])
		}
		if w.state == store.StateSucceeded && (rs[0].AgentLaunchID == "" || rs[0].AgentLaunchID != r.AgentLaunchID) {
			t.Errorf("agent %s: agent_launch_id %q in results, %q in record", w.agent, rs[0].AgentLaunchID, r.AgentLaunchID)
		}
	}
	n, err := e.Store.CountDeadLetters(context.Background(), store.Filter{})
	if err != nil || n != 4 {
		t.Errorf("dead letters: %d (%v), want 4", n, err)
	}
	if n, _ := e.Store.CountDeadLetters(context.Background(), store.Filter{Code: "RCS502"}); n != 1 {
		t.Errorf("dead letters with RCS502: %d, want 1", n)
	}

	// The retried job's attempts were spaced by the backoff (never early).
	h := recs[ids["103"]].History
	for i := 1; i < len(h); i++ {
		gap := h[i].StartedAt.Sub(h[i-1].FinishedAt)
		if gap < 50*time.Millisecond {
			t.Errorf("retry %d came %v after the previous attempt, before its backoff", i, gap)
		}
	}

	// Re-enqueueing the same jobs sends nothing.
	calls := e.Sim.Stats().Calls
	for _, a := range agents {
		_, st := e.Enqueue(launchtest.Job(a))
		wantSt := queue.AlreadyLaunched
		if recs[ids[a]].State == store.StateDeadLettered {
			wantSt = queue.DeadLettered
		}
		if st != wantSt {
			t.Errorf("re-enqueue agent %s: %s, want %s", a, st, wantSt)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if got := e.Sim.Stats().Calls; got != calls {
		t.Errorf("re-enqueue made %d more calls", got-calls)
	}

	// dlq retry relaunches with a fresh budget; now the gateway is healthy.
	res, _, err := e.Producer.RetryDeadLetter(context.Background(), ids["103"], false)
	if err != nil || res != store.Requeued {
		t.Fatalf("retry dead letter: %q, %v", res, err)
	}
	r := e.WaitFinished(ids["103"])[ids["103"]]
	if r.State != store.StateSucceeded || r.Attempts != 1 {
		t.Errorf("after dlq retry: %s with %d attempts, want succeeded with 1", r.State, r.Attempts)
	}
	if n, _ := e.Store.CountDeadLetters(context.Background(), store.Filter{}); n != 3 {
		t.Errorf("dead letters after retry: %d, want 3", n)
	}
	if got := e.Sim.Stats().ByAgent["103"]; got != retryMax+2 {
		t.Errorf("agent 103 called %d times in all, want %d", got, retryMax+2)
	}

	// The API key is nowhere: not in a log line, not in Redis.
	if strings.Contains(e.Logs.String(), testenv.APIKey) {
		t.Error("the API key appears in the logs")
	}
	if !strings.Contains(e.Logs.String(), `"job_id"`) {
		t.Error("the logs carry no job_id: the search above proves nothing")
	}
	rdb := e.Redis.Client()
	if err := rdb.Save(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	dump, err := os.ReadFile(filepath.Join(e.Redis.Dir(), "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(dump, []byte(testenv.APIKey)) {
		t.Error("the API key appears in the Redis dump")
	}
	if !bytes.Contains(dump, []byte(ids["100"])) {
		t.Error("the dump does not even hold a job ID: the search above proves nothing")
	}
}

func TestRedeliveredFinishedJobIsNotCalledAgain(t *testing.T) {
	e := testenv.New(t)
	id, _ := e.Enqueue(launchtest.Job("200"))
	e.StartWorker(func(o *worker.Options) { o.RetryMax = 2 })
	e.WaitFinished(id)
	// Put the same task back as a crash before the acknowledgement would.
	j := launchtest.Job("200")
	j.ID = id
	if _, err := queue.Push(context.Background(), e.Producer.Client, queue.Name, queue.Payload{SID: testenv.SID, Job: j}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.Logs.String(), "not calling Kaleyra again") {
		if time.Now().After(deadline) {
			t.Fatal("the redelivered task was not handled")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := e.Sim.Stats().ByAgent["200"]; n != 1 {
		t.Errorf("Kaleyra called %d times, want 1", n)
	}
	if n := len(e.Results()[id]); n != 1 {
		t.Errorf("%d results entries, want 1", n)
	}
}

func TestEnqueueClientReportsKnownIDs(t *testing.T) {
	e := testenv.New(t)
	c, err := enqueue.New(enqueue.Options{Redis: e.Conn, SID: testenv.SID})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	id, err := c.Enqueue(ctx, launchtest.Job("300"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enqueue(ctx, launchtest.Job("300")); !errors.Is(err, enqueue.ErrDuplicate) {
		t.Fatalf("second enqueue: %v, want ErrDuplicate", err)
	}
	e.StartWorker(func(o *worker.Options) { o.RetryMax = 0 })
	e.WaitFinished(id)
	if _, err := c.Enqueue(ctx, launchtest.Job("300")); !errors.Is(err, enqueue.ErrAlreadyLaunched) {
		t.Fatalf("after success: %v, want ErrAlreadyLaunched", err)
	}
	other := launchtest.Job("300")
	other.ID = id
	other.Launch.TriggerDescription = "something else"
	if _, err := c.Enqueue(ctx, other); !errors.Is(err, enqueue.ErrConflict) {
		t.Fatalf("same ID, other payload: %v, want ErrConflict", err)
	}
	if _, err := c.Enqueue(ctx, launchtest.Job("300"), enqueue.Force()); err != nil {
		t.Fatalf("forced relaunch: %v", err)
	}
	e.WaitFinished(id)
	deadline := time.Now().Add(10 * time.Second)
	for e.Sim.Stats().ByAgent["300"] != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("forced relaunch: %d calls, want 2", e.Sim.Stats().ByAgent["300"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMetricsEqualOutcomes(t *testing.T) {
	e := testenv.New(t)
	e.Sim.Script("400", sim.StepGateway) // then success
	e.Sim.Script("401", sim.StepMissingFields)
	e.Sim.Script("402", sim.StepDisabled)
	var ids []string
	for _, a := range []string{"400", "401", "402", "403", "404"} {
		id, _ := e.Enqueue(launchtest.Job(a))
		ids = append(ids, id)
	}
	reg := prometheus.NewRegistry()
	e.StartWorker(func(o *worker.Options) { o.Metrics = reg })
	e.WaitFinished(ids...)

	want := map[string]float64{}
	for _, rs := range e.Results() {
		for _, r := range rs {
			want[r.Outcome+"/"+r.Code]++
		}
	}
	got := map[string]float64{}
	var calls, attempts, finished float64
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetName() {
			case "rcslaunch_launches_total":
				got[labels["outcome"]+"/"+labels["code"]] = m.GetCounter().GetValue()
			case "rcslaunch_kaleyra_calls_total":
				calls += m.GetCounter().GetValue()
			case "rcslaunch_job_attempts":
				attempts += m.GetHistogram().GetSampleSum()
				finished += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rcslaunch_launches_total = %v, want the results stream's %v", got, want)
	}
	if calls != float64(e.Sim.Stats().Calls) {
		t.Errorf("rcslaunch_kaleyra_calls_total = %v, simulator saw %d", calls, e.Sim.Stats().Calls)
	}
	if finished != 5 || attempts != 6 {
		t.Errorf("job_attempts: %v jobs with %v attempts, want 5 with 6", finished, attempts)
	}
}

// TestOutcomeRecordRetriedAfterRedisErrors fails the script that records a
// call's outcome (pipelined with the slot's release, then alone in finish's
// retry loop) and checks that the worker keeps trying until it is recorded,
// once, without calling Kaleyra again: three failures, then failures until
// switched off after the loop has retried a few times.
func TestOutcomeRecordRetriedAfterRedisErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fails int // -1: until switched off
	}{{"three times", 3}, {"until switched off", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			e := testenv.New(t)
			ctx := context.Background()
			id, _ := e.Enqueue(launchtest.Job("600"))
			fault := e.Faults.Fail(tc.fails, testredis.Script(store.ResultsStream, id, string(store.FinishSucceeded)))
			e.StartWorker(nil)
			if tc.fails < 0 {
				// The pipelined record and three retries (100, 200, 400 ms apart).
				deadline := time.Now().Add(10 * time.Second)
				for fault.Hits() < 4 {
					if time.Now().After(deadline) {
						t.Fatalf("the outcome's record was tried %d times in 10s, want 4", fault.Hits())
					}
					time.Sleep(20 * time.Millisecond)
				}
				if r, err := e.Store.Get(ctx, id); err != nil || r.State != store.StateRunning {
					t.Fatalf("while the record fails: %s (%v), want %s", r.State, err, store.StateRunning)
				}
				fault.Off()
			}
			r := e.WaitFinished(id)[id]
			hits := fault.Hits()
			if tc.fails > 0 && hits != tc.fails {
				t.Errorf("the record failed %d times, want %d", hits, tc.fails)
			}
			if r.State != store.StateSucceeded || r.Attempts != 1 || len(r.History) != 1 {
				t.Errorf("record %s with %d attempts, %d logged; want succeeded with 1", r.State, r.Attempts, len(r.History))
			}
			if n := strings.Count(e.Logs.String(), "cannot record outcome yet"); n != hits-1 {
				t.Errorf("%d retries logged, want %d (every failure but the pipelined one)", n, hits-1)
			}
			time.Sleep(500 * time.Millisecond) // room for a redelivery that must not come
			if n := e.Sim.Stats().ByAgent["600"]; n != 1 {
				t.Errorf("Kaleyra called %d times, want 1", n)
			}
			if rs := e.Results()[id]; len(rs) != 1 || rs[0].Outcome != string(store.StateSucceeded) {
				t.Errorf("results entries %+v, want one success", rs)
			}
			st, err := e.Store.Get(ctx, id)
			if err != nil || st.State != store.StateSucceeded || len(st.History) != 1 {
				t.Errorf("record after the wait: %s with %d logged (%v)", st.State, len(st.History), err)
			}
		})
	}
}
