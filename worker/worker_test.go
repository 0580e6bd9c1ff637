package worker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/enqueue"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testredis"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/worker"
)

const (
	testSID = "TESTSID0001"
	// testKey is distinctive so that a search for it cannot match by chance.
	testKey = "sk-test-9f8e7d6c5b4a-NEVER-LOG-ME"
)

// syncBuffer collects log lines from concurrent goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type env struct {
	t     *testing.T
	redis *testredis.Server
	sim   *sim.Server
	simTS *httptest.Server
	store *store.Store
	prod  *queue.Producer
	logs  *syncBuffer
}

// newEnv gives the test its own redis-server, a simulator and a producer.
func newEnv(t *testing.T, opts ...testredis.Option) *env {
	t.Helper()
	r := testredis.Start(t, opts...)
	e := newEnvOn(t, asynq.RedisClientOpt{Addr: r.Addr()}, sim.Config{APIKey: testKey})
	e.redis = r
	return e
}

// startWorker runs a worker until the test ends (or the returned stop is called).
func (e *env) startWorker(retryMax int) (stop func()) {
	e.t.Helper()
	return e.startWorkerOn(asynq.RedisClientOpt{Addr: e.redis.Addr()}, func(o *worker.Options) { o.RetryMax = retryMax })
}

func job(agentNo string) launch.Job {
	return launch.Job{Launch: launch.Launch{
		AgentNo: agentNo, OptinDescription: "opt in", TriggerDescription: "START",
		InteractionsDescription: "updates", OptoutDescription: "STOP", AgentAccessInstructions: "demo",
	}, Regions: []launch.Region{{Region: "region-" + agentNo}}}
}

func (e *env) enqueue(j launch.Job) (string, queue.Status) {
	e.t.Helper()
	j.ID = launch.IDFor(testSID, j)
	st, err := e.prod.Enqueue(context.Background(), j, "", false)
	if err != nil {
		e.t.Fatalf("enqueue %s: %v", j.Launch.AgentNo, err)
	}
	return j.ID, st
}

// waitFinished waits until every job has a final state and returns the records.
func (e *env) waitFinished(ids ...string) map[string]store.Record {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := map[string]store.Record{}
		for _, id := range ids {
			r, err := e.store.Get(context.Background(), id)
			if err == nil && r.Finished() {
				out[id] = r
			}
		}
		if len(out) == len(ids) {
			return out
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("only %d of %d jobs finished in time", len(out), len(ids))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) results() map[string][]store.Result {
	e.t.Helper()
	rs, err := e.store.ReadResults(context.Background(), "0", 10000, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]store.Result{}
	for _, r := range rs {
		out[r.JobID] = append(out[r.JobID], r)
	}
	return out
}

func TestMixedBatchLandsWhereItShould(t *testing.T) {
	e := newEnv(t, testredis.WithArgs("--rdbcompression", "no"))
	const retryMax = 3
	e.sim.Script("100", sim.StepSucceed)
	e.sim.Script("101", sim.StepGateway, sim.StepGateway) // then success
	e.sim.Script("102", sim.StepMissingFields)
	e.sim.Script("103", sim.StepGateway, sim.StepGateway, sim.StepGateway, sim.StepGateway) // retryMax+1 times
	e.sim.Script("104", sim.StepServerError)                                                // RCS500 is not retryable by default
	e.sim.Script("105", sim.StepDisabled)

	agents := []string{"100", "101", "102", "103", "104", "105"}
	ids := map[string]string{}
	for _, a := range agents {
		id, st := e.enqueue(job(a))
		if st != queue.Enqueued {
			t.Fatalf("agent %s: %s, want enqueued", a, st)
		}
		ids[a] = id
	}
	e.startWorker(retryMax)
	var all []string
	for _, id := range ids {
		all = append(all, id)
	}
	recs := e.waitFinished(all...)

	want := []struct {
		agent string
		state store.State
		code  string
		calls int
	}{
		{"100", store.StateSucceeded, "RCS902", 1},
		{"101", store.StateSucceeded, "RCS902", 3},               // 1 + failures
		{"102", store.StateDeadLettered, "RCS904", 1},            // terminal: once
		{"103", store.StateDeadLettered, "RCS502", retryMax + 1}, // always 502
		{"104", store.StateDeadLettered, "RCS500", 1},
		{"105", store.StateDeadLettered, "RCS601", 1},
	}
	byAgent := e.sim.Stats().ByAgent
	results := e.results()
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
	n, err := e.store.CountDeadLetters(context.Background(), store.Filter{})
	if err != nil || n != 4 {
		t.Errorf("dead letters: %d (%v), want 4", n, err)
	}
	if n, _ := e.store.CountDeadLetters(context.Background(), store.Filter{Code: "RCS502"}); n != 1 {
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
	calls := e.sim.Stats().Calls
	for _, a := range agents {
		_, st := e.enqueue(job(a))
		wantSt := queue.AlreadyLaunched
		if recs[ids[a]].State == store.StateDeadLettered {
			wantSt = queue.DeadLettered
		}
		if st != wantSt {
			t.Errorf("re-enqueue agent %s: %s, want %s", a, st, wantSt)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if got := e.sim.Stats().Calls; got != calls {
		t.Errorf("re-enqueue made %d more calls", got-calls)
	}

	// dlq retry relaunches with a fresh budget; now the gateway is healthy.
	res, _, err := e.prod.RetryDeadLetter(context.Background(), ids["103"], false)
	if err != nil || res != store.Requeued {
		t.Fatalf("retry dead letter: %q, %v", res, err)
	}
	r := e.waitFinished(ids["103"])[ids["103"]]
	if r.State != store.StateSucceeded || r.Attempts != 1 {
		t.Errorf("after dlq retry: %s with %d attempts, want succeeded with 1", r.State, r.Attempts)
	}
	if n, _ := e.store.CountDeadLetters(context.Background(), store.Filter{}); n != 3 {
		t.Errorf("dead letters after retry: %d, want 3", n)
	}
	if got := e.sim.Stats().ByAgent["103"]; got != retryMax+2 {
		t.Errorf("agent 103 called %d times in all, want %d", got, retryMax+2)
	}

	// The API key is nowhere: not in a log line, not in Redis.
	if strings.Contains(e.logs.String(), testKey) {
		t.Error("the API key appears in the logs")
	}
	if !strings.Contains(e.logs.String(), `"job_id"`) {
		t.Error("the logs carry no job_id: the search above proves nothing")
	}
	rdb := e.redis.Client()
	if err := rdb.Save(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	dump, err := os.ReadFile(filepath.Join(e.redis.Dir(), "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(dump, []byte(testKey)) {
		t.Error("the API key appears in the Redis dump")
	}
	if !bytes.Contains(dump, []byte(ids["100"])) {
		t.Error("the dump does not even hold a job ID: the search above proves nothing")
	}
}

func TestRedeliveredFinishedJobIsNotCalledAgain(t *testing.T) {
	e := newEnv(t)
	id, _ := e.enqueue(job("200"))
	e.startWorker(2)
	e.waitFinished(id)
	// Put the same task back as a crash before the acknowledgement would.
	j := job("200")
	j.ID = id
	if _, err := queue.Push(context.Background(), e.prod.Client, testSID, j); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.logs.String(), "not calling Kaleyra again") {
		if time.Now().After(deadline) {
			t.Fatal("the redelivered task was not handled")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := e.sim.Stats().ByAgent["200"]; n != 1 {
		t.Errorf("Kaleyra called %d times, want 1", n)
	}
	if n := len(e.results()[id]); n != 1 {
		t.Errorf("%d results entries, want 1", n)
	}
}

func TestEnqueueClientReportsKnownIDs(t *testing.T) {
	e := newEnv(t)
	c, err := enqueue.New(enqueue.Options{Redis: asynq.RedisClientOpt{Addr: e.redis.Addr()}, SID: testSID})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	id, err := c.Enqueue(ctx, job("300"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enqueue(ctx, job("300")); !errors.Is(err, enqueue.ErrDuplicate) {
		t.Fatalf("second enqueue: %v, want ErrDuplicate", err)
	}
	e.startWorker(0)
	e.waitFinished(id)
	if _, err := c.Enqueue(ctx, job("300")); !errors.Is(err, enqueue.ErrAlreadyLaunched) {
		t.Fatalf("after success: %v, want ErrAlreadyLaunched", err)
	}
	other := job("300")
	other.ID = id
	other.Launch.TriggerDescription = "something else"
	if _, err := c.Enqueue(ctx, other); !errors.Is(err, enqueue.ErrConflict) {
		t.Fatalf("same ID, other payload: %v, want ErrConflict", err)
	}
	if _, err := c.Enqueue(ctx, job("300"), enqueue.Force()); err != nil {
		t.Fatalf("forced relaunch: %v", err)
	}
	e.waitFinished(id)
	deadline := time.Now().Add(10 * time.Second)
	for e.sim.Stats().ByAgent["300"] != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("forced relaunch: %d calls, want 2", e.sim.Stats().ByAgent["300"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMetricsEqualOutcomes(t *testing.T) {
	e := newEnv(t)
	e.sim.Script("400", sim.StepGateway) // then success
	e.sim.Script("401", sim.StepMissingFields)
	e.sim.Script("402", sim.StepDisabled)
	var ids []string
	for _, a := range []string{"400", "401", "402", "403", "404"} {
		id, _ := e.enqueue(job(a))
		ids = append(ids, id)
	}
	reg := prometheus.NewRegistry()
	log := zerolog.New(e.logs)
	w, err := worker.New(worker.Options{
		Redis: asynq.RedisClientOpt{Addr: e.redis.Addr()}, SID: testSID, APIKey: testKey, BaseURL: e.simTS.URL,
		RateLimit: 200, RetryMax: worker.DefaultRetryMax, RetryBaseDelay: 100 * time.Millisecond,
		RetryMaxDelay: 200 * time.Millisecond, Logger: &log, Metrics: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	e.waitFinished(ids...)

	want := map[string]float64{}
	for _, rs := range e.results() {
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
	if calls != float64(e.sim.Stats().Calls) {
		t.Errorf("rcslaunch_kaleyra_calls_total = %v, simulator saw %d", calls, e.sim.Stats().Calls)
	}
	if finished != 5 || attempts != 6 {
		t.Errorf("job_attempts: %v jobs with %v attempts, want 5 with 6", finished, attempts)
	}
}
