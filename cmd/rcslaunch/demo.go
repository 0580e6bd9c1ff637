package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/ops"
	"github.com/rcslaunch/rcslaunch/worker"
)

// demoCase is one launch of the demo batch and what the simulator answers it.
type demoCase struct {
	agentNo string
	about   string
	steps   []sim.Step // scripted answers before normal behaviour (success)
	want    ops.State  // expected outcome: succeeded or dead_lettered
	code    string     // expected final code
}

const (
	demoSID      = "DEMO0000SID"
	demoKey      = "demo-api-key"
	demoRetryMax = 2
)

func demoCases() []demoCase {
	return []demoCase{
		{"48900", "launches at once", nil, ops.StateSucceeded, "RCS902"},
		{"48901", "launches at once", nil, ops.StateSucceeded, "RCS902"},
		{"48902", "launches at once", nil, ops.StateSucceeded, "RCS902"},
		{"48903", "gateway error twice (RCS502), retried with backoff, then launches",
			[]sim.Step{sim.StepGateway, sim.StepGateway}, ops.StateSucceeded, "RCS902"},
		{"48904", "gateway error every time: retried RETRY_MAX times, then dead-lettered",
			[]sim.Step{sim.StepGateway, sim.StepGateway, sim.StepGateway}, ops.StateDeadLettered, "RCS502"},
		{"48905", "refused by the carrier side (RCS904): terminal, dead-lettered at once",
			[]sim.Step{sim.StepMissingFields}, ops.StateDeadLettered, "RCS904"},
		{"48906", "RCS channel not enabled (RCS601): terminal, dead-lettered at once",
			[]sim.Step{sim.StepDisabled}, ops.StateDeadLettered, "RCS601"},
	}
}

func runDemo(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "demo", "", `Runs the whole pipeline on this machine with no credentials: the Kaleyra
simulator, a worker, and a sample batch that shows a success, a retried RCS502 and
terminal failures, printing each outcome. With REDIS_URL unset it uses an
in-process Redis (for the demo only); set REDIS_URL to keep the results and dead
letters and look at them afterwards with "rcslaunch results" and "rcslaunch dlq list".`)
	timeout := f.Duration("timeout", 2*time.Minute, "give up after this long")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return f.usageError("unexpected argument %q", pos[0])
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	cfg, err := config.Load(0)
	if err != nil {
		return fail(io, err)
	}
	cfg.SID, cfg.ResultsMaxLen = demoSID, 0
	redisWhere := "Redis at REDIS_URL"
	if _, set := os.LookupEnv("REDIS_URL"); !set && len(cfg.RedisClusterAddrs) == 0 {
		mr := miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return fail(io, fmt.Errorf("start in-process Redis: %w", err))
		}
		defer mr.Close()
		cfg.RedisURL = "redis://" + mr.Addr() + "/0"
		redisWhere = "an in-process Redis (set REDIS_URL to use yours)"
	}
	a, err := openWith(ctx, cfg)
	if err != nil {
		return fail(io, err)
	}
	defer a.Close()

	// The simulator, scripted per agent.
	simulator := sim.New(sim.Config{APIKey: demoKey, Latency: 30 * time.Millisecond})
	cases := demoCases()
	for _, c := range cases {
		simulator.Script(c.agentNo, c.steps...)
	}
	simURL := make(chan string, 1)
	simDone := make(chan error, 1)
	simCtx, stopSim := context.WithCancel(context.Background())
	defer func() { stopSim(); <-simDone }()
	go func() { simDone <- simulator.ListenAndServe(simCtx, "127.0.0.1:0", func(u string) { simURL <- u }) }()
	var base string
	select {
	case base = <-simURL:
	case err := <-simDone:
		simDone <- err
		return fail(io, err)
	}

	// A worker, in this process, with short backoffs so the demo is quick.
	logger := zerolog.New(zerolog.ConsoleWriter{Out: io.err, NoColor: !isTerminal(io.err)}).Level(zerolog.ErrorLevel).With().Timestamp().Logger()
	w, err := worker.New(worker.Options{
		Redis: a.redis, SID: demoSID, APIKey: demoKey, BaseURL: base,
		Concurrency: 4, RateLimit: 20, RetryMax: demoRetryMax, JobRetention: cfg.JobRetention,
		RetryBaseDelay: 300 * time.Millisecond, RetryMaxDelay: 2 * time.Second, Logger: &logger,
		// CoolOffThreshold is left zero, no cool-off: the batch has five
		// RCS502 answers on purpose, and a cool-off would only slow the demo.
	})
	if err != nil {
		return fail(io, err)
	}
	workerCtx, stopWorker := context.WithCancel(context.Background())
	workerDone := make(chan error, 1)
	go func() { workerDone <- w.Run(workerCtx) }()
	defer func() { stopWorker(); <-workerDone }()

	fprintf(io.out, "rcslaunch demo: Kaleyra simulator at %s, %s, one worker (RETRY_MAX=%d)\n\n", base, redisWhere, demoRetryMax)

	// The sample batch; IDs are unique per run so that a demo on a kept
	// Redis never finds its jobs already launched.
	run := time.Now().UTC().Format("20060102T150405.000")
	want := map[string]demoCase{}
	jobs := make([]launch.Job, len(cases))
	for i, c := range cases {
		jobs[i] = demoJob(c.agentNo)
		jobs[i].ID = fmt.Sprintf("demo-%s-%d", run, i+1)
		want[jobs[i].ID] = c
	}
	statuses := make([]ops.Status, len(jobs))
	sum, err := a.ops.EnqueueJobs(ctx, jobs, &ops.BatchOpts{Name: "demo",
		OnResult: func(line int, r ops.EnqueueResult) { statuses[line-1] = r.Status }})
	if err != nil {
		return fail(io, err)
	}
	batch := *sum.BatchID
	for i, c := range cases {
		fprintf(io.out, "%-9s agent %s: %s\n", statuses[i], c.agentNo, c.about)
	}
	fprintf(io.out, "\nOutcomes, as they land on the results stream (%s):\n", store.ResultsStream)

	after, seen, surprises := "0", 0, 0
	for seen < len(want) {
		rs, err := a.ops.ReadResults(ctx, after, 100, 500*time.Millisecond)
		if err != nil {
			return fail(io, fmt.Errorf("waiting for outcomes: %w", err))
		}
		if ctx.Err() != nil {
			return fail(io, fmt.Errorf("gave up after %v with %d of %d outcomes", *timeout, seen, len(want)))
		}
		for _, r := range rs {
			after = r.StreamID
			c, ok := want[r.JobID]
			if !ok {
				continue
			}
			seen++
			printResult(io, r)
			if r.Outcome != string(c.want) || r.Code != c.code {
				surprises++
				errorf(io, "job %s: expected %s %s, got %s %s", r.JobID, c.want, c.code, r.Outcome, r.Code)
			}
		}
	}

	stats := simulator.Stats()
	fprintf(io.out, "\nThe simulator received %d launch calls: %v\n", stats.Calls, stats.ByCode)
	if b, err := a.ops.BatchStatus(ctx, batch); err == nil {
		fprintf(io.out, "The batch: %d succeeded, %d dead-lettered%s\n", b.Succeeded, b.DeadLettered, byCode(b.Batch))
	}
	n, _ := a.ops.CountDeadLetters(ctx, ops.Filter{})
	fprintf(io.out, `
Where to look (with REDIS_URL set, these work after the demo too):
  rcslaunch results                 every finished job, from the results stream
  rcslaunch batch status %s
                                    the batch's counts; "batch report" for one row per job
  rcslaunch dlq list                the %d dead letters; "dlq show JOB_ID" for every attempt
  rcslaunch dlq retry --code RCS502 replay dead letters with a fresh attempt budget
  rcslaunch status JOB_ID           one job's state
`, batch, n)
	if surprises > 0 {
		return fail(io, errors.New("the demo did not end as expected"))
	}
	return exitOK
}

func demoJob(agentNo string) launch.Job {
	return launch.Job{
		Launch: launch.Launch{
			AgentNo:                 agentNo,
			OptinDescription:        "Customers opt in on the checkout page",
			TriggerDescription:      "The customer sends START",
			InteractionsDescription: "Order and delivery updates",
			OptoutDescription:       "Reply STOP at any time",
			AgentAccessInstructions: "Demo agent; no login needed",
			LaunchName:              "launch_" + agentNo,
			ScreenshotURIs:          []string{"https://www.example.com/screens/" + agentNo + ".png"},
		},
		Regions: []launch.Region{{RegionID: "8346a250-d7a9-47dc-8202-a8b1c2d3e4e8", Region: "4f4bf2b0-5110-44e1-9aa1-43392c7d3b17"}},
	}
}
