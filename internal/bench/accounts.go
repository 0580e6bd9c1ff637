package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/ops"
	"github.com/rcslaunch/rcslaunch/worker"
)

// ---- 6 and 7: many accounts at their rates; a small account beside a backlog ----

const (
	// accountWarmup is how long the accounts phase's worker runs before its
	// measured window opens: its first dequeues, the limiters' first tokens.
	accountWarmup = 3 * time.Second
	// accountSlack is the backlog each account still has when the window
	// closes, in seconds of calls at its rate.
	accountSlack = 5 * time.Second
	// accountMaxInFlight is each account's in-flight cap: enough that the
	// rate, not the cap, limits the calls of a simulator answering at once.
	accountMaxInFlight = 50
	// minSmallGap and maxSmallGap bound the random pause before each of the
	// backlog phase's single jobs.
	minSmallGap, maxSmallGap = 50 * time.Millisecond, 450 * time.Millisecond
)

// benchAccounts returns n accounts with distinct SIDs (prefix and a number)
// and keys, each limited to rate calls per second with burst 1.
func benchAccounts(prefix string, n int, rate float64) []worker.Account {
	list := make([]worker.Account, n)
	for i := range list {
		sid := fmt.Sprintf("%s%04d", prefix, i)
		list[i] = worker.Account{SID: sid, APIKey: "key-" + sid, RateLimit: rate, RateBurst: 1,
			MaxInFlight: accountMaxInFlight}
	}
	return list
}

// accountRig is what the accounts and backlog phases run on: an empty
// Redis, a simulator that takes any api-key (every account has its own), and
// a producer whose jobs go to their accounts' own queues.
type accountRig struct {
	b        *bench
	accounts []worker.Account
	sim      *sim.Server
	base     string
	stopSim  func()
	ops      *ops.Client
	// metrics is the worker's registry, for its limiter waits and deferrals.
	metrics *prometheus.Registry
}

// newAccountRig empties Redis, starts a simulator and claims the accounts
// for the fleet, as their worker would, so that jobs enqueued before the
// worker starts already go to the accounts' queues.
func (b *bench) newAccountRig(ctx context.Context, list []worker.Account) (*accountRig, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	r := &accountRig{b: b, accounts: list, sim: sim.New(sim.Config{}), metrics: prometheus.NewRegistry()}
	var err error
	if r.base, r.stopSim, err = r.sim.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	// A fresh client: its fleet cache must not remember an earlier phase.
	if r.ops, err = ops.New(ops.Options{Redis: b.Redis}); err != nil {
		r.stopSim()
		return nil, err
	}
	sids := make([]string, len(list))
	for i, a := range list {
		sids[i] = a.SID
	}
	if err := queue.Serve(ctx, b.rdb, "bench", sids, time.Now()); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *accountRig) close() {
	r.ops.Close()
	r.stopSim()
}

// enqueue enqueues jobs as one batch, through the bulk path.
func (r *accountRig) enqueue(ctx context.Context, jobs []launch.Job) error {
	s, err := r.ops.EnqueueJobs(ctx, jobs, &ops.BatchOpts{Name: "bench-accounts"})
	if err != nil {
		return err
	}
	if s.Enqueued != len(jobs) {
		return fmt.Errorf("enqueued %d of %d jobs (invalid %d, failed %d)", s.Enqueued, len(jobs), s.Invalid, s.Failed)
	}
	return nil
}

// start starts a worker serving the rig's accounts, with the production
// logger's cost (JSON at info level, discarded).
func (r *accountRig) start(ctx context.Context) (*runningWorker, error) {
	logger := zerolog.New(io.Discard).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	w, err := worker.New(worker.Options{
		Redis: r.b.Redis, Accounts: r.accounts, BaseURL: r.base, Concurrency: r.b.o.AccountConcurrency,
		RetryMax: worker.DefaultRetryMax, JobRetention: worker.DefaultJobRetention,
		Logger: &logger, Metrics: r.metrics,
	})
	if err != nil {
		return nil, err
	}
	return startWorker(ctx, w), nil
}

// callsBySID are the simulator's calls' arrival times by SID, each sorted.
// Every call must have been answered RCS902 (a wrong or missing key would
// not be), and the simulator must still hold every call it received.
func (r *accountRig) callsBySID() (map[string][]time.Time, error) {
	calls, st := r.sim.Calls(), r.sim.Stats()
	if len(calls) != st.Calls {
		return nil, fmt.Errorf("the simulator kept %d of %d calls: measure a shorter window", len(calls), st.Calls)
	}
	if ok := st.ByCode["RCS902"]; ok != st.Calls {
		return nil, fmt.Errorf("simulator answered %d of %d calls RCS902: %v", ok, st.Calls, st.ByCode)
	}
	by := map[string][]time.Time{}
	for _, c := range calls {
		by[c.SID] = append(by[c.SID], c.At)
	}
	for _, at := range by {
		sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	}
	return by, nil
}

// limiterStats reads the worker's metrics: the mean wait for a launch slot
// held in a handler (seconds), and the jobs handed back to the queue by
// reason.
func (r *accountRig) limiterStats() (meanWait float64, deferred map[string]float64, err error) {
	families, err := r.metrics.Gather()
	if err != nil {
		return 0, nil, fmt.Errorf("worker metrics: %w", err)
	}
	deferred = map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "rcslaunch_limiter_wait_seconds":
				if h := m.GetHistogram(); h.GetSampleCount() > 0 {
					meanWait = h.GetSampleSum() / float64(h.GetSampleCount())
				}
			case "rcslaunch_limiter_deferrals_total":
				for _, l := range m.GetLabel() {
					deferred[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return meanWait, deferred, nil
}

// sleepCtx sleeps for d, or until ctx ends or the worker stops.
func sleepCtx(ctx context.Context, rw *runningWorker, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-rw.done:
		rw.exited = true
		return fmt.Errorf("worker stopped early: %v", err)
	case <-time.After(d):
		return nil
	}
}

// accountJobs returns perAccount fresh jobs for each account, interleaved.
func (b *bench) accountJobs(list []worker.Account, perAccount int) []launch.Job {
	jobs := b.nextJobs(perAccount * len(list))
	for i := range jobs {
		jobs[i] = withSID(jobs[i], list[i%len(list)].SID)
	}
	return jobs
}

// accounts serves Accounts accounts, each backlogged, at AccountRate calls
// per second each, and measures a window of AccountWindow: each account's
// achieved rate, its largest one-second window, the calls per second and
// the CPU and Redis commands per call.
func (b *bench) accounts(ctx context.Context, rep *Report) error {
	o := b.o
	list := benchAccounts("ACCT", o.Accounts, o.AccountRate)
	per := int(math.Ceil(o.AccountRate * (accountWarmup + o.AccountWindow + accountSlack).Seconds()))
	b.progress("accounts: %d accounts at %g/s each, %d jobs each, concurrency %d", len(list), o.AccountRate, per, o.AccountConcurrency)
	rig, err := b.newAccountRig(ctx, list)
	if err != nil {
		return err
	}
	defer rig.close()
	if err := rig.enqueue(ctx, b.accountJobs(list, per)); err != nil {
		return fmt.Errorf("accounts backlog: %w", err)
	}
	rw, err := rig.start(ctx)
	if err != nil {
		return err
	}
	defer rw.stop()
	if err := sleepCtx(ctx, rw, accountWarmup); err != nil {
		return err
	}
	b.progress("accounts: measuring %s", o.AccountWindow)
	use, err := b.measureWindow(ctx, rw, o.AccountWindow)
	if err != nil {
		return err
	}
	rw.stop()
	by, err := rig.callsBySID()
	if err != nil {
		return err
	}
	wait, deferred, err := rig.limiterStats()
	if err != nil {
		return err
	}
	st := accountStats(by, list, use.from, use.to)
	if st.calls == 0 {
		return errors.New("accounts: no call arrived within the window")
	}
	b.progress("accounts: bare asynq + POST over %d queues", len(list))
	bare, err := b.bareAccounts(ctx, list)
	if err != nil {
		return fmt.Errorf("bare asynq over the accounts' queues: %w", err)
	}
	b.accountFigures(rep, st, use, bare, wait, deferred)
	return nil
}

// bareAccountSeconds is how many seconds of calls at the accounts' rates
// the baseline drains.
const bareAccountSeconds = 5

// bareAccounts is the accounts phase's baseline: plain asynq with the same
// concurrency over one queue per account (as many servers as the worker
// runs over that many queues), its handler POSTing each payload to the bench's
// own simulator, no limits. Its calls per second are what asynq itself
// reaches on this machine with that many queues; its CPU per call is the
// floor a pipeline on asynq works above.
func (b *bench) bareAccounts(ctx context.Context, list []worker.Account) (drainRun, error) {
	queues := make([]string, len(list))
	for i, a := range list {
		// named as accounts' queues, to be laid out as a worker's
		queues[i] = queue.AccountQueue("bare-"+a.SID, queue.PriorityDefault)
	}
	n := int(math.Ceil(float64(len(list)) * b.o.AccountRate * bareAccountSeconds))
	return b.bareRun(ctx, true, n, queues, b.o.AccountConcurrency)
}

// windowUse is what a measured window used.
type windowUse struct {
	from, to time.Time
	cpu      cpuUse
	cmds     map[string]float64
	total    float64 // Redis commands
}

// measureWindow measures the CPU and the Redis commands used over the next d
// (CPU-profiled, when the run's one profile is still to be taken).
func (b *bench) measureWindow(ctx context.Context, rw *runningWorker, d time.Duration) (windowUse, error) {
	stopProfile, err := b.profile()
	if err != nil {
		return windowUse{}, err
	}
	defer stopProfile()
	before, err := commandStats(ctx, b.rdb)
	if err != nil {
		return windowUse{}, err
	}
	c0, err := b.cpuNow(ctx)
	if err != nil {
		return windowUse{}, err
	}
	if err := sleepCtx(ctx, rw, d); err != nil {
		return windowUse{}, err
	}
	c1, err := b.cpuNow(ctx)
	if err != nil {
		return windowUse{}, err
	}
	after, err := commandStats(ctx, b.rdb)
	if err != nil {
		return windowUse{}, err
	}
	u := windowUse{from: c0.at, to: c1.at, cpu: c1.since(c0)}
	u.cmds, u.total = commandsSince(before, after, "info")
	return u, nil
}

// perAccountStats summarises the accounts' calls over a window.
type perAccountStats struct {
	calls     int       // in the window, all accounts
	rates     []float64 // each account's calls per second in the window, ascending
	maxWindow int       // the most calls of one account in any one second of the run
	// tightest is the shortest time that one account's limit + burst + 1
	// calls took, over the run: under a second would be a second over the
	// limit; its excess over a second is the margin that was left. Zero when
	// no account made that many calls.
	tightest time.Duration
	// under is how many accounts achieved less than 0.95 of their rate.
	under int
}

// accountStats computes the accounts' achieved rates over [from, to) and
// their largest one-second windows over the whole run.
func accountStats(by map[string][]time.Time, list []worker.Account, from, to time.Time) perAccountStats {
	var st perAccountStats
	secs := to.Sub(from).Seconds()
	for _, a := range list {
		at := by[a.SID]
		lo := sort.Search(len(at), func(i int) bool { return !at[i].Before(from) })
		hi := sort.Search(len(at), func(i int) bool { return !at[i].Before(to) })
		rate := float64(hi-lo) / secs
		st.calls += hi - lo
		st.rates = append(st.rates, rate)
		st.maxWindow = max(st.maxWindow, maxWindow(at))
		if span, ok := shortestSpan(at, int(a.RateLimit)+a.RateBurst+1); ok && (st.tightest == 0 || span < st.tightest) {
			st.tightest = span
		}
		if rate < 0.95*a.RateLimit {
			st.under++
		}
	}
	slices.Sort(st.rates)
	return st
}

// accountFigures adds the accounts phase's figures and breakdown.
func (b *bench) accountFigures(rep *Report, st perAccountStats, use windowUse, bare drainRun, wait float64, deferred map[string]float64) {
	o := b.o
	n, r := float64(o.Accounts), o.AccountRate
	perSec := float64(st.calls) / use.cpu.elapsed.Seconds()
	proc, rcpu := use.cpu.perJob(st.calls)
	budget := float64(runtime.NumCPU()) * 1e6 / (n * r) // µs of CPU per call the machine has at the target
	name := func(s string) string { return fmt.Sprintf("%d accounts: %s", o.Accounts, s) }
	limit := fmt.Sprintf("configured rate per account (%g/s)", r)
	rep.Figures = append(rep.Figures,
		Figure{Name: name("achieved rate, lowest account"), Unit: "calls/s", Value: st.rates[0], Baseline: limit, Base: r, Ratio: st.rates[0] / r},
		Figure{Name: name("achieved rate, median account"), Unit: "calls/s", Value: median(st.rates), Baseline: limit, Base: r, Ratio: median(st.rates) / r},
		Figure{Name: name("accounts under 0.95 of their rate"), Unit: "accounts", Value: float64(st.under), Baseline: "accounts", Base: n, Ratio: float64(st.under) / n},
		Figure{Name: name("largest 1-second window, any account"), Unit: "calls", Value: float64(st.maxWindow), Baseline: "limit + burst", Base: r + 1, Ratio: float64(st.maxWindow) / (r + 1)},
	)
	if st.tightest > 0 {
		ms := float64(st.tightest) / float64(time.Millisecond)
		rep.Figures = append(rep.Figures, Figure{Name: name("shortest time for limit + burst + 1 calls, any account"), Unit: "ms",
			Value: ms, Baseline: "one second (less would be over the limit)", Base: 1000, Ratio: ms / 1000})
	}
	rep.Figures = append(rep.Figures,
		Figure{Name: name("calls per second, all accounts"), Unit: "calls/s", Value: perSec, Baseline: "accounts × rate", Base: n * r, Ratio: perSec / (n * r)},
		Figure{Name: name("CPU per call, process + Redis"), Unit: "µs", Value: proc + rcpu, Baseline: "the machine's CPU per call at accounts × rate", Base: budget, Ratio: (proc + rcpu) / budget},
		Figure{Name: name("CPU per call, Redis"), Unit: "µs", Value: rcpu, Baseline: "the machine's CPU per call at accounts × rate", Base: budget, Ratio: rcpu / budget},
		Figure{Name: name("CPU per call, process + Redis"), Unit: "µs", Value: proc + rcpu, Baseline: "bare asynq + POST, same queues", Base: bare.cpu, Ratio: (proc + rcpu) / bare.cpu},
		Figure{Name: name("bare asynq + POST, same queues, no limits"), Unit: "calls/s", Value: bare.rate, Baseline: "accounts × rate", Base: n * r, Ratio: bare.rate / (n * r)},
		Figure{Name: name("bare asynq + POST, same queues: CPU per call"), Unit: "µs", Value: bare.cpu, Baseline: "the machine's CPU per call at accounts × rate", Base: budget, Ratio: bare.cpu / budget},
		Figure{Name: name("bare asynq + POST, same queues: Redis CPU per call"), Unit: "µs", Value: bare.redisCPU, Baseline: "the pipeline's Redis CPU per call", Base: rcpu, Ratio: bare.redisCPU / rcpu},
		// Whether the target can fit this machine at all: bare asynq's CPU
		// per call plus only the Redis work the pipeline adds to it (the
		// grant, the job's records, the results stream), as if its process
		// side cost nothing more than bare asynq's. Above 1, no speed-up of
		// the worker process alone can reach the target here.
		Figure{Name: name("bare asynq + POST + the pipeline's added Redis CPU, per call"), Unit: "µs", Value: bare.cpu + rcpu - bare.redisCPU,
			Baseline: "the machine's CPU per call at accounts × rate", Base: budget, Ratio: (bare.cpu + rcpu - bare.redisCPU) / budget},
		Figure{Name: name("machine CPU busy, all processes"), Unit: "%", Value: 100 * use.cpu.busy, Baseline: "all cores", Base: 100, Ratio: use.cpu.busy},
		Figure{Name: name("Redis commands per call"), Unit: "commands", Value: use.total / float64(st.calls), Baseline: "(absolute)", Base: use.total / float64(st.calls), Ratio: 1},
		Figure{Name: name("mean limiter wait held in a handler"), Unit: "ms", Value: 1000 * wait, Baseline: "the limiter's longest wait in a handler", Base: 2000, Ratio: wait / 2},
	)
	rep.Figures = append(rep.Figures, deferralFigures(name, deferred, st.calls)...)
	for k := range use.cmds {
		use.cmds[k] /= float64(st.calls)
	}
	rep.Breakdowns = append(rep.Breakdowns, Breakdown{Name: name("Redis commands per call, by command"), Unit: "commands", Parts: use.cmds})
}

// backlog queues BacklogJobs jobs for one account and, while the worker
// works through them, enqueues SmallJobs single jobs of a second account at
// random moments: their enqueue-to-call latency.
func (b *bench) backlog(ctx context.Context, rep *Report) error {
	o := b.o
	list := benchAccounts("BACKLOG", 2, o.AccountRate)
	big, small := list[0].SID, list[1].SID
	b.progress("backlog: %d jobs queued for one account, %d single jobs of another, concurrency %d", o.BacklogJobs, o.SmallJobs, o.AccountConcurrency)
	rig, err := b.newAccountRig(ctx, list)
	if err != nil {
		return err
	}
	defer rig.close()
	bigJobs := b.accountJobs(list[:1], o.BacklogJobs)
	if err := rig.enqueue(ctx, bigJobs); err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	rw, err := rig.start(ctx)
	if err != nil {
		return err
	}
	defer rw.stop()
	if err := sleepCtx(ctx, rw, time.Second); err != nil {
		return err
	}
	sent, err := rig.sendSingles(ctx, rw, b.accountJobs(list[1:], o.SmallJobs))
	if err != nil {
		return err
	}
	by, err := rig.awaitCalls(ctx, rw, small, len(sent))
	if err != nil {
		return err
	}
	rw.stop()
	lat, err := rig.latencies(sent, small)
	if err != nil {
		return err
	}
	wait, deferred, err := rig.limiterStats()
	if err != nil {
		return err
	}
	b.backlogFigures(rep, lat, by[big], minTime(sent), by[small][len(by[small])-1], wait, deferred)
	return nil
}

// backlogFigures adds the backlog phase's figures: the small account's
// latencies lat, and the backlogged account's calls bigAt while the small
// account's jobs came and went (from first to last).
func (b *bench) backlogFigures(rep *Report, lat []float64, bigAt []time.Time, first, last time.Time, wait float64, deferred map[string]float64) {
	o := b.o
	lo := sort.Search(len(bigAt), func(i int) bool { return !bigAt[i].Before(first) })
	hi := sort.Search(len(bigAt), func(i int) bool { return bigAt[i].After(last) })
	bigRate := float64(hi-lo) / last.Sub(first).Seconds()
	const target = "target"
	p50, p99 := quantile(lat, 0.5), quantile(lat, 0.99)
	name := func(s string) string { return fmt.Sprintf("backlog of %d: %s", o.BacklogJobs, s) }
	rep.Figures = append(rep.Figures,
		Figure{Name: name("small account enqueue-to-call p50"), Unit: "ms", Value: p50, Baseline: target, Base: 2000, Ratio: p50 / 2000},
		Figure{Name: name("small account enqueue-to-call p99"), Unit: "ms", Value: p99, Baseline: target, Base: 2000, Ratio: p99 / 2000},
		Figure{Name: name("backlogged account's rate meanwhile"), Unit: "calls/s", Value: bigRate, Baseline: "configured rate", Base: o.AccountRate, Ratio: bigRate / o.AccountRate},
		Figure{Name: name("largest 1-second window, backlogged account"), Unit: "calls", Value: float64(maxWindow(bigAt)), Baseline: "limit + burst", Base: o.AccountRate + 1, Ratio: float64(maxWindow(bigAt)) / (o.AccountRate + 1)},
		Figure{Name: name("mean limiter wait held in a handler"), Unit: "ms", Value: 1000 * wait, Baseline: "the limiter's longest wait in a handler", Base: 2000, Ratio: wait / 2},
	)
	rep.Figures = append(rep.Figures, deferralFigures(name, deferred, len(bigAt)+len(lat))...)
}

// deferralFigures are the jobs the limiter handed back to the queue over a
// phase's run, by reason, per call of the run (or of its measured window).
func deferralFigures(name func(string) string, deferred map[string]float64, calls int) []Figure {
	var out []Figure
	for _, reason := range slices.Sorted(maps.Keys(deferred)) {
		per := deferred[reason] / float64(calls)
		out = append(out, Figure{Name: name("jobs handed back by the limiter, " + reason), Unit: "per call",
			Value: per, Baseline: "(absolute)", Base: per, Ratio: 1})
	}
	return out
}

// sendSingles enqueues jobs one at a time, each after a random pause, and
// returns when each was enqueued (just before the call), by agent number.
func (r *accountRig) sendSingles(ctx context.Context, rw *runningWorker, jobs []launch.Job) (map[string]time.Time, error) {
	sent := make(map[string]time.Time, len(jobs))
	for _, j := range jobs {
		gap := minSmallGap + rand.N(maxSmallGap-minSmallGap)
		if err := sleepCtx(ctx, rw, gap); err != nil {
			return nil, err
		}
		start := time.Now()
		if _, err := r.ops.Enqueue(ctx, j, nil); err != nil {
			return nil, err
		}
		sent[j.Launch.AgentNo] = start
	}
	return sent, nil
}

// awaitCalls waits, for up to a minute, until sid has had n calls, and
// returns every call's arrival time by SID.
func (r *accountRig) awaitCalls(ctx context.Context, rw *runningWorker, sid string, n int) (map[string][]time.Time, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		by, err := r.callsBySID()
		if err != nil || len(by[sid]) >= n {
			return by, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d calls of account %s arrived within a minute", len(by[sid]), n, sid)
		}
		if err := sleepCtx(ctx, rw, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// latencies are the milliseconds from each job's enqueue (sent, by agent
// number) to its call's arrival.
func (r *accountRig) latencies(sent map[string]time.Time, sid string) ([]float64, error) {
	var out []float64
	for _, c := range r.sim.Calls() {
		if c.SID != sid {
			continue
		}
		at, ok := sent[c.AgentNo]
		if !ok {
			return nil, fmt.Errorf("account %s was called for agent %s, which it never enqueued", sid, c.AgentNo)
		}
		out = append(out, float64(c.At.Sub(at))/float64(time.Millisecond))
	}
	return out, nil
}

func minTime(m map[string]time.Time) time.Time {
	var first time.Time
	for _, t := range m {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first
}
