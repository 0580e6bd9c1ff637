package worker_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
	"github.com/rcslaunch/rcslaunch/worker"
)

// The accounts of these tests.
const (
	sidA = "ACCOUNTA0001"
	sidB = "ACCOUNTB0002"
	sidC = "ACCOUNTC0003"
)

// keyOf is account sid's api-key.
func keyOf(sid string) string { return "sk-" + sid + "-do-not-log" }

// account is sid with its own key; its other fields take Options' values.
func account(sid string) worker.Account { return worker.Account{SID: sid, APIKey: keyOf(sid)} }

// acctEnv is a test environment whose simulator stands behind a check of the
// api-key of every launch call: the simulator takes any key, and the check
// records, for each call, the account in its path and the account whose key
// it carried.
type acctEnv struct {
	*testenv.Env
	t   *testing.T
	sim *sim.Server
	url string

	mu    sync.Mutex
	calls []keyedCall
}

// keyedCall is one launch call: the account in its path and the account its
// key belongs to ("" for a key of no account).
type keyedCall struct{ path, key string }

// newAcctEnv makes the test's environment; parallel says whether the test
// runs in parallel with others.
func newAcctEnv(t *testing.T, parallel bool) *acctEnv {
	t.Helper()
	if parallel {
		t.Parallel()
	}
	e := &acctEnv{Env: testenv.New(t), t: t, sim: sim.New(sim.Config{})}
	owner := map[string]string{}
	for _, sid := range []string{sidA, sidB, sidC} {
		owner[keyOf(sid)] = sid
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if parts := strings.Split(r.URL.Path, "/"); len(parts) > 3 && strings.HasSuffix(r.URL.Path, "/launch") {
			e.mu.Lock()
			e.calls = append(e.calls, keyedCall{path: parts[2], key: owner[r.Header.Get("api-key")]})
			e.mu.Unlock()
		}
		e.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// callsBySID counts the launch calls by the account in their path, and
// fails the test for any call whose key is not that account's.
func (e *acctEnv) callsBySID() map[string]int {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	n := map[string]int{}
	for _, c := range e.calls {
		if c.key != c.path {
			e.t.Errorf("a launch call for %s carried the key of %q", c.path, c.key)
		}
		n[c.path]++
	}
	if simCalls := e.sim.Stats().Calls; simCalls != len(e.calls) {
		e.t.Errorf("the simulator received %d launch calls, the key check saw %d", simCalls, len(e.calls))
	}
	return n
}

// options are a worker's options for accts: fast retries, limits out of the
// way, debug logs to the environment's Logs.
func (e *acctEnv) options(accts ...worker.Account) worker.Options {
	log := zerolog.New(e.Logs).Level(zerolog.DebugLevel)
	return worker.Options{
		Redis: e.Conn, Accounts: accts, BaseURL: e.url, Timeout: 2 * time.Second,
		RateLimit: 200, RateBurst: 10, Concurrency: 8,
		RetryBaseDelay: 100 * time.Millisecond, RetryMaxDelay: 400 * time.Millisecond, Logger: &log,
	}
}

// enqueue enqueues agentNo's job for account sid, through a producer that
// puts it on its account's queue when a live worker serves the account.
func (e *acctEnv) enqueue(sid, agentNo string) string {
	e.t.Helper()
	return e.enqueueAt(sid, agentNo, "")
}

// enqueueAt is enqueue for a job of priority prio.
func (e *acctEnv) enqueueAt(sid, agentNo string, prio launch.Priority) string {
	e.t.Helper()
	j := launchtest.Job(agentNo)
	j.SID, j.Priority = sid, prio
	j.ID = launch.IDFor(testenv.SID, j)
	p := *e.Producer
	p.Fleet = queue.NewFleet(e.Store.Redis())
	if st, err := p.Enqueue(context.Background(), j, "", false); err != nil || st != queue.Enqueued {
		e.t.Fatalf("enqueue %s for %s: %s, %v", agentNo, sid, st, err)
	}
	return j.ID
}

// waitServed waits until the fleet shows a live worker serving sid.
func (e *acctEnv) waitServed(sid string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sids, err := queue.NewFleet(e.Store.Redis()).SIDs(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		if slices.Contains(sids, sid) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no live worker serves %s after 10 s (fleet: %v)", sid, sids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAccountsUseTheirOwnKeys: one worker serving two accounts sends each
// account's jobs with that account's key, from the shared queue and from
// the account's own.
func TestAccountsUseTheirOwnKeys(t *testing.T) {
	e := newAcctEnv(t, true)
	var ids []string
	for i, sid := range []string{sidA, sidB, sidA, sidB} { // on the shared queue: no worker yet
		ids = append(ids, e.enqueue(sid, fmt.Sprint(100+i)))
	}
	e.RunWorker(e.options(account(sidA), account(sidB)))
	e.waitServed(sidA)
	e.waitServed(sidB)
	for i, sid := range []string{sidA, sidB, sidB} { // on the accounts' queues
		ids = append(ids, e.enqueue(sid, fmt.Sprint(200+i)))
	}
	for id, r := range e.WaitFinished(ids...) {
		if r.State != store.StateSucceeded {
			t.Errorf("job %s: %s %s", id, r.State, r.Code)
		}
	}
	if n := e.callsBySID(); n[sidA] != 3 || n[sidB] != 4 || len(n) != 2 {
		t.Errorf("calls by account: %v; want %s 3, %s 4", n, sidA, sidB)
	}
	for _, sid := range []string{sidA, sidB} {
		if strings.Contains(e.Logs.String(), keyOf(sid)) {
			t.Errorf("the log holds %s's key", sid)
		}
	}
}

// TestSharedQueueJobsMoveToTheirAccounts: jobs enqueued while no worker
// served their accounts wait on the shared queue, one line for all
// accounts. A worker that serves the accounts moves each to its account's
// own queue, at the priority it was enqueued with, so that one account's
// backlog there does not hold up another's jobs.
func TestSharedQueueJobsMoveToTheirAccounts(t *testing.T) {
	e := newAcctEnv(t, true)
	var backlog []string
	for i := range 20 {
		backlog = append(backlog, e.enqueue(sidA, fmt.Sprint(500+i)))
	}
	urgent := e.enqueueAt(sidB, "600", launch.PriorityHigh)
	queueOf := func(id string) string {
		t.Helper()
		r, err := e.Store.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return r.Queue
	}
	for _, id := range append(slices.Clone(backlog), urgent) {
		if q := queueOf(id); q != queue.Name {
			t.Fatalf("job %s enqueued with no worker about is on queue %q, want the shared %q", id, q, queue.Name)
		}
	}
	slow := account(sidA)
	slow.RateLimit, slow.RateBurst = 1, 1
	e.RunWorker(e.options(slow, account(sidB)))

	if r := e.WaitFinished(urgent)[urgent]; r.State != store.StateSucceeded {
		t.Fatalf("job of %s: %s %s", sidB, r.State, r.Code)
	}
	if q, want := queueOf(urgent), queue.AccountQueue(sidB, launch.PriorityHigh); q != want {
		t.Errorf("job of %s ran from queue %q, want %q", sidB, q, want)
	}
	// At a call a second, the backlog takes 20 s; the other account's job
	// must not wait behind it.
	e.mu.Lock()
	callsOfA := 0
	for _, c := range e.calls {
		if c.path == sidA {
			callsOfA++
		}
	}
	e.mu.Unlock()
	if callsOfA >= 5 {
		t.Errorf("%s's job ran after %d of the backlog's calls, want fewer than 5", sidB, callsOfA)
	}
	for _, id := range backlog {
		if q, want := queueOf(id), queue.AccountQueue(sidA, launch.PriorityDefault); q != want {
			t.Errorf("backlog job %s is on queue %q, want %q", id, q, want)
		}
	}
}

// TestStaleSharedCopyIsDropped: a task on the shared queue whose job's
// record names another queue than the one it would move to is a stale copy
// (a move whose acknowledgement was lost, the job since retried at another
// priority): the job's task is on that queue, so the copy is dropped without
// a call, never run a second time.
func TestStaleSharedCopyIsDropped(t *testing.T) {
	e := newAcctEnv(t, true)
	id := e.enqueue(sidA, "700") // on the shared queue, at default priority: no worker yet
	own := queue.AccountQueue(sidA, launch.PriorityLow)
	if err := e.Store.SetJobQueue(context.Background(), id, own); err != nil {
		t.Fatal(err)
	}
	e.RunWorker(e.options(account(sidA)))
	deadline := time.Now().Add(10 * time.Second)
	for e.Task(id) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the stale copy is still on the shared queue after 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Had the copy been run or moved, its call would come within moments.
	time.Sleep(500 * time.Millisecond)
	r, err := e.Store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != store.StateQueued || r.Attempts != 0 || r.Queue != own {
		t.Errorf("record after the stale copy: %s, %d attempts, queue %q; want queued, 0, %q", r.State, r.Attempts, r.Queue, own)
	}
	if n := e.callsBySID(); n[sidA] != 0 {
		t.Errorf("%d calls for the stale copy, want none", n[sidA])
	}
}

// TestUnknownAccountIsDeadLettered: a job of an account no worker serves is
// dead-lettered UNKNOWN_ACCOUNT without a call.
func TestUnknownAccountIsDeadLettered(t *testing.T) {
	e := newAcctEnv(t, true)
	e.RunWorker(e.options(account(sidA)))
	e.waitServed(sidA)
	unknown := e.enqueue(sidC, "300")
	known := e.enqueue(sidA, "301")
	recs := e.WaitFinished(unknown, known)
	if r := recs[unknown]; r.State != store.StateDeadLettered || r.Code != "UNKNOWN_ACCOUNT" || r.SID != sidC {
		t.Errorf("job of %s: %s %s (sid %s), want dead-lettered UNKNOWN_ACCOUNT", sidC, r.State, r.Code, r.SID)
	}
	if r := recs[known]; r.State != store.StateSucceeded {
		t.Errorf("job of %s: %s %s", sidA, r.State, r.Code)
	}
	if n := e.callsBySID(); n[sidC] != 0 || n[sidA] != 1 {
		t.Errorf("calls by account: %v; want none for %s", n, sidC)
	}
	if n, err := e.Store.CountDeadLetters(context.Background(), store.Filter{Code: "UNKNOWN_ACCOUNT"}); err != nil || n != 1 {
		t.Errorf("UNKNOWN_ACCOUNT dead letters: %d, %v", n, err)
	}
}

// TestAccountRetryMax: each account retries as often as its own RetryMax
// says, whatever Options.RetryMax.
func TestAccountRetryMax(t *testing.T) {
	e := newAcctEnv(t, true)
	gateway := slices.Repeat([]sim.Step{sim.StepGateway}, 6)
	e.sim.Script("400", gateway...)
	e.sim.Script("401", gateway...)
	a, b := account(sidA), account(sidB)
	b.RetryMax = 2
	opts := e.options(a, b)
	opts.RetryMax = 4 // the single-account setting: not the accounts'
	e.RunWorker(opts)
	ida, idb := e.enqueue(sidA, "400"), e.enqueue(sidB, "401")
	recs := e.WaitFinished(ida, idb)
	for id, want := range map[string]int{ida: 1, idb: 3} {
		if r := recs[id]; r.State != store.StateDeadLettered || r.Code != "RCS502" || r.Attempts != want {
			t.Errorf("job %s: %s %s after %d attempts, want dead-lettered RCS502 after %d", id, r.State, r.Code, r.Attempts, want)
		}
	}
	if by := e.sim.Stats().ByAgent; by["400"] != 1 || by["401"] != 3 {
		t.Errorf("calls by agent: %v", by)
	}
	e.callsBySID()
}

// waitQueued fails unless the job stays queued, with its one task pending on
// qname, for a while in which a worker serving qname would have run it.
func (e *acctEnv) waitQueued(id, qname string) {
	e.t.Helper()
	time.Sleep(1500 * time.Millisecond)
	info, err := e.Inspector.GetTaskInfo(qname, id)
	if err != nil {
		e.t.Fatalf("task of %s on %s: %v", id, qname, err)
	}
	if r, err := e.Store.Get(context.Background(), id); err != nil || r.State != store.StateQueued {
		e.t.Fatalf("job %s: %s, %v; want queued (task %s)", id, r.State, err, info.State)
	}
}

// TestSetAccountsAddsAndRemoves: an account added while the worker runs is
// served at once, its dead letters run when retried; a removed account's
// jobs wait on its queue, neither run nor dead-lettered.
func TestSetAccountsAddsAndRemoves(t *testing.T) {
	e := newAcctEnv(t, true)
	w, _ := e.RunWorker(e.options(account(sidA), account(sidB)))
	e.waitServed(sidA)
	unknown := e.enqueue(sidC, "500")
	if r := e.WaitFinished(unknown)[unknown]; r.Code != "UNKNOWN_ACCOUNT" {
		t.Fatalf("job of %s before it is added: %s %s", sidC, r.State, r.Code)
	}

	if err := w.SetAccounts([]worker.Account{account(sidA), account(sidB), account(sidC)}); err != nil {
		t.Fatal(err)
	}
	e.waitServed(sidC)
	p := *e.Producer
	p.Fleet = queue.NewFleet(e.Store.Redis())
	if res, _, err := p.RetryDeadLetter(context.Background(), unknown, false); err != nil || res != store.Requeued {
		t.Fatalf("retry of the dead letter: %s, %v", res, err)
	}
	added := e.enqueue(sidC, "501")
	for _, id := range []string{unknown, added} {
		if q, _ := e.Store.JobQueue(context.Background(), id); q != queue.AccountQueue(sidC, "") {
			t.Errorf("job %s of the added account is on %q, want its own queue", id, q)
		}
	}
	for id, r := range e.WaitFinished(unknown, added) {
		if r.State != store.StateSucceeded {
			t.Errorf("job %s of the added account: %s %s", id, r.State, r.Code)
		}
	}

	// B removed: its jobs wait on its queue, which this worker no longer
	// takes from (another worker's claim puts them there).
	if err := w.SetAccounts([]worker.Account{account(sidA), account(sidC)}); err != nil {
		t.Fatal(err)
	}
	if err := queue.Serve(context.Background(), e.Store.Redis(), "other-worker", []string{sidB}, time.Now()); err != nil {
		t.Fatal(err)
	}
	removed := e.enqueue(sidB, "502")
	e.waitQueued(removed, queue.AccountQueue(sidB, ""))
	stillServed := e.enqueue(sidA, "503")
	if r := e.WaitFinished(stillServed)[stillServed]; r.State != store.StateSucceeded {
		t.Errorf("job of %s after the reload: %s %s", sidA, r.State, r.Code)
	}
	e.waitQueued(removed, queue.AccountQueue(sidB, ""))
	if n := e.callsBySID(); n[sidB] != 0 || n[sidC] != 2 || n[sidA] != 1 {
		t.Errorf("calls by account: %v", n)
	}

	// B back: its job runs.
	if err := w.SetAccounts([]worker.Account{account(sidA), account(sidB), account(sidC)}); err != nil {
		t.Fatal(err)
	}
	if r := e.WaitFinished(removed)[removed]; r.State != store.StateSucceeded {
		t.Errorf("job of %s once served again: %s %s", sidB, r.State, r.Code)
	}
	e.callsBySID()
}

// TestSetAccountsRefusesInvalidList: a list that is empty, names an SID
// twice, lacks a key or has an impossible limit is refused whole: the
// worker goes on serving the accounts, keys and limits it had.
func TestSetAccountsRefusesInvalidList(t *testing.T) {
	e := newAcctEnv(t, true)
	reg := prometheus.NewRegistry()
	a, b := account(sidA), account(sidB)
	a.RateLimit = 50
	opts := e.options(a, b)
	opts.Metrics = reg
	w, _ := e.RunWorker(opts)
	e.waitServed(sidA)
	before := testenv.Gauges(t, reg, "rcslaunch_effective_rate", "sid")
	if before[sidA] != 50 || before[sidB] != 200 {
		t.Fatalf("effective rates: %v", before)
	}

	faster := a
	faster.RateLimit = 100
	noKey := account(sidC)
	noKey.APIKey = ""
	negativeRetries := account(sidC)
	negativeRetries.RetryMax = -1
	negative := account(sidC)
	negative.RateLimit = -1
	for name, list := range map[string][]worker.Account{
		"empty":            nil,
		"SID twice":        {faster, b, a},
		"no key":           {faster, b, noKey},
		"negative rate":    {faster, b, negative},
		"negative retries": {faster, b, negativeRetries},
	} {
		if err := w.SetAccounts(list); err == nil {
			t.Errorf("SetAccounts with %s: no error", name)
		}
		if got := testenv.Gauges(t, reg, "rcslaunch_effective_rate", "sid"); got[sidA] != 50 || got[sidB] != 200 || len(got) != 2 {
			t.Errorf("after SetAccounts with %s: effective rates %v, want as before %v", name, got, before)
		}
	}
	id := e.enqueue(sidA, "600")
	if r := e.WaitFinished(id)[id]; r.State != store.StateSucceeded {
		t.Errorf("job of %s after refused reloads: %s %s", sidA, r.State, r.Code)
	}
	if n := e.callsBySID(); n[sidA] != 1 {
		t.Errorf("calls by account: %v", n)
	}
}

// workerGoroutines lists the goroutines running code of asynq or of the
// worker package. Parallel tests are paused while a test that is not
// parallel runs, so the list is that test's.
func workerGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/hibiken/asynq.") || strings.Contains(g, "rcslaunch/worker.(*Worker)") {
			out = append(out, g)
		}
	}
	return out
}

// TestRunStopsAfterReloads: reloads, some at once with each other and with
// jobs in flight, then the end of Run: every generation shuts down, and no
// goroutine of the worker or of asynq is left.
func TestRunStopsAfterReloads(t *testing.T) {
	e := newAcctEnv(t, false)
	before := len(workerGoroutines())
	e.sim.SetConfig(sim.Config{Latency: 50 * time.Millisecond})
	w, stop := e.RunWorker(e.options(account(sidA)))
	e.waitServed(sidA)
	var ids []string
	for i := range 10 {
		ids = append(ids, e.enqueue(sidA, fmt.Sprint(700+i)))
	}
	lists := [][]worker.Account{
		{account(sidA), account(sidB)},
		{account(sidA)},
		{account(sidA), account(sidC)},
		{account(sidA), account(sidB), account(sidC)},
	}
	var wg sync.WaitGroup
	for _, list := range lists {
		wg.Go(func() {
			if err := w.SetAccounts(list); err != nil {
				t.Errorf("SetAccounts: %v", err)
			}
		})
	}
	wg.Wait()
	for id, r := range e.WaitFinished(ids...) {
		if r.State != store.StateSucceeded {
			t.Errorf("job %s: %s %s", id, r.State, r.Code)
		}
	}
	if err := w.SetAccounts([]worker.Account{account(sidA), account(sidB)}); err != nil {
		t.Fatal(err)
	}
	stop()
	deadline := time.Now().Add(10 * time.Second)
	for left := workerGoroutines(); len(left) > before; left = workerGoroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after Run returned, the first:\n%s", len(left), left[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A reload after Run changes the accounts without starting anything.
	if err := w.SetAccounts([]worker.Account{account(sidC)}); err != nil {
		t.Fatal(err)
	}
	if left := workerGoroutines(); len(left) > before {
		t.Fatalf("SetAccounts after Run started %d goroutines, the first:\n%s", len(left), left[0])
	}
	e.callsBySID()
}

// TestThrottleLogsAccountRate: the log of an account's rate lowered by a 429
// names that account's own configured rate.
func TestThrottleLogsAccountRate(t *testing.T) {
	e := newAcctEnv(t, true)
	e.sim.Script("800", sim.StepThrottle) // then success
	a := account(sidA)
	a.RateLimit = 50
	e.RunWorker(e.options(a, account(sidB))) // Options' rate: 200
	id := e.enqueue(sidA, "800")
	if r := e.WaitFinished(id)[id]; r.State != store.StateSucceeded {
		t.Fatalf("job: %s %s", r.State, r.Code)
	}
	for _, line := range strings.Split(e.Logs.String(), "\n") {
		if strings.Contains(line, "effective rate changed") {
			if !strings.Contains(line, `"effective_rate":25,`) || !strings.Contains(line, `"rate_limit":50,`) {
				t.Errorf("log of the lowered rate: %s; want effective_rate 25, rate_limit 50", line)
			}
			return
		}
	}
	t.Errorf("no log of the lowered rate:\n%s", e.Logs.String())
}

// TestSetAccountsAtOnce: reloads that race each other leave the worker
// serving one of the lists whole: its accounts with that list's limits.
func TestSetAccountsAtOnce(t *testing.T) {
	e := newAcctEnv(t, true)
	reg := prometheus.NewRegistry()
	opts := e.options(account(sidA))
	opts.Metrics = reg
	w, err := worker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	slow, fast := account(sidA), account(sidA)
	slow.RateLimit, fast.RateLimit = 10, 20
	lists := [][]worker.Account{{slow, account(sidB)}, {fast, account(sidC)}}
	for range 200 {
		var wg sync.WaitGroup
		for _, list := range lists {
			wg.Go(func() {
				if err := w.SetAccounts(list); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got := testenv.Gauges(t, reg, "rcslaunch_effective_rate", "sid")
		if want := map[string]float64{sidA: 10, sidB: 200}; got[sidB] != 0 && !maps.Equal(got, want) {
			t.Fatalf("serving %v, want %v", got, want)
		}
		if want := map[string]float64{sidA: 20, sidC: 200}; got[sidC] != 0 && !maps.Equal(got, want) {
			t.Fatalf("serving %v, want %v", got, want)
		}
	}
}

// TestFirstHighPriorityJobIsServed: a worker serves an account's high- and
// low-priority queues only once they are used; the first job of a new
// priority makes it serve that queue (within a second) and
// runs.
func TestFirstHighPriorityJobIsServed(t *testing.T) {
	e := newAcctEnv(t, true)
	e.RunWorker(e.options(account(sidA)))
	e.waitServed(sidA)
	j := launchtest.Job("700")
	j.SID = sidA
	j.ID = launch.IDFor(testenv.SID, j)
	p := e.Producer.At(queue.PriorityHigh)
	p.Fleet = queue.NewFleet(e.Store.Redis())
	if st, err := p.Enqueue(context.Background(), j, "", false); err != nil || st != queue.Enqueued {
		t.Fatalf("enqueue at high priority: %s, %v", st, err)
	}
	if q, err := e.Store.JobQueue(context.Background(), j.ID); err != nil || q != queue.AccountQueue(sidA, queue.PriorityHigh) {
		t.Fatalf("job's queue: %q, %v", q, err)
	}
	if r := e.WaitFinished(j.ID)[j.ID]; r.State != store.StateSucceeded {
		t.Errorf("high-priority job: %s %s", r.State, r.Code)
	}
	if !strings.Contains(e.Logs.String(), "serving a new set of queues") {
		t.Errorf("the worker did not log that it serves the new queue")
	}
}

// TestManyAccountsServerEach: a worker serving many accounts, an asynq
// server each (queue.Layout), runs every job once with its account's key,
// retries included (each server moves its own queues' due retries), and
// stops cleanly.
func TestManyAccountsServerEach(t *testing.T) {
	e := newAcctEnv(t, true)
	b := account(sidB)
	b.RetryMax = 3
	accts := []worker.Account{account(sidA), b, account(sidC)}
	for i := range 40 {
		accts = append(accts, account(fmt.Sprintf("IDLE%04d", i)))
	}
	e.sim.Script("904", sim.StepGateway, sim.StepGateway) // sidB's: two retries, then a success
	e.RunWorker(e.options(accts...))
	for _, sid := range []string{sidA, sidB, sidC} {
		e.waitServed(sid)
	}
	var ids []string
	for i := range 30 {
		ids = append(ids, e.enqueue([]string{sidA, sidB, sidC}[i%3], fmt.Sprint(900+i)))
	}
	for id, r := range e.WaitFinished(ids...) {
		if r.State != store.StateSucceeded {
			t.Errorf("job %s: %s %s", id, r.State, r.Code)
		}
	}
	if n := e.callsBySID(); n[sidA] != 10 || n[sidB] != 12 || n[sidC] != 10 || len(n) != 3 {
		t.Errorf("calls by account: %v; want %s 10, %s 12 (two retries), %s 10", n, sidA, sidB, sidC)
	}
}

// TestServersSizedByInFlightCap: each account's asynq server gets its
// in-flight cap + 1 handlers while the worker's concurrency allows, a share
// in proportion when it does not (which the worker logs), and a reload that
// changes only a cap resizes the servers; jobs still run.
func TestServersSizedByInFlightCap(t *testing.T) {
	e := newAcctEnv(t, true)
	opts := e.options(account(sidA), account(sidB)) // caps 5 (default): 6 + 6 > 8
	e.RunWorker(opts)
	insp := asynq.NewInspectorFromRedisClient(e.Store.Redis())
	qa, qb := queue.AccountQueue(sidA, ""), queue.AccountQueue(sidB, "")
	waitServers := func(want map[string]int) {
		t.Helper()
		var got map[string]int
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			srvs, err := insp.Servers()
			if err != nil {
				t.Fatal(err)
			}
			got = map[string]int{}
			for _, s := range srvs {
				for q := range s.Queues {
					got[q] += s.Concurrency
				}
			}
			if maps.Equal(got, want) {
				return
			}
		}
		t.Fatalf("handlers by queue: %v, want %v", got, want)
	}
	waitServers(map[string]int{qa: 4, qb: 4})
	if !strings.Contains(e.Logs.String(), "WORKER_CONCURRENCY is below the handlers the accounts can use") {
		t.Errorf("the worker did not say that its concurrency is short")
	}

	a := account(sidA)
	a.MaxInFlight = 1
	w, _ := e.RunWorker(opts) // a second worker of the same accounts: the first keeps its servers
	waitServers(map[string]int{qa: 8, qb: 8})
	if err := w.SetAccounts([]worker.Account{a, account(sidB)}); err != nil {
		t.Fatal(err)
	}
	waitServers(map[string]int{qa: 4 + 2, qb: 4 + 6})
	ids := []string{e.enqueue(sidA, "700"), e.enqueue(sidB, "701")}
	for id, r := range e.WaitFinished(ids...) {
		if r.State != store.StateSucceeded {
			t.Errorf("job %s after the reload: %s %s", id, r.State, r.Code)
		}
	}
}
