// Package backoff computes retry delays: exponential, capped, with jitter.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff: the n-th retry (n = 0 for the first)
// waits about min(Max, Base·2^n).
type Policy struct {
	Base time.Duration
	Max  time.Duration
}

// Jitter is the share of a delay that is randomised away, so that jobs that
// failed together do not all come back together.
const Jitter = 0.25

// Delay returns the wait before retry n: min(Max, Base·2^n) less up to Jitter
// of it, chosen by u in [0, 1). It never exceeds Max and never overflows,
// however large n is.
func (p Policy) Delay(n int, u float64) time.Duration {
	if p.Base <= 0 {
		return 0
	}
	max := p.Max
	if max < p.Base {
		max = p.Base
	}
	d := p.Base
	for i := 0; i < n && d < max; i++ {
		if d > max/2 { // doubling would pass max (and, near the top, overflow)
			d = max
			break
		}
		d *= 2
	}
	if d > max {
		d = max
	}
	if u < 0 || u >= 1 {
		u = 0
	}
	return d - time.Duration(float64(d)*Jitter*u)
}

// Next is Delay with a random u.
func (p Policy) Next(n int) time.Duration { return p.Delay(n, rand.Float64()) }
