package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/kaleyra"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/worker"
)

// ---- 1 and 5: throughput and Redis commands per job ----

// drainRun is one timed drain of a queue.
type drainRun struct {
	rate, cmds, allocs float64 // jobs/s; Redis commands and heap allocations per job
	// cpu and redisCPU are the CPU time per job (µs) of this process and
	// Redis together, and of Redis alone.
	cpu, redisCPU float64
	byCmd         map[string]float64
}

// series is one side's runs.
type series struct{ rate, cmds, allocs, cpu, redisCPU []float64 }

func (s *series) add(r drainRun) {
	s.rate, s.cmds, s.allocs = append(s.rate, r.rate), append(s.cmds, r.cmds), append(s.allocs, r.allocs)
	s.cpu, s.redisCPU = append(s.cpu, r.cpu), append(s.redisCPU, r.redisCPU)
}

// timedDrain is what is measured over a timed drain: when it started, and
// the CPU, heap allocations and Redis commands used so far.
type timedDrain struct {
	b       *bench
	cpu     cpuSample
	mallocs uint64
	cmds    map[string]int64
}

// startDrain takes the measures at the start of a timed drain.
func (b *bench) startDrain(ctx context.Context) (*timedDrain, error) {
	cmds, err := commandStats(ctx, b.rdb)
	if err != nil {
		return nil, err
	}
	t := &timedDrain{b: b, cmds: cmds, mallocs: mallocs()}
	t.cpu, err = b.cpuNow(ctx)
	return t, err
}

// end is the drain of n jobs that ended now, its Redis commands read after
// settle; the commands named in skip are the bench's own.
func (t *timedDrain) end(ctx context.Context, n int, settle time.Duration, skip ...string) (drainRun, error) {
	c, err := t.b.cpuNow(ctx)
	if err != nil {
		return drainRun{}, err
	}
	use := c.since(t.cpu)
	r := drainRun{rate: float64(n) / use.elapsed.Seconds(), allocs: float64(mallocs()-t.mallocs) / float64(n)}
	proc, rcpu := use.perJob(n)
	r.cpu, r.redisCPU = proc+rcpu, rcpu
	time.Sleep(settle)
	after, err := commandStats(ctx, t.b.rdb)
	if err != nil {
		return drainRun{}, err
	}
	by, total := commandsSince(t.cmds, after, skip...)
	for k := range by {
		by[k] /= float64(n)
	}
	r.cmds, r.byCmd = total/float64(n), by
	return r, nil
}

func (b *bench) throughput(ctx context.Context, rep *Report) error {
	var pipe, post, noop series
	var byCmd []map[string]float64
	for r := 0; r < b.o.Runs; r++ {
		b.progress("throughput run %d/%d", r+1, b.o.Runs)
		run, err := b.pipelineRun(ctx)
		if err != nil {
			return fmt.Errorf("pipeline run: %w", err)
		}
		pipe.add(run)
		byCmd = append(byCmd, run.byCmd)
		for _, side := range []struct {
			s    *series
			post bool
		}{{&post, true}, {&noop, false}} {
			if run, err = b.bareRun(ctx, side.post, b.o.Jobs, []string{bareQueue}, b.o.Concurrency); err != nil {
				return fmt.Errorf("bare asynq run: %w", err)
			}
			side.s.add(run)
		}
	}
	const withPost, noOp = "bare asynq, handler POSTs the payload", "bare asynq, no-op handler"
	rep.Figures = append(rep.Figures,
		fig("pipeline throughput", "jobs/s", pipe.rate, withPost, post.rate),
		fig("pipeline throughput", "jobs/s", pipe.rate, noOp, noop.rate),
		fig("bare asynq with POST", "jobs/s", post.rate, noOp, noop.rate),
		fig("Redis commands per job", "commands", pipe.cmds, withPost, post.cmds),
		fig("Redis commands per job (bare POST)", "commands", post.cmds, noOp, noop.cmds),
		// In-process: the simulator's allocations count on both sides.
		fig("heap allocations per job (incl. simulator)", "allocs", pipe.allocs, withPost, post.allocs),
		fig("heap allocations per job (bare POST)", "allocs", post.allocs, noOp, noop.allocs),
		fig("CPU per job, process + Redis", "µs", pipe.cpu, withPost, post.cpu),
		fig("CPU per job, Redis", "µs", pipe.redisCPU, withPost, post.redisCPU),
	)
	// The breakdown of the median run.
	m := median(pipe.cmds)
	for i, c := range pipe.cmds {
		if c == m {
			rep.RedisCommands = byCmd[i]
			break
		}
	}
	return nil
}

// pipelineRun enqueues the jobs (untimed), then times a worker draining them
// until every result is on the results stream.
func (b *bench) pipelineRun(ctx context.Context) (drainRun, error) {
	if err := b.flush(ctx); err != nil {
		return drainRun{}, err
	}
	if err := b.serve(ctx); err != nil {
		return drainRun{}, err
	}
	jobs := b.nextJobs(b.o.Jobs)
	if err := b.enqueueAll(ctx, jobs); err != nil {
		return drainRun{}, err
	}
	// The production logger's cost is part of the pipeline's: JSON at info level, discarded.
	logger := zerolog.New(io.Discard).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	w, err := b.newWorker(1e6, 1000, 1_000_000, &logger)
	if err != nil {
		return drainRun{}, err
	}
	stopProfile, err := b.profile()
	if err != nil {
		return drainRun{}, err
	}
	defer stopProfile()
	n := len(jobs)
	t, err := b.startDrain(ctx)
	if err != nil {
		return drainRun{}, err
	}
	rw := startWorker(ctx, w)
	defer rw.stop()
	if err := b.awaitResults(ctx, rw, int64(n)); err != nil {
		return drainRun{}, err
	}
	// The bench's own polling (XLEN) and the INFO calls are not the pipeline's.
	run, err := t.end(ctx, n, 0, "xlen", "info")
	if err != nil {
		return drainRun{}, err
	}
	if c := b.sim.Stats().ByCode["RCS902"]; c != n {
		return drainRun{}, fmt.Errorf("simulator answered %d successes for %d jobs", c, n)
	}
	return run, nil
}

// serve claims the bench's account for the fleet, as its worker does once
// running: as in production, where workers run before jobs arrive, jobs
// enqueued before the worker starts go to the account's own queue, not to
// the shared one (which a worker would then move them from).
func (b *bench) serve(ctx context.Context) error {
	return queue.Serve(ctx, b.rdb, "bench", []string{SID}, time.Now())
}

// newWorker is a pipeline worker on the bench's Redis and simulator, with
// the default retry budget and retention (so that it sends Redis what a
// production worker does) and no cool-off (zero).
func (b *bench) newWorker(rate float64, burst, inFlight int, logger *zerolog.Logger) (*worker.Worker, error) {
	return worker.New(worker.Options{
		Redis: b.Redis, SID: SID, APIKey: apiKey, BaseURL: b.base,
		Concurrency: b.o.Concurrency, RateLimit: rate, RateBurst: burst, MaxInFlight: inFlight,
		RetryMax: worker.DefaultRetryMax, JobRetention: worker.DefaultJobRetention, Logger: logger,
	})
}

// runningWorker is a worker running in the background.
type runningWorker struct {
	cancel context.CancelFunc
	done   chan error
	exited bool
}

func startWorker(ctx context.Context, w *worker.Worker) *runningWorker {
	wctx, cancel := context.WithCancel(ctx)
	rw := &runningWorker{cancel: cancel, done: make(chan error, 1)}
	go func() { rw.done <- w.Run(wctx) }()
	return rw
}

// stop stops the worker and waits for it to return.
func (rw *runningWorker) stop() {
	rw.cancel()
	if !rw.exited {
		<-rw.done
		rw.exited = true
	}
}

// awaitResults waits until the results stream holds n entries.
func (b *bench) awaitResults(ctx context.Context, rw *runningWorker, n int64) error {
	for {
		got, err := b.Ops.ResultsLen(ctx)
		if err != nil {
			return err
		}
		if got >= n {
			return nil
		}
		select {
		case err := <-rw.done:
			rw.exited = true
			return fmt.Errorf("worker stopped early: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
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
				res, err := b.Ops.Enqueue(ctx, j, nil)
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

// cmp is the first of two errors that is not nil.
func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// bareRun is the baseline: n tasks spread evenly over queues on plain
// asynq, served at concurrency with the worker's polling, by a handler that
// POSTs the payload (post) or does nothing.
func (b *bench) bareRun(ctx context.Context, post bool, n int, queues []string, concurrency int) (drainRun, error) {
	if err := b.flush(ctx); err != nil {
		return drainRun{}, err
	}
	cl := asynq.NewClientFromRedisClient(b.rdb)
	for i, j := range b.nextJobs(n) {
		if _, err := cl.EnqueueContext(ctx, bareTask(j, queues[i%len(queues)])); err != nil {
			return drainRun{}, err
		}
	}
	hc := b.httpClient(concurrency)
	defer hc.CloseIdleConnections()
	handler, all := b.bareHandler(post, int64(n), hc)
	srvs := b.bareServers(concurrency, queues)
	t, err := b.startDrain(ctx)
	if err != nil {
		return drainRun{}, err
	}
	defer func() { // at once: 200 servers one after another take seconds
		var wg sync.WaitGroup
		for _, srv := range srvs {
			wg.Go(srv.Shutdown)
		}
		wg.Wait()
	}()
	for _, srv := range srvs {
		if err := srv.Start(handler); err != nil {
			return drainRun{}, err
		}
	}
	select {
	case <-all:
	case <-ctx.Done():
		return drainRun{}, ctx.Err()
	}
	// asynq deletes a finished task after the handler returns: give the
	// last ones a moment before counting commands.
	return t.end(ctx, n, 50*time.Millisecond, "info")
}

// bareHandler POSTs each task's payload to the simulator with hc (post) or
// does nothing; all is closed once it has handled n tasks.
func (b *bench) bareHandler(post bool, n int64, hc *http.Client) (h asynq.Handler, all <-chan struct{}) {
	var count atomic.Int64
	done := make(chan struct{})
	url := b.launchURL()
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if post {
			if err := barePost(ctx, hc, url, t.Payload()); err != nil {
				return err
			}
		}
		if count.Add(1) == n {
			close(done)
		}
		return nil
	}), done
}

// bareQueue is the baseline's queue, when it has one.
const bareQueue = "bare"

// bareTask is the launch task's payload on plain asynq, on queue qname: the
// Kaleyra body, which is all the bare handler needs.
func bareTask(j launch.Job, qname string) *asynq.Task {
	return asynq.NewTask("bench:post", j.Body(), asynq.Queue(qname), asynq.MaxRetry(0))
}

// bareServers serve queues, all of the same weight, concurrency tasks at a
// time, laid out over asynq servers as a worker lays out its own
// (queue.Layout: a server per account's queue), over the bench's pool.
func (b *bench) bareServers(concurrency int, queues []string) []*asynq.Server {
	weights := make(map[string]int, len(queues))
	for _, q := range queues {
		weights[q] = 1
	}
	// without limits, a queue could use every handler: an even split
	shares := queue.Layout(weights, concurrency, func(string) int { return concurrency })
	srvs := make([]*asynq.Server, len(shares))
	for i, sh := range shares {
		srvs[i] = asynq.NewServerFromRedisClient(b.rdb, asynq.Config{
			Concurrency:       sh.Concurrency,
			Queues:            sh.Queues,
			TaskCheckInterval: queue.CheckInterval(len(sh.Queues), len(shares)),
			LogLevel:          asynq.FatalLevel,
		})
	}
	return srvs
}

func (b *bench) launchURL() string { return b.base + "/v1/" + SID + "/rcs/agent/launch" }

// httpClient is the baseline's HTTP client: the worker's, which keeps a
// connection open for each of concurrency handlers, with a timeout.
func (b *bench) httpClient(concurrency int) *http.Client {
	hc := kaleyra.NewHTTPClient(concurrency)
	hc.Timeout = 30 * time.Second
	return hc
}

func barePost(ctx context.Context, hc *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("api-key", apiKey)
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
