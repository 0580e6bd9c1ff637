package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// retryAfter is wait in whole seconds, rounded up: a client that waits
// Retry-After must not come back a moment too early and be refused again.
func retryAfter(wait time.Duration) int {
	return max(1, int((wait+time.Second-1)/time.Second))
}

// writeThrottled refuses a request from an address held off for too many
// failed token checks, the right token included (see package throttle).
func writeThrottled(w http.ResponseWriter, wait time.Duration) {
	n := retryAfter(wait)
	w.Header().Set("Retry-After", strconv.Itoa(n))
	writeError(w, http.StatusTooManyRequests, "throttled",
		fmt.Sprintf("too many failed token checks from this address: try again in %d s", n), nil)
}
