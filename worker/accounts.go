package worker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/baseurl"
	"github.com/rcslaunch/rcslaunch/internal/kaleyra"
	"github.com/rcslaunch/rcslaunch/internal/limits"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/internal/secret"
)

// Account is one Kaleyra account a worker serves (Options.Accounts). Each
// account has its own key, queues and limits: one account's backlog,
// cool-off or throttling never holds up another's jobs.
type Account struct {
	// SID is the account SID. Required; an SID may be listed once.
	SID string
	// APIKey is the account's api-key. Required; never logged or stored.
	APIKey string
	// Pod is "in" or "na". Empty means Options.Pod.
	Pod string
	// RateLimit is the account's launch calls per second over the fleet,
	// RateBurst its burst and MaxInFlight its cap on calls in flight. Zero
	// means Options' RateLimit, RateBurst and MaxInFlight.
	RateLimit   float64
	RateBurst   int
	MaxInFlight int
	// RetryMax is how many retries a retryable answer gets after the first
	// attempt. Zero means none, as for Options.RetryMax, which a worker
	// without Accounts uses for its one account.
	RetryMax int
}

// String prints the account with its key redacted, so that logging an
// Account (or a list of them) never shows the key.
func (a Account) String() string {
	key := ""
	if a.APIKey != "" {
		key = secret.Redacted
	}
	return fmt.Sprintf("{SID:%s APIKey:%s Pod:%s RateLimit:%v RateBurst:%d MaxInFlight:%d RetryMax:%d}",
		a.SID, key, a.Pod, a.RateLimit, a.RateBurst, a.MaxInFlight, a.RetryMax)
}

// served is one account as the worker serves it.
type served struct {
	Account
	client *kaleyra.Client
	// coolingOff remembers that this process saw the account in cool-off,
	// so that its end is logged once.
	coolingOff atomic.Bool
}

// accountSet is the accounts a worker serves at one time. It is replaced
// whole (SetAccounts), never changed, so a job reads a consistent account.
type accountSet struct {
	bySID map[string]*served
	sids  []string  // sorted
	given []Account // as given to New or SetAccounts
}

// errAccounts is wrapped by SetAccounts' and New's errors for an account
// list that is empty or names an SID twice.
var errAccounts = errors.New("accounts")

// accountList is the accounts opts configures: Accounts, or else the one
// account of SID and APIKey.
func (o *Options) accountList() []Account {
	if len(o.Accounts) > 0 {
		return o.Accounts
	}
	return []Account{{SID: o.SID, APIKey: o.APIKey, RetryMax: o.RetryMax}}
}

// buildAccounts checks list and makes each account's client, filling in
// Options' values for the fields left zero.
func (w *Worker) buildAccounts(list []Account) (*accountSet, error) {
	if len(list) == 0 {
		return nil, fmt.Errorf("%w: none to serve", errAccounts)
	}
	set := &accountSet{bySID: make(map[string]*served, len(list)), given: slices.Clone(list)}
	var errs []error
	for i, a := range list {
		if _, dup := set.bySID[a.SID]; dup {
			errs = append(errs, fmt.Errorf("%w: account %d: SID %s is listed twice", errAccounts, i+1, a.SID))
			continue
		}
		s, err := w.serve(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("account %d: %w", i+1, err))
			continue
		}
		set.bySID[a.SID] = s
		set.sids = append(set.sids, a.SID)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.Sort(set.sids)
	return set, nil
}

// serve fills in a's defaults and makes its client.
func (w *Worker) serve(a Account) (*served, error) {
	o := &w.opts
	if a.Pod == "" {
		a.Pod = o.Pod
	}
	if a.RateLimit == 0 {
		a.RateLimit = o.RateLimit
	}
	if a.RateBurst == 0 {
		a.RateBurst = o.RateBurst
	}
	if a.MaxInFlight == 0 {
		a.MaxInFlight = o.MaxInFlight
	}
	if a.RetryMax < 0 {
		return nil, fmt.Errorf("RetryMax %w", ErrNegative)
	}
	// Checked here, before the list is put in service: useAccounts sets
	// each account's limits in turn, and must not fail half-way.
	if err := w.limitsOf(a).Check(); err != nil {
		return nil, err
	}
	base, err := baseurl.Resolve(a.Pod, o.BaseURL)
	if err != nil {
		return nil, err
	}
	client, err := kaleyra.New(kaleyra.Options{
		BaseURL: base, SID: a.SID, APIKey: secret.String(a.APIKey), HTTPClient: w.http,
		Timeout: o.Timeout, RetryCodes: o.RetryCodes, StatusPath: o.StatusPath,
	})
	if err != nil {
		return nil, err
	}
	return &served{Account: a, client: client}, nil
}

// limitsOf is an account's limiter configuration.
func (w *Worker) limitsOf(a Account) limits.Config {
	o := &w.opts
	return limits.Config{
		Rate: a.RateLimit, Burst: a.RateBurst, MaxInFlight: a.MaxInFlight,
		// A slot outlives the call it covers; a process killed while holding
		// one frees it this long after it took it.
		Lease:            o.Timeout + 2*time.Second,
		CoolOffThreshold: o.CoolOffThreshold,
		CoolOffWindow:    o.CoolOffWindow,
		CoolOffDuration:  o.CoolOffDuration,
	}
}

// Accounts returns the accounts the worker serves, as last given to New
// (Options.Accounts, or the one of SID) or SetAccounts.
func (w *Worker) Accounts() []Account { return slices.Clone(w.accounts.Load().given) }

// account returns the served account of sid, or nil.
func (w *Worker) account(sid string) *served { return w.accounts.Load().bySID[sid] }

// SetAccounts replaces the accounts the worker serves, as on SIGHUP: new
// accounts are served at once, changed ones take their new key and limits
// for their next call, and removed ones are left alone (their queued jobs
// wait for a worker that serves them). When the set of SIDs changes, or
// within a second an account's in-flight cap (the handlers of its asynq
// server: Options.Concurrency), the worker starts new asynq servers before it
// stops the old: calls in flight finish, and jobs waiting for a slot go back
// to the queue. An invalid list changes nothing. Reloads that race each
// other take turns: the last one's list is served whole.
func (w *Worker) SetAccounts(list []Account) error {
	set, err := w.buildAccounts(list)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	w.reload.Lock()
	defer w.reload.Unlock()
	if err := w.useAccounts(set); err != nil {
		return err
	}
	w.log.Info().Int("accounts", len(set.sids)).Msg("accounts reloaded")
	return nil
}

// useAccounts puts set in service: its limits, its claim in the fleet, and
// its queues when they differ from the running generation's.
func (w *Worker) useAccounts(set *accountSet) error {
	for _, sid := range set.sids {
		if err := w.limiter.SetAccount(sid, w.limitsOf(set.bySID[sid].Account)); err != nil {
			return fmt.Errorf("worker: %w", err)
		}
	}
	old := w.accounts.Swap(set)
	if old == nil || slices.Equal(old.sids, set.sids) {
		return nil // a changed in-flight cap resizes its server at the next refreshQueues
	}
	return w.restart(old.sids)
}

// claim tells producers which accounts this worker serves, so that they put
// those accounts' jobs on the accounts' own queues (queue.Fleet).
func (w *Worker) claim(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	if err := queue.Serve(ctx, w.store.Redis(), w.id, w.accounts.Load().sids, time.Now()); err != nil {
		w.log.Warn().Err(err).Msg("cannot record served accounts; their jobs use the shared queue meanwhile")
	}
}

// withdraw ends this worker's claims to sids, which it no longer serves, so
// that producers stop putting their jobs on queues it no longer takes from
// (a claim not withdrawn, as after a crash, lasts fleetTTL).
func (w *Worker) withdraw(sids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if err := queue.Withdraw(ctx, w.store.Redis(), w.id, sids); err != nil {
		w.log.Warn().Err(err).Msg("cannot withdraw the claim to accounts no longer served; it lapses in 30s")
	}
}

// upkeep renews the worker's claim every FleetRenewEvery, and looks for a
// change of the queues to serve every queueCheckEvery, until ctx ends.
func (w *Worker) upkeep(ctx context.Context) {
	claims := time.NewTicker(queue.FleetRenewEvery)
	defer claims.Stop()
	checks := time.NewTicker(queueCheckEvery)
	defer checks.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-claims.C:
			w.claim(ctx)
		case <-checks.C:
			w.refreshQueues()
		}
	}
}

// queueCheckEvery is how often a worker looks whether the queues to serve
// have changed: at most this long after the first job on an account's high
// or low queue, or on the shared queue, arrives, it is taken.
const queueCheckEvery = time.Second

// sharedLinger is how long a worker keeps serving the shared queue after it
// last held a task, so that a trickle of jobs there (an account no worker
// serves yet) does not start and stop a generation for each.
const sharedLinger = 30 * time.Second

// generation is the asynq servers of the worker (one per account:
// queue.Layout) serving the queues of one set of accounts. A reload that
// changes the set starts a new generation and retires the old.
type generation struct {
	// srvs serve queues between them: see newServers.
	srvs []*asynq.Server
	// shares is how srvs serve the queues, one for each.
	shares []queue.ServerShare
	// stopping is cancelled when the generation's shutdown begins, so that
	// jobs still waiting for a launch slot go back to the queue instead of
	// holding it up.
	stopping context.Context
	stop     context.CancelFunc
}

// stoppingKey is the context key of the generation running a handler.
type stoppingKey struct{}

// stoppingOf returns the stopping context of the generation running the
// handler of ctx.
func stoppingOf(ctx context.Context) context.Context {
	if s, ok := ctx.Value(stoppingKey{}).(context.Context); ok {
		return s
	}
	return context.Background()
}

// start starts a generation serving the current accounts' queues.
func (w *Worker) start() (*generation, error) {
	shares, err := w.plan()
	if err != nil {
		w.log.Warn().Err(err).Msg("cannot list asynq's queues; serving every priority's queue of each account")
	}
	if need := totalNeed(shares); need > w.opts.Concurrency && len(shares) > 1 {
		w.log.Warn().Int("concurrency", w.opts.Concurrency).Int("accounts", len(w.accounts.Load().sids)).Int("need", need).
			Msg("WORKER_CONCURRENCY is below the handlers the accounts can use (each account its KALEYRA_MAX_IN_FLIGHT + 1, the shared and follow-up queues a third of the largest): each gets a share in proportion; set it to need to give each all it can use")
	}
	g := &generation{srvs: w.newServers(shares), shares: shares}
	g.stopping, g.stop = context.WithCancel(context.Background())
	bind := func(h asynq.HandlerFunc) asynq.HandlerFunc {
		return func(ctx context.Context, t *asynq.Task) error {
			growStack()
			return h(context.WithValue(ctx, stoppingKey{}, g.stopping), t)
		}
	}
	mux := asynq.NewServeMux()
	mux.HandleFunc(queue.TaskType, bind(w.process))
	mux.HandleFunc(queue.FollowTaskType, bind(w.follow))
	for i, srv := range g.srvs {
		if err := srv.Start(mux); err != nil {
			g.stopServers(g.srvs[:i]...)
			return nil, fmt.Errorf("start worker: %w", err)
		}
	}
	return g, nil
}

// plan is the asynq servers a generation runs now (layout): over the current
// accounts' queues, their high and low ones once used, and the shared queue
// while in use. When asynq's list of queues cannot be read, they serve every
// priority's queue of each account, and plan says why.
func (w *Worker) plan() ([]queue.ServerShare, error) {
	set := w.accounts.Load()
	known, err := w.inspector.Queues()
	shared := w.sharedInUse()
	used := func(q string) bool {
		if q == queue.Name {
			return shared
		}
		return err != nil || slices.Contains(known, q)
	}
	return w.layout(set, queue.Queues(set.sids, w.opts.FollowLaunch, used)), err
}

// sharedInUse tells whether to serve the shared queue: while it holds tasks
// (producers put a job there when no live worker serves its account) and
// for sharedLinger after; when it cannot be read, yes.
func (w *Worker) sharedInUse() bool {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	busy, err := rdb.AsynqHolds(ctx, w.store.Redis(), queue.Name)
	now := time.Now()
	if err != nil || busy {
		w.sharedSeen.Store(now.UnixNano())
		return true
	}
	return now.Sub(time.Unix(0, w.sharedSeen.Load())) < sharedLinger
}

// refreshQueues starts a new generation when the queues to serve, or the
// handlers of their servers, have changed: an account's first high- or
// low-priority job arrives, or a reload changes an account's in-flight cap.
func (w *Worker) refreshQueues() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gen == nil {
		return
	}
	if shares, err := w.plan(); err != nil || slices.EqualFunc(w.gen.shares, shares, sameShare) {
		return
	}
	if err := w.replace(); err != nil {
		w.log.Error().Err(err).Msg("cannot serve the new queues; serving the old ones")
		return
	}
	w.log.Info().Int("servers", len(w.gen.shares)).Msg("serving a new set of queues")
}

// sameShare tells whether a and b serve the same queues with as many
// handlers.
func sameShare(a, b queue.ServerShare) bool {
	return a.Concurrency == b.Concurrency && maps.Equal(a.Queues, b.Queues)
}

// totalNeed is the handlers that shares could use.
func totalNeed(shares []queue.ServerShare) int {
	n := 0
	for _, s := range shares {
		n += s.Need
	}
	return n
}

// replace starts a generation on the current queues and retires the
// running one in the background. w.mu must be held, and w.gen set.
func (w *Worker) replace() error {
	g, err := w.start()
	if err != nil {
		return err
	}
	old := w.gen
	w.gen = g
	w.retiring.Go(old.shutdown)
	return nil
}

// shutdown stops g gracefully: calls in flight finish and are recorded.
func (g *generation) shutdown() {
	g.stopServers(g.srvs...)
}

// stopServers stops srvs of g at once, each gracefully.
func (g *generation) stopServers(srvs ...*asynq.Server) {
	g.stop()
	var wg sync.WaitGroup
	for _, srv := range srvs {
		wg.Go(srv.Shutdown)
	}
	wg.Wait()
}

// restart replaces the running generation, if any, by one serving the
// current accounts; the old one shuts down in the background. Claims to the
// accounts served before and no longer are withdrawn.
func (w *Worker) restart(before []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gen == nil {
		return nil // not running: Run starts with the current accounts
	}
	w.claim(context.Background())
	if err := w.replace(); err != nil {
		return err
	}
	served := w.accounts.Load().sids
	w.withdraw(slices.DeleteFunc(slices.Clone(before), func(sid string) bool { return slices.Contains(served, sid) }))
	return nil
}
