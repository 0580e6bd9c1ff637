// Package worker runs rcslaunch's asynq worker: it takes launch jobs off the
// queue, calls Kaleyra within the account's limits, retries the retryable
// answers with backoff, and records every outcome (results stream,
// dead-letter store) before the task is acknowledged.
//
// Delivery is at least once: a launch is sent twice only when a worker dies
// while that call is in flight. A redelivered job whose outcome was recorded
// finishes without calling Kaleyra again.
package worker

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/backoff"
	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/kaleyra"
	"github.com/rcslaunch/rcslaunch/internal/limits"
	"github.com/rcslaunch/rcslaunch/internal/metrics"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/internal/store"
)

// Options configures a Worker. Zero values take the defaults named on each
// field (the same as the environment variables in the README).
type Options struct {
	// Redis is where the queue and all state live (asynq.RedisClientOpt,
	// RedisFailoverClientOpt or RedisClusterClientOpt). Required.
	Redis asynq.RedisConnOpt
	// SID is the Kaleyra account SID. Required.
	SID string
	// APIKey is the Kaleyra api-key. Required; never logged or stored.
	APIKey string
	// BaseURL overrides the API base derived from Pod; plain http only for
	// loopback hosts.
	BaseURL string
	// Pod is "in" (default) or "na".
	Pod string
	// Timeout bounds one Kaleyra call. Default 30s.
	Timeout time.Duration
	// RateLimit is launch calls per second per SID. Default 10.
	RateLimit float64
	// RateBurst is the limiter's burst. Default 1.
	RateBurst int
	// MaxInFlight caps launch calls in flight per SID over every process
	// sharing the Redis. Default 5.
	MaxInFlight int
	// CoolOffThreshold RCS502 answers within CoolOffWindow put the account
	// in cool-off for CoolOffDuration: no calls, jobs wait without using
	// their retry budget. Defaults 5, 10s, 30s; a negative threshold
	// disables the cool-off.
	CoolOffThreshold int
	CoolOffWindow    time.Duration
	CoolOffDuration  time.Duration
	// Concurrency is how many jobs this process works on at once. Default 10.
	Concurrency int
	// RetryMax is how many retries a retryable answer gets after the first
	// attempt; it applies to jobs already queued. Default 8; -1 for none.
	RetryMax int
	// RetryBaseDelay and RetryMaxDelay shape the backoff: retry n waits about
	// min(RetryMaxDelay, RetryBaseDelay·2^n). Defaults 1s and 5m.
	RetryBaseDelay, RetryMaxDelay time.Duration
	// RetryCodes are the Kaleyra codes retried. Default ["RCS502"].
	RetryCodes []string
	// JobRetention is how long a succeeded job's record (its "already
	// launched" guard) is kept. Default 2160h; negative keeps it forever.
	JobRetention time.Duration
	// ResultsMaxLen caps the results stream approximately. Default 0: never trims.
	ResultsMaxLen int64
	// Logger receives one structured event per line. Default: no logging.
	Logger *zerolog.Logger
	// Metrics is where the worker registers its Prometheus metrics: its own
	// (call latency, attempts, limiter waits) and the fleet's read from
	// Redis. Nil keeps them unregistered.
	Metrics prometheus.Registerer
}

// OptionsFromConfig maps the environment's configuration onto Options.
func OptionsFromConfig(c config.Config, redis asynq.RedisConnOpt, log *zerolog.Logger) Options {
	retention, retryMax, coolOff := c.JobRetention, c.RetryMax, c.CoolOffThreshold
	if retention == 0 {
		retention = -1 // the environment's 0 means forever
	}
	if retryMax == 0 {
		retryMax = -1 // the environment's 0 means none
	}
	if coolOff == 0 {
		coolOff = -1 // the environment's 0 disables the cool-off
	}
	return Options{
		Redis: redis, SID: c.SID, APIKey: c.APIKey.Reveal(), BaseURL: c.BaseURL, Pod: c.Pod,
		Timeout: c.Timeout, RateLimit: c.RateLimit, RateBurst: c.RateBurst, MaxInFlight: c.MaxInFlight,
		CoolOffThreshold: coolOff, CoolOffWindow: c.CoolOffWindow, CoolOffDuration: c.CoolOffDuration,
		Concurrency:    c.Concurrency,
		RetryMax:       retryMax,
		RetryBaseDelay: c.RetryBaseDelay, RetryMaxDelay: c.RetryMaxDelay, RetryCodes: c.RetryCodes,
		JobRetention: retention, ResultsMaxLen: c.ResultsMaxLen, Logger: log,
	}
}

func (o *Options) applyDefaults() {
	setDefault := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	setDefault(&o.Timeout, 30*time.Second)
	setDefault(&o.RetryBaseDelay, time.Second)
	setDefault(&o.RetryMaxDelay, 5*time.Minute)
	setDefault(&o.JobRetention, 2160*time.Hour)
	setDefault(&o.CoolOffWindow, 10*time.Second)
	setDefault(&o.CoolOffDuration, 30*time.Second)
	if o.CoolOffThreshold == 0 {
		o.CoolOffThreshold = 5
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 5
	}
	if o.Pod == "" {
		o.Pod = "in"
	}
	if o.RateLimit == 0 {
		o.RateLimit = 10
	}
	if o.RateBurst == 0 {
		o.RateBurst = 1
	}
	if o.Concurrency == 0 {
		o.Concurrency = 10
	}
	switch {
	case o.RetryMax == 0:
		o.RetryMax = 8
	case o.RetryMax < 0:
		o.RetryMax = 0
	}
	if len(o.RetryCodes) == 0 {
		o.RetryCodes = []string{"RCS502"}
	}
	if o.Logger == nil {
		nop := zerolog.Nop()
		o.Logger = &nop
	}
}

// Worker is one worker process's asynq server and launch handler.
type Worker struct {
	opts    Options
	log     zerolog.Logger
	store   *store.Store
	client  *kaleyra.Client
	limiter *limits.Limiter
	policy  backoff.Policy
	srv     *asynq.Server
	metrics *metrics.Worker

	// stopping is cancelled when shutdown begins, so that jobs still waiting
	// for a rate-limit slot go back to the queue instead of holding it up.
	stopping context.Context
	stop     context.CancelFunc

	// coolingOff remembers that this process saw the account in cool-off,
	// so that its end is logged once.
	coolingOff atomic.Bool
}

// New checks opts and builds a worker; nothing runs until Run.
func New(opts Options) (*Worker, error) {
	opts.applyDefaults()
	if opts.Redis == nil {
		return nil, errors.New("worker: Options.Redis is required")
	}
	base, err := kaleyra.BaseURL(opts.Pod, opts.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	client, err := kaleyra.New(kaleyra.Options{
		BaseURL: base, SID: opts.SID, APIKey: kaleyra.Secret(opts.APIKey),
		Timeout: opts.Timeout, RetryCodes: opts.RetryCodes,
	})
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	rc := rdb.NewClient(opts.Redis)
	st := store.New(rc)
	if opts.JobRetention > 0 {
		st.Retention = opts.JobRetention
	}
	st.ResultsMaxLen = opts.ResultsMaxLen
	lim, err := limits.New(rc, limits.Config{
		Rate: opts.RateLimit, Burst: opts.RateBurst, MaxInFlight: opts.MaxInFlight,
		// A slot outlives the call it covers; a process killed while holding
		// one frees it this long after it took it.
		Lease:            opts.Timeout + 2*time.Second,
		CoolOffThreshold: max(opts.CoolOffThreshold, 0),
		CoolOffWindow:    opts.CoolOffWindow,
		CoolOffDuration:  opts.CoolOffDuration,
	})
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	w := &Worker{
		opts:    opts,
		log:     opts.Logger.With().Str("component", "worker").Logger(),
		store:   st,
		client:  client,
		limiter: lim,
		policy:  backoff.Policy{Base: opts.RetryBaseDelay, Max: opts.RetryMaxDelay},
	}
	reg := opts.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry() // counted, never exposed
	} else {
		metrics.RegisterFleet(reg, st, lim, []string{opts.SID}, asynq.NewInspector(opts.Redis))
	}
	w.metrics = metrics.NewWorker(reg)
	w.stopping, w.stop = context.WithCancel(context.Background())
	w.srv = asynq.NewServer(opts.Redis, asynq.Config{
		Concurrency:    opts.Concurrency,
		Queues:         map[string]int{queue.Name: 1},
		RetryDelayFunc: retryDelay,
		IsFailure:      isFailure,
		// In-flight calls must be able to finish and be recorded before
		// asynq gives up on them and hands their tasks back.
		ShutdownTimeout: opts.Timeout + 10*time.Second,
		// asynq polls an empty queue at this interval: its 1s default adds up
		// to a second before an idle worker notices a new job, while 50ms
		// costs an idle process 20 cheap Redis calls a second.
		TaskCheckInterval: 50 * time.Millisecond,
		// Retries and deferrals become runnable when asynq's forwarder moves
		// them; its 5s default would dominate short backoffs.
		DelayedTaskCheckInterval: min(max(opts.RetryBaseDelay/2, 100*time.Millisecond), time.Second),
		Logger:                   asynqLogger{w.log},
		LogLevel:                 asynqLevel(w.log.GetLevel()),
	})
	return w, nil
}

// Run processes jobs until ctx is done, then shuts down gracefully: calls in
// flight finish and are recorded, jobs not yet started go back to the queue.
func (w *Worker) Run(ctx context.Context) error {
	if err := rdb.Check(ctx, w.store.Redis()); err != nil {
		return err
	}
	if err := w.srv.Start(asynq.HandlerFunc(w.process)); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	w.log.Info().Int("concurrency", w.opts.Concurrency).Float64("rate_limit", w.opts.RateLimit).
		Int("retry_max", w.opts.RetryMax).Msg("worker started")
	<-ctx.Done()
	w.log.Info().Msg("shutting down: finishing calls in flight")
	w.stop()
	w.srv.Shutdown()
	w.log.Info().Msg("worker stopped")
	return nil
}
