// Package limits keeps the launch calls of every worker process sharing one
// Redis within what a Kaleyra account allows: a rate (GCRA), a cap on calls
// in flight (a semaphore with leases), a cool-off while the gateway is
// failing, and an effective rate that Kaleyra's own throttling (HTTP 429)
// lowers and successes raise back.
//
// All of one account's state is in keys tagged {sid:<SID>}, and one Lua
// script takes a rate token and an in-flight slot together, on Redis's clock:
// a token is never spent for a call that then finds no free slot, and worker
// machines need not agree on the time.
package limits

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/defaults"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
)

// Config is one account's limits.
type Config struct {
	// Rate is launch calls per second over every process. Required. Calls
	// go 1/Rate × (1 + Margin) apart at the steadiest.
	Rate float64
	// Burst is how many calls may go at once above the steady rate. Default
	// defaults.RateBurst (1).
	Burst int
	// MaxInFlight caps calls in flight at once over every process. Default
	// defaults.MaxInFlight (5).
	MaxInFlight int
	// Lease is how long an in-flight slot is held at most: a process that
	// dies holding one frees it after Lease. It must outlast a call (the
	// call's timeout plus a margin).
	Lease time.Duration
	// MaxWait is how long Acquire waits for a slot in the process before it
	// hands the job back to the queue (ErrDeferred). A waiter that the
	// account's rate cannot serve within it, for the waiters ahead of it,
	// is handed back at once. Default 2s.
	MaxWait time.Duration
	// MaxRateWait is the longest wait for the next rate token that Acquire
	// sleeps through in the process; a longer one (an account throttled to
	// a low rate) is returned at once as a DeferredError, so that a slow
	// account never holds a worker that another account could use.
	// Default 250ms.
	MaxRateWait time.Duration
	// CoolOffThreshold gateway errors (RCS502) within CoolOffWindow put the
	// account in cool-off for CoolOffDuration: no calls, jobs wait. Zero
	// threshold disables the cool-off.
	CoolOffThreshold int
	CoolOffWindow    time.Duration
	CoolOffDuration  time.Duration
	// MinRate is the floor that throttling lowers the effective rate to.
	// Default Rate/20.
	MinRate float64
}

func (c *Config) applyDefaults() {
	if c.Burst < 1 {
		c.Burst = defaults.RateBurst
	}
	if c.MaxInFlight < 1 {
		c.MaxInFlight = defaults.MaxInFlight
	}
	if c.Lease <= 0 {
		c.Lease = 35 * time.Second
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 2 * time.Second
	}
	if c.MaxRateWait <= 0 {
		c.MaxRateWait = 250 * time.Millisecond
	}
	if c.MinRate <= 0 || c.MinRate > c.Rate {
		c.MinRate = c.Rate / 20
	}
}

// Why a call may not go yet.
const (
	ReasonRate     = "rate"      // the account's rate is used up for now
	ReasonInFlight = "in_flight" // MaxInFlight calls are in flight
	ReasonCoolOff  = "cool_off"  // the gateway is failing; the account rests
)

// DeferredError says the job should go back to the queue and run again after
// After: waiting longer in the process would hold a worker slot for nothing.
// It is not an attempt and not a failure.
type DeferredError struct {
	After  time.Duration
	Reason string
}

func (e *DeferredError) Error() string {
	return fmt.Sprintf("launch call deferred (%s) for %v", e.Reason, e.After.Round(time.Millisecond))
}

// ErrDeferred matches every *DeferredError with errors.Is.
var ErrDeferred = errors.New("launch call deferred")

func (e *DeferredError) Is(target error) bool { return target == ErrDeferred }

// Limiter hands out permission for launch calls, per SID, each account
// within its own Config: one account's waits, cool-off or throttling never
// touch another's.
type Limiter struct {
	rdb redis.UniversalClient
	// def is the Config of accounts not given one of their own.
	def Config
	// accounts holds each SID's *account: its keys, built once, and Config.
	accounts sync.Map
}

// account is one SID's keys and limits.
type account struct {
	sid  string
	keys rdb.SIDKeys
	cfg  Config
	// turn lets one of the process's waiters of the account ask Redis at a
	// time: when a token comes, every waiter asking would cost a call for
	// one grant. The others wait here, first come first served.
	turn chan struct{}
	// open is set while Redis's last answer for the account was a grant:
	// then a new waiter whose call is due asks at once, without waiting for
	// its turn, since a grant is likely, and taking turns would let the
	// process's launches for the account through one round trip at a time
	// (BENCHMARKS.md). After a refusal, or before the next call is due,
	// they take turns again.
	open atomic.Bool
	// due is when, on this process's clock (Unix ns), Redis's last answer
	// for the account said its next call may be asked for: after a grant,
	// reserveAhead before the rate's next token comes; after a refusal,
	// when to ask again. The waiter in its turn sleeps until then, unless
	// that is beyond what it may wait in the process (then it asks at once,
	// for the deferral): at 20 calls a second, a waiter that asked at once
	// after a grant was refused nearly every time, a script call for
	// nothing (BENCHMARKS.md).
	due atomic.Int64
	// reason is why waiters wait, from Redis's last answer that made them
	// (a refusal, or a grant after which the next call is not yet due:
	// the rate), for a waiter whose time ran out before its turn came.
	reason atomic.Pointer[string]
	// waiting counts the waiters for a turn.
	waiting atomic.Int32
}

func newAccount(sid string, cfg Config) *account {
	return &account{sid: sid, keys: rdb.LimiterKeys(sid), cfg: cfg, turn: make(chan struct{}, 1)}
}

// New returns a Limiter over rdb; cfg is the Config of every account that
// SetAccount gives none of its own.
func New(rdb redis.UniversalClient, cfg Config) (*Limiter, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	cfg.applyDefaults()
	return &Limiter{rdb: rdb, def: cfg}, nil
}

// Check reports whether c can be used: New and SetAccount refuse a Config
// that it refuses.
func (c Config) Check() error {
	if !(c.Rate > 0) {
		return fmt.Errorf("limits: rate must be positive, got %v", c.Rate)
	}
	return nil
}

// SetAccount sets sid's limits from now on; a slot taken before keeps the
// limits it was taken under until its release.
func (l *Limiter) SetAccount(sid string, cfg Config) error {
	if err := cfg.Check(); err != nil {
		return fmt.Errorf("account %s: %w", sid, err)
	}
	cfg.applyDefaults()
	l.accounts.Store(sid, newAccount(sid, cfg))
	return nil
}

// account returns sid's keys and limits.
func (l *Limiter) account(sid string) *account {
	if a, ok := l.accounts.Load(sid); ok {
		return a.(*account)
	}
	a, _ := l.accounts.LoadOrStore(sid, newAccount(sid, l.def))
	return a.(*account)
}

// Slot is permission for one call, held until Release.
type Slot struct {
	l     *Limiter
	a     *account
	token string
	// lowered is set when the slot was taken while throttling had lowered
	// the account's rate, which an answered call's release raises again.
	lowered bool
	// at is when the call may go: its rate token's time, reserveAhead at
	// most after the grant.
	at time.Time
}

// wait returns when the slot's call may go (at).
func (s *Slot) wait() { time.Sleep(time.Until(s.at)) }

// Acquire waits, up to MaxWait, until a call for sid may go, and returns its
// slot. When it would have to wait longer (a cool-off, a long rate wait) it
// returns a *DeferredError instead; on ctx's end, ctx's error. A slot
// granted ahead of its token (reserveAhead) is returned at the token's
// time, even if ctx ends or MaxWait passes meanwhile.
func (l *Limiter) Acquire(ctx context.Context, sid string) (*Slot, error) {
	slot, _, err := l.acquire(ctx, sid, nil)
	if err != nil {
		return nil, err
	}
	slot.wait()
	return slot, nil
}

// AcquireStart is Acquire, then rdb.StartJob of the job start describes
// (start.Now is set at each try), in the same round trip as the grant where
// Redis lets one script do both (rdb.CrossSlotScripts): a launch costs one
// round trip less. On a Redis Cluster it takes two; when the start fails
// there, the slot is released. It waits for the slot's token only when the
// job is running: a finished job's slot is released unused at once.
func (l *Limiter) AcquireStart(ctx context.Context, sid string, start rdb.StartArgs) (*Slot, rdb.StartReply, error) {
	var slot *Slot
	var r rdb.StartReply
	var err error
	if rdb.CrossSlotScripts(l.rdb) {
		if slot, r, err = l.acquire(ctx, sid, &start); err != nil {
			return nil, r, err
		}
	} else {
		if slot, _, err = l.acquire(ctx, sid, nil); err != nil {
			return nil, r, err
		}
		start.Now = time.Now()
		if r.State, r.Attempt, err = rdb.StartJob(ctx, l.rdb, start); err != nil {
			_, _ = slot.Release(context.WithoutCancel(ctx), Unused)
			return nil, r, fmt.Errorf("start job %s: %w", start.ID, err)
		}
	}
	if r.State == rdb.JobRunning {
		slot.wait()
	}
	return slot, r, nil
}

// acquire is Acquire but for the wait for the slot's token, which with
// start also runs rdb.StartJob in the script that grants the slot.
func (l *Limiter) acquire(ctx context.Context, sid string, start *rdb.StartArgs) (*Slot, rdb.StartReply, error) {
	a := l.account(sid)
	c := &a.cfg
	args := rdb.AcquireArgs{Rate: c.Rate, Burst: c.Burst, MaxInFlight: c.MaxInFlight, Lease: c.Lease, Token: newToken(), Ahead: reserveAhead, Margin: Margin}
	deadline := time.Now().Add(c.MaxWait)
	// While Redis's last answer for the account was a grant and its next
	// call may go, a waiter asks at once; otherwise it asks in its turn.
	inTurn := false
	defer func() {
		if inTurn {
			<-a.turn
		}
	}()
	for {
		wait := a.untilDue()
		if !inTurn && (!a.open.Load() || wait > 0) {
			if err := a.waitTurn(ctx, deadline); err != nil {
				return nil, rdb.StartReply{}, err
			}
			inTurn = true
			wait = a.untilDue()
		}
		// Only the waiter in its turn sleeps. A wait that Redis would not
		// let a waiter sleep through in the process is asked about at
		// once: its answer is the deferral.
		if inTurn && wait > 0 && wait <= c.MaxRateWait && wait < time.Until(deadline) {
			select {
			case <-ctx.Done():
				return nil, rdb.StartReply{}, ctx.Err()
			case <-time.After(wait):
			}
		}
		slot, started, err := l.ask(ctx, a, args, start, deadline)
		if err != nil {
			return nil, started, err
		}
		if slot != nil {
			// The next waiter may ask while this one waits for its token.
			if inTurn {
				<-a.turn
				inTurn = false
			}
			return slot, started, nil
		}
	}
}

// reserveAhead is how early a waiter may be granted its call's rate token,
// and then waits for it with the slot in hand. A waiter woken by a timer
// asks Redis a little after its token came, by the timer's and the
// scheduler's delay and half a round trip; at a burst of 1 each such delay
// was lost to the rate: at 200 accounts on a busy machine, 0.93 of it
// (BENCHMARKS.md). It is well under any call's timeout and lease, and not
// cancelled with ctx: like a call in flight, a granted call goes.
const reserveAhead = 20 * time.Millisecond

// Margin is the share of the rate's interval that the limiter adds to it:
// calls go a hundredth further apart than the rate says, so that a second
// at Kaleyra holds no more than the rate and burst even when a call takes
// longer on its way than the ones after it. A call granted on Redis's clock
// reaches Kaleyra after a delay that varies from call to call (by up to 50
// ms between a worker and the simulator on a busy machine); with calls
// granted exactly an interval apart, the busiest second of 200 accounts
// had 3-23 ms of that left, 21-31 ms with the margin, at 1% of the rate
// (BENCHMARKS.md).
const Margin = 0.01

// untilDue is how long until the account's next call may be asked for, as
// Redis last said (due).
func (a *account) untilDue() time.Duration {
	return time.Duration(a.due.Load() - time.Now().UnixNano())
}

// ask asks Redis once for a slot on a's account, starting the job of start
// (if any) when it is granted, and sets a.due from the answer. Refused, it
// returns no slot and no error, or a *DeferredError when the wait is longer
// than the limits let a waiter wait in the process.
func (l *Limiter) ask(ctx context.Context, a *account, args rdb.AcquireArgs, start *rdb.StartArgs, deadline time.Time) (*Slot, rdb.StartReply, error) {
	var r rdb.AcquireReply
	var started rdb.StartReply
	var err error
	if start != nil {
		start.Now = time.Now()
		r, started, err = rdb.AcquireStart(ctx, l.rdb, a.keys, args, *start)
	} else {
		r, err = rdb.LimiterAcquire(ctx, l.rdb, a.keys, args)
	}
	if err != nil {
		return nil, rdb.StartReply{}, fmt.Errorf("acquire launch slot for %s: %w", a.sid, err)
	}
	wait := r.Wait
	if !r.OK && r.Reason == ReasonInFlight {
		// No one can say when a call ends: look again soon, at a
		// jittered interval so that waiters do not move in step.
		wait = 5*time.Millisecond + rand.N(10*time.Millisecond)
	}
	a.due.Store(time.Now().Add(wait).UnixNano())
	a.open.Store(r.OK)
	if r.OK {
		if wait > 0 {
			// The waiters behind this grant wait for the rate, not for
			// whatever an older refusal said.
			a.reason.Store(&reasonRate)
		}
		return &Slot{l: l, a: a, token: args.Token, lowered: r.Lowered, at: time.Now().Add(r.Delay)}, started, nil
	}
	reason := r.Reason
	a.reason.Store(&reason)
	if reason == ReasonCoolOff || time.Until(deadline) < wait || reason == ReasonRate && wait > a.cfg.MaxRateWait {
		return nil, rdb.StartReply{}, &DeferredError{After: max(wait, 100*time.Millisecond), Reason: reason}
	}
	return nil, rdb.StartReply{}, nil
}

// reasonRate is ReasonRate, for account.reason.
var reasonRate = ReasonRate

// waitTurn waits until this waiter may ask Redis for the account, or until
// deadline (a DeferredError, for the reason waiters wait: account.reason) or
// ctx's end; it returns a DeferredError at once when the waiters ahead of
// it leave it no chance before deadline.
func (a *account) waitTurn(ctx context.Context, deadline time.Time) error {
	select {
	case a.turn <- struct{}{}:
		return nil
	default:
	}
	// The account grants at most one call an interval (rdb.Interval), so a
	// waiter with n waiters ahead of it waits n intervals at least. One
	// that could not be served before its deadline goes back to the queue
	// at once instead of holding its worker until then: its worker can
	// take another account's job meanwhile. It asks to come back a little before the waiters ahead
	// are all served, so that the account's next jobs are at hand by then.
	// The reason is the rate whatever the last refusal said (the in-flight
	// cap, say): it is what the wait was reckoned from, and a long rate
	// wait is what has the worker hold the account's queues meanwhile,
	// rather than take its next job only to hand that back too.
	ahead := a.waiting.Add(1) - 1
	defer a.waiting.Add(-1)
	if wait := time.Duration(ahead) * rdb.Interval(a.cfg.Rate, Margin); wait > time.Until(deadline) {
		return &DeferredError{After: max(wait-comeBackEarly, 100*time.Millisecond), Reason: ReasonRate}
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case a.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		reason := ReasonRate
		if r := a.reason.Load(); r != nil {
			reason = *r
		}
		return &DeferredError{After: 100 * time.Millisecond, Reason: reason}
	}
}

// comeBackEarly is how long before the waiters ahead of it are served a
// job sent back for their number asks to run again: a job handed back
// takes a moment to reach a worker again.
const comeBackEarly = 500 * time.Millisecond

func newToken() string {
	var b [12]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Result is what a call's answer says about the account's health.
type Result int

const (
	Answered     Result = iota // any answer that is neither of the below
	GatewayError               // RCS502: counts towards the cool-off
	Throttled                  // HTTP 429: lowers the effective rate
	Unused                     // no call was made: only frees the slot
)

// Events reports what a Release changed, for logs and metrics.
type Events struct {
	// CoolOffStarted is set when this release put the account in cool-off.
	CoolOffStarted bool
	// Rate is the effective rate after the release when it changed, else 0;
	// Limit is then the account's configured rate, which Rate is below.
	Rate, Limit float64
}

// resultNames are the release script's names of the Results.
var resultNames = [...]rdb.ReleaseResult{Answered: rdb.ReleaseAnswered, GatewayError: rdb.ReleaseGateway,
	Throttled: rdb.ReleaseThrottled, Unused: rdb.ReleaseUnused}

// Release frees the slot and feeds the call's result to the cool-off and the
// adaptive rate. It is safe to call once; later calls do nothing.
func (s *Slot) Release(ctx context.Context, r Result) (Events, error) {
	if s == nil || s.token == "" {
		return Events{}, nil
	}
	token := s.token
	s.token = ""
	if s.quiet(r) {
		return s.events(rdb.ReleaseReply{}, rdb.FreeSlot(ctx, s.l.rdb, s.a.keys, token).Err())
	}
	rep, err := rdb.LimiterRelease(ctx, s.l.rdb, s.a.keys, s.releaseArgs(token, r))
	return s.events(rep, err)
}

// quiet reports whether result r leaves the account's cool-off and rate as
// they are, so that releasing the slot only frees it: no call was made, or
// an answered one while the rate was not lowered. That is nearly every
// release, and freeing costs Redis a tenth of the release script.
func (s *Slot) quiet(r Result) bool {
	return r == Unused || r == Answered && !s.lowered
}

// PendingRelease is a Release queued on a pipeline by QueueRelease.
type PendingRelease struct {
	slot *Slot
	p    *rdb.Pending[rdb.ReleaseReply]
	free *redis.IntCmd // instead of p, for a quiet release
}

// QueueRelease queues what Release does on pipe, so that it shares a round
// trip with other commands (the worker's record of the outcome); Events
// reads its answer once pipe has run. Like Release, it frees a slot once.
func (s *Slot) QueueRelease(ctx context.Context, pipe redis.Pipeliner, r Result) *PendingRelease {
	if s == nil || s.token == "" {
		return &PendingRelease{}
	}
	p := &PendingRelease{slot: s}
	if s.quiet(r) {
		p.free = rdb.FreeSlot(ctx, pipe, s.a.keys, s.token)
	} else {
		p.p = rdb.QueueLimiterRelease(ctx, pipe, s.a.keys, s.releaseArgs(s.token, r))
	}
	s.token = ""
	return p
}

// Events returns what Release would have. When Redis did not know the
// script (NOSCRIPT after a restart: the release did not run), it releases
// the slot again on its own with ctx.
func (p *PendingRelease) Events(ctx context.Context) (Events, error) {
	if p.free != nil {
		return p.slot.events(rdb.ReleaseReply{}, p.free.Err())
	}
	if p.p == nil {
		return Events{}, nil
	}
	rep, err := p.p.Result(ctx, p.slot.l.rdb)
	return p.slot.events(rep, err)
}

func (s *Slot) releaseArgs(token string, r Result) rdb.ReleaseArgs {
	c := &s.a.cfg
	return rdb.ReleaseArgs{Token: token, Result: resultNames[r], Rate: c.Rate, MinRate: c.MinRate,
		CoolOffThreshold: c.CoolOffThreshold, CoolOffWindow: c.CoolOffWindow, CoolOffDuration: c.CoolOffDuration}
}

// events reads the release script's answer, or a quiet release's error.
func (s *Slot) events(rep rdb.ReleaseReply, err error) (Events, error) {
	if err != nil {
		return Events{}, fmt.Errorf("release launch slot for %s: %w", s.a.sid, err)
	}
	ev := Events{CoolOffStarted: rep.CoolOffStarted, Rate: rep.Rate}
	if ev.Rate > 0 {
		ev.Limit = s.a.cfg.Rate
	}
	return ev, nil
}

// State is an account's limits as they stand.
type State struct {
	EffectiveRate float64       // calls per second now allowed
	InFlight      int           // calls holding a slot
	CoolOff       time.Duration // time left in cool-off; 0 when not in one
}

// State reads sid's current limits.
func (l *Limiter) State(ctx context.Context, sid string) (State, error) {
	a := l.account(sid)
	k := a.keys
	pipe := l.rdb.Pipeline()
	rate := pipe.HGet(ctx, k.Rate(), "rate")
	n := pipe.ZCard(ctx, k.InFlight()) // leases of dead processes count until the next Acquire reclaims them
	cool := pipe.PTTL(ctx, k.CoolOff())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return State{}, fmt.Errorf("read limits of %s: %w", sid, err)
	}
	st := State{EffectiveRate: a.cfg.Rate, InFlight: int(n.Val())}
	if r, err := rate.Float64(); err == nil && r < st.EffectiveRate {
		st.EffectiveRate = r
	}
	if d := cool.Val(); d > 0 {
		st.CoolOff = d
	}
	return st, nil
}
