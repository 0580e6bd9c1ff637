// Package bench measures the pipeline against bare asynq on the same Redis,
// in one run, each figure next to its baseline: worker throughput and CPU
// per job, bulk enqueue, the peak RSS of an enqueue process, rate-limit
// fidelity, enqueue-to-call latency and Redis commands per job; and, in
// phases run on request, many accounts served at once, a small account's
// latency beside a backlogged one, and Redis memory per retained job. It is
// what "rcslaunch bench" runs; BENCHMARKS.md holds its figures.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/conn"
	"github.com/rcslaunch/rcslaunch/internal/demo"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/launch"
)

const (
	// SID is the bench's account: job IDs derive from it.
	SID    = "BENCH000SID"
	apiKey = "bench-api-key"
)

// Options say what to measure, and where.
type Options struct {
	// Config gives the Redis to measure on, unless OwnRedis; its database is
	// emptied between phases. The bench uses its own SID, never trims the
	// results and keeps no finished jobs.
	Config config.Config
	// OwnRedis starts a private redis-server (which must be on PATH) on a
	// free loopback port, for the run only.
	OwnRedis bool

	Jobs        int // jobs per throughput run
	Concurrency int // worker concurrency, pipeline and bare asynq alike
	Runs        int // runs per figure; the median is reported
	Rows        int // rows per bulk-enqueue run
	RSSRows     int // rows of the file whose peak RSS is measured
	Big         bool
	// LatencySamples is how many single jobs are timed for the latency figures.
	LatencySamples int
	// RateJobs is the jobs of the rate-limit fidelity run (below 2 skips
	// it), at Rate calls per second.
	RateJobs int
	Rate     float64
	// CPUProfile, when set, is a file to write a CPU profile to: of the
	// first timed pipeline run, or of the accounts phase's measured window
	// when the throughput phase does not run.
	CPUProfile string

	// Phases are the phases to run, in this order (names from AllPhases);
	// empty means DefaultPhases.
	Phases []string
	// Accounts is how many accounts the accounts phase serves at once, each
	// limited to AccountRate calls per second with burst 1; the phase
	// measures AccountWindow once every account is backlogged and the
	// worker has run for a few seconds.
	Accounts      int
	AccountRate   float64
	AccountWindow time.Duration
	// AccountConcurrency is the worker's concurrency (WORKER_CONCURRENCY)
	// in the accounts and backlog phases.
	AccountConcurrency int
	// BacklogJobs is the big account's queued jobs in the backlog phase,
	// and SmallJobs the single jobs of the small account timed meanwhile.
	BacklogJobs, SmallJobs int
	// MemoryJobs is how many finished jobs the memory phase measures Redis
	// memory over.
	MemoryJobs int

	// Executable is the rcslaunch binary, run as "enqueue --file" in a
	// child process for the peak-RSS figures.
	Executable string
	// Progress, when set, gets a line as each phase starts.
	Progress io.Writer
}

// The phases, by name (Options.Phases).
const (
	PhaseThroughput = "throughput" // pipeline vs bare asynq: jobs/s, CPU, Redis commands, allocations
	PhaseBulk       = "bulk"       // bulk enqueue vs bare enqueue loops
	PhaseRSS        = "rss"        // peak RSS of an enqueue child process
	PhaseFidelity   = "fidelity"   // rate-limit fidelity of one process
	PhaseLatency    = "latency"    // enqueue-to-call latency on an idle worker
	PhaseAccounts   = "accounts"   // many accounts, each at its rate
	PhaseBacklog    = "backlog"    // a small account's latency beside a backlogged one
	PhaseMemory     = "memory"     // Redis memory per retained finished job
)

// AllPhases lists every phase; DefaultPhases those a bench without
// --phases runs (issue 7's figures).
var (
	AllPhases     = []string{PhaseThroughput, PhaseBulk, PhaseRSS, PhaseFidelity, PhaseLatency, PhaseAccounts, PhaseBacklog, PhaseMemory}
	DefaultPhases = AllPhases[:5]
)

// phases is o.Phases, or DefaultPhases.
func (o Options) phases() []string {
	if len(o.Phases) == 0 {
		return DefaultPhases
	}
	return o.Phases
}

// runs reports whether the phase named name runs.
func (o Options) runs(name string) bool { return slices.Contains(o.phases(), name) }

// Check says what is wrong with o, if anything.
func (o Options) Check() error {
	if o.Jobs < 1 || o.Concurrency < 1 || o.Runs < 1 || o.Rows < 1 || o.LatencySamples < 2 {
		return errors.New("--jobs, --concurrency, --runs, --rows must be positive and --latency-samples at least 2")
	}
	if o.Executable == "" {
		return errors.New("bench: Options.Executable is required")
	}
	for i, p := range o.phases() {
		if !slices.Contains(AllPhases, p) {
			return fmt.Errorf("--phases: no phase %q (phases: %s)", p, strings.Join(AllPhases, ","))
		}
		if slices.Contains(o.phases()[:i], p) {
			return fmt.Errorf("--phases: %q named twice", p)
		}
	}
	switch {
	case (o.runs(PhaseAccounts) || o.runs(PhaseBacklog)) && (o.AccountRate <= 0 || o.AccountConcurrency < 1):
		return errors.New("--account-rate and --account-concurrency must be positive")
	case o.runs(PhaseAccounts) && (o.Accounts < 1 || o.AccountWindow < time.Second):
		return errors.New("--accounts must be positive and --account-window at least 1s")
	case o.runs(PhaseBacklog) && (o.BacklogJobs < 1 || o.SmallJobs < 2):
		return errors.New("--backlog-jobs must be positive and --small-jobs at least 2")
	case o.runs(PhaseMemory) && o.MemoryJobs < 1:
		return errors.New("--memory-jobs must be positive")
	}
	return nil
}

// Run measures every figure and returns the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	cfg := o.Config
	if o.OwnRedis {
		url, stop, err := startRedis(ctx)
		if err != nil {
			return nil, err
		}
		defer stop()
		cfg.RedisURL = url
	}
	cfg.SID, cfg.ResultsMaxLen, cfg.JobRetention = SID, 0, 0
	b, err := start(ctx, cfg, o)
	if err != nil {
		return nil, err
	}
	defer b.close()
	return b.all(ctx)
}

// bench is one run's state: the Redis, the simulator and a scratch folder.
type bench struct {
	*conn.Conn
	o       Options
	cfg     config.Config
	rdb     redis.UniversalClient // for FLUSHDB and INFO
	sim     *sim.Server
	base    string // the simulator's URL
	dir     string
	stopSim func()
	job     launch.Job // the template payload
	// profiled is set once a CPU profile has been taken (Options.CPUProfile).
	profiled bool
	runID    int // distinguishes jobs across phases
}

// start connects to Redis and starts the simulator.
func start(ctx context.Context, cfg config.Config, o Options) (*bench, error) {
	c, err := conn.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	b := &bench{Conn: c, o: o, cfg: cfg, rdb: rdb.NewClient(c.Redis),
		sim: sim.New(sim.Config{APIKey: apiKey}), job: demo.Job("1")}
	if b.dir, err = os.MkdirTemp("", "rcslaunch-bench-files-*"); err != nil {
		c.Close()
		return nil, err
	}
	if b.base, b.stopSim, err = b.sim.Start("127.0.0.1:0"); err != nil {
		c.Close()
		os.RemoveAll(b.dir)
		return nil, err
	}
	return b, nil
}

func (b *bench) close() {
	b.stopSim()
	b.rdb.Close()
	b.Close()
	os.RemoveAll(b.dir)
}

// all runs the phases in turn.
func (b *bench) all(ctx context.Context) (*Report, error) {
	rep := &Report{Machine: machine(), Jobs: b.o.Jobs, Concurrency: b.o.Concurrency, Runs: b.o.Runs,
		Phases: b.o.phases()}
	steps := map[string]func(context.Context, *Report) error{
		PhaseThroughput: b.throughput, PhaseBulk: b.bulk, PhaseRSS: b.rss, PhaseFidelity: b.fidelity,
		PhaseLatency: b.latency, PhaseAccounts: b.accounts, PhaseBacklog: b.backlog, PhaseMemory: b.memory,
	}
	for _, name := range b.o.phases() {
		if err := steps[name](ctx, rep); err != nil {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return rep, nil
}

func (b *bench) flush(ctx context.Context) error {
	b.sim.Reset()
	return b.rdb.FlushDB(ctx).Err()
}

// jobFor is the template job for agent n (a distinct payload, so a distinct ID).
func (b *bench) jobFor(n int) launch.Job {
	j := b.job
	j.Launch.AgentNo = strconv.Itoa(n)
	j.Launch.LaunchName = "launch_" + j.Launch.AgentNo
	j.Launch.ScreenshotURIs = []string{"https://www.example.com/screens/" + j.Launch.AgentNo + ".png"}
	j.ApplyDefaults()
	j.ID = launch.IDFor(SID, j)
	return j
}

// withSID is j for account sid, with the ID derived from it.
func withSID(j launch.Job, sid string) launch.Job {
	j.SID = sid
	j.ID = launch.IDFor(sid, j)
	return j
}

// nextJobs returns n fresh jobs, never used before in this run.
func (b *bench) nextJobs(n int) []launch.Job {
	b.runID++
	js := make([]launch.Job, n)
	for i := range js {
		js[i] = b.jobFor(b.runID*10_000_000 + i)
	}
	return js
}

func (b *bench) progress(format string, args ...any) {
	if b.o.Progress != nil {
		fmt.Fprintf(b.o.Progress, "bench: "+format+"\n", args...)
	}
}

// profile starts the run's one CPU profile, when Options.CPUProfile asks
// for one and none was taken yet; stop ends it.
func (b *bench) profile() (stop func(), err error) {
	if b.o.CPUProfile == "" || b.profiled {
		return func() {}, nil
	}
	b.profiled = true
	fh, err := os.Create(b.o.CPUProfile)
	if err != nil {
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(fh); err != nil {
		fh.Close()
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); fh.Close() }, nil
}
