// Package limits keeps launch calls within what a Kaleyra account allows.
package limits

import (
	"context"
	"sync"

	"golang.org/x/time/rate"
)

// Limiter holds a launch call for an account (SID) until it may be made.
// Waiting is not an attempt: callers wait before they count one.
type Limiter interface {
	Wait(ctx context.Context, sid string) error
}

// Local limits the calls of this process alone, per SID, with a token bucket
// of the given rate (calls per second) and burst.
type Local struct {
	rate  rate.Limit
	burst int

	mu  sync.Mutex
	sid map[string]*rate.Limiter
}

// NewLocal returns a per-process limiter.
func NewLocal(perSecond float64, burst int) *Local {
	return &Local{rate: rate.Limit(perSecond), burst: max(burst, 1), sid: map[string]*rate.Limiter{}}
}

// Wait blocks until a call for sid may start, or ctx is done.
func (l *Local) Wait(ctx context.Context, sid string) error {
	l.mu.Lock()
	lim, ok := l.sid[sid]
	if !ok {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.sid[sid] = lim
	}
	l.mu.Unlock()
	return lim.Wait(ctx)
}
