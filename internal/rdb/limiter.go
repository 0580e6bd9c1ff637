package rdb

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The limiter's scripts, on one account's SIDKeys.
var (
	limiterAcquireScript = load("limiter_acquire.lua")
	limiterReleaseScript = load("limiter_release.lua")
	acquireStartScript   = load("acquire_start.lua", batchLib, asFunction("limiter_acquire.lua"), asFunction("start_job.lua"))
)

// AcquireArgs is limiter_acquire.lua's arguments.
type AcquireArgs struct {
	Rate        float64 // calls per second
	Burst       int
	MaxInFlight int
	Lease       time.Duration // sent in whole µs
	Token       string        // the slot's lease token
	// Ahead is how early a call's rate token may be granted, sent in whole
	// µs: the grant then says how long the call must wait (Delay).
	Ahead time.Duration
	// Margin is the share of the rate's interval added to it (see
	// Interval).
	Margin float64
}

// Interval is the time limiter_acquire.lua keeps between calls at rate
// calls a second with margin (AcquireArgs.Margin), in whole µs as it does,
// rounded up so that the rate is never exceeded.
func Interval(rate, margin float64) time.Duration {
	return time.Duration(math.Ceil(1e6/rate*(1+margin))) * time.Microsecond
}

// AcquireReply is limiter_acquire.lua's answer.
type AcquireReply struct {
	OK bool // the slot is taken
	// Lowered is set with OK when throttling has lowered the account's
	// rate: the slot's release must run LimiterRelease, which raises it
	// again, where FreeSlot would do otherwise.
	Lowered bool
	// Wait is, refused, how long until a call may be asked for (0:
	// unknown); granted, how long until the account's next call may be
	// asked for (0: at once).
	Wait time.Duration
	// Delay is, granted, how long the call must wait before it goes: its
	// rate token comes within AcquireArgs.Ahead.
	Delay  time.Duration
	Reason string // refused, why: "cool_off", "in_flight" or "rate"
}

// LimiterAcquire runs limiter_acquire.lua: it takes a rate token and an
// in-flight slot for one call on k's account, or says how long to wait.
func LimiterAcquire(ctx context.Context, c redis.Scripter, k SIDKeys, a AcquireArgs) (AcquireReply, error) {
	return call(ctx, c, limiterAcquireScript, k.keys, a.args(), func(cmd *redis.Cmd) (AcquireReply, error) {
		vals, err := slice(cmd, 3)
		if err != nil {
			return AcquireReply{}, err
		}
		return acquireReply(vals)
	})
}

func (a AcquireArgs) args() []any {
	return []any{a.Rate, a.Burst, a.MaxInFlight, a.Lease.Microseconds(), a.Token, a.Ahead.Microseconds(), a.Margin}
}

// acquireReply decodes limiter_acquire.lua's answer: {ok, wait_us, reason},
// and granted, delay_us after it.
func acquireReply(vals []any) (AcquireReply, error) {
	ok, _ := vals[0].(int64)
	us, _ := vals[1].(int64)
	reason, _ := vals[2].(string)
	wait := time.Duration(us) * time.Microsecond
	if ok != 1 {
		return AcquireReply{Wait: wait, Reason: reason}, nil
	}
	if len(vals) < 4 {
		return AcquireReply{}, fmt.Errorf("%d values in a grant, want 4", len(vals))
	}
	delay, _ := vals[3].(int64)
	return AcquireReply{OK: true, Lowered: reason == "lowered", Wait: wait, Delay: time.Duration(delay) * time.Microsecond}, nil
}

// AcquireStart runs acquire_start.lua: LimiterAcquire on k's account and,
// when it grants the slot, StartJob, in one round trip. The StartReply is
// set only when the slot is taken. It needs a Redis whose scripts may touch
// keys of several cluster slots (CrossSlotScripts).
func AcquireStart(ctx context.Context, c redis.Scripter, k SIDKeys, a AcquireArgs, s StartArgs) (AcquireReply, StartReply, error) {
	type reply struct {
		acquire AcquireReply
		start   StartReply
	}
	r, err := call(ctx, c, acquireStartScript, append(slices.Clip(k.keys), s.keys()...), append(a.args(), s.args()...),
		func(cmd *redis.Cmd) (reply, error) {
			vals, err := slice(cmd, 3)
			if err != nil {
				return reply{}, err
			}
			var r reply
			if r.acquire, err = acquireReply(vals); err != nil {
				return reply{}, err
			}
			if r.acquire.OK {
				if len(vals) != 6 {
					return reply{}, fmt.Errorf("%d values in a grant, want 6", len(vals))
				}
				r.start = startReply(vals[4:])
			}
			return r, nil
		})
	return r.acquire, r.start, err
}

// CrossSlotScripts reports whether c lets one script touch keys of several
// cluster slots: any Redis but a Cluster.
func CrossSlotScripts(c redis.UniversalClient) bool {
	_, cluster := c.(*redis.ClusterClient)
	return !cluster
}

// ReleaseResult is what a call's answer says about the account's health, as
// limiter_release.lua names it.
type ReleaseResult string

// The results limiter_release.lua knows.
const (
	ReleaseAnswered  ReleaseResult = "answered"
	ReleaseGateway   ReleaseResult = "gateway"
	ReleaseThrottled ReleaseResult = "throttled"
	ReleaseUnused    ReleaseResult = "unused"
)

// ReleaseArgs is limiter_release.lua's arguments.
type ReleaseArgs struct {
	Token            string // the slot's lease token
	Result           ReleaseResult
	Rate             float64 // the configured rate, calls per second
	MinRate          float64 // the floor throttling lowers the rate to
	CoolOffThreshold int     // gateway errors that start a cool-off; 0 disables it
	CoolOffWindow    time.Duration
	CoolOffDuration  time.Duration
}

func (a ReleaseArgs) args() []any {
	return []any{a.Token, string(a.Result), a.Rate, a.MinRate,
		a.CoolOffThreshold, a.CoolOffWindow.Milliseconds(), a.CoolOffDuration.Milliseconds()}
}

// ReleaseReply is limiter_release.lua's answer.
type ReleaseReply struct {
	CoolOffStarted bool    // this release put the account in cool-off
	Rate           float64 // the effective rate when this release changed it, else 0
}

// LimiterRelease runs limiter_release.lua: it frees the slot of token and
// feeds the call's result to the cool-off and the adaptive rate.
func LimiterRelease(ctx context.Context, c redis.Scripter, k SIDKeys, a ReleaseArgs) (ReleaseReply, error) {
	return call(ctx, c, limiterReleaseScript, k.keys, a.args(), releaseReply)
}

// QueueLimiterRelease queues LimiterRelease on pipe; its Result is
// LimiterRelease's.
func QueueLimiterRelease(ctx context.Context, pipe redis.Pipeliner, k SIDKeys, a ReleaseArgs) *Pending[ReleaseReply] {
	return queue(ctx, pipe, limiterReleaseScript, k.keys, a.args(), releaseReply)
}

// FreeSlot frees the in-flight slot of token on k's account: what
// LimiterRelease does for a call whose result changes neither the cool-off
// nor the rate, without a script. A script call costs Redis ten times as
// much as this one command (BENCHMARKS.md, "Redis instructions per job").
func FreeSlot(ctx context.Context, c redis.Cmdable, k SIDKeys, token string) *redis.IntCmd {
	return c.ZRem(ctx, k.InFlight(), token)
}

func releaseReply(cmd *redis.Cmd) (ReleaseReply, error) {
	vals, err := slice(cmd, 2)
	if err != nil {
		return ReleaseReply{}, err
	}
	var r ReleaseReply
	if n, _ := vals[0].(int64); n == 1 {
		r.CoolOffStarted = true
	}
	if s, _ := vals[1].(string); s != "" {
		r.Rate, _ = strconv.ParseFloat(s, 64)
	}
	return r, nil
}
