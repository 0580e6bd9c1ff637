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
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/backoff"
	"github.com/rcslaunch/rcslaunch/internal/defaults"
	"github.com/rcslaunch/rcslaunch/internal/kaleyra"
	"github.com/rcslaunch/rcslaunch/internal/limits"
	"github.com/rcslaunch/rcslaunch/internal/metrics"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/internal/store"
)

// Defaults of Options, and of the environment variables that set them
// (README). Fields whose zero means something of its own (RetryMax,
// JobRetention, CoolOffThreshold, ResultsMaxLen) do not fall back to these:
// start from DefaultOptions to get them.
const (
	DefaultPod               = defaults.Pod               // KALEYRA_POD
	DefaultTimeout           = defaults.Timeout           // KALEYRA_TIMEOUT
	DefaultRateLimit         = defaults.RateLimit         // KALEYRA_RATE_LIMIT
	DefaultRateBurst         = defaults.RateBurst         // KALEYRA_RATE_BURST
	DefaultMaxInFlight       = defaults.MaxInFlight       // KALEYRA_MAX_IN_FLIGHT
	DefaultCoolOffThreshold  = defaults.CoolOffThreshold  // COOLOFF_THRESHOLD
	DefaultCoolOffWindow     = defaults.CoolOffWindow     // COOLOFF_WINDOW
	DefaultCoolOffDuration   = defaults.CoolOffDuration   // COOLOFF_DURATION
	DefaultConcurrency       = defaults.Concurrency       // WORKER_CONCURRENCY
	DefaultRetryMax          = defaults.RetryMax          // RETRY_MAX
	DefaultRetryBaseDelay    = defaults.RetryBaseDelay    // RETRY_BASE_DELAY
	DefaultRetryMaxDelay     = defaults.RetryMaxDelay     // RETRY_MAX_DELAY
	DefaultRetryCode         = defaults.RetryCode         // RETRY_CODES: the one code retried
	DefaultJobRetention      = defaults.JobRetention      // JOB_RETENTION
	DefaultStatusPath        = defaults.LaunchStatusPath  // LAUNCH_STATUS_PATH
	DefaultFollowInterval    = defaults.FollowInterval    // FOLLOW_INTERVAL
	DefaultFollowMaxInterval = defaults.FollowMaxInterval // FOLLOW_MAX_INTERVAL
	DefaultFollowMaxAge      = defaults.FollowMaxAge      // FOLLOW_MAX_AGE
)

// Options configures a Worker. Its fields mirror the environment variables
// (README). Where a variable's zero is a setting of its own, the field's
// zero is the same setting: RetryMax (no retries), JobRetention (keep
// forever), CoolOffThreshold (no cool-off) and ResultsMaxLen (never trim);
// these take their defaults only from DefaultOptions, and refuse negative
// values. Every other field, whose variable refuses zero, takes its default
// (Default*) when zero.
type Options struct {
	// Redis is where the queue and all state live (asynq.RedisClientOpt,
	// RedisFailoverClientOpt or RedisClusterClientOpt). Required.
	Redis asynq.RedisConnOpt
	// SID is the Kaleyra account SID of a worker serving one account.
	// Required without Accounts.
	SID string
	// APIKey is SID's api-key. Required without Accounts; never logged or
	// stored.
	APIKey string
	// Accounts are the accounts the worker serves, when it serves more
	// than SID's; their zero fields take the values of the fields below.
	// SetAccounts replaces them while the worker runs.
	Accounts []Account
	// BaseURL overrides the API base derived from Pod; plain http only for
	// loopback hosts.
	BaseURL string
	// Pod is "in" or "na". Zero means DefaultPod ("in").
	Pod string
	// Timeout bounds one Kaleyra call. Zero means DefaultTimeout (30s).
	Timeout time.Duration
	// RateLimit is launch calls per second per SID, over every process
	// sharing the Redis. Zero means DefaultRateLimit (10).
	RateLimit float64
	// RateBurst is the limiter's burst. Zero means DefaultRateBurst (1).
	RateBurst int
	// MaxInFlight caps launch calls in flight per SID over every process
	// sharing the Redis. Zero means DefaultMaxInFlight (5).
	MaxInFlight int
	// CoolOffThreshold RCS502 answers within CoolOffWindow put the account
	// in cool-off for CoolOffDuration: no calls, jobs wait without using
	// their retry budget. A zero threshold disables the cool-off (as
	// COOLOFF_THRESHOLD=0 does); DefaultCoolOffThreshold is 5. Zero window
	// and duration mean DefaultCoolOffWindow (10s) and
	// DefaultCoolOffDuration (30s).
	CoolOffThreshold int
	CoolOffWindow    time.Duration
	CoolOffDuration  time.Duration
	// Concurrency is how many jobs this process works on at once. A worker
	// serving several accounts takes each account's jobs on an asynq
	// server of its own, so that one account's jobs waiting for its limits
	// never hold another's handlers; each gets as many handlers as it can
	// use, its MaxInFlight + 1, and the shared and follow-up queues a third
	// of the largest account's, while Concurrency allows. When it is short
	// of their sum, each gets one and the rest in proportion (one each even
	// with fewer), and the worker says so when it starts. Zero means
	// DefaultConcurrency (10).
	Concurrency int
	// RetryMax is how many retries a retryable answer gets after the first
	// attempt; it applies to jobs already queued. Zero means none (as
	// RETRY_MAX=0 does); DefaultRetryMax is 8.
	RetryMax int
	// RetryBaseDelay and RetryMaxDelay shape the backoff: retry n waits about
	// min(RetryMaxDelay, RetryBaseDelay·2^n). Zero means
	// DefaultRetryBaseDelay (1s) and DefaultRetryMaxDelay (5m).
	RetryBaseDelay, RetryMaxDelay time.Duration
	// RetryCodes are the Kaleyra codes retried. Empty means
	// [DefaultRetryCode] (RCS502).
	RetryCodes []string
	// JobRetention is how long a succeeded job's record (its "already
	// launched" guard) is kept. Zero keeps it forever (as JOB_RETENTION=0
	// does); DefaultJobRetention is 2160h.
	JobRetention time.Duration
	// ResultsMaxLen caps the results stream approximately. Zero never trims.
	ResultsMaxLen int64
	// FollowLaunch follows every launch answered RCS902 to its final state
	// by polling Kaleyra's launch status (FOLLOW_LAUNCH): the job's record,
	// its batch and the results stream then show the launch state. Polls
	// count against RateLimit and MaxInFlight like launch calls. A worker
	// without it leaves the follow-up tasks of others queued.
	FollowLaunch bool
	// StatusPath is the launch status endpoint's path below the base URL,
	// {sid} standing for SID. Empty means DefaultStatusPath.
	StatusPath string
	// FollowInterval is the wait before a launch's first status poll; each
	// poll still pending doubles it, up to FollowMaxInterval. Following
	// ends, the launch left pending, FollowMaxAge after the launch. Zero
	// means DefaultFollowInterval (1m), DefaultFollowMaxInterval (6h) and
	// DefaultFollowMaxAge (336h).
	FollowInterval    time.Duration
	FollowMaxInterval time.Duration
	FollowMaxAge      time.Duration
	// Logger receives one structured event per line. Nil: no logging.
	Logger *zerolog.Logger
	// Metrics is where the worker registers its Prometheus metrics: its own
	// (call latency, attempts, limiter waits) and the fleet's read from
	// Redis. Nil keeps them unregistered.
	Metrics prometheus.Registerer
}

// DefaultOptions returns Options with every default filled in, those whose
// zero means something else included: what the worker does with no
// environment variable set. Set Redis, SID and APIKey, and change what
// differs.
func DefaultOptions() Options {
	return Options{
		Pod:               DefaultPod,
		Timeout:           DefaultTimeout,
		RateLimit:         DefaultRateLimit,
		RateBurst:         DefaultRateBurst,
		MaxInFlight:       DefaultMaxInFlight,
		CoolOffThreshold:  DefaultCoolOffThreshold,
		CoolOffWindow:     DefaultCoolOffWindow,
		CoolOffDuration:   DefaultCoolOffDuration,
		Concurrency:       DefaultConcurrency,
		RetryMax:          DefaultRetryMax,
		RetryBaseDelay:    DefaultRetryBaseDelay,
		RetryMaxDelay:     DefaultRetryMaxDelay,
		RetryCodes:        []string{DefaultRetryCode},
		JobRetention:      DefaultJobRetention,
		StatusPath:        DefaultStatusPath,
		FollowInterval:    DefaultFollowInterval,
		FollowMaxInterval: DefaultFollowMaxInterval,
		FollowMaxAge:      DefaultFollowMaxAge,
	}
}

// ErrNegative is wrapped by New's error for a negative RetryMax,
// JobRetention, CoolOffThreshold or ResultsMaxLen, whose zero is the
// smallest setting ("none", "forever", "off", "never trim"), and for a
// negative follow-up interval or age.
var ErrNegative = errors.New("must not be negative")

// check refuses the values that have no meaning, naming their fields.
func (o *Options) check() error {
	var errs []error
	negative := func(field string, isNegative bool) {
		if isNegative {
			errs = append(errs, fmt.Errorf("Options.%s %w", field, ErrNegative))
		}
	}
	negative("RetryMax", o.RetryMax < 0)
	negative("JobRetention", o.JobRetention < 0)
	negative("CoolOffThreshold", o.CoolOffThreshold < 0)
	negative("ResultsMaxLen", o.ResultsMaxLen < 0)
	negative("FollowInterval", o.FollowInterval < 0)
	negative("FollowMaxInterval", o.FollowMaxInterval < 0)
	negative("FollowMaxAge", o.FollowMaxAge < 0)
	if o.Redis == nil {
		errs = append(errs, errors.New("Options.Redis is required"))
	}
	return errors.Join(errs...)
}

// applyDefaults sets the fields whose zero stands for their default.
func (o *Options) applyDefaults() {
	setDefault := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	setDefault(&o.Timeout, DefaultTimeout)
	setDefault(&o.RetryBaseDelay, DefaultRetryBaseDelay)
	setDefault(&o.RetryMaxDelay, DefaultRetryMaxDelay)
	setDefault(&o.CoolOffWindow, DefaultCoolOffWindow)
	setDefault(&o.CoolOffDuration, DefaultCoolOffDuration)
	setDefault(&o.FollowInterval, DefaultFollowInterval)
	setDefault(&o.FollowMaxInterval, max(DefaultFollowMaxInterval, o.FollowInterval))
	setDefault(&o.FollowMaxAge, max(DefaultFollowMaxAge, o.FollowInterval))
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.Pod == "" {
		o.Pod = DefaultPod
	}
	if o.RateLimit == 0 {
		o.RateLimit = DefaultRateLimit
	}
	if o.RateBurst == 0 {
		o.RateBurst = DefaultRateBurst
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if len(o.RetryCodes) == 0 {
		o.RetryCodes = []string{DefaultRetryCode}
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
	limiter *limits.Limiter
	policy  backoff.Policy
	metrics *metrics.Worker
	// tasks pushes follow-up tasks, and launch tasks moved from the shared
	// queue, over the store's connections.
	tasks *asynq.Client
	// http is the HTTP client of every account's Kaleyra client.
	http *http.Client
	// fleet tells which accounts other workers serve.
	fleet *queue.Fleet
	// id names the worker in its claims to serve accounts (queue.Serve).
	id string
	// inspector lists asynq's queues, to serve those used (plan).
	inspector *asynq.Inspector
	// serverRedis is the connection pool of the worker's asynq servers while
	// it runs: one for all of them, where asynq would open one per server,
	// and apart from the handlers', so that their scripts never wait behind
	// the servers' polling. Set under mu.
	serverRedis redis.UniversalClient
	// sharedSeen is when the shared queue last held a task (Unix ns).
	sharedSeen atomic.Int64

	// accounts is the accounts served now; SetAccounts replaces it.
	accounts atomic.Pointer[accountSet]
	// reload serializes SetAccounts, whose limits and account set must
	// come from the same list.
	reload sync.Mutex

	mu sync.Mutex
	// gen is the running asynq server; nil until Run and after it.
	gen *generation
	// retiring waits for the shutdown of generations a reload replaced.
	retiring sync.WaitGroup
}

// New checks opts and builds a worker; nothing runs until Run.
func New(opts Options) (*Worker, error) {
	if err := opts.check(); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	opts.applyDefaults()
	list := opts.accountList()
	rc := rdb.NewClient(opts.Redis)
	st := store.New(rc)
	st.Retention = opts.JobRetention
	st.ResultsMaxLen = opts.ResultsMaxLen
	w := &Worker{
		opts:   opts,
		log:    opts.Logger.With().Str("component", "worker").Logger(),
		store:  st,
		policy: backoff.Policy{Base: opts.RetryBaseDelay, Max: opts.RetryMaxDelay},
		// A worker of more accounts than Concurrency gives each one handler.
		http:  kaleyra.NewHTTPClient(max(opts.Concurrency, len(list)+1)),
		fleet: queue.NewFleet(rc),
		id:    workerID(),
	}
	w.inspector = asynq.NewInspectorFromRedisClient(rc)
	lim, err := limits.New(rc, w.limitsOf(Account{RateLimit: opts.RateLimit, RateBurst: opts.RateBurst,
		MaxInFlight: opts.MaxInFlight}))
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	w.limiter = lim
	set, err := w.buildAccounts(list)
	if err != nil {
		return nil, fmt.Errorf("worker: Options: %w", err)
	}
	if err := w.useAccounts(set); err != nil {
		return nil, err
	}
	reg := opts.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry() // counted, never exposed
	} else {
		metrics.RegisterFleet(reg, st, lim, func() []string { return w.accounts.Load().sids }, asynq.NewInspector(opts.Redis))
	}
	w.metrics = metrics.NewWorker(reg)
	w.tasks = asynq.NewClientFromRedisClient(st.Redis())
	return w, nil
}

// workerID names this worker among the fleet's: host, process and a random
// part, as two workers of one process are two claimants.
func workerID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s:%d:%x", host, os.Getpid(), b)
}

// newServers are the asynq servers of a generation, laid out by shares
// (layout). Each moves its own queues' due retries and deferrals (asynq's
// forwarder, two scripts per queue each time it looks).
func (w *Worker) newServers(shares []queue.ServerShare) []*asynq.Server {
	srvs := make([]*asynq.Server, len(shares))
	for i, sh := range shares {
		srvs[i] = w.newServer(lowestTerms(sh.Queues), sh.Concurrency, len(shares))
	}
	return srvs
}

// layout lays out asynq servers over queues (queue.Layout): with several
// accounts, a server each, with as many handlers as the account's calls in
// flight and one job ready for the next slot (more would only hold jobs
// waiting for a slot), while the worker's concurrency allows. The server of
// the shared and follow-up queues gets a third of the largest account's: a
// status poll waits for its account's slot beside the launches, and at most
// one poll for every three of the account's launches keeps launches first.
func (w *Worker) layout(set *accountSet, queues map[string]int) []queue.ServerShare {
	largest := 1
	for _, s := range set.bySID {
		largest = max(largest, s.MaxInFlight+1)
	}
	return queue.Layout(queues, w.opts.Concurrency, func(sid string) int {
		if s := set.bySID[sid]; s != nil {
			return s.MaxInFlight + 1
		}
		return max(1, largest/3)
	})
}

// lowestTerms is weights divided by their greatest common divisor: the same
// shares. asynq's processor lists each queue of a server as often as its
// weight and shuffles that list for every task it takes, so an account's
// server over its default and high queues (3 and 6) would list 9 names where
// 3 do.
func lowestTerms(weights map[string]int) map[string]int {
	g := 0
	for _, w := range weights {
		for w != 0 { // Euclid: g becomes gcd(g, w)
			g, w = w, g%w
		}
	}
	if g <= 1 {
		return weights
	}
	r := make(map[string]int, len(weights))
	for q, w := range weights {
		r[q] = w / g
	}
	return r
}

// newServer is an asynq server that takes tasks from queues, concurrency at
// a time; it is one of servers asynq servers of a generation.
func (w *Worker) newServer(queues map[string]int, concurrency, servers int) *asynq.Server {
	opts := &w.opts
	return asynq.NewServerFromRedisClient(w.serverRedis, asynq.Config{
		Concurrency:    concurrency,
		Queues:         queues,
		RetryDelayFunc: retryDelay,
		IsFailure:      isFailure,
		// In-flight calls must be able to finish and be recorded before
		// asynq gives up on them and hands their tasks back.
		ShutdownTimeout: opts.Timeout + 10*time.Second,
		// asynq's 1s default adds up to a second before an idle worker
		// notices a new job.
		TaskCheckInterval: queue.CheckInterval(len(queues), servers),
		// Retries and deferrals become runnable when asynq's forwarder moves
		// them; its 5s default would dominate short backoffs.
		DelayedTaskCheckInterval: min(max(opts.RetryBaseDelay/2, 100*time.Millisecond), time.Second),
		Logger:                   asynqLogger{w.log},
		LogLevel:                 asynqLevel(w.log.GetLevel()),
	})
}

// Run processes jobs until ctx is done, then shuts down gracefully: calls in
// flight finish and are recorded, jobs not yet started go back to the queue.
// A Worker runs once.
func (w *Worker) Run(ctx context.Context) error {
	if err := rdb.Check(ctx, w.store.Redis()); err != nil {
		return err
	}
	// The claim comes first: a job of these accounts enqueued from now on
	// goes to their queues, and no other worker dead-letters it as unknown.
	w.claim(ctx)
	w.mu.Lock()
	w.serverRedis = rdb.NewClient(w.opts.Redis)
	// Deferred before any server starts: closes the pool once the last
	// generation has stopped.
	defer w.serverRedis.Close()
	g, err := w.start()
	w.gen = g
	w.mu.Unlock()
	if err != nil {
		return err
	}
	claimCtx, stopClaims := context.WithCancel(ctx)
	go w.upkeep(claimCtx)
	w.log.Info().Int("concurrency", w.opts.Concurrency).Int("accounts", len(w.accounts.Load().sids)).
		Int("servers", len(g.srvs)).
		Float64("rate_limit", w.opts.RateLimit).Int("retry_max", w.opts.RetryMax).
		Bool("follow_launch", w.opts.FollowLaunch).Msg("worker started")
	<-ctx.Done()
	stopClaims()
	w.log.Info().Msg("shutting down: finishing calls in flight")
	w.mu.Lock()
	g, w.gen = w.gen, nil
	w.mu.Unlock()
	g.shutdown()
	w.retiring.Wait()
	w.withdraw(w.accounts.Load().sids)
	w.log.Info().Msg("worker stopped")
	return nil
}
