// Package demo runs the whole pipeline on one machine with no credentials:
// the Kaleyra simulator, a worker and a sample batch that shows a success, a
// retried RCS502 and terminal failures, printing each outcome as it lands,
// then the launch follow-up (FOLLOW_LAUNCH) taking the successes from
// pending to launched or rejected. It is what "rcslaunch demo" runs.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/conn"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/worker"
)

const (
	// SID is the demo's account, kept apart from a real one on a shared Redis.
	SID      = "DEMO0000SID"
	apiKey   = "demo-api-key"
	retryMax = 2
)

// Options say where the demo runs and where it reports.
type Options struct {
	// Config gives the Redis to use (unless InProcessRedis) and the job
	// retention; the demo uses its own SID and never trims the results.
	Config config.Config
	// InProcessRedis runs the demo on an in-process Redis that lives only as
	// long as the demo, for a machine with no Redis at hand.
	InProcessRedis bool
	// Out gets the demo's report: the batch, each outcome, where to look.
	Out io.Writer
	// Err gets the worker's errors and every outcome that was not the
	// expected one; Color colours the worker's lines there.
	Err   io.Writer
	Color bool
	// Timeout, when positive, is how long the demo waits before giving up.
	Timeout time.Duration
}

// Run runs the demo to its end. It returns an error when the demo could not
// run or when an outcome was not the expected one.
func Run(ctx context.Context, o Options) error {
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	cfg := o.Config
	cfg.SID, cfg.ResultsMaxLen = SID, 0
	redisWhere := "Redis at REDIS_URL"
	if o.InProcessRedis {
		mr := miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return fmt.Errorf("start in-process Redis: %w", err)
		}
		defer mr.Close()
		cfg.RedisURL = "redis://" + mr.Addr() + "/0"
		redisWhere = "an in-process Redis (set REDIS_URL to use yours)"
	}
	c, err := conn.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	return session{c}.run(ctx, o, redisWhere)
}

// session is one demo run on its Redis.
type session struct{ *conn.Conn }

// run starts the simulator and a worker, enqueues the batch and reports
// its outcomes.
func (s session) run(ctx context.Context, o Options, redisWhere string) error {
	simulator := sim.New(sim.Config{APIKey: apiKey, Latency: 30 * time.Millisecond, LaunchStates: launchStates(cases())})
	for _, cs := range cases() {
		simulator.Script(cs.agentNo, cs.steps...)
	}
	base, stopSim, err := simulator.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer stopSim()
	stopWorker, err := s.startWorker(base, o)
	if err != nil {
		return err
	}
	defer stopWorker()
	fmt.Fprintf(o.Out, "rcslaunch demo, with\n  the Kaleyra simulator at %s\n  %s\n  one worker (RETRY_MAX=%d, FOLLOW_LAUNCH=true)\n\n",
		base, redisWhere, retryMax)
	batch, want, err := s.enqueue(ctx, o.Out)
	if err != nil {
		return err
	}
	st := &stream{s: s, after: "0"}
	surprises, err := s.await(ctx, o, st, want)
	if err != nil {
		return err
	}
	more, err := s.followUp(ctx, o, st, want)
	if err != nil {
		return err
	}
	surprises += more
	s.summarize(ctx, o.Out, simulator.Stats(), batch)
	if surprises > 0 {
		return errors.New("the demo did not end as expected")
	}
	return nil
}

// startWorker runs a worker in this process, with short backoffs so the
// demo is quick, and returns what stops it.
func (s session) startWorker(base string, o Options) (stop func(), err error) {
	logger := zerolog.New(zerolog.ConsoleWriter{Out: o.Err, NoColor: !o.Color}).Level(zerolog.ErrorLevel).With().Timestamp().Logger()
	w, err := worker.New(worker.Options{
		Redis: s.Redis, SID: SID, APIKey: apiKey, BaseURL: base,
		Concurrency: 4, RateLimit: 20, RetryMax: retryMax,
		RetryBaseDelay: 300 * time.Millisecond, RetryMaxDelay: 2 * time.Second, Logger: &logger,
		// Records are kept as the environment says, like the store's.
		JobRetention: o.Config.JobRetention,
		// The batch has five RCS502 answers on purpose; a cool-off would only
		// slow the demo, so it is off (zero).
		//
		// The launch follow-up, with intervals short enough for it to end
		// within the demo.
		FollowLaunch: true, FollowInterval: followInterval,
		FollowMaxInterval: followMaxInterval, FollowMaxAge: followMaxAge,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return func() { cancel(); <-done }, nil
}
