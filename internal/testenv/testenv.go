// Package testenv is the world rcslaunch's integration tests run in: a
// private redis-server, a Kaleyra simulator on loopback, the store and
// producer on that Redis, and in-process workers on both. Every client the
// environment makes (its workers' included) carries a fault hook, so that a
// test can fail chosen Redis commands precisely. It is imported by tests only.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testredis"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/ops"
	"github.com/rcslaunch/rcslaunch/worker"
)

const (
	// SID is the Kaleyra account every environment's jobs are for.
	SID = "TESTSID0001"
	// APIKey is the simulator's api-key, distinctive (with 12 hex digits of
	// its own) so that a search for it cannot match by chance.
	APIKey = "sk-test-9f8e7d6c5b4a-NEVER-LOG-ME"
)

// Option changes how New or NewOn builds an environment.
type Option func(*options)

type options struct {
	redis    []testredis.Option
	sim      sim.Config
	failFast bool
}

// WithRedis passes options to the private redis-server New starts.
func WithRedis(opts ...testredis.Option) Option {
	return func(o *options) { o.redis = append(o.redis, opts...) }
}

// WithSim configures the simulator; its APIKey is always APIKey.
func WithSim(c sim.Config) Option { return func(o *options) { o.sim = c } }

// FailFast makes the environment's clients of the private server give up on
// an unreachable Redis at once, rather than after go-redis's retries (about
// 2 s), for tests that kill it.
func FailFast() Option { return func(o *options) { o.failFast = true } }

// Env is one test's environment. Its fields are set by New (Redis is nil
// after NewOn) and must not be replaced.
type Env struct {
	T testing.TB
	// Redis is the private redis-server: kill it, restart it.
	Redis *testredis.Server
	// Conn is the connection every client of the environment is made from;
	// each carries Faults.
	Conn     asynq.RedisConnOpt
	Faults   *testredis.Faults
	Sim      *sim.Server
	SimURL   string
	Store    *store.Store
	Producer *queue.Producer
	// Ops is the operations layer on the same client, for SID.
	Ops       *ops.Client
	Inspector *asynq.Inspector
	// Logs collects the log lines of the workers StartWorker runs; their
	// tail is printed when the test fails.
	Logs *SyncBuffer
}

// New gives the test a private redis-server, a simulator, and a store,
// producer and inspector on that Redis.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	o := apply(opts)
	r := testredis.Start(t, o.redis...)
	ro := r.Options()
	if o.failFast {
		ro.MaxRetries, ro.DialerRetries, ro.DialTimeout = -1, 1, time.Second
	}
	e := newEnv(t, conn{opts: ro}, o)
	e.Redis = r
	return e
}

// NewOn is New on a Redis set-up of the test's own (Sentinel, Cluster),
// given as a connection option; FailFast and WithRedis do not apply.
func NewOn(t testing.TB, base asynq.RedisConnOpt, opts ...Option) *Env {
	t.Helper()
	return newEnv(t, conn{base: base}, apply(opts))
}

func apply(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	o.sim.APIKey = APIKey
	return o
}

func newEnv(t testing.TB, c conn, o options) *Env {
	c.faults = &testredis.Faults{}
	s := sim.New(o.sim)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	rdb := c.MakeRedisClient().(redis.UniversalClient)
	st := store.New(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	prod := &queue.Producer{Store: st, Client: asynq.NewClientFromRedisClient(rdb), SID: SID}
	oc, err := ops.New(ops.Options{Redis: Shared{rdb}, SID: SID})
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{T: t, Conn: c, Faults: c.faults, Sim: s, SimURL: ts.URL, Store: st, Producer: prod, Ops: oc,
		Inspector: insp, Logs: &SyncBuffer{}}
	t.Cleanup(func() {
		rdb.Close()
		if t.Failed() && e.Logs.Len() > 0 {
			t.Logf("worker log (tail):\n%s", lastLines(e.Logs.String(), 60))
		}
	})
	return e
}

// Shared is an asynq.RedisConnOpt that hands out one existing client, for
// code under test that takes a connection option but should share the
// test's client (and its fault hook). Closing what it made closes that
// client.
type Shared struct{ Client redis.UniversalClient }

// MakeRedisClient is asynq.RedisConnOpt's.
func (s Shared) MakeRedisClient() any { return s.Client }

// conn is an asynq.RedisConnOpt whose clients carry faults: made from opts
// for the private server, else from base.
type conn struct {
	opts   *redis.Options
	base   asynq.RedisConnOpt
	faults *testredis.Faults
}

// MakeRedisClient is asynq.RedisConnOpt's.
func (c conn) MakeRedisClient() any {
	var rdb redis.UniversalClient
	if c.opts != nil {
		o := *c.opts
		rdb = redis.NewClient(&o)
	} else {
		rdb = c.base.MakeRedisClient().(redis.UniversalClient)
	}
	rdb.AddHook(c.faults)
	return rdb
}

// StartWorker runs an in-process worker on the environment until the test
// ends or stop is called. Its options are fast retries (3, from 100 ms to
// 400 ms), a 2 s call timeout, 8 jobs at once, limits out of the way (200/s,
// burst 10, no cool-off) and debug logs to Logs; mod changes them.
func (e *Env) StartWorker(mod func(*worker.Options)) (stop func()) {
	e.T.Helper()
	log := zerolog.New(e.Logs).Level(zerolog.DebugLevel)
	o := worker.Options{
		Redis: e.Conn, SID: SID, APIKey: APIKey,
		BaseURL: e.SimURL, Timeout: 2 * time.Second, RateLimit: 200, RateBurst: 10,
		Concurrency: 8, RetryMax: 3, RetryBaseDelay: 100 * time.Millisecond,
		RetryMaxDelay: 400 * time.Millisecond, Logger: &log,
	}
	if mod != nil {
		mod(&o)
	}
	_, stop = e.RunWorker(o)
	return stop
}

// RunWorker runs an in-process worker with opts until the test ends or stop
// is called, and returns it, for a test that reloads its accounts.
func (e *Env) RunWorker(opts worker.Options) (w *worker.Worker, stop func()) {
	e.T.Helper()
	w, err := worker.New(opts)
	if err != nil {
		e.T.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.T.Errorf("worker: %v", err)
			}
		})
	}
	e.T.Cleanup(stop)
	return w, stop
}

// Enqueue enqueues j under its derived ID (unless it has one), outside any
// batch, and returns the ID and the producer's status.
func (e *Env) Enqueue(j launch.Job) (string, queue.Status) {
	e.T.Helper()
	j.ID = launch.IDFor(SID, j)
	st, err := e.Producer.Enqueue(context.Background(), j, "", false)
	if err != nil {
		e.T.Fatalf("enqueue %s: %v", j.Launch.AgentNo, err)
	}
	return j.ID, st
}

// Task is the job's task on the launch queue, or nil when there is none.
func (e *Env) Task(id string) *asynq.TaskInfo {
	e.T.Helper()
	info, err := e.Inspector.GetTaskInfo(queue.Name, id)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return nil
	}
	if err != nil {
		e.T.Fatal(err)
	}
	return info
}

// WaitFinished is the package's WaitFinished on the environment's store,
// within 30 s.
func (e *Env) WaitFinished(ids ...string) map[string]store.Record {
	e.T.Helper()
	return WaitFinished(e.T, e.Store, 30*time.Second, ids...)
}

// WaitFinished waits up to timeout until every job's record in st is final,
// and returns the records.
func WaitFinished(t testing.TB, st *store.Store, timeout time.Duration, ids ...string) map[string]store.Record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := map[string]store.Record{}
		var open []string
		for _, id := range ids {
			r, err := st.Get(context.Background(), id)
			if err == nil && r.Finished() {
				out[id] = r
			} else {
				open = append(open, id)
			}
		}
		if len(open) == 0 {
			return out
		}
		if time.Now().After(deadline) {
			var states []string
			for _, id := range open {
				r, err := st.Get(context.Background(), id)
				state := id[:min(len(id), 12)] + "=" + string(r.State)
				if err != nil {
					state += "/" + err.Error()
				}
				states = append(states, state)
			}
			t.Fatalf("after %v, %d of %d jobs have no final outcome: %v", timeout, len(open), len(ids), states)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Results is the package's Results on the environment's store.
func (e *Env) Results() map[string][]store.Result {
	e.T.Helper()
	return Results(e.T, e.Store)
}

// Results reads the whole results stream of st, by job ID.
func Results(t testing.TB, st *store.Store) map[string][]store.Result {
	t.Helper()
	rs, err := st.ReadResults(context.Background(), "0", 100000, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]store.Result{}
	for _, r := range rs {
		out[r.JobID] = append(out[r.JobID], r)
	}
	return out
}

// SyncBuffer collects output written from concurrent goroutines.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Len is the number of bytes written so far.
func (b *SyncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
