package main

// Chaos tests (issue 5): the faults a production queue meets, each with real
// processes (rcslaunch worker, serve and enqueue against a private
// redis-server and the simulator), checking that every job ends in exactly
// one place and counting the launches sent twice. The harness is in
// e2e_helpers_test.go; the SIGKILL of a lone worker and the RCS502 storm are
// in fleet_test.go, SIGTERM in e2e_test.go.
//
// LONG tests (skipped with -short) wait for asynq's recovery of a killed
// worker's tasks (about a minute) or work through 25,000 dead letters; all
// run in parallel with the rest.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/internal/testredis"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
)

// runFor is run bounded by timeout instead of cmdTimeout, for commands
// over tens of thousands of records.
func (e *env) runFor(timeout time.Duration, args ...string) result {
	e.t.Helper()
	return e.runBounded(timeout, nil, "", args...)
}

// queueInfo is asynq's view of the launch queue (zero when it does not exist yet).
func (e *env) queueInfo() asynq.QueueInfo {
	e.t.Helper()
	insp := e.Inspector
	info, err := insp.GetQueueInfo(queue.Name)
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return asynq.QueueInfo{}
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return *info
}

// waitQueueEmpty waits until asynq holds no task of the launch queue in any
// state but completed: every job has been acknowledged, none is left over.
// On failure it shows what the processes ps logged about the tasks left.
func (e *env) waitQueueEmpty(timeout time.Duration, ps ...*proc) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		info := e.queueInfo()
		if info.Pending+info.Active+info.Scheduled+info.Retry+info.Archived+info.Aggregating == 0 {
			return
		}
		if time.Now().After(deadline) {
			if ts, err := e.Inspector.ListActiveTasks(queue.Name); err == nil {
				for _, ti := range ts {
					for _, p := range ps {
						for _, l := range strings.Split(p.stderr.String(), "\n") {
							if strings.Contains(l, ti.ID) {
								e.t.Logf("active task %s: %s", ti.ID, l)
							}
						}
					}
				}
			}
			e.t.Fatalf("the launch queue still holds tasks %v after all jobs finished: pending %d, active %d, scheduled %d, retry %d, archived %d",
				timeout, info.Pending, info.Active, info.Scheduled, info.Retry, info.Archived)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// inFlightAt returns the agents whose calls the simulator had received
// before t and not answered before from.
func inFlightAt(calls []sim.Call, from, t time.Time) map[string]bool {
	out := map[string]bool{}
	for _, c := range calls {
		if c.At.Before(t) && (c.Duration == 0 || !c.At.Add(c.Duration).Before(from)) {
			out[c.AgentNo] = true
		}
	}
	return out
}

// calledTwice returns the agents the simulator received more than one call
// for, with their counts.
func calledTwice(st sim.Stats) map[string]int {
	out := map[string]int{}
	for a, n := range st.ByAgent {
		if n > 1 {
			out[a] = n
		}
	}
	return out
}

// TestChaosSIGKILLOneOfTwoWorkers (LONG, about 70s): two workers share a
// batch; one is killed with SIGKILL while both have calls in flight. The
// survivor keeps working, a replacement is started at once (as a process
// supervisor would), and every job ends with exactly one success. Only the
// killed worker's calls in flight at the kill are sent again: the count of
// agents called twice equals the calls the kill cut off, which is at most
// the calls in flight at the kill, and no other agent is called twice.
//
// The replacement starts after the kill on purpose: asynq's recoverer runs
// when a server starts and then every minute, and takes a task whose lease
// (30s, renewed every 5s) ran out 30s ago; a recoverer started after the kill
// finds the lost tasks on its second pass, about 60s later, while the
// survivor's, started before, may need a third (up to 120s).
func TestChaosSIGKILLOneOfTwoWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("LONG: waits for asynq's recovery of the killed worker's tasks (about a minute)")
	}
	t.Parallel()
	const (
		n       = 40
		latency = time.Second
		// recordSlack is how long before the kill an answered call still
		// counts as in flight: between the answer and its outcome in Redis.
		recordSlack = 250 * time.Millisecond
	)
	begin := time.Now()
	e := newEnv(t, sim.Config{Latency: latency})
	jobs := e.enqueueBatch("sigkill", 90000, n)
	mod := map[string]string{"WORKER_CONCURRENCY": "3", "KALEYRA_MAX_IN_FLIGHT": "6", "KALEYRA_TIMEOUT": "3s"}
	ws := e.startWorkers(2, mod)
	a, b := ws[0], ws[1]
	// Mid-batch, with calls in flight from both: at most 3 per process, so
	// 4 in flight means both have some.
	e.waitResultCount(6, 30*time.Second)
	waitFor(t, 20*time.Second, "calls in flight from both workers", func() bool { return e.Sim.Stats().InFlight >= 4 })
	killed := time.Now() // calls in flight now are the ones the kill may cut
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	// The killed worker's jobs whose outcome it had not recorded: its calls
	// cut off, and any answered but not yet recorded, however long before
	// the kill the answer came on a loaded machine. Nothing touches them
	// until asynq redelivers them, long after this.
	unrecorded := map[string]bool{}
	rc := e.Redis.Client()
	for id, agent := range jobs {
		state, err := rc.HGet(context.Background(), rdb.JobKey(id), "state").Result()
		if err != nil {
			t.Fatalf("job %s's state after the kill: %v", id, err)
		}
		if state == string(store.StateRunning) {
			unrecorded[agent] = true
		}
	}
	c := e.startWorker(mod) // the replacement
	bAttemptsAtKill := len(logLines(t, "launch attempt", b))

	// A call the kill cut off ended early at the simulator (the connection
	// dropped); the survivor's calls in flight at the kill ran their full
	// latency. Wait until both kinds have ended. A call answered a moment
	// before the kill counts as in flight too: its answer may not have been
	// recorded yet.
	time.Sleep(latency + 300*time.Millisecond)
	atKill := inFlightAt(e.Sim.Calls(), killed.Add(-recordSlack), killed)
	strict := inFlightAt(e.Sim.Calls(), killed, killed)
	cut := map[string]bool{}
	for _, cl := range e.Sim.Calls() {
		if cl.At.Before(killed) && cl.Duration > 0 && cl.Duration < latency-50*time.Millisecond {
			cut[cl.AgentNo] = true
		}
	}
	t.Logf("killed one of two workers %v after the test began: %d calls in flight at the simulator (%d more answered within %v before), %d of them the killed worker's (cut off: agents %v)",
		killed.Sub(begin).Round(time.Millisecond), len(strict), len(atKill)-len(strict), recordSlack, len(cut), sortedKeys(cut))
	if len(cut) == 0 {
		t.Fatal("the kill cut off no call: the test proves nothing")
	}

	e.waitResultCount(n, 150*time.Second)
	done := time.Now()
	e.waitQueueEmpty(10 * time.Second)
	if b.exited() {
		t.Fatalf("the surviving worker exited %d; stderr:\n%s", b.code, tail(b.stderr.String(), 3000))
	}
	if got := len(logLines(t, "launch attempt", b)); got <= bAttemptsAtKill {
		t.Errorf("the surviving worker made no call after the kill (%d attempts logged before, %d after)", bAttemptsAtKill, got)
	}
	b.stop()
	c.stop()

	e.checkAllSucceeded(t, jobs, e2eRetryMax+1)
	st := e.Sim.Stats()
	twice := calledTwice(st)
	for agent, k := range twice {
		switch {
		case k > 2:
			t.Errorf("agent %s called %d times", agent, k)
		case !atKill[agent] && !unrecorded[agent]:
			t.Errorf("agent %s called twice but it had no call in flight at the kill, and its job's outcome was recorded", agent)
		case !cut[agent]:
			t.Logf("agent %s called twice: answered before the kill, not yet recorded", agent)
		}
	}
	for agent := range cut {
		if st.ByAgent[agent] != 2 {
			t.Errorf("agent %s, whose call the kill cut off, was called %d times, want 2 (the lost call and the redelivery)", agent, st.ByAgent[agent])
		}
	}
	if len(twice) > max(len(atKill), len(unrecorded)) {
		t.Errorf("%d agents called twice, more than the %d calls in flight at the kill and the %d jobs running then", len(twice), len(atKill), len(unrecorded))
	}
	// The redelivered jobs say what happened.
	var redelivered time.Duration
	for id, agent := range jobs {
		if !cut[agent] {
			continue
		}
		s := e.statusJSON(id)
		if len(s.History) == 0 || s.History[0].Outcome != store.AttemptLost {
			t.Errorf("job %s, cut off by the kill: history %+v, want a lost attempt first", id, s.History)
		}
	}
	for _, cl := range e.Sim.Calls() {
		if cut[cl.AgentNo] && cl.At.After(killed) {
			redelivered = max(redelivered, cl.At.Sub(killed))
		}
	}
	t.Logf("%d jobs, %d calls: %d agents called twice (bound: %d calls in flight at the kill, %d with those answered just before; %d of them the killed worker's); redelivered by +%v; batch complete %v after the kill, %v after the test began",
		n, st.Calls, len(twice), len(strict), len(atKill), len(cut), redelivered.Round(time.Millisecond),
		done.Sub(killed).Round(time.Millisecond), done.Sub(begin).Round(time.Millisecond))
	for _, p := range []*proc{b, c} {
		checkLogs(t, p.stderr.String())
	}
}

// api is a running `rcslaunch serve`.
type api struct {
	e            *env
	p            *proc
	base         string
	token, admin string
	client       *http.Client
}

// startServe starts `rcslaunch serve` on a free loopback port with a
// producer and an admin token, and waits until it answers /healthz.
func (e *env) startServe() *api {
	e.t.Helper()
	addr := freeAddr(e.t.(*testing.T))
	s := &api{e: e, base: "http://" + addr, token: "producer-token-5b1e", admin: "admin-token-c9d2",
		client: &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	s.p = e.start(map[string]string{"HTTP_ADDR": addr, "HTTP_TOKEN": s.token, "HTTP_ADMIN_TOKEN": s.admin}, "serve")
	waitFor(e.t, 20*time.Second, "serve to answer /healthz", func() bool {
		if s.p.exited() {
			e.t.Fatalf("serve exited %d at start; stderr:\n%s", s.p.code, tail(s.p.stderr.String(), 3000))
		}
		resp, err := s.client.Get(s.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

// answer is one HTTP answer of ours.
type answer struct {
	status int
	header http.Header
	body   string
}

// do sends one request with a bearer token (none when empty); the answer is
// recorded for the API key check. Extra headers come as name, value pairs.
func (s *api) do(method, path, token string, body []byte, hdr ...string) answer {
	s.e.t.Helper()
	req, err := http.NewRequest(method, s.base+path, bytes.NewReader(body))
	if err != nil {
		s.e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.e.t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	var hs strings.Builder
	resp.Header.Write(&hs)
	s.e.record(string(data), hs.String())
	return answer{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

// TestChaosRedisRestartMidBatch: Redis (AOF, fsync always) is killed
// mid-batch and started again 2s later. Two worker processes and a producer
// (`serve`) carry on by themselves: during the outage the producer refuses
// with an error (nothing silently dropped), after it it enqueues again, and
// every job, those before and after the restart, ends with exactly one
// results entry. No launch is sent twice: no worker died.
//
// LONG at times: about 12s, but up to about 2 minutes when the kill leaves a
// task to asynq's recoverer (see below).
func TestChaosRedisRestartMidBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("LONG at times: may wait for asynq's recovery of a task (up to about 2 minutes)")
	}
	t.Parallel()
	const (
		n, m   = 60, 20
		outage = 2 * time.Second
	)
	// AOF, fsync always, as production should run: Redis can be killed and
	// restarted without losing what it acknowledged.
	e := newEnv(t, sim.Config{Latency: 200 * time.Millisecond}, testredis.WithAOF())
	jobs := e.enqueueBatch("restart", 81000, n)
	mod := map[string]string{"WORKER_CONCURRENCY": "3", "KALEYRA_MAX_IN_FLIGHT": "6"}
	ws := e.startWorkers(2, mod)
	srv := e.startServe()

	e.waitResultCount(15, 30*time.Second)
	e.Redis.Kill()
	down := time.Now()
	inFlight := e.Sim.Stats().InFlight
	// The producer refuses while Redis is down: the caller knows the job
	// was not taken.
	outageJob := launchtest.Line("outage-0", "81900", nil)
	if a := srv.do("POST", "/v1/launches", srv.token, []byte(outageJob)); a.status < 500 {
		t.Errorf("POST /v1/launches while Redis is down: HTTP %d %s, want a 5xx", a.status, a.body)
	}
	time.Sleep(outage - time.Since(down))
	e.Redis.Restart()
	up := time.Now()
	xlenAtUp, _ := e.Redis.Client().XLen(context.Background(), store.ResultsStream).Result()
	t.Logf("Redis down for %v with %d calls in flight and %d results recorded", up.Sub(down).Round(time.Millisecond), inFlight, xlenAtUp)

	// The same producer process, not restarted, enqueues again.
	post := func(id, agent string) {
		t.Helper()
		a := srv.do("POST", "/v1/launches", srv.token, []byte(launchtest.Line(id, agent, nil)))
		if a.status != http.StatusCreated {
			t.Fatalf("POST /v1/launches %s after the restart: HTTP %d %s", id, a.status, a.body)
		}
		jobs[id] = agent
	}
	post("outage-0", "81900")
	for i := 0; i < m; i++ {
		post(fmt.Sprintf("after-%d", i), fmt.Sprint(81100+i))
	}
	e.waitResultCount(len(jobs), 180*time.Second)
	done := time.Now()
	// Two things the kill can leave to asynq's recoverer, which hands a task
	// out again once its lease has run out, 1 to 2 minutes later (so the
	// generous timeouts; in about one run in six here):
	//   - a dequeue Redis applied (and wrote to the AOF) but whose reply the
	//     kill lost: the task sits "active" with no worker; it runs late,
	//     for the first time;
	//   - an acknowledgement that failed while Redis was down: asynq v0.26
	//     retries it with a context it has already cancelled ("Will retry
	//     syncing" in the log, then nothing), so the finished task stays
	//     active; redelivered, the worker finishes it without calling
	//     Kaleyra, its outcome being recorded.
	time.Sleep(2 * time.Second)
	var stuck []string
	if ts, err := e.Inspector.ListActiveTasks(queue.Name); err == nil {
		for _, ti := range ts {
			stuck = append(stuck, ti.ID)
		}
	}
	e.waitQueueEmpty(150*time.Second, ws...)
	empty := time.Now()
	for _, id := range stuck {
		found := false
		for _, l := range logLines(t, "job already finished; not calling Kaleyra again", ws...) {
			found = found || l["job_id"] == id
		}
		if !found {
			t.Errorf("job %s, left active in asynq after the restart, was not finished without a call", id)
		}
	}
	for i, w := range ws {
		if w.exited() {
			t.Fatalf("worker %d exited %d during the outage; stderr:\n%s", i, w.code, tail(w.stderr.String(), 3000))
		}
	}
	for _, w := range ws {
		w.stop()
	}
	srv.p.stop()

	e.checkAllSucceeded(t, jobs, e2eRetryMax+1)
	st := e.Sim.Stats()
	twice := calledTwice(st)
	if len(twice) > 0 {
		t.Errorf("agents called twice after a Redis restart, with no worker dying: %v", twice)
	}
	var after int
	for _, cl := range e.Sim.Calls() {
		if cl.At.After(up) {
			after++
		}
	}
	refused := 0
	for _, w := range ws {
		refused += strings.Count(w.stderr.String(), "connection refused")
	}
	t.Logf("%d jobs (%d enqueued after the restart): %d calls, %d agents called twice; %d calls after the restart; all done %v after it; workers logged %d connection-refused errors; %d tasks left active by a lost acknowledgement (%v), redelivered and finished without a call; queue empty %v after the restart",
		len(jobs), m+1, st.Calls, len(twice), after, done.Sub(up).Round(time.Millisecond), refused, len(stuck), stuck, empty.Sub(up).Round(time.Millisecond))
	for _, p := range append(ws, srv.p) {
		checkLogs(t, p.stderr.String())
	}
}

// TestChaosRedisUnreachableAtStart: every command that needs Redis fails at
// once with exit status 1 and a message that names Redis and REDIS_URL, and
// enqueue reports nothing as enqueued.
func TestChaosRedisUnreachableAtStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	dead := map[string]string{"REDIS_URL": "redis://" + deadAddr(t) + "/0", "HTTP_ADDR": freeAddr(t)}
	file := e.writeFile("two.jsonl", launchtest.Line("", "95001", nil), launchtest.Line("", "95002", nil))
	for _, c := range []struct {
		stdin string
		args  []string
	}{
		{"", []string{"worker"}},
		{launchtest.Line("", "95000", nil), []string{"enqueue"}},
		{"", []string{"enqueue", "--file", file}},
		{"", []string{"enqueue", "--file", file, "--json"}},
		{"", []string{"serve"}},
		{"", []string{"status", "some-job"}},
		{"", []string{"dlq", "list"}},
		{"", []string{"dlq", "retry", "--all"}},
		{"", []string{"results"}},
	} {
		start := time.Now()
		r := e.runWith(dead, c.stdin, c.args...)
		took := time.Since(start)
		if r.code != 1 {
			t.Errorf("with Redis unreachable, want exit 1:\n%s", r)
			continue
		}
		last := lastLine(r.err)
		if !strings.Contains(last, "REDIS_URL") || !strings.Contains(strings.ToLower(last), "redis") {
			t.Errorf("rcslaunch %s: the error does not name Redis and REDIS_URL: %q", strings.Join(c.args, " "), last)
		}
		if strings.Contains(r.stdout, "enqueued") || strings.Contains(r.stdout, "batch_id") {
			t.Errorf("rcslaunch %s printed a summary with Redis unreachable:\n%s", strings.Join(c.args, " "), r)
		}
		if took > 10*time.Second {
			t.Errorf("rcslaunch %s took %v to give up on Redis", strings.Join(c.args, " "), took)
		}
		t.Logf("rcslaunch %s: exit %d after %v: %s", strings.Join(c.args, " "), r.code, took.Round(time.Millisecond), last)
	}
}

// deadAddr is an address where no Redis answers for the whole test: a port
// the test holds, closing every connection at once. A port merely found
// free could be taken meanwhile by another test's redis-server, which would
// then answer.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestChaosRedisDiesDuringEnqueue kills Redis (AOF, fsync always) while
// `enqueue --file --json` works through a file of 3,000 jobs. The command
// stops at the first Redis error, exits 1, still prints its JSON summary,
// and says that its batch is left open and how to close it. The summary
// accounts for every row exactly: each row is enqueued, in doubt (its write
// was on the wire at the crash: Redis may have applied it though the kill
// lost the reply) or not tried, the in-doubt and not-tried rows named by
// line. After Redis is back, every enqueued row is on the queue, no row
// that was not tried has left a trace, and enqueueing the same file again
// completes it exactly, every job once, the earlier ones reported as
// duplicates.
//
// A slow pipe on stdin cannot time the kill: `--file -` spools stdin to a
// file before it validates, so the kill is timed on the queue's length.
func TestChaosRedisDiesDuringEnqueue(t *testing.T) {
	t.Parallel()
	const (
		rows   = 3000
		killAt = 2000
	)
	e := newEnv(t, sim.Config{}, testredis.WithAOF()) // killed and restarted
	lines := make([]string, rows)
	for i := range lines {
		lines[i] = launchtest.Line(fmt.Sprintf("big-%d", i+1), fmt.Sprint(100000+i), nil) // line n holds job big-n
	}
	file := e.writeFile("big.jsonl", lines...)
	pendingKey := "asynq:{" + queue.Name + "}:pending"
	rdb := e.Redis.Client()
	pending := func() int64 { n, _ := rdb.LLen(context.Background(), pendingKey).Result(); return n }

	p := e.start(nil, "enqueue", "--file", file, "--json")
	begin := time.Now()
	for pending() < killAt {
		if p.exited() {
			t.Fatalf("enqueue finished before the kill; raise rows:\n%s", p.stdout.String())
		}
		if time.Since(begin) > 60*time.Second {
			t.Fatalf("only %d jobs on the queue after 60s", pending())
		}
		time.Sleep(time.Millisecond)
	}
	e.Redis.Kill()
	killed := time.Now()
	select {
	case <-p.done:
	case <-time.After(120 * time.Second):
		t.Fatalf("enqueue still running 120s after Redis died")
	}
	exited := time.Since(killed)
	res := result{args: []string{"enqueue", "--file", file, "--json"}, code: p.code, stdout: p.stdout.String(), err: p.stderr.String()}
	if res.code != 1 {
		t.Fatalf("enqueue exit %d after Redis died, want 1\n%s", res.code, res)
	}
	s := parseSummary(t, res)
	if s.ErrorsOmitted > 0 {
		t.Fatalf("%d errors omitted: the test needs every row named\n%s", s.ErrorsOmitted, res)
	}
	if s.Enqueued == 0 || s.InDoubt+s.NotTried == 0 || s.Failed != 0 ||
		s.Enqueued+s.InDoubt+s.NotTried != rows || s.Duplicate+s.AlreadyLaunched+s.DeadLettered+s.Invalid != 0 {
		t.Fatalf("summary does not account for the %d rows as enqueued, in doubt or not tried:\n%s", rows, res.stdout)
	}
	for _, want := range []string{"enqueue stopped at the first Redis error", "run the same file again", "rcslaunch batch close " + *s.BatchID} {
		if !strings.Contains(res.err, want) {
			t.Errorf("stderr does not say %q:\n%s", want, tail(res.err, 2000))
		}
	}
	// Each row's fate, by line: listed in doubt, listed not tried (one by
	// one, or from the first line never handed out on), else enqueued.
	fate := make([]string, rows+1)
	notTriedFrom := rows + 1
	for _, er := range s.Errors {
		switch {
		case strings.HasPrefix(er.Reason, "in doubt: "):
			fate[er.Line] = "in doubt"
		case strings.HasPrefix(er.Reason, "not tried: the run stopped before this row;"):
			notTriedFrom = er.Line
		case strings.HasPrefix(er.Reason, "not tried: "):
			fate[er.Line] = "not tried"
		default:
			t.Errorf("unexpected error in the summary: %+v", er)
		}
	}
	count := map[string]int{}
	for n := 1; n <= rows; n++ {
		switch {
		case fate[n] != "":
		case n >= notTriedFrom:
			fate[n] = "not tried"
		default:
			fate[n] = "enqueued"
		}
		count[fate[n]]++
	}
	if count["enqueued"] != s.Enqueued || count["in doubt"] != s.InDoubt || count["not tried"] != s.NotTried {
		t.Errorf("rows by line %v do not match the summary's counts (enqueued %d, in doubt %d, not tried %d)",
			count, s.Enqueued, s.InDoubt, s.NotTried)
	}

	e.Redis.Restart()
	queued := map[string]bool{}
	ids, err := rdb.LRange(context.Background(), pendingKey, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		queued[id] = true
	}
	records := map[string]bool{}
	iter := rdb.Scan(context.Background(), 0, "rcslaunch:*:job:*", 1000).Iterator()
	for iter.Next(context.Background()) {
		k := iter.Val()
		records[k[strings.LastIndex(k, ":")+1:]] = true
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	inDoubtThere := 0
	for n := 1; n <= rows; n++ {
		id := fmt.Sprintf("big-%d", n)
		switch fate[n] {
		case "enqueued":
			if !queued[id] || !records[id] {
				t.Errorf("line %d was reported enqueued, but after the restart its task is there: %v, its record: %v", n, queued[id], records[id])
			}
		case "not tried":
			if queued[id] || records[id] {
				t.Errorf("line %d was reported not tried, but after the restart its task is there: %v, its record: %v", n, queued[id], records[id])
			}
		case "in doubt":
			if queued[id] || records[id] {
				inDoubtThere++
			}
		}
	}
	t.Logf("Redis killed %v into the run at %d queued; enqueue exited %v later; summary: %d enqueued, %d in doubt (%d of them left a task or record), %d not tried",
		killed.Sub(begin).Round(time.Millisecond), killAt, exited.Round(time.Millisecond),
		s.Enqueued, s.InDoubt, inDoubtThere, s.NotTried)
	if exited > 15*time.Second {
		t.Errorf("enqueue took %v to stop after Redis died", exited)
	}
	tasks := len(queued)

	// The batch left open is closed by hand; it holds the jobs that made it.
	e.mustRun(0, "batch", "close", *s.BatchID)
	e.mustRun(0, "batch", "close", *s.BatchID) // closing twice changes nothing
	e.mustRun(1, "batch", "close", "b_nosuchbatch")
	var b struct {
		Total int `json:"total"`
	}
	if err := json.Unmarshal([]byte(e.mustRun(0, "batch", "status", *s.BatchID, "--json").stdout), &b); err != nil {
		t.Fatal(err)
	}
	if b.Total < s.Enqueued || b.Total > s.Enqueued+inDoubtThere {
		t.Errorf("the batch holds %d jobs; %d were enqueued and %d in doubt left a trace", b.Total, s.Enqueued, inDoubtThere)
	}

	// The operator's recovery: the same file again.
	r := e.runFor(60*time.Second, "enqueue", "--file", file, "--json")
	again := parseSummary(t, r)
	if r.code != 0 || again.Enqueued+again.Duplicate != rows || again.Duplicate != tasks {
		t.Errorf("enqueue again after the restart: want exit 0, %d duplicates (the tasks already there) and the rest enqueued:\n%s", tasks, r)
	}
	ids, err = rdb.LRange(context.Background(), pendingKey, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("job %s is on the queue twice", id)
		}
		seen[id] = true
	}
	if len(seen) != rows {
		t.Errorf("%d distinct jobs on the queue after enqueueing again, want %d", len(seen), rows)
	}
}

// TestChaosKaleyraHangs: Kaleyra accepts three calls and never answers.
// With KALEYRA_TIMEOUT=1s each is given up after 1s and dead-lettered at
// once as TIMEOUT, uncertain, after one call. Meanwhile the fourth worker
// slot keeps launching; when the hung calls time out, their worker and launch
// slots are taken again at once (not 2s later, when the slots' leases would
// run out), and at the end no launch slot is held. The worker stays up.
func TestChaosKaleyraHangs(t *testing.T) {
	t.Parallel()
	const (
		timeout = time.Second
		latency = 300 * time.Millisecond
		slots   = 4
		normal  = 12
	)
	e := newEnv(t, sim.Config{Latency: latency})
	hung := map[string]string{}
	jobs := map[string]string{}
	var hangLines, lines []string
	for i := 0; i < 3; i++ {
		id, agent := fmt.Sprintf("hang-%d", i), fmt.Sprint(96000+i)
		e.Sim.Script(agent, sim.StepHang)
		hung[id] = agent
		hangLines = append(hangLines, launchtest.Line(id, agent, nil))
	}
	for i := 0; i < normal; i++ {
		id, agent := fmt.Sprintf("normal-%d", i), fmt.Sprint(96010+i)
		jobs[id] = agent
		lines = append(lines, launchtest.Line(id, agent, nil))
	}
	// The hanging jobs first: they take three of the four slots at once.
	e.mustRun(0, "enqueue", "--file", e.writeFile("hang.jsonl", hangLines...))
	e.mustRun(0, "enqueue", "--file", e.writeFile("normal.jsonl", lines...))
	w := e.startWorker(map[string]string{"KALEYRA_TIMEOUT": timeout.String(),
		"WORKER_CONCURRENCY": fmt.Sprint(slots), "KALEYRA_MAX_IN_FLIGHT": fmt.Sprint(slots)})
	e.waitResultCount(len(hung)+len(jobs), 60*time.Second)
	if w.exited() {
		t.Fatalf("the worker exited %d; stderr:\n%s", w.code, tail(w.stderr.String(), 3000))
	}
	// One more job after the hangs: the worker still launches.
	e.mustRun(0, "enqueue", "--file", e.writeFile("after.jsonl", launchtest.Line("after-hang", "96100", nil)))
	jobs["after-hang"] = "96100"
	e.waitResultCount(len(hung)+len(jobs), 20*time.Second)
	w.stop()

	res := byJob(e.results())
	st := e.Sim.Stats()
	for id, agent := range hung {
		r := res[id]
		if len(r) != 1 || r[0].Outcome != "dead_lettered" || r[0].Code != "TIMEOUT" || !r[0].Uncertain || r[0].Attempts != 1 {
			t.Errorf("hung job %s: results %+v, want one dead letter TIMEOUT, uncertain, after 1 attempt", id, r)
		}
		if n := st.ByAgent[agent]; n != 1 {
			t.Errorf("hung job %s: %d calls, want 1 (a timeout is not retried)", id, n)
		}
	}
	for id, agent := range jobs {
		if r := res[id]; len(r) != 1 || r[0].Outcome != "succeeded" || r[0].AgentNo != agent {
			t.Errorf("job %s: results %+v, want one success", id, r)
		}
	}
	hungAgents := map[string]bool{}
	for _, a := range hung {
		hungAgents[a] = true
	}
	calls := e.Sim.Calls()
	var hangs, others []sim.Call
	for _, c := range calls {
		if hungAgents[c.AgentNo] {
			hangs = append(hangs, c)
		} else {
			others = append(others, c)
		}
	}
	if len(hangs) != len(hung) {
		t.Fatalf("%d hung calls, want %d", len(hangs), len(hung))
	}
	var firstEnd, lastEnd time.Time
	for i, h := range hangs {
		end := h.At.Add(h.Duration)
		if h.Duration < timeout-100*time.Millisecond || h.Duration > timeout+time.Second {
			t.Errorf("hung call of agent %s lasted %v at the simulator, want about the %v timeout", h.AgentNo, h.Duration, timeout)
		}
		meanwhile := 0
		for _, c := range others {
			if c.At.After(h.At) && c.At.Add(c.Duration).Before(end) {
				meanwhile++
			}
		}
		t.Logf("agent %s hung for %v; %d other calls were answered meanwhile", h.AgentNo, h.Duration.Round(time.Millisecond), meanwhile)
		if meanwhile == 0 {
			t.Errorf("no other call was answered while agent %s's call hung", h.AgentNo)
		}
		if i == 0 || end.Before(firstEnd) {
			firstEnd = end
		}
		if end.After(lastEnd) {
			lastEnd = end
		}
	}
	// The slots the hung calls held are in use again right after: more
	// calls at once than the one slot that was free could make.
	window := filterCalls(others, func(c sim.Call) bool { return !c.At.Before(firstEnd) && c.At.Before(lastEnd.Add(400*time.Millisecond)) })
	again, at := concurrency(window, firstEnd)
	t.Logf("after the hung calls timed out: %d calls at once from +%v", again, at.Sub(lastEnd).Round(time.Millisecond))
	if again < len(hung) {
		t.Errorf("within 400ms of the timeouts at most %d calls ran at once, want at least %d: the hung calls' slots were not freed", again, len(hung))
	}
	// The simulator counts a hung call until it notices its client gone,
	// a few ms after the client's timeout freed the slot for the next call:
	// the cap is checked on the calls as the client saw them, each hung one
	// ending at its timeout (from its arrival, less a margin for the time
	// the request took to arrive).
	clientSide := make([]sim.Call, 0, len(calls))
	for _, c := range calls {
		if hungAgents[c.AgentNo] {
			c.Duration = min(c.Duration, timeout-50*time.Millisecond)
		}
		clientSide = append(clientSide, c)
	}
	if most, at := concurrency(clientSide, time.Time{}); most > slots || st.InFlight != 0 {
		t.Errorf("%d calls in flight at most (at %v; cap %d), %d still in flight at the simulator",
			most, at, slots, st.InFlight)
	}
	// Released, not expired: an expired lease stays counted until the next
	// acquire, and none comes after the last job.
	leases, err := e.Redis.Client().ZCard(context.Background(), "rcslaunch:{sid:"+testenv.SID+"}:inflight").Result()
	if err != nil || leases != 0 {
		t.Errorf("%d in-flight slots still held at the end (%v)", leases, err)
	}
	checkLogs(t, w.stderr.String())
}

// TestChaosMalformedAnswers: each kind of answer a client cannot use is
// dead-lettered at once as BAD_RESPONSE with a message saying what was wrong,
// uncertain when the status was 2xx (the launch may have been created); the
// worker process survives them all (a 10 MiB body included) and launches a
// normal job afterwards.
func TestChaosMalformedAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	cases := []struct {
		step      sim.Step
		uncertain bool
		says      string
	}{
		{sim.StepTruncated, true, "not valid JSON"},
		{sim.StepHTML, false, "not valid JSON"},
		{sim.StepEmpty, true, "empty body"},
		{sim.StepHuge, true, "larger than 1 MiB"},
		{sim.StepCodeNotString, true, `"code" is a number`},
		{sim.StepNoLaunchID, true, "agent_launch_id"},
	}
	var lines []string
	ids := map[string]int{}
	for i, c := range cases {
		agent := fmt.Sprint(97000 + i)
		e.Sim.Script(agent, c.step)
		id := "bad-" + strings.ToLower(string(c.step))
		ids[id] = i
		lines = append(lines, launchtest.Line(id, agent, nil))
	}
	e.mustRun(0, "enqueue", "--file", e.writeFile("bad.jsonl", lines...))
	w := e.startWorker(map[string]string{"WORKER_CONCURRENCY": "2"})
	e.waitResultCount(len(cases), 30*time.Second)
	e.mustRun(0, "enqueue", "--file", e.writeFile("good.jsonl", launchtest.Line("good-after", "97100", nil)))
	e.waitResultCount(len(cases)+1, 20*time.Second)
	if w.exited() {
		t.Fatalf("the worker exited %d; stderr:\n%s", w.code, tail(w.stderr.String(), 3000))
	}
	hwm := procHWM(w)
	w.stop()

	res := byJob(e.results())
	if r := res["good-after"]; len(r) != 1 || r[0].Outcome != "succeeded" {
		t.Errorf("the job after the malformed answers: %+v, want a success", r)
	}
	for id, i := range ids {
		c := cases[i]
		r := res[id]
		if len(r) != 1 || r[0].Outcome != "dead_lettered" || r[0].Code != "BAD_RESPONSE" || r[0].Uncertain != c.uncertain || r[0].Attempts != 1 {
			t.Errorf("%s: results %+v, want one dead letter BAD_RESPONSE, uncertain %v, after 1 attempt", c.step, r, c.uncertain)
			continue
		}
		if !strings.Contains(r[0].Message, c.says) {
			t.Errorf("%s: message %q does not say %q", c.step, r[0].Message, c.says)
		}
		if n := e.Sim.Stats().ByAgent[fmt.Sprint(97000+i)]; n != 1 {
			t.Errorf("%s: %d calls, want 1", c.step, n)
		}
		show := e.mustRun(0, "dlq", "show", id, "--json")
		if len(show.stdout) > 64<<10 {
			t.Errorf("%s: the dead letter is %d bytes: the answer was kept whole", c.step, len(show.stdout))
		}
		t.Logf("%s -> %s (uncertain %v): %s", c.step, r[0].Code, r[0].Uncertain, r[0].Message)
	}
	stderr := w.stderr.String()
	for _, bad := range []string{"panic", "goroutine "} {
		if strings.Contains(stderr, bad) {
			t.Errorf("the worker's stderr mentions %q:\n%s", bad, tail(stderr, 3000))
		}
	}
	t.Logf("worker peak RSS %d MiB after a 10 MiB answer", hwm>>20)
	checkLogs(t, stderr)
}

// procHWM is a running process's peak resident set size in bytes.
func procHWM(p *proc) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestChaosDeadLettersAtScale: 25,000 dead letters, more than the 10,000
// asynq's archive keeps, are written through the store's own scripts
// (Create, Start, Finish, as a worker records them, without calls to
// Kaleyra). `dlq list --json` lists every one once, newest first; `dlq
// export` writes one job per letter; `dlq retry --all` puts every one back on
// the queue: 25,000 pending tasks, no dead letter left, none lost.
//
// LONG: about 50s with -race on 2 cores, most of it CPU.
func TestChaosDeadLettersAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("LONG: 25,000 dead letters (about 50s)")
	}
	t.Parallel()
	const n = 25_000
	codes := []string{"RCS904", "RCS601", "RCS500"}
	e := newEnv(t, sim.Config{})
	ctx := context.Background()
	begin := time.Now()
	rdb := redis.NewClient(&redis.Options{Addr: e.Redis.Addr(), PoolSize: 32})
	t.Cleanup(func() { rdb.Close() })
	st := store.New(rdb)
	now := time.Now()
	want := make(map[string]string, n) // job ID -> code
	for i := 0; i < n; i++ {
		want[fmt.Sprintf("dl-%05d", i)] = codes[i%len(codes)]
	}
	work := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := deadLetter(ctx, st, i, codes[i%len(codes)], now.Add(-time.Duration(i)*time.Millisecond)); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if c, err := st.CountDeadLetters(ctx, store.Filter{}); err != nil || c != n {
		t.Fatalf("%d dead letters written (%v), want %d", c, err, n)
	}
	made := time.Since(begin)

	// dlq list --json: every letter once, newest first.
	step := time.Now()
	r := e.runFor(60*time.Second, "dlq", "list", "--json")
	listSize := len(r.stdout)
	if r.code != 0 {
		t.Fatalf("dlq list --json:\n%s", r)
	}
	var recs []statusRecord
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil {
		t.Fatalf("dlq list --json is not a JSON array: %v", err)
	}
	listed := time.Since(step)
	seen := map[string]bool{}
	for i, rec := range recs {
		if seen[rec.JobID] {
			t.Errorf("dlq list lists %s twice", rec.JobID)
		}
		seen[rec.JobID] = true
		if want[rec.JobID] != rec.Code || rec.State != "dead_lettered" {
			t.Errorf("dlq list: %s %s %s, want dead_lettered %s", rec.JobID, rec.State, rec.Code, want[rec.JobID])
		}
		if i > 0 && rec.FinishedAt.After(recs[i-1].FinishedAt) {
			t.Errorf("dlq list: %s (%v) after %s (%v): not newest first", rec.JobID, rec.FinishedAt, recs[i-1].JobID, recs[i-1].FinishedAt)
		}
	}
	if len(recs) != n || len(seen) != n {
		t.Errorf("dlq list --json lists %d letters (%d distinct), want %d", len(recs), len(seen), n)
	}
	if r := e.mustRun(0, "dlq", "list", "--json", "--code", "RCS601"); strings.Count(r.stdout, `"job_id"`) != n/len(codes) {
		t.Errorf("dlq list --code RCS601 lists %d letters, want %d", strings.Count(r.stdout, `"job_id"`), n/len(codes))
	}

	// dlq export: one enqueueable job per letter, with its ID.
	step = time.Now()
	r = e.runFor(60*time.Second, "dlq", "export")
	if r.code != 0 {
		t.Fatalf("dlq export:\n%s", r)
	}
	exported := time.Since(step)
	seen = map[string]bool{}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	for _, line := range lines {
		j, err := launch.Parse([]byte(line))
		if err != nil || want[j.ID] == "" || seen[j.ID] {
			t.Fatalf("dlq export line %q: %v (known %v, seen %v)", line, err, want[j.ID] != "", seen[j.ID])
		}
		seen[j.ID] = true
	}
	if len(lines) != n {
		t.Errorf("dlq export wrote %d lines, want %d", len(lines), n)
	}

	// dlq retry --all: every letter back on the queue, none left behind.
	step = time.Now()
	r = e.runFor(120*time.Second, "dlq", "retry", "--all")
	retried := time.Since(step)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("retried %d", n)) {
		t.Errorf("dlq retry --all: want exit 0 and \"retried %d\":\n%s", n, r)
	}
	info := e.queueInfo()
	if info.Pending != n || info.Archived != 0 {
		t.Errorf("after dlq retry --all asynq holds %d pending and %d archived tasks, want %d and 0", info.Pending, info.Archived, n)
	}
	if c, err := st.CountDeadLetters(ctx, store.Filter{}); err != nil || c != 0 {
		t.Errorf("%d dead letters left after dlq retry --all (%v)", c, err)
	}
	pending, err := rdb.LRange(ctx, "asynq:{"+queue.Name+"}:pending", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	seen = map[string]bool{}
	for _, id := range pending {
		if want[id] == "" || seen[id] {
			t.Errorf("pending task %q: known %v, seen before %v", id, want[id] != "", seen[id])
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct retried jobs on the queue, want %d", len(seen), n)
	}
	if l := e.dlqList(); len(l) != 0 {
		t.Errorf("dlq list after retry --all: %d letters", len(l))
	}
	t.Logf("%d dead letters written in %v; dlq list --json %v (%d MiB), export %v, retry --all %v; %v in all",
		n, made.Round(time.Millisecond), listed.Round(time.Millisecond), listSize>>20, exported.Round(time.Millisecond),
		retried.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
}

// deadLetter records job i as a dead letter with code, the way a worker does
// after a terminal answer: Create, Start, Finish.
func deadLetter(ctx context.Context, st *store.Store, i int, code string, at time.Time) error {
	id, agent := fmt.Sprintf("dl-%05d", i), fmt.Sprint(100000+i)
	j, err := launch.Parse([]byte(launchtest.Line(id, agent, nil)))
	if err != nil {
		return err
	}
	nj := store.NewJob{ID: id, SID: testenv.SID, AgentNo: agent, Payload: j.Body()}
	if res, err := st.Create(ctx, nj, at); err != nil || res != store.Created {
		return fmt.Errorf("create %s: %q, %v", id, res, err)
	}
	if state, _, err := st.Start(ctx, nj, 1, at); err != nil || state != store.StateRunning {
		return fmt.Errorf("start %s: %q, %v", id, state, err)
	}
	o := store.Outcome{Kind: store.FinishDeadLettered, Attempt: store.Attempt{
		N: 1, Outcome: store.AttemptTerminal, Code: code, Message: "refused by the test", HTTPStatus: 400, StartedAt: at, FinishedAt: at,
	}}
	if state, err := st.Finish(ctx, id, o, at); err != nil || state != store.StateDeadLettered {
		return fmt.Errorf("finish %s: %q, %v", id, state, err)
	}
	return nil
}
