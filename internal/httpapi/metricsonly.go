package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/throttle"
)

// MetricsOnly is the worker's metrics server (METRICS_ADDR): /metrics,
// behind token when set (wrong tokens throttled per address, as on serve),
// and /healthz.
func MetricsOnly(h http.Handler, token string) http.Handler {
	guard := throttle.New(throttle.Config{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if token != "" {
			got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			ok, wait := false, time.Duration(0)
			if got != "" {
				ok, wait = guard.Try(throttle.Key(r.RemoteAddr), func() bool { return TokenMatches(got, token) })
			}
			if wait > 0 {
				n := retryAfter(wait)
				w.Header().Set("Retry-After", strconv.Itoa(n))
				http.Error(w, fmt.Sprintf("too many failed token checks from this address: try again in %d s", n), http.StatusTooManyRequests)
				return
			}
			if !ok {
				http.Error(w, "send Authorization: Bearer <HTTP_ADMIN_TOKEN>", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
	return mux
}
