package worker

import (
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// A task whose worker died runs again a second after asynq's recoverer
// finds it, however often the limiter had handed it back before; the
// handler's own times and the backoff for other errors stand.
func TestRetryDelay(t *testing.T) {
	at := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name string
		n    int
		err  error
		min  time.Duration
		max  time.Duration
	}{
		{"worker died, after many hand-backs", 40, asynq.ErrLeaseExpired, time.Second, time.Second},
		{"worker died, wrapped", 3, errors.Join(errors.New("x"), asynq.ErrLeaseExpired), time.Second, time.Second},
		{"the handler's time", 40, &laterError{at: at, reason: "rate"}, 59 * time.Minute, time.Hour},
		{"Redis down, first retry", 0, errors.New("dial tcp: connection refused"), time.Second, time.Second},
		{"Redis down, capped", 40, errors.New("dial tcp: connection refused"), time.Minute, time.Minute},
	} {
		if d := retryDelay(tc.n, tc.err, nil); d < tc.min || d > tc.max {
			t.Errorf("%s: retryDelay(%d) = %v, want %v..%v", tc.name, tc.n, d, tc.min, tc.max)
		}
	}
}
