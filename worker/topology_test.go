package worker_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/internal/testredis"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
	"github.com/rcslaunch/rcslaunch/worker"
)

// TestSentinelFailoverMidBatch runs a batch through REDIS_URL=redis-sentinel://,
// kills the primary while the batch is half done and lets the worker carry on
// by itself after the sentinel has promoted the replica. Every job must end
// with exactly one final record, in the results stream and, for the failures,
// in the dead-letter store, as read on the new primary.
//
// Replication is asynchronous: an outcome recorded on the primary just before
// it died may not have reached the replica. Such a job is found "running" on
// the new primary and is run again once asynq recovers its task (lease 30 s,
// then a recoverer that looks every minute for leases expired 30 s ago), so
// the test allows a couple of minutes and at most two calls per agent. On
// loopback the replica is rarely behind; TestSentinelFailoverLosesOutcomes
// makes it so.
func TestSentinelFailoverMidBatch(t *testing.T) {
	t.Parallel()
	sentinelFailover(t, false)
}

// TestSentinelFailoverLosesOutcomes is TestSentinelFailoverMidBatch with the
// replica cut off from the primary (REPLICAOF a dead port) for the last
// 300 ms before the kill, so that the outcomes recorded meanwhile are lost
// with the primary. Their jobs must be run again, once, by asynq's recovery
// of their tasks, which takes about two minutes; -short skips it.
func TestSentinelFailoverLosesOutcomes(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about two minutes (asynq's lease recovery)")
	}
	t.Parallel()
	sentinelFailover(t, true)
}

func sentinelFailover(t *testing.T, loseOutcomes bool) {
	// As in production: the primary and the replica want a password, the
	// sentinel (unprotected) knows it as auth-pass, and REDIS_URL carries it:
	// redis-sentinel://:<password>@host:port?master=mymaster.
	const password = "topology-test-pw"
	sen := testredis.StartSentinel(t, testredis.WithPassword(password))
	opt, err := config.Config{RedisURL: sen.URL()}.RedisConnOpt()
	if err != nil {
		t.Fatal(err)
	}
	if fo, ok := opt.(asynq.RedisFailoverClientOpt); !ok || fo.MasterName != testredis.MasterName ||
		len(fo.SentinelAddrs) != 1 || fo.SentinelAddrs[0] != sen.SentinelServer().Addr() || fo.Password != password {
		t.Fatalf("REDIS_URL gave %T (master %v), want a RedisFailoverClientOpt on the sentinel with the primary's password", opt, testredis.MasterName)
	}
	// 200 ms per call at 20 calls/s keeps about four calls in flight, so
	// the kill catches several between call and record.
	e := testenv.NewOn(t, opt, testenv.WithSim(sim.Config{Latency: 200 * time.Millisecond}))
	ctx := context.Background()

	const n = 60
	var ids []string
	agentOf := map[string]string{}
	terminal := map[string]bool{} // by agent
	for i := 0; i < n; i++ {
		a := strconv.Itoa(7000 + i)
		if i%15 == 7 {
			// Twice, so that a job run again after a lost outcome gets the
			// same answer.
			e.Sim.Script(a, sim.StepMissingFields, sim.StepMissingFields)
			terminal[a] = true
		}
		id, st := e.Enqueue(launchtest.Job(a))
		if st != queue.Enqueued {
			t.Fatalf("agent %s: %s, want enqueued", a, st)
		}
		ids = append(ids, id)
		agentOf[id] = a
	}
	// The batch itself must survive the loss of the primary.
	if got, err := sen.Primary().Client().Do(ctx, "WAIT", 1, 5000).Int(); err != nil || got != 1 {
		t.Fatalf("WAIT 1 on the primary: %d replicas acknowledged, %v", got, err)
	}

	start := time.Now()
	e.StartWorker(func(o *worker.Options) {
		// 20/s: the 60 jobs take about 3 s, so the kill lands mid-batch.
		o.RateLimit, o.RateBurst = 20, 1
	})
	const killAfter = 15
	var atKill int64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if atKill, err = e.Store.ResultsLen(ctx); err == nil && atKill >= killAfter {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d results after 30s (%v)", atKill, err)
		}
	}
	if atKill >= n {
		t.Fatalf("the batch finished before the primary could be killed")
	}
	var cutOff time.Time
	if loseOutcomes {
		// The replica keeps its data but stops following the primary: what
		// the primary records from now on dies with it.
		if err := sen.Replica().Client().Do(ctx, "REPLICAOF", "127.0.0.1", "1").Err(); err != nil {
			t.Fatal(err)
		}
		cutOff = time.Now()
		time.Sleep(300 * time.Millisecond)
	}
	sen.Primary().Kill()
	killed := time.Now()
	callsAtKill := e.Sim.Stats().Calls
	newPrimary := sen.WaitFailover(30 * time.Second)
	failedOver := time.Now()

	// Read on the new primary directly, through a client of its own.
	fresh := store.New(newPrimary.Client())
	recs := testenv.WaitFinished(t, fresh, 150*time.Second, ids...)
	finished := time.Now()

	results := testenv.Results(t, fresh)
	byAgent := e.Sim.Stats().ByAgent
	var redone []string
	for _, id := range ids {
		a, r := agentOf[id], recs[id]
		wantState, wantCode := store.StateSucceeded, "RCS902"
		if terminal[a] {
			wantState, wantCode = store.StateDeadLettered, "RCS904"
		}
		if r.State != wantState || r.Code != wantCode {
			t.Errorf("agent %s: %s %s, want %s %s", a, r.State, r.Code, wantState, wantCode)
		}
		if wantState == store.StateSucceeded && r.AgentLaunchID == "" {
			t.Errorf("agent %s: succeeded without agent_launch_id", a)
		}
		rs := results[id]
		if len(rs) != 1 {
			t.Errorf("agent %s: %d results stream entries, want exactly 1", a, len(rs))
		} else if rs[0].Outcome != string(r.State) || rs[0].Code != r.Code || rs[0].AgentLaunchID != r.AgentLaunchID {
			t.Errorf("agent %s: result %+v disagrees with record %s %s %s", a, rs[0], r.State, r.Code, r.AgentLaunchID)
		}
		switch calls := byAgent[a]; {
		case calls < 1 || calls > 2:
			t.Errorf("agent %s: Kaleyra called %d times, want 1 (2 at most after a lost outcome)", a, calls)
		case calls == 2:
			redone = append(redone, a)
		}
	}
	if got := len(results); got != n {
		t.Errorf("results stream holds %d jobs, want %d", got, n)
	}
	var extra []string
	for id := range results {
		if agentOf[id] == "" {
			extra = append(extra, id)
		}
	}
	if len(extra) > 0 {
		t.Errorf("results for jobs never enqueued: %v", extra)
	}
	if loseOutcomes && len(redone) == 0 {
		t.Errorf("no job was run again although the replica was cut off for %v before the kill: no outcome was lost, the test proves nothing",
			killed.Sub(cutOff).Round(time.Millisecond))
	}

	dead, err := fresh.ListDeadLetters(ctx, store.Filter{}, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var gotDead, wantDead []string
	for _, r := range dead {
		gotDead = append(gotDead, r.AgentNo)
	}
	for a := range terminal {
		wantDead = append(wantDead, a)
	}
	sort.Strings(gotDead)
	sort.Strings(wantDead)
	if strings.Join(gotDead, ",") != strings.Join(wantDead, ",") {
		t.Errorf("dead letters for agents %v, want %v", gotDead, wantDead)
	}

	sort.Strings(redone)
	logs := e.Logs.String()
	t.Logf("%d jobs: %d results before the kill (%v after the worker started), %d calls made by then; "+
		"failover took %v; all %d final %v after the kill; %d retried outcome writes (cannot record outcome yet); "+
		"%d agents called twice %v",
		n, atKill, killed.Sub(start).Round(time.Millisecond), callsAtKill,
		failedOver.Sub(killed).Round(time.Millisecond), n, finished.Sub(killed).Round(time.Millisecond),
		strings.Count(logs, "cannot record outcome yet"), len(redone), redone)
}

// clusterConnOpt starts a Redis Cluster for the test and returns the
// connection REDIS_CLUSTER_ADDRS gives for it.
func clusterConnOpt(t *testing.T) asynq.RedisConnOpt {
	t.Helper()
	cl := testredis.StartCluster(t)
	opt, err := config.Config{RedisClusterAddrs: cl.Addrs()}.RedisConnOpt()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := opt.(asynq.RedisClusterClientOpt); !ok {
		t.Fatalf("REDIS_CLUSTER_ADDRS gave %#v, want a RedisClusterClientOpt", opt)
	}
	return opt
}

// TestClusterBatch runs a mixed batch through REDIS_CLUSTER_ADDRS against
// three primaries and checks every outcome, the dead-letter store, dlq retry,
// and that the keys of ours sit in two slots: the results stream's (every
// job-outcome key) and the SID's (the limiter).
func TestClusterBatch(t *testing.T) {
	t.Parallel()
	opt := clusterConnOpt(t)
	e := testenv.NewOn(t, opt)
	ctx := context.Background()
	rc, ok := e.Store.Redis().(*redis.ClusterClient)
	if !ok {
		t.Fatalf("the store's client is %T, want *redis.ClusterClient", e.Store.Redis())
	}
	if err := rdb.Check(ctx, rc); err != nil {
		t.Fatalf("rdb.Check on the cluster: %v", err)
	}
	if info, err := rc.Info(ctx, "server").Result(); err != nil || !strings.Contains(info, "redis_version:") {
		t.Errorf("INFO server on the cluster: %v; rdb.Check could not tell the version", err)
	}

	// Every key of ours that exists at any time during the run.
	var keysMu sync.Mutex
	seen := map[string]bool{}
	sample := func() {
		_ = rc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			ks, err := c.Keys(ctx, "rcslaunch:*").Result()
			keysMu.Lock()
			defer keysMu.Unlock()
			for _, k := range ks {
				seen[k] = true
			}
			return err
		})
	}
	sampling, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for sampling.Err() == nil {
			sample()
			time.Sleep(5 * time.Millisecond)
		}
	}()

	const retryMax = 3
	e.Sim.Script("100", sim.StepSucceed)
	e.Sim.Script("101", sim.StepGateway, sim.StepGateway) // then success
	e.Sim.Script("102", sim.StepMissingFields)
	e.Sim.Script("103", sim.StepGateway, sim.StepGateway, sim.StepGateway, sim.StepGateway) // retryMax+1 times
	e.Sim.Script("104", sim.StepDisabled)
	e.Sim.Script("105", sim.StepThrottle) // 429: deferred, not an attempt; then success
	agents := []string{"100", "101", "102", "103", "104", "105"}
	ids := map[string]string{}
	var all []string
	// As one batch: its counters are keys the job scripts derive from the
	// job records, not given as KEYS; the cluster must let them through.
	batch := store.NewBatchID(time.Now())
	if err := e.Store.CreateBatch(ctx, batch, "cluster", time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		j := launchtest.Job(a)
		j.ID = launch.IDFor(testenv.SID, j)
		st, err := e.Producer.Enqueue(ctx, j, batch, false)
		if err != nil || st != queue.Enqueued {
			t.Fatalf("agent %s: %s %v, want enqueued", a, st, err)
		}
		ids[a] = j.ID
		all = append(all, j.ID)
	}
	if err := e.Store.CloseBatch(ctx, batch, time.Now()); err != nil {
		t.Fatal(err)
	}
	wantBatch := func(succeeded, dead int64, byCode map[string]int64) {
		t.Helper()
		b, err := e.Store.GetBatch(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if b.Total != int64(len(agents)) || b.Succeeded != succeeded || b.DeadLettered != dead || b.FinishedAt == nil ||
			len(b.DeadLetteredByCode) != len(byCode) {
			t.Fatalf("batch on the cluster: %+v, want %d succeeded, %d dead-lettered %v, finished", b, succeeded, dead, byCode)
		}
		for c, n := range byCode {
			if b.DeadLetteredByCode[c] != n {
				t.Fatalf("batch on the cluster: %d dead letters with %s, want %d", b.DeadLetteredByCode[c], c, n)
			}
		}
	}
	start := time.Now()
	e.StartWorker(func(o *worker.Options) {
		o.RetryMax = retryMax
		// On, but out of reach: its counter key is one of the SID's.
		o.CoolOffThreshold = 100
	})
	recs := e.WaitFinished(all...)
	took := time.Since(start)

	want := []struct {
		agent, code     string
		state           store.State
		calls, attempts int
	}{
		{"100", "RCS902", store.StateSucceeded, 1, 1},
		{"101", "RCS902", store.StateSucceeded, 3, 3},
		{"102", "RCS904", store.StateDeadLettered, 1, 1},
		{"103", "RCS502", store.StateDeadLettered, retryMax + 1, retryMax + 1},
		{"104", "RCS601", store.StateDeadLettered, 1, 1},
		{"105", "RCS902", store.StateSucceeded, 2, 1}, // the 429 is no attempt
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
		if r.Attempts != w.attempts {
			t.Errorf("agent %s: %d attempts, want %d", w.agent, r.Attempts, w.attempts)
		}
		rs := results[ids[w.agent]]
		if len(rs) != 1 {
			t.Errorf("agent %s: %d results stream entries, want 1", w.agent, len(rs))
			continue
		}
		if rs[0].Outcome != string(w.state) || rs[0].Code != w.code || rs[0].Attempts != w.attempts {
			t.Errorf("agent %s: result %+v", w.agent, rs[0])
		}
		if w.state == store.StateSucceeded && (rs[0].AgentLaunchID == "" || rs[0].AgentLaunchID != r.AgentLaunchID) {
			t.Errorf("agent %s: agent_launch_id %q in results, %q in record", w.agent, rs[0].AgentLaunchID, r.AgentLaunchID)
		}
	}

	wantBatch(3, 3, map[string]int64{"RCS904": 1, "RCS502": 1, "RCS601": 1})

	dead, err := e.Store.ListDeadLetters(ctx, store.Filter{}, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var deadAgents []string
	for _, r := range dead {
		deadAgents = append(deadAgents, r.AgentNo)
	}
	sort.Strings(deadAgents)
	if got := strings.Join(deadAgents, ","); got != "102,103,104" {
		t.Errorf("dead letters for agents %s, want 102,103,104", got)
	}
	if d, err := e.Store.ListDeadLetters(ctx, store.Filter{Code: "RCS502"}, 0, 100); err != nil || len(d) != 1 || d[0].ID != ids["103"] {
		t.Errorf("dead letters with RCS502: %d (%v), want agent 103's", len(d), err)
	}

	// dlq retry puts agent 103 back with a fresh budget; the gateway is fine now.
	res, _, err := e.Producer.RetryDeadLetter(ctx, ids["103"], false)
	if err != nil || res != store.Requeued {
		t.Fatalf("retry dead letter: %q, %v", res, err)
	}
	r := e.WaitFinished(ids["103"])[ids["103"]]
	if r.State != store.StateSucceeded || r.Attempts != 1 {
		t.Errorf("after dlq retry: %s with %d attempts, want succeeded with 1", r.State, r.Attempts)
	}
	if n, err := e.Store.CountDeadLetters(ctx, store.Filter{}); err != nil || n != 2 {
		t.Errorf("dead letters after retry: %d (%v), want 2", n, err)
	}
	if rs := e.Results()[ids["103"]]; len(rs) != 2 || rs[1].Outcome != string(store.StateSucceeded) {
		t.Errorf("agent 103's results after dlq retry: %+v, want the dead letter then the success", rs)
	}
	wantBatch(4, 2, map[string]int64{"RCS904": 1, "RCS601": 1})

	stopSampling()
	<-sampled
	sample()

	// CLUSTER KEYSLOT: the stream and a job's key share a slot; the SID's
	// limiter keys share one.
	slot := func(k string) int64 {
		s, err := rc.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %s: %v", k, err)
		}
		return s
	}
	resultsSlot := slot(store.ResultsStream)
	jobKey := "rcslaunch:{rcslaunch:results}:job:" + ids["100"]
	if n, err := rc.Exists(ctx, jobKey).Result(); err != nil || n != 1 {
		t.Fatalf("job key %s: exists %d (%v); the store names its keys otherwise", jobKey, n, err)
	}
	if s := slot(jobKey); s != resultsSlot {
		t.Errorf("job key in slot %d, results stream in slot %d", s, resultsSlot)
	}
	sidTag := "{sid:" + testenv.SID + "}"
	sidSlot := slot("rcslaunch:" + sidTag + ":tat")

	var sidKeys, resultKeys, others []string
	for k := range seen {
		switch s := slot(k); {
		case strings.Contains(k, sidTag):
			sidKeys = append(sidKeys, k)
			if s != sidSlot {
				t.Errorf("limiter key %s in slot %d, the SID's other keys in %d", k, s, sidSlot)
			}
		case s == resultsSlot:
			resultKeys = append(resultKeys, k)
		default:
			others = append(others, k)
		}
	}
	sort.Strings(sidKeys)
	if len(others) > 0 {
		t.Errorf("keys of ours outside the results stream's and the SID's slots: %v", others)
	}
	if len(sidKeys) < 2 || len(resultKeys) < 2*len(agents) {
		t.Errorf("saw %d limiter keys %v and %d outcome keys: the slot check proves little", len(sidKeys), sidKeys, len(resultKeys))
	}
	if sidSlot == resultsSlot {
		t.Log("note: the SID's slot happens to be the results stream's")
	}
	owner := map[int64]string{}
	for _, s := range []int64{resultsSlot, sidSlot, slot("asynq:{" + queue.Name + "}:pending")} {
		owner[s] = slotOwner(t, rc, s)
	}
	asynqSlot := slot("asynq:{" + queue.Name + "}:pending")
	t.Logf("batch of %d finished in %v; results slot %d on %s, SID slot %d on %s, asynq queue slot %d on %s; limiter keys seen: %v; %d outcome keys",
		len(agents), took.Round(time.Millisecond), resultsSlot, owner[resultsSlot], sidSlot, owner[sidSlot],
		asynqSlot, owner[asynqSlot], sidKeys, len(resultKeys))
}

// slotOwner is the address of the primary serving slot.
func slotOwner(t *testing.T, rc *redis.ClusterClient, slot int64) string {
	t.Helper()
	ranges, err := rc.ClusterSlots(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ranges {
		if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
			return r.Nodes[0].Addr
		}
	}
	return "?"
}

// TestClusterEnqueueMany enqueues chunks the way `enqueue --file` does (one
// create script per chunk, tasks pushed through an AutoPipeliner) on Redis
// Cluster: every job once, in its batch, a repeat a duplicate.
func TestClusterEnqueueMany(t *testing.T) {
	t.Parallel()
	e := testenv.NewOn(t, clusterConnOpt(t))
	ap, err := e.Store.Redis().AutoPipeline()
	if err != nil {
		t.Fatal(err)
	}
	st := e.Store
	p := &queue.Producer{Store: st, Client: asynq.NewClientFromRedisClient(ap), SID: testenv.SID}
	ctx := context.Background()
	batch := store.NewBatchID(time.Now())
	if err := st.CreateBatch(ctx, batch, "cluster", time.Now()); err != nil {
		t.Fatal(err)
	}
	var jobs []launch.Job
	for i := range 150 {
		j := launchtest.Job(fmt.Sprint(20000 + i))
		j.ID = launch.IDFor(testenv.SID, j)
		jobs = append(jobs, j)
	}
	for start := 0; start < len(jobs); start += 64 {
		chunk := jobs[start:min(start+64, len(jobs))]
		if start == 64 {
			chunk = append(slices.Clone(chunk), jobs[0]) // known from the first chunk
		}
		for i, r := range p.EnqueueMany(ctx, chunk, batch, false) {
			want := queue.Enqueued
			if start == 64 && i == len(chunk)-1 {
				want = queue.Duplicate
			}
			if r.Err != nil || r.Status != want {
				t.Fatalf("chunk at %d, job %d: %s %v, want %s", start, i, r.Status, r.Err, want)
			}
		}
	}
	info, err := e.Inspector.GetQueueInfo(queue.Name)
	if err != nil || info.Pending != len(jobs) {
		t.Fatalf("queue info %+v, %v; want %d pending", info, err, len(jobs))
	}
	b, err := st.GetBatch(ctx, batch)
	if err != nil || b.Total != int64(len(jobs)) || b.Queued != int64(len(jobs)) {
		t.Fatalf("batch %+v, %v; want %d queued", b, err, len(jobs))
	}
}
