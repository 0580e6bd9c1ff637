package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/jobfile"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/ops"
	"github.com/rcslaunch/rcslaunch/worker"
)

const (
	benchSID = "BENCH000SID"
	benchKey = "bench-api-key"
)

// benchOpts are the bench command's flags.
type benchOpts struct {
	jobs, concurrency, runs int
	rows, rssRows           int
	big                     bool
	samples                 int
	rateJobs                int
	rate                    float64
	cpuProfile              string
}

// figure is one measured figure next to its same-run baseline.
type figure struct {
	Name     string    `json:"name"`
	Unit     string    `json:"unit"`
	Value    float64   `json:"value"`
	Baseline string    `json:"baseline"`
	Base     float64   `json:"baseline_value"`
	Ratio    float64   `json:"ratio"`
	Runs     []float64 `json:"runs,omitempty"`
	BaseRuns []float64 `json:"baseline_runs,omitempty"`
	// RunRatios are the runs' own ratios (each run against the baseline
	// measured right after it), a check on Ratio when the machine is noisy.
	RunRatios []float64 `json:"run_ratios,omitempty"`
}

type benchReport struct {
	Machine     map[string]string `json:"machine"`
	Jobs        int               `json:"jobs"`
	Concurrency int               `json:"concurrency"`
	Runs        int               `json:"runs"`
	Figures     []figure          `json:"figures"`
	// RedisCommands is the pipeline's Redis commands per successful job, by
	// command (median run), for where the round trips go.
	RedisCommands map[string]float64 `json:"redis_commands_per_job"`
}

func runBench(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "bench", "[--jobs N] [--concurrency C] [--runs 3] [--rows N] [--big] [--json]",
		`Measures the pipeline against bare asynq on the same Redis, in one run, each
figure next to its baseline (medians of --runs runs): worker throughput versus an
asynq handler that only POSTs the payload to the simulator (and a no-op one);
bulk enqueue from a JSONL file versus a bare asynq.Client.Enqueue loop, and the
peak RSS of an "rcslaunch enqueue" child process; rate-limit fidelity of one
process; enqueue-to-call latency on an idle worker; Redis commands per job.
The simulator runs in-process with no added latency. With REDIS_URL unset it
starts its own redis-server (which must be on PATH) on a free port; with
REDIS_URL set it needs --flush, since it empties that database between phases.
Exit status 0 when it ran, whatever the figures; 1 when it could not run.`)
	var o benchOpts
	f.IntVar(&o.jobs, "jobs", 5000, "jobs per throughput run")
	f.IntVar(&o.concurrency, "concurrency", 10, "worker concurrency (pipeline and bare asynq alike)")
	f.IntVar(&o.runs, "runs", 3, "runs per figure; the median is reported")
	f.IntVar(&o.rows, "rows", 20000, "rows per bulk-enqueue run")
	f.IntVar(&o.rssRows, "rss-rows", 100000, "rows of the file whose peak RSS is measured")
	f.BoolVar(&o.big, "big", false, "measure peak RSS at 1,000,000 rows too")
	f.IntVar(&o.samples, "latency-samples", 50, "single jobs timed for the latency figures")
	f.IntVar(&o.rateJobs, "rate-jobs", 100, "jobs for the rate-limit fidelity run (0 skips it)")
	f.Float64Var(&o.rate, "rate", 20, "KALEYRA_RATE_LIMIT for the fidelity run")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the pipeline's timed throughput runs to `FILE`")
	flush := f.Bool("flush", false, "allow emptying the database at REDIS_URL (FLUSHDB) between phases")
	asJSON := f.Bool("json", false, "print the report as JSON")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return f.usageError("unexpected argument %q", pos[0])
	}
	if o.jobs < 1 || o.concurrency < 1 || o.runs < 1 || o.rows < 1 || o.samples < 2 {
		return f.usageError("--jobs, --concurrency, --runs, --rows must be positive and --latency-samples at least 2")
	}
	cfg, err := config.Load(0)
	if err != nil {
		return fail(io, err)
	}
	if _, set := os.LookupEnv("REDIS_URL"); set || len(cfg.RedisClusterAddrs) > 0 {
		if !*flush {
			return f.usageError("REDIS_URL is set: bench empties its database between phases; pass --flush to allow it, or unset REDIS_URL")
		}
	} else {
		url, stop, err := startBenchRedis(ctx)
		if err != nil {
			return fail(io, err)
		}
		defer stop()
		cfg.RedisURL = url
	}
	cfg.SID, cfg.ResultsMaxLen, cfg.JobRetention = benchSID, 0, 0
	b, err := newBench(ctx, cfg, o, io)
	if err != nil {
		return fail(io, err)
	}
	defer b.close()
	rep, err := b.all(ctx)
	if err != nil {
		return fail(io, err)
	}
	if *asJSON {
		printJSON(io.out, rep)
		return exitOK
	}
	printBench(io.out, rep)
	return exitOK
}

// startBenchRedis runs a private redis-server on a free loopback port.
func startBenchRedis(ctx context.Context) (string, func(), error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return "", nil, fmt.Errorf("redis-server not found on PATH; install it or set REDIS_URL: %w", err)
	}
	dir, err := os.MkdirTemp("", "rcslaunch-bench-*")
	if err != nil {
		return "", nil, err
	}
	for try := 0; try < 5; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir)
		if err := cmd.Start(); err != nil {
			return "", nil, fmt.Errorf("start redis-server: %w", err)
		}
		stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); os.RemoveAll(dir) }
		c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1})
		for i := 0; i < 100; i++ {
			if err = c.Ping(ctx).Err(); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		c.Close()
		if err == nil {
			return fmt.Sprintf("redis://127.0.0.1:%d/0", port), stop, nil
		}
		stop()
	}
	return "", nil, errors.New("could not start redis-server on a free port")
}

type bench struct {
	o    benchOpts
	cfg  config.Config
	opt  asynq.RedisConnOpt
	rdb  redis.UniversalClient
	a    *app
	sim  *sim.Server
	base string
	io   stdio
	dir  string
	stop func()
	job  launch.Job // the template payload
	// profile receives a CPU profile of the pipeline's timed runs, when set.
	profile io.Writer
	runID   int // distinguishes jobs across phases
}

func newBench(ctx context.Context, cfg config.Config, o benchOpts, io stdio) (*bench, error) {
	a, err := openWith(ctx, cfg)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rcslaunch-bench-files-*")
	if err != nil {
		a.Close()
		return nil, err
	}
	b := &bench{o: o, cfg: cfg, opt: a.redis, rdb: rdb.NewClient(a.redis), a: a, io: io, dir: dir,
		sim: sim.New(sim.Config{APIKey: benchKey}), job: demoJob("1")}
	simCtx, stopSim := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() { done <- b.sim.ListenAndServe(simCtx, "127.0.0.1:0", func(u string) { ready <- u }) }()
	select {
	case b.base = <-ready:
	case err := <-done:
		stopSim()
		a.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	b.stop = func() { stopSim(); <-done }
	return b, nil
}

func (b *bench) close() {
	b.stop()
	b.a.Close()
	os.RemoveAll(b.dir)
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
	j.ID = launch.IDFor(benchSID, j)
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

func (b *bench) all(ctx context.Context) (*benchReport, error) {
	rep := &benchReport{Machine: machine(), Jobs: b.o.jobs, Concurrency: b.o.concurrency, Runs: b.o.runs}
	steps := []func(context.Context, *benchReport) error{b.throughput, b.bulk, b.rss, b.fidelity, b.latency}
	for _, step := range steps {
		if err := step(ctx, rep); err != nil {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return rep, nil
}

// ---- 1 and 5: throughput and Redis commands per job ----

func (b *bench) throughput(ctx context.Context, rep *benchReport) error {
	var pipe, post, noop, pipeCmds, postCmds, noopCmds, pipeAllocs, postAllocs, noopAllocs []float64
	var byCmd []map[string]float64
	if b.o.cpuProfile != "" {
		fh, err := os.Create(b.o.cpuProfile)
		if err != nil {
			return err
		}
		defer fh.Close()
		b.profile = fh
	}
	for r := 0; r < b.o.runs; r++ {
		b.progress("throughput run %d/%d", r+1, b.o.runs)
		rate, cmds, allocs, by, err := b.pipelineRun(ctx)
		if err != nil {
			return fmt.Errorf("pipeline run: %w", err)
		}
		pipe, pipeCmds, pipeAllocs, byCmd = append(pipe, rate), append(pipeCmds, cmds), append(pipeAllocs, allocs), append(byCmd, by)
		if rate, cmds, allocs, err = b.bareRun(ctx, true); err != nil {
			return fmt.Errorf("bare asynq run: %w", err)
		}
		post, postCmds, postAllocs = append(post, rate), append(postCmds, cmds), append(postAllocs, allocs)
		if rate, cmds, allocs, err = b.bareRun(ctx, false); err != nil {
			return fmt.Errorf("bare asynq run: %w", err)
		}
		noop, noopCmds, noopAllocs = append(noop, rate), append(noopCmds, cmds), append(noopAllocs, allocs)
	}
	rep.Figures = append(rep.Figures,
		fig("pipeline throughput", "jobs/s", pipe, "bare asynq, handler POSTs the payload", post),
		fig("pipeline throughput", "jobs/s", pipe, "bare asynq, no-op handler", noop),
		fig("bare asynq with POST", "jobs/s", post, "bare asynq, no-op handler", noop),
		fig("Redis commands per job", "commands", pipeCmds, "bare asynq, handler POSTs the payload", postCmds),
		fig("Redis commands per job (bare POST)", "commands", postCmds, "bare asynq, no-op handler", noopCmds),
		// In-process: the simulator's allocations count on both sides.
		fig("heap allocations per job (incl. simulator)", "allocs", pipeAllocs, "bare asynq, handler POSTs the payload", postAllocs),
		fig("heap allocations per job (bare POST)", "allocs", postAllocs, "bare asynq, no-op handler", noopAllocs),
	)
	// The breakdown of the median run.
	m := median(pipeCmds)
	for i, c := range pipeCmds {
		if c == m {
			rep.RedisCommands = byCmd[i]
			break
		}
	}
	return nil
}

// pipelineRun enqueues the jobs (untimed), then times a worker draining them
// until every result is on the results stream.
func (b *bench) pipelineRun(ctx context.Context) (rate, cmdsPerJob, allocsPerJob float64, byCmd map[string]float64, err error) {
	if err := b.flush(ctx); err != nil {
		return 0, 0, 0, nil, err
	}
	jobs := b.nextJobs(b.o.jobs)
	if err := b.enqueueAll(ctx, jobs); err != nil {
		return 0, 0, 0, nil, err
	}
	// The production logger's cost is part of the pipeline's: JSON at info level, discarded.
	logger := zerolog.New(io.Discard).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	w, err := worker.New(worker.Options{
		Redis: b.opt, SID: benchSID, APIKey: benchKey, BaseURL: b.base,
		Concurrency: b.o.concurrency, RateLimit: 1e6, RateBurst: 1000, MaxInFlight: 1_000_000,
		Logger: &logger,
	})
	if err != nil {
		return 0, 0, 0, nil, err
	}
	before, err := commandStats(ctx, b.rdb)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	if b.profile != nil {
		if err := pprof.StartCPUProfile(b.profile); err != nil {
			stop()
			return 0, 0, 0, nil, err
		}
		defer pprof.StopCPUProfile()
		b.profile = nil // one run is enough
	}
	m0 := mallocs()
	start := time.Now()
	go func() { done <- w.Run(wctx) }()
	n := int64(len(jobs))
	for {
		got, err := b.a.ops.ResultsLen(ctx)
		if err != nil {
			stop()
			<-done
			return 0, 0, 0, nil, err
		}
		if got >= n {
			break
		}
		select {
		case err := <-done:
			stop()
			return 0, 0, 0, nil, fmt.Errorf("worker stopped early: %v", err)
		case <-ctx.Done():
			stop()
			<-done
			return 0, 0, 0, nil, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	allocs := float64(mallocs()-m0) / float64(len(jobs))
	after, err := commandStats(ctx, b.rdb)
	stop()
	<-done
	if err != nil {
		return 0, 0, 0, nil, err
	}
	if c := b.sim.Stats().ByCode["RCS902"]; c != len(jobs) {
		return 0, 0, 0, nil, fmt.Errorf("simulator answered %d successes for %d jobs", c, len(jobs))
	}
	by := map[string]float64{}
	total := 0.0
	for k, v := range after {
		// The bench's own polling (XLEN) and the INFO calls are not the pipeline's.
		if k == "xlen" || k == "info" {
			continue
		}
		if d := float64(v - before[k]); d > 0 {
			by[k] = d / float64(n)
			total += d
		}
	}
	return float64(n) / elapsed.Seconds(), total / float64(n), allocs, by, nil
}

// enqueueAll enqueues jobs through the producer from a few goroutines.
func (b *bench) enqueueAll(ctx context.Context, jobs []launch.Job) error {
	var wg sync.WaitGroup
	var first error
	var mu sync.Mutex
	ch := make(chan launch.Job)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				res, err := b.a.ops.Enqueue(ctx, j, nil)
				if err == nil && res.SkippedAsDuplicate {
					err = fmt.Errorf("job %s: %s", j.ID, res.Status)
				}
				if err != nil {
					mu.Lock()
					first = cmp(first, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	return first
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// bareRun is the baseline: the same tasks on plain asynq with the same
// concurrency and polling, and a handler that POSTs the payload (post) or
// does nothing.
func (b *bench) bareRun(ctx context.Context, post bool) (rate, cmdsPerJob, allocsPerJob float64, err error) {
	if err := b.flush(ctx); err != nil {
		return 0, 0, 0, err
	}
	jobs := b.nextJobs(b.o.jobs)
	cl := asynq.NewClientFromRedisClient(b.rdb)
	for _, j := range jobs {
		if _, err := cl.EnqueueContext(ctx, bareTask(j)); err != nil {
			return 0, 0, 0, err
		}
	}
	n := int64(len(jobs))
	var count atomic.Int64
	all := make(chan struct{})
	hc := b.httpClient()
	url := b.base + "/v1/" + benchSID + "/rcs/agent/launch"
	h := func(ctx context.Context, t *asynq.Task) error {
		if post {
			if err := barePost(ctx, hc, url, t.Payload()); err != nil {
				return err
			}
		}
		if count.Add(1) == n {
			close(all)
		}
		return nil
	}
	before, err := commandStats(ctx, b.rdb)
	if err != nil {
		return 0, 0, 0, err
	}
	srv := bareServer(b.opt, b.o.concurrency)
	m0 := mallocs()
	start := time.Now()
	if err := srv.Start(asynq.HandlerFunc(h)); err != nil {
		return 0, 0, 0, err
	}
	select {
	case <-all:
	case <-ctx.Done():
		srv.Shutdown()
		return 0, 0, 0, ctx.Err()
	}
	elapsed := time.Since(start)
	allocs := float64(mallocs()-m0) / float64(n)
	// asynq deletes a finished task after the handler returns: give the
	// last ones a moment before counting commands.
	time.Sleep(50 * time.Millisecond)
	after, err := commandStats(ctx, b.rdb)
	srv.Shutdown()
	if err != nil {
		return 0, 0, 0, err
	}
	total := 0.0
	for k, v := range after {
		if k != "info" {
			total += float64(v - before[k])
		}
	}
	return float64(n) / elapsed.Seconds(), total / float64(n), allocs, nil
}

// bareTask is the launch task's payload on plain asynq: the Kaleyra body,
// which is all the bare handler needs.
func bareTask(j launch.Job) *asynq.Task {
	return asynq.NewTask("bench:post", j.Body(), asynq.Queue("bare"), asynq.MaxRetry(0))
}

func bareServer(opt asynq.RedisConnOpt, concurrency int) *asynq.Server {
	return asynq.NewServer(opt, asynq.Config{
		Concurrency:       concurrency,
		Queues:            map[string]int{"bare": 1},
		TaskCheckInterval: 50 * time.Millisecond, // as the worker's
		LogLevel:          asynq.FatalLevel,
	})
}

func (b *bench) httpClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(b.o.concurrency, 100)
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

func barePost(ctx context.Context, hc *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("api-key", benchKey)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("simulator answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// ---- 2: bulk enqueue ----

func (b *bench) bulk(ctx context.Context, rep *benchReport) error {
	var pipe, one, four []float64
	for r := 0; r < b.o.runs; r++ {
		b.progress("bulk enqueue run %d/%d", r+1, b.o.runs)
		rate, err := b.fileRunRate(ctx)
		if err != nil {
			return fmt.Errorf("enqueue --file run: %w", err)
		}
		pipe = append(pipe, rate)
		for _, g := range []int{1, 4} {
			rate, err := b.bareEnqueueRate(ctx, g)
			if err != nil {
				return fmt.Errorf("bare enqueue run: %w", err)
			}
			if g == 1 {
				one = append(one, rate)
			} else {
				four = append(four, rate)
			}
		}
	}
	rep.Figures = append(rep.Figures,
		fig("bulk enqueue (enqueue --file path)", "rows/s", pipe, "bare asynq.Client.Enqueue loop, 1 goroutine", one),
		fig("bulk enqueue (enqueue --file path)", "rows/s", pipe, "bare asynq.Client.Enqueue loop, 4 goroutines", four),
	)
	return nil
}

// writeJobFile writes jobs as JSONL, without IDs (the CLI derives them).
func (b *bench) writeJobFile(name string, jobs func(yield func(launch.Job) bool)) (string, error) {
	path := filepath.Join(b.dir, name)
	fh, err := os.Create(path)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(fh, 1<<20)
	for j := range jobs {
		j.ID = ""
		if err := jobfile.Write(w, j); err != nil {
			fh.Close()
			return "", err
		}
	}
	if err := w.Flush(); err != nil {
		fh.Close()
		return "", err
	}
	return path, fh.Close()
}

func (b *bench) fileRunRate(ctx context.Context) (float64, error) {
	if err := b.flush(ctx); err != nil {
		return 0, err
	}
	jobs := b.nextJobs(b.o.rows)
	path, err := b.writeJobFile("bulk.jsonl", slices.Values(jobs))
	if err != nil {
		return 0, err
	}
	start := time.Now()
	s, err := b.a.ops.EnqueueFile(ctx, path, ops.FormatJSONL, &ops.BatchOpts{Name: "bench"})
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if s.Enqueued != len(jobs) {
		return 0, fmt.Errorf("enqueued %d of %d rows (invalid %d, failed %d)", s.Enqueued, len(jobs), s.Invalid, s.Failed)
	}
	return float64(len(jobs)) / elapsed.Seconds(), nil
}

// bareEnqueueRate times plain asynq enqueues of the same payloads as the
// pipeline's tasks, with IDs (tasks built beforehand, untimed).
func (b *bench) bareEnqueueRate(ctx context.Context, goroutines int) (float64, error) {
	if err := b.flush(ctx); err != nil {
		return 0, err
	}
	jobs := b.nextJobs(b.o.rows)
	tasks := make([]*asynq.Task, len(jobs))
	for i, j := range jobs {
		t, err := queue.NewTask(benchSID, j)
		if err != nil {
			return 0, err
		}
		tasks[i] = t
	}
	cl := asynq.NewClient(b.opt)
	defer cl.Close()
	var next atomic.Int64
	errs := make(chan error, goroutines)
	start := time.Now()
	for g := 0; g < goroutines; g++ {
		go func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(tasks)) {
					errs <- nil
					return
				}
				if _, err := cl.EnqueueContext(ctx, tasks[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var first error
	for g := 0; g < goroutines; g++ {
		first = cmp(first, <-errs)
	}
	elapsed := time.Since(start)
	if first != nil {
		return 0, first
	}
	return float64(len(tasks)) / elapsed.Seconds(), nil
}

// ---- 2: peak RSS of an enqueue process ----

func (b *bench) rss(ctx context.Context, rep *benchReport) error {
	b.progress("peak RSS of rcslaunch enqueue, 1,000 rows")
	small, _, err := b.childEnqueue(ctx, 1000)
	if err != nil {
		return err
	}
	sizes := []int{b.o.rssRows}
	if b.o.big && b.o.rssRows != 1_000_000 {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		b.progress("peak RSS of rcslaunch enqueue, %d rows", n)
		peak, rate, err := b.childEnqueue(ctx, n)
		if err != nil {
			return err
		}
		rep.Figures = append(rep.Figures,
			figure{Name: fmt.Sprintf("enqueue --file peak RSS, %d rows", n), Unit: "MiB", Value: peak,
				Baseline: "the same at 1,000 rows", Base: small, Ratio: peak / small},
			figure{Name: fmt.Sprintf("enqueue --file peak RSS, %d rows", n), Unit: "MiB", Value: peak,
				Baseline: "target ceiling", Base: 64, Ratio: peak / 64},
			figure{Name: fmt.Sprintf("enqueue --file child process, %d rows", n), Unit: "rows/s", Value: rate,
				Baseline: "(absolute; includes process start and the validation pass)", Base: rate, Ratio: 1},
		)
	}
	return nil
}

// childEnqueue runs "rcslaunch enqueue --file" on n fresh rows in a child
// process and returns its peak RSS (MiB, its VmHWM) and its rows per second.
func (b *bench) childEnqueue(ctx context.Context, n int) (float64, float64, error) {
	if err := b.flush(ctx); err != nil {
		return 0, 0, err
	}
	b.runID++
	base := b.runID * 10_000_000
	path, err := b.writeJobFile("rss.jsonl", func(yield func(launch.Job) bool) {
		for i := 0; i < n; i++ {
			if !yield(b.jobFor(base + i)) {
				return
			}
		}
	})
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(path)
	exe, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	cmd := exec.CommandContext(ctx, exe, "enqueue", "--file", path, "--json")
	cmd.Env = append(os.Environ(), "REDIS_URL="+b.cfg.RedisURL, "KALEYRA_SID="+benchSID)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("rcslaunch enqueue child: %w", err)
	}
	// VmHWM (the peak resident set) of the child, read from its
	// /proc/PID/status until it exits. (wait4's ru_maxrss is no use here: it
	// carries over the parent's peak from before the exec.)
	var peakKiB atomic.Int64
	exited := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		for {
			if kib, ok := vmHWM(status); ok {
				peakKiB.Store(max(peakKiB.Load(), kib))
			}
			select {
			case <-exited:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	err = cmd.Wait()
	elapsed := time.Since(start)
	close(exited)
	<-polled
	if err != nil {
		return 0, 0, fmt.Errorf("rcslaunch enqueue child: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	if peakKiB.Load() == 0 {
		return 0, 0, errors.New("could not read the child's VmHWM from /proc")
	}
	return float64(peakKiB.Load()) / 1024, float64(n) / elapsed.Seconds(), nil
}

// vmHWM reads VmHWM, in KiB, from a /proc/PID/status file.
func vmHWM(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// ---- 3: rate-limit fidelity, one process ----

func (b *bench) fidelity(ctx context.Context, rep *benchReport) error {
	if b.o.rateJobs < 2 {
		return nil
	}
	b.progress("rate-limit fidelity, 1 process, %d jobs at %g/s", b.o.rateJobs, b.o.rate)
	if err := b.flush(ctx); err != nil {
		return err
	}
	jobs := b.nextJobs(b.o.rateJobs)
	if err := b.enqueueAll(ctx, jobs); err != nil {
		return err
	}
	w, err := worker.New(worker.Options{
		Redis: b.opt, SID: benchSID, APIKey: benchKey, BaseURL: b.base,
		Concurrency: b.o.concurrency, RateLimit: b.o.rate, RateBurst: 1, MaxInFlight: 50,
	})
	if err != nil {
		return err
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() { stop(); <-done }()
	deadline := time.Now().Add(time.Duration(float64(len(jobs))/b.o.rate*3)*time.Second + 10*time.Second)
	for b.sim.Stats().Calls < len(jobs) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("rate-limit run: %d of %d calls arrived in time", b.sim.Stats().Calls, len(jobs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	calls := b.sim.Calls()
	at := make([]time.Time, len(calls))
	for i, c := range calls {
		at[i] = c.At
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	achieved := float64(len(at)-1) / at[len(at)-1].Sub(at[0]).Seconds()
	window, j := 0, 0
	for i := range at {
		for at[i].Sub(at[j]) >= time.Second {
			j++
		}
		window = max(window, i-j+1)
	}
	rep.Figures = append(rep.Figures,
		figure{Name: "rate-limit fidelity, 1 process", Unit: "calls/s", Value: achieved,
			Baseline: "KALEYRA_RATE_LIMIT", Base: b.o.rate, Ratio: achieved / b.o.rate},
		figure{Name: "largest 1-second window, 1 process", Unit: "calls", Value: float64(window),
			Baseline: "limit + burst", Base: b.o.rate + 1, Ratio: float64(window) / (b.o.rate + 1)},
	)
	return nil
}

// ---- 4: latency ----

func (b *bench) latency(ctx context.Context, rep *benchReport) error {
	var p50, p99, b50, b99 []float64
	for r := 0; r < b.o.runs; r++ {
		b.progress("latency run %d/%d: %d single jobs on an idle worker, then on idle bare asynq", r+1, b.o.runs, b.o.samples)
		pipe, err := b.pipelineLatency(ctx)
		if err != nil {
			return fmt.Errorf("pipeline latency: %w", err)
		}
		bare, err := b.bareLatency(ctx)
		if err != nil {
			return fmt.Errorf("bare latency: %w", err)
		}
		p50, p99 = append(p50, quantile(pipe, 0.5)), append(p99, quantile(pipe, 0.99))
		b50, b99 = append(b50, quantile(bare, 0.5)), append(b99, quantile(bare, 0.99))
	}
	const base = "bare asynq + POST, same 50 ms TaskCheckInterval"
	rep.Figures = append(rep.Figures,
		fig("enqueue-to-call latency p50", "ms", p50, base, b50),
		fig("enqueue-to-call latency p99", "ms", p99, base, b99))
	return nil
}

// sampleLatency enqueues single jobs one at a time with enqueue, each at a
// random phase of the worker's polling, and returns the milliseconds from
// just before enqueue to the simulator's arrival time of its call.
func (b *bench) sampleLatency(ctx context.Context, enqueue func(launch.Job) error) ([]float64, error) {
	jobs := b.nextJobs(b.o.samples)
	var out []float64
	for _, j := range jobs {
		time.Sleep(time.Duration(20+rand.IntN(50)) * time.Millisecond)
		b.sim.Reset()
		start := time.Now()
		if err := enqueue(j); err != nil {
			return nil, err
		}
		deadline := start.Add(10 * time.Second)
		for b.sim.Stats().Calls == 0 {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return nil, errors.New("no call arrived within 10s")
			}
			time.Sleep(200 * time.Microsecond)
		}
		out = append(out, float64(b.sim.Calls()[0].At.Sub(start))/float64(time.Millisecond))
	}
	return out, nil
}

func (b *bench) pipelineLatency(ctx context.Context) ([]float64, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	logger := zerolog.New(io.Discard).Level(zerolog.InfoLevel)
	w, err := worker.New(worker.Options{
		Redis: b.opt, SID: benchSID, APIKey: benchKey, BaseURL: b.base,
		Concurrency: b.o.concurrency, RateLimit: 1e6, RateBurst: 1000, MaxInFlight: 1_000_000,
		Logger: &logger,
	})
	if err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() { stop(); <-done }()
	time.Sleep(200 * time.Millisecond)
	return b.sampleLatency(ctx, func(j launch.Job) error {
		_, err := b.a.ops.Enqueue(ctx, j, nil)
		return err
	})
}

func (b *bench) bareLatency(ctx context.Context) ([]float64, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	hc := b.httpClient()
	url := b.base + "/v1/" + benchSID + "/rcs/agent/launch"
	srv := bareServer(b.opt, b.o.concurrency)
	if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		return barePost(ctx, hc, url, t.Payload())
	})); err != nil {
		return nil, err
	}
	defer srv.Shutdown()
	cl := asynq.NewClient(b.opt)
	defer cl.Close()
	time.Sleep(200 * time.Millisecond)
	return b.sampleLatency(ctx, func(j launch.Job) error {
		_, err := cl.EnqueueContext(ctx, bareTask(j))
		return err
	})
}

// ---- helpers ----

// mallocs is the process's heap allocations so far.
func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

func (b *bench) progress(format string, args ...any) {
	fprintf(b.io.err, "bench: "+format+"\n", args...)
}

func fig(name, unit string, runs []float64, baseline string, base []float64) figure {
	v, bb := median(runs), median(base)
	f := figure{Name: name, Unit: unit, Value: v, Baseline: baseline, Base: bb, Ratio: v / bb,
		Runs: runs, BaseRuns: base}
	if len(runs) > 1 && len(runs) == len(base) {
		for i := range runs {
			f.RunRatios = append(f.RunRatios, runs[i]/base[i])
		}
	}
	return f
}

func median(xs []float64) float64 { return quantile(xs, 0.5) }

// quantile is the nearest-rank quantile of xs.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// commandStats is INFO commandstats: calls by command name.
func commandStats(ctx context.Context, rdb redis.UniversalClient) (map[string]int64, error) {
	s, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO commandstats: %w", err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		n, err := strconv.ParseInt(calls, 10, 64)
		if err == nil {
			out[strings.TrimPrefix(name, "cmdstat_")] = n
		}
	}
	return out, nil
}

// machine describes where the figures came from.
func machine() map[string]string {
	m := map[string]string{"nproc": strconv.Itoa(runtime.NumCPU())}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k == "MemTotal" {
				m["mem_total"] = strings.TrimSpace(v)
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m["loadavg"] = strings.TrimSpace(string(b))
	}
	return m
}

func printBench(w io.Writer, rep *benchReport) {
	fprintf(w, "rcslaunch bench: %d jobs per throughput run, concurrency %d, median of %d runs\n", rep.Jobs, rep.Concurrency, rep.Runs)
	fprintf(w, "machine: %s cores, %s, %s, load %s\n\n", rep.Machine["nproc"], rep.Machine["cpu"], rep.Machine["mem_total"], rep.Machine["loadavg"])
	for _, f := range rep.Figures {
		fprintf(w, "%-44s %12.2f %-8s  vs %-58s %12.2f  ratio %.3f", f.Name, f.Value, f.Unit, f.Baseline, f.Base, f.Ratio)
		if len(f.RunRatios) > 0 {
			fprintf(w, "  (runs: %.3f", f.RunRatios[0])
			for _, r := range f.RunRatios[1:] {
				fprintf(w, ", %.3f", r)
			}
			fprintf(w, ")")
		}
		fprintf(w, "\n")
	}
	if len(rep.RedisCommands) > 0 {
		names := make([]string, 0, len(rep.RedisCommands))
		for k := range rep.RedisCommands {
			names = append(names, k)
		}
		sort.Slice(names, func(i, j int) bool { return rep.RedisCommands[names[i]] > rep.RedisCommands[names[j]] })
		fprintf(w, "\npipeline Redis commands per job, by command:")
		for _, k := range names {
			fprintf(w, " %s %.2f", k, rep.RedisCommands[k])
		}
		fprintf(w, "\n")
	}
}
