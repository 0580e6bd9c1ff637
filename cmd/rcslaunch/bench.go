package main

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/bench"
	"github.com/rcslaunch/rcslaunch/internal/cli"
	"github.com/rcslaunch/rcslaunch/internal/config"
)

func runBench(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "bench", "[--jobs N] [--concurrency C] [--runs 3] [--rows N] [--big] [--phases LIST] [--json]",
		`Measures the pipeline against bare asynq on the same Redis, in one run, each
figure next to its baseline (medians of --runs runs): worker throughput versus an
asynq handler that only POSTs the payload to the simulator (and a no-op one);
bulk enqueue from a JSONL file versus a bare asynq.Client.Enqueue loop, and the
peak RSS of an "rcslaunch enqueue" child process; rate-limit fidelity of one
process; enqueue-to-call latency on an idle worker; Redis commands per job.
Phases beyond these (--phases): accounts (--accounts accounts at
--account-rate each: achieved rates, one-second windows, CPU per call),
backlog (a small account's latency beside --backlog-jobs queued jobs of
another) and memory (Redis memory per retained finished job).
The simulator runs in-process with no added latency. With REDIS_URL unset it
starts its own redis-server (which must be on PATH) on a free port; with
REDIS_URL set it needs --flush, since it empties that database between phases.
Exit status 0 when it ran, whatever the figures; 1 when it could not run.`)
	o := bench.Options{Progress: io.Err}
	benchFlags(f, &o)
	phases := f.String("phases", strings.Join(bench.DefaultPhases, ","), "the phases to run, in order: any of "+strings.Join(bench.AllPhases, ","))
	flush := f.Bool("flush", false, "allow emptying the database at REDIS_URL (FLUSHDB) between phases")
	asJSON := f.Bool("json", false, "print the report as JSON")
	if code, ok := f.ParseNone(args); !ok {
		return code
	}
	o.Phases = strings.Split(*phases, ",")
	var err error
	if o.Executable, err = os.Executable(); err != nil {
		return cli.Fail(io, err)
	}
	if err := o.Check(); err != nil {
		return f.UsageError("%v", err)
	}
	if o.Config, err = config.Load(0); err != nil {
		return cli.Fail(io, err)
	}
	if o.OwnRedis = !redisGiven(o.Config); !o.OwnRedis && !*flush {
		return f.UsageError("REDIS_URL is set: bench empties its database between phases; pass --flush to allow it, or unset REDIS_URL")
	}
	rep, err := bench.Run(ctx, o)
	if err != nil {
		return cli.Fail(io, err)
	}
	if *asJSON {
		cli.PrintJSON(io.Out, rep)
	} else {
		rep.Print(io.Out)
	}
	return cli.ExitOK
}

// benchFlags defines the flags that set o's figures and sizes.
func benchFlags(f *cli.Flags, o *bench.Options) {
	f.IntVar(&o.Jobs, "jobs", 5000, "jobs per throughput run")
	f.IntVar(&o.Concurrency, "concurrency", 10, "worker concurrency (pipeline and bare asynq alike)")
	f.IntVar(&o.Runs, "runs", 3, "runs per figure; the median is reported")
	f.IntVar(&o.Rows, "rows", 20000, "rows per bulk-enqueue run")
	f.IntVar(&o.RSSRows, "rss-rows", 100000, "rows of the file whose peak RSS is measured")
	f.BoolVar(&o.Big, "big", false, "measure peak RSS at 1,000,000 rows too")
	f.IntVar(&o.LatencySamples, "latency-samples", 50, "single jobs timed for the latency figures")
	f.IntVar(&o.RateJobs, "rate-jobs", 100, "jobs for the rate-limit fidelity run (0 skips it)")
	f.Float64Var(&o.Rate, "rate", 20, "KALEYRA_RATE_LIMIT for the fidelity run")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the first timed pipeline run (or accounts window) to `FILE`")
	f.IntVar(&o.Accounts, "accounts", 200, "accounts served at once in the accounts phase")
	f.Float64Var(&o.AccountRate, "account-rate", 20, "each account's rate limit (burst 1) in the accounts and backlog phases")
	f.DurationVar(&o.AccountWindow, "account-window", 20*time.Second, "how long the accounts phase measures")
	f.IntVar(&o.AccountConcurrency, "account-concurrency", 400, "worker concurrency in the accounts and backlog phases")
	f.IntVar(&o.BacklogJobs, "backlog-jobs", 100000, "jobs queued for the backlogged account in the backlog phase")
	f.IntVar(&o.SmallJobs, "small-jobs", 50, "single jobs of the small account timed in the backlog phase")
	f.IntVar(&o.MemoryJobs, "memory-jobs", 20000, "finished jobs the memory phase measures Redis memory over")
}
