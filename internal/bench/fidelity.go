package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/launch"
)

// ---- 3: rate-limit fidelity, one process ----

func (b *bench) fidelity(ctx context.Context, rep *Report) error {
	if b.o.RateJobs < 2 {
		return nil
	}
	b.progress("rate-limit fidelity, 1 process, %d jobs at %g/s", b.o.RateJobs, b.o.Rate)
	if err := b.flush(ctx); err != nil {
		return err
	}
	if err := b.serve(ctx); err != nil {
		return err
	}
	jobs := b.nextJobs(b.o.RateJobs)
	if err := b.enqueueAll(ctx, jobs); err != nil {
		return err
	}
	w, err := b.newWorker(b.o.Rate, 1, 50, nil)
	if err != nil {
		return err
	}
	rw := startWorker(ctx, w)
	defer rw.stop()
	deadline := time.Now().Add(time.Duration(float64(len(jobs))/b.o.Rate*3)*time.Second + 10*time.Second)
	for b.sim.Stats().Calls < len(jobs) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("rate-limit run: %d of %d calls arrived in time", b.sim.Stats().Calls, len(jobs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	achieved, window := callRate(b.callTimes())
	rep.Figures = append(rep.Figures,
		Figure{Name: "rate-limit fidelity, 1 process", Unit: "calls/s", Value: achieved,
			Baseline: "KALEYRA_RATE_LIMIT", Base: b.o.Rate, Ratio: achieved / b.o.Rate},
		Figure{Name: "largest 1-second window, 1 process", Unit: "calls", Value: float64(window),
			Baseline: "limit + burst", Base: b.o.Rate + 1, Ratio: float64(window) / (b.o.Rate + 1)},
	)
	return nil
}

// callTimes are the simulator's calls' arrival times, in order.
func (b *bench) callTimes() []time.Time {
	calls := b.sim.Calls()
	at := make([]time.Time, len(calls))
	for i, c := range calls {
		at[i] = c.At
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	return at
}

// callRate is the calls per second over the sorted arrival times at (at
// least two), and the most calls in any one-second window.
func callRate(at []time.Time) (perSecond float64, window int) {
	return float64(len(at)-1) / at[len(at)-1].Sub(at[0]).Seconds(), maxWindow(at)
}

// maxWindow is the most of the sorted arrival times at in any one-second
// window [t, t + 1 s).
func maxWindow(at []time.Time) (window int) {
	j := 0
	for i := range at {
		for at[i].Sub(at[j]) >= time.Second {
			j++
		}
		window = max(window, i-j+1)
	}
	return window
}

// shortestSpan is the least time that n consecutive sorted arrival times at
// take (false when there are fewer than n). With n one more than a second
// may hold, it says how near the busiest stretch came to a second over the
// limit: a span under a second would be one.
func shortestSpan(at []time.Time, n int) (time.Duration, bool) {
	if n < 1 || len(at) < n {
		return 0, false
	}
	least := at[n-1].Sub(at[0])
	for i := 1; i+n-1 < len(at); i++ {
		least = min(least, at[i+n-1].Sub(at[i]))
	}
	return least, true
}

// ---- 4: latency ----

func (b *bench) latency(ctx context.Context, rep *Report) error {
	var p50, p99, b50, b99 []float64
	for r := 0; r < b.o.Runs; r++ {
		b.progress("latency run %d/%d: %d single jobs on an idle worker, then on idle bare asynq", r+1, b.o.Runs, b.o.LatencySamples)
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
	jobs := b.nextJobs(b.o.LatencySamples)
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
	w, err := b.newWorker(1e6, 1000, 1_000_000, &logger)
	if err != nil {
		return nil, err
	}
	rw := startWorker(ctx, w)
	defer rw.stop()
	time.Sleep(200 * time.Millisecond)
	return b.sampleLatency(ctx, func(j launch.Job) error {
		_, err := b.Ops.Enqueue(ctx, j, nil)
		return err
	})
}

func (b *bench) bareLatency(ctx context.Context) ([]float64, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	hc := b.httpClient(b.o.Concurrency)
	defer hc.CloseIdleConnections()
	url := b.launchURL()
	srv := b.bareServers(b.o.Concurrency, []string{bareQueue})[0]
	if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		return barePost(ctx, hc, url, t.Payload())
	})); err != nil {
		return nil, err
	}
	defer srv.Shutdown()
	cl := asynq.NewClient(b.Redis)
	defer cl.Close()
	time.Sleep(200 * time.Millisecond)
	return b.sampleLatency(ctx, func(j launch.Job) error {
		_, err := cl.EnqueueContext(ctx, bareTask(j, bareQueue))
		return err
	})
}
