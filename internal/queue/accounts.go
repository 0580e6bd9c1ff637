package queue

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/launch"
)

// Priority orders the jobs of one account (see launch.Priority): each has
// a queue of the account's own, taken by weight.
type Priority = launch.Priority

// The priorities, as launch names them.
const (
	PriorityHigh    = launch.PriorityHigh
	PriorityDefault = launch.PriorityDefault
	PriorityLow     = launch.PriorityLow
)

// Priorities lists the priorities, highest first.
var Priorities = launch.Priorities

// ParsePriority reads a priority by name; "" is PriorityDefault.
func ParsePriority(s string) (Priority, error) { return launch.ParsePriority(s) }

// weight is a priority's asynq queue weight within its account.
func weight(p Priority) int {
	switch p {
	case PriorityHigh:
		return 6
	case PriorityLow:
		return 1
	}
	return 3
}

// AccountQueue is the asynq queue of sid's jobs of priority p:
// "launch:<sid>" for the default priority, "launch:<sid>:high" and
// "launch:<sid>:low" for the others. A queue per account is what makes the
// fleet fair: a worker picks among the queues by weight, not by age, so an
// account's backlog never stands in front of another account's jobs.
func AccountQueue(sid string, p Priority) string {
	if p == "" || p == PriorityDefault {
		return Name + ":" + sid
	}
	return Name + ":" + sid + ":" + string(p)
}

// ParseQueue tells a launch queue by its name, the inverse of AccountQueue:
// the shared queue (sid empty, PriorityDefault), or an account's queue of a
// priority; ok is false for any other queue.
func ParseQueue(name string) (sid string, prio Priority, ok bool) {
	if name == Name {
		return "", PriorityDefault, true
	}
	rest, ok := strings.CutPrefix(name, Name+":")
	if !ok {
		return "", "", false
	}
	sid, p, _ := strings.Cut(rest, ":")
	prio, err := ParsePriority(p)
	if err != nil || sid == "" || AccountQueue(sid, prio) != name {
		return "", "", false
	}
	return sid, prio, true
}

// PriorityOf is the priority of sid's queue qname: high or low for those
// queues, default for any other (the shared queue keeps no priority).
func PriorityOf(sid, qname string) Priority {
	if s, p, ok := ParseQueue(qname); ok && s == sid {
		return p
	}
	return PriorityDefault
}

// AccountQueues returns sid's queues, highest priority first.
func AccountQueues(sid string) []string {
	q := make([]string, len(Priorities))
	for i, p := range Priorities {
		q[i] = AccountQueue(sid, p)
	}
	return q
}

// Hold keeps every worker from taking sid's jobs for d (asynq's pause, with
// an expiry): while an account may not call (cool-off, a rate throttled
// low), workers then take other accounts' jobs instead of taking its jobs
// only to hand them back. Jobs of sid on the shared queue are not held.
func Hold(ctx context.Context, c redis.UniversalClient, sid string, d time.Duration) error {
	if err := rdb.HoldQueues(ctx, c, AccountQueues(sid), d, time.Now()); err != nil {
		return fmt.Errorf("hold queues of account %s: %w", sid, err)
	}
	return nil
}

// Queues returns the asynq queues, with weights, of a worker serving sids:
// each account's default queue, and its high and low ones and the shared
// launch queue (jobs enqueued while no worker served their account) where
// used says so, and, with follow, the follow-up queue. asynq polls every
// queue it serves with a call of its own, and most accounts never use the
// other priorities and the shared queue is mostly empty: an empty queue
// served costs most jobs a wasted call. A worker with nothing else to serve
// serves the shared queue, never none (asynq would serve its own default).
func Queues(sids []string, follow bool, used func(qname string) bool) map[string]int {
	q := make(map[string]int, 3*len(sids)+2)
	for _, sid := range sids {
		for _, p := range Priorities {
			if name := AccountQueue(sid, p); p == PriorityDefault || used(name) {
				q[name] = weight(p)
			}
		}
	}
	if follow {
		// Launches matter more than polls, which wait behind them without
		// being starved: with one account, the follow-up queue is tried
		// first for one task in four when the account uses its default
		// queue only, one in eleven with all three priorities. With more,
		// it shares a server with the shared queue only (Layout), which
		// goes first three times in four: moving a job takes no call.
		q[FollowName] = 1
	}
	if len(q) == 0 || used(Name) {
		q[Name] = weight(PriorityDefault)
	}
	return q
}

// ServerShare is one asynq server of a worker: the queues it takes tasks
// from, by weight, how many of their tasks it works on at once, and how many
// it could use.
type ServerShare struct {
	Queues      map[string]int
	Concurrency int
	Need        int
}

// Layout lays out a worker's asynq servers over queues: with two accounts or
// more, one over the queues that are no account's (the shared and follow-up
// queues) when there are any, then one per account over that account's
// queues (AccountQueue), sorted by SID; with one account, one over them all,
// with every handler.
//
// Each account's server gets need(sid) handlers and the other server
// need(""), while concurrency allows. When it falls short of their sum, each
// gets one, and what is left is dealt in proportion to what each needs
// beyond that, largest remainders (then the earliest server) first; with
// fewer handlers than servers, each still gets one.
//
// asynq's processor picks a queue at random by weight for every task, one
// task at a time, and a handler holds its slot while it waits for the
// account's next token. With one server over every account's queues, each
// account was fed 1/accounts of the tasks the server took, and was served no
// faster than it was fed: of 200 busy accounts on 2 cores, the lowest made
// 0.80-0.87 of the median account's calls; with a server each, 0.97-0.99
// (BENCHMARKS.md). A server of its own takes an account's next task as soon
// as one of its handlers is free, and one account's jobs waiting for its
// limits never hold another's handlers.
func Layout(queues map[string]int, concurrency int, need func(sid string) int) []ServerShare {
	bySID := make(map[string]map[string]int)
	rest := make(map[string]int)
	for q, w := range queues {
		if sid, _, ok := ParseQueue(q); ok && sid != "" {
			if bySID[sid] == nil {
				bySID[sid] = make(map[string]int, len(Priorities))
			}
			bySID[sid][q] = w
		} else {
			rest[q] = w
		}
	}
	concurrency = max(1, concurrency)
	if len(bySID) < 2 {
		return []ServerShare{{Queues: queues, Concurrency: concurrency, Need: concurrency}}
	}
	shares := make([]ServerShare, 0, len(bySID)+1)
	if len(rest) > 0 {
		shares = append(shares, ServerShare{Queues: rest, Need: need("")})
	}
	for _, sid := range slices.Sorted(maps.Keys(bySID)) {
		shares = append(shares, ServerShare{Queues: bySID[sid], Need: need(sid)})
	}
	deal(shares, concurrency)
	return shares
}

// CheckInterval is how long an asynq server of queues, one of servers laid
// out by Layout, sleeps when its queues are empty (asynq's
// TaskCheckInterval): 50ms, or a millisecond per queue and server when that
// is longer. Each look is a Redis call per queue, so an idle worker's looks
// stay near 1,000 a second at most, however many accounts it serves: each
// wakes a goroutine of its own, and at 2,000 an idle worker serving 200
// accounts took a quarter of a core.
func CheckInterval(queues, servers int) time.Duration {
	return max(50*time.Millisecond, time.Duration(queues*servers)*time.Millisecond)
}

// deal sets each share's Concurrency from its Need: see Layout.
func deal(shares []ServerShare, concurrency int) {
	// beyond is what a share needs beyond its first handler, bounded so
	// that the products below cannot overflow.
	beyond := func(i int) int { return min(shares[i].Need, 1<<20) - 1 }
	total := 0
	for i := range shares {
		shares[i].Need = max(1, shares[i].Need)
		shares[i].Concurrency = 1
		total += beyond(i)
	}
	left := concurrency - len(shares)
	if left <= 0 {
		return
	}
	if total <= left {
		for i := range shares {
			shares[i].Concurrency = shares[i].Need
		}
		return
	}
	order := make([]int, len(shares))
	dealt := 0
	for i := range shares {
		more := left * beyond(i) / total
		shares[i].Concurrency += more
		dealt += more
		order[i] = i
	}
	remainder := func(i int) int { return left * beyond(i) % total }
	slices.SortStableFunc(order, func(a, b int) int { return remainder(b) - remainder(a) })
	for _, i := range order[:left-dealt] {
		shares[i].Concurrency++
	}
}

// fleetTTL is how long a worker's claim to serve an account lasts unless
// renewed; workers renew theirs every fleetTTL/3.
const fleetTTL = 30 * time.Second

// Serve records, for fleetTTL, that the live worker named worker serves the
// accounts sids, so that producers put their jobs on the accounts' own
// queues. A worker calls it every FleetRenewEvery, and Withdraw when it
// stops serving them.
func Serve(ctx context.Context, c redis.Cmdable, worker string, sids []string, now time.Time) error {
	if len(sids) == 0 {
		return nil
	}
	until := float64(now.Add(fleetTTL).UnixMilli())
	members := make([]redis.Z, len(sids))
	for i, sid := range sids {
		members[i] = redis.Z{Score: until, Member: claim(sid, worker)}
	}
	pipe := c.Pipeline()
	pipe.ZAddGT(ctx, rdb.FleetSIDs, members...)
	pipe.ZRemRangeByScore(ctx, rdb.FleetSIDs, "-inf", strconv.FormatInt(now.UnixMilli(), 10))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("record served accounts: %w", err)
	}
	return nil
}

// Withdraw ends the claims of worker to serve sids at once (a reload that
// removed them, a worker stopping): other workers' claims to them stay.
func Withdraw(ctx context.Context, c redis.Cmdable, worker string, sids []string) error {
	if len(sids) == 0 {
		return nil
	}
	members := make([]any, len(sids))
	for i, sid := range sids {
		members[i] = claim(sid, worker)
	}
	if err := c.ZRem(ctx, rdb.FleetSIDs, members...).Err(); err != nil {
		return fmt.Errorf("withdraw served accounts: %w", err)
	}
	return nil
}

// claim is the FleetSIDs member of worker's claim to sid. An SID holds no
// space (baseurl.CheckSID), so the first space ends it.
func claim(sid, worker string) string { return sid + " " + worker }

// FleetRenewEvery is how often a worker renews its Serve claim.
const FleetRenewEvery = fleetTTL / 3

// Fleet tells producers which accounts a live worker serves, from the
// claims workers renew with Serve. It caches the answer for a second: a job
// enqueued for an account in the second after a worker starts serving it
// waits on the shared queue, which every worker takes from too.
type Fleet struct {
	rdb redis.Cmdable

	mu     sync.Mutex
	sids   map[string]bool
	readAt time.Time
}

// NewFleet returns a Fleet reading c.
func NewFleet(c redis.Cmdable) *Fleet { return &Fleet{rdb: c} }

// fleetCacheFor is how long Fleet keeps what it read.
const fleetCacheFor = time.Second

// Served reports whether a live worker serves sid, as read at most a
// second ago.
func (f *Fleet) Served(ctx context.Context, sid string) (bool, error) {
	return f.served(ctx, sid, fleetCacheFor)
}

// ServedNow is Served read from Redis now: for a decision that a stale
// answer would make wrongly, such as dead-lettering a job of an account
// whose worker has just started.
func (f *Fleet) ServedNow(ctx context.Context, sid string) (bool, error) {
	return f.served(ctx, sid, 0)
}

func (f *Fleet) served(ctx context.Context, sid string, maxAge time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := time.Now(); f.sids == nil || now.Sub(f.readAt) >= maxAge {
		live, err := f.SIDs(ctx)
		if err != nil {
			return false, err
		}
		f.sids = make(map[string]bool, len(live))
		for _, s := range live {
			f.sids[s] = true
		}
		f.readAt = now
	}
	return f.sids[sid], nil
}

// SIDs returns the accounts live workers serve, sorted.
func (f *Fleet) SIDs(ctx context.Context) ([]string, error) {
	claims, err := f.rdb.ZRangeByScore(ctx, rdb.FleetSIDs, &redis.ZRangeBy{
		Min: strconv.FormatInt(time.Now().UnixMilli(), 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("read served accounts: %w", err)
	}
	live := make([]string, len(claims))
	for i, c := range claims {
		live[i], _, _ = strings.Cut(c, " ")
	}
	slices.Sort(live)
	return slices.Compact(live), nil
}

// QueueFor is the queue a job of sid with priority p goes on: its account's
// own when a live worker serves the account, else the shared launch queue,
// where any worker finds it and either runs it, moves it to its account's
// queue, or dead-letters it as an unknown account.
func (f *Fleet) QueueFor(ctx context.Context, sid string, p Priority) (string, error) {
	if f == nil {
		return Name, nil
	}
	served, err := f.Served(ctx, sid)
	if err != nil || !served {
		return Name, err
	}
	return AccountQueue(sid, p), nil
}
