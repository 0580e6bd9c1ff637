package httpapi

import (
	"fmt"
	"net/http"
	"strings"
)

// MetricsOnly is the worker's metrics server (METRICS_ADDR): /metrics,
// behind token when set, and /healthz.
func MetricsOnly(h http.Handler, token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if token != "" && !TokenMatches(got, token) {
			http.Error(w, "send Authorization: Bearer <HTTP_ADMIN_TOKEN>", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
	return mux
}
