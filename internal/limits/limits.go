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
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/defaults"
)

// Config is one account's limits (the same for every SID a fleet serves).
type Config struct {
	// Rate is launch calls per second over every process. Required.
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
	// hands the job back to the queue (ErrDeferred). Default 2s.
	MaxWait time.Duration
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

// Limiter hands out permission for launch calls, per SID.
type Limiter struct {
	rdb redis.UniversalClient
	cfg Config
	// last is the keys of the SID used last, which is nearly always the one
	// SID a worker serves: built once instead of on every call.
	last atomic.Pointer[sidKeys]
}

type sidKeys struct {
	sid  string
	keys []string
}

// New returns a Limiter over rdb.
func New(rdb redis.UniversalClient, cfg Config) (*Limiter, error) {
	if cfg.Rate <= 0 {
		return nil, fmt.Errorf("limits: rate must be positive, got %v", cfg.Rate)
	}
	cfg.applyDefaults()
	return &Limiter{rdb: rdb, cfg: cfg}, nil
}

// keysFor returns keys(sid), reusing the last SID's. The slice is shared and
// must not be modified.
func (l *Limiter) keysFor(sid string) []string {
	if k := l.last.Load(); k != nil && k.sid == sid {
		return k.keys
	}
	k := &sidKeys{sid: sid, keys: keys(sid)}
	l.last.Store(k)
	return k.keys
}

func keys(sid string) []string {
	p := "rcslaunch:{sid:" + sid + "}:"
	// tat, in-flight leases, cool-off flag, effective rate, gateway-error count
	return []string{p + "tat", p + "inflight", p + "cooloff", p + "rate", p + "gateway_errors"}
}

var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cool = redis.call('PTTL', KEYS[3])
if cool > 0 then return {0, cool * 1000, 'cool_off'} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return {0, 0, 'in_flight'} end
local rate = tonumber(ARGV[1])
local eff = tonumber(redis.call('HGET', KEYS[4], 'rate'))
if eff and eff < rate then rate = eff end
local interval = math.floor(1000000 / rate)
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new = tat + interval
if new - now > tolerance then return {0, new - now - tolerance, 'rate'} end
redis.call('SET', KEYS[1], new, 'PX', math.floor((new - now) / 1000) + 1000)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[5])
redis.call('PEXPIRE', KEYS[2], math.floor(tonumber(ARGV[4]) / 1000) + 1000)
return {1, 0, 'ok'}
`)

// Slot is permission for one call, held until Release.
type Slot struct {
	l     *Limiter
	sid   string
	token string
}

// Acquire waits, up to MaxWait, until a call for sid may go, and returns its
// slot. When it would have to wait longer (a cool-off, a long rate wait) it
// returns a *DeferredError instead; on ctx's end, ctx's error.
func (l *Limiter) Acquire(ctx context.Context, sid string) (*Slot, error) {
	token := newToken()
	k := l.keysFor(sid)
	deadline := time.Now().Add(l.cfg.MaxWait)
	for {
		vals, err := acquireScript.Run(ctx, l.rdb, k, l.cfg.Rate, l.cfg.Burst, l.cfg.MaxInFlight,
			l.cfg.Lease.Microseconds(), token).Slice()
		if err != nil {
			return nil, fmt.Errorf("acquire launch slot for %s: %w", sid, err)
		}
		if ok, _ := vals[0].(int64); ok == 1 {
			return &Slot{l: l, sid: sid, token: token}, nil
		}
		us, _ := vals[1].(int64)
		reason, _ := vals[2].(string)
		wait := time.Duration(us) * time.Microsecond
		if reason == ReasonInFlight {
			// No one can say when a call ends: look again soon, at a
			// jittered interval so that waiters do not move in step.
			wait = 5*time.Millisecond + rand.N(10*time.Millisecond)
		}
		if reason == ReasonCoolOff || time.Until(deadline) < wait {
			return nil, &DeferredError{After: max(wait, 100*time.Millisecond), Reason: reason}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

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
	// Rate is the effective rate after the release when it changed, else 0.
	Rate float64
}

var releaseScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[2], ARGV[1])
local result, rate, floor = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local cool, newrate = 0, 0
if result == 'gateway' and tonumber(ARGV[5]) > 0 then
  local n = redis.call('INCR', KEYS[5])
  if n == 1 then redis.call('PEXPIRE', KEYS[5], ARGV[6]) end
  if n >= tonumber(ARGV[5]) and redis.call('EXISTS', KEYS[3]) == 0 then
    redis.call('SET', KEYS[3], now, 'PX', ARGV[7])
    redis.call('DEL', KEYS[5])
    cool = 1
  end
end
local eff = tonumber(redis.call('HGET', KEYS[4], 'rate') or rate)
if result == 'throttled' then
  newrate = math.max(floor, math.min(eff, rate) / 2)
  redis.call('HSET', KEYS[4], 'rate', newrate, 'changed', now)
  if newrate == eff then newrate = 0 end -- already at the floor: nothing changed
elseif eff < rate and result == 'answered' then
  -- raise the rate a tenth of the limit at most once a second of successes
  local changed = tonumber(redis.call('HGET', KEYS[4], 'changed') or '0')
  if now - changed >= 1000 then
    newrate = math.min(rate, eff + rate / 10)
    if newrate >= rate then
      redis.call('DEL', KEYS[4])
    else
      redis.call('HSET', KEYS[4], 'rate', newrate, 'changed', now)
    end
  end
end
return {cool, tostring(newrate)}
`)

// resultNames are the release script's names of the Results.
var resultNames = [...]string{Answered: "answered", GatewayError: "gateway", Throttled: "throttled", Unused: "unused"}

// Release frees the slot and feeds the call's result to the cool-off and the
// adaptive rate. It is safe to call once; later calls do nothing.
func (s *Slot) Release(ctx context.Context, r Result) (Events, error) {
	if s == nil || s.token == "" {
		return Events{}, nil
	}
	token := s.token
	s.token = ""
	vals, err := releaseScript.Run(ctx, s.l.rdb, s.l.keysFor(s.sid), s.releaseArgs(token, r)...).Slice()
	return s.events(vals, err)
}

// PendingRelease is a Release queued on a pipeline by QueueRelease.
type PendingRelease struct {
	slot  *Slot
	token string
	r     Result
	cmd   *redis.Cmd
}

// QueueRelease queues what Release does on pipe, so that it shares a round
// trip with other commands (the worker's record of the outcome); Events
// reads its answer once pipe has run. Like Release, it frees a slot once.
func (s *Slot) QueueRelease(ctx context.Context, pipe redis.Pipeliner, r Result) *PendingRelease {
	if s == nil || s.token == "" {
		return &PendingRelease{}
	}
	p := &PendingRelease{slot: s, token: s.token, r: r}
	s.token = ""
	p.cmd = releaseScript.EvalSha(ctx, pipe, s.l.keysFor(s.sid), s.releaseArgs(p.token, r)...)
	return p
}

// Events returns what Release would have. When Redis did not know the
// script (NOSCRIPT after a restart: the release did not run), it releases
// the slot again on its own with ctx, which loads the script.
func (p *PendingRelease) Events(ctx context.Context) (Events, error) {
	if p.cmd == nil {
		return Events{}, nil
	}
	vals, err := p.cmd.Slice()
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		vals, err = releaseScript.Run(ctx, p.slot.l.rdb, p.slot.l.keysFor(p.slot.sid), p.slot.releaseArgs(p.token, p.r)...).Slice()
	}
	return p.slot.events(vals, err)
}

func (s *Slot) releaseArgs(token string, r Result) []any {
	c := &s.l.cfg
	return []any{token, resultNames[r], c.Rate, c.MinRate,
		c.CoolOffThreshold, c.CoolOffWindow.Milliseconds(), c.CoolOffDuration.Milliseconds()}
}

// events reads the release script's answer.
func (s *Slot) events(vals []any, err error) (Events, error) {
	if err != nil {
		return Events{}, fmt.Errorf("release launch slot for %s: %w", s.sid, err)
	}
	var ev Events
	if n, _ := vals[0].(int64); n == 1 {
		ev.CoolOffStarted = true
	}
	if str, _ := vals[1].(string); str != "" {
		ev.Rate, _ = strconv.ParseFloat(str, 64)
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
	k := keys(sid)
	pipe := l.rdb.Pipeline()
	rate := pipe.HGet(ctx, k[3], "rate")
	n := pipe.ZCard(ctx, k[1]) // leases of dead processes count until the next Acquire reclaims them
	cool := pipe.PTTL(ctx, k[2])
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return State{}, fmt.Errorf("read limits of %s: %w", sid, err)
	}
	st := State{EffectiveRate: l.cfg.Rate, InFlight: int(n.Val())}
	if r, err := rate.Float64(); err == nil && r < st.EffectiveRate {
		st.EffectiveRate = r
	}
	if d := cool.Val(); d > 0 {
		st.CoolOff = d
	}
	return st, nil
}
