// Package httpapi is rcslaunch's HTTP API: producers enqueue launches, and
// operators read and steer the dead-letter store and the queue. Every /v1/
// route needs a bearer token; answers are JSON, and every error has one
// shape: {"error": {"code", "message", "errors": [{"field", "reason"}]}}.
package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/launch"
)

// Bounds on request bodies.
const (
	// MaxBatchJobs is how many jobs one POST /v1/launches:batch may carry.
	MaxBatchJobs = 500
	// maxJobBody bounds POST /v1/launches: one job and a little slack.
	maxJobBody = launch.MaxJobBytes + 1024
	// maxBatchBody bounds POST /v1/launches:batch.
	maxBatchBody = 8 << 20
	// maxAdminBody bounds operator request bodies (selections).
	maxAdminBody = 64 << 10
)

// Options configures a Server.
type Options struct {
	Producer *queue.Producer
	// Inspector reads asynq's queue statistics.
	Inspector *asynq.Inspector
	// Token authorises the producer routes; AdminToken the operator routes
	// (and the producer ones). An empty AdminToken means Token serves both.
	Token, AdminToken string
	Logger            zerolog.Logger
}

// Server is the HTTP API's handler.
type Server struct {
	opts  Options
	store *store.Store
	mux   *http.ServeMux
}

// New returns the API; mount it with Handler.
func New(opts Options) *Server {
	if opts.AdminToken == "" {
		opts.AdminToken = opts.Token
	}
	s := &Server{opts: opts, store: opts.Producer.Store, mux: http.NewServeMux()}
	s.routes()
	return s
}

// Handler is the API as an http.Handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Mux lets the caller mount more routes (the UI, metrics) beside the API.
func (s *Server) Mux() *http.ServeMux { return s.mux }

func (s *Server) routes() {
	producer := func(h http.HandlerFunc) http.Handler { return s.auth(h, s.opts.Token, s.opts.AdminToken) }
	operator := func(h http.HandlerFunc) http.Handler { return s.auth(h, s.opts.AdminToken) }

	s.mux.Handle("POST /v1/launches", producer(s.postLaunch))
	s.mux.Handle("POST /v1/launches:batch", producer(s.postBatch))
	s.mux.Handle("GET /v1/launches/{id}", producer(s.getLaunch))

	s.mux.Handle("GET /v1/deadletters", operator(s.listDeadLetters))
	s.mux.Handle("GET /v1/deadletters/{id}", operator(s.getDeadLetter))
	s.mux.Handle("POST /v1/deadletters/{id}/retry", operator(s.retryDeadLetter))
	s.mux.Handle("DELETE /v1/deadletters/{id}", operator(s.deleteDeadLetter))
	s.mux.Handle("POST /v1/deadletters:retry", operator(s.retryDeadLetters))
	s.mux.Handle("POST /v1/deadletters:delete", operator(s.deleteDeadLetters))
	s.mux.Handle("GET /v1/stats", operator(s.stats))

	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such route: "+r.Method+" "+r.URL.Path, nil)
	})
}

// auth lets a request through when it carries one of tokens as a bearer
// token. Tokens are compared in constant time.
func (s *Server) auth(h http.Handler, tokens ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || got == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rcslaunch"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <token>", nil)
			return
		}
		if !TokenMatches(got, tokens...) {
			writeError(w, http.StatusForbidden, "forbidden", "the token is not valid for this route", nil)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// TokenMatches reports whether got equals one of the non-empty tokens,
// comparing in constant time.
func TokenMatches(got string, tokens ...string) bool {
	match := 0
	for _, t := range tokens {
		if t != "" {
			match |= subtle.ConstantTimeCompare([]byte(got), []byte(t))
		}
	}
	return match == 1
}

// CheckListen refuses to serve on a non-loopback address without tokens:
// the API can enqueue and replay launches.
func CheckListen(addr, token, adminToken string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %q is not host:port: %w", addr, err)
	}
	if token != "" || adminToken != "" || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("HTTP_ADDR: refusing to serve on %s without HTTP_TOKEN: anyone who can reach it could enqueue and replay launches", addr)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := config.CheckRedis(ctx, s.store.Redis()); err != nil {
		writeError(w, http.StatusServiceUnavailable, "not_ready", err.Error(), nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// apiError is the one error shape of the API.
type apiError struct {
	Code    string              `json:"code"`
	Message string              `json:"message"`
	Errors  []launch.FieldError `json:"errors,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, message string, fields []launch.FieldError) {
	writeJSON(w, status, map[string]apiError{"error": {Code: code, Message: message, Errors: fields}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// readBody reads a request body of at most limit bytes, answering 413 (and
// returning false) when it is larger.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	body := http.MaxBytesReader(w, r.Body, limit)
	data, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body is larger than %d bytes", limit), nil)
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "bad_request", "cannot read request body: "+err.Error(), nil)
		return nil, false
	}
	return data, true
}
