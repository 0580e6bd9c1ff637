// Package httpapi is rcslaunch's HTTP API: producers enqueue launches, and
// operators read and steer the dead-letter store and the queue. Every /v1/
// route needs a bearer token; answers are JSON, and every error has one
// shape: {"error": {"code", "message", "errors": [{"field", "reason"}]}}.
package httpapi

import (
	"bytes"
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

	"github.com/rcslaunch/rcslaunch/internal/throttle"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/ops"
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
	// Ops is the operations layer every route acts through. Required.
	Ops *ops.Client
	// Redis is the Redis asynq uses, for asynq's monitor under the UI.
	Redis asynq.RedisConnOpt
	// Inspector reads asynq's queue statistics.
	Inspector *asynq.Inspector
	// Metrics serves GET /metrics (Prometheus text format), behind the
	// admin token.
	Metrics http.Handler
	// Token authorises the producer routes; AdminToken the operator routes
	// (and the producer ones). An empty AdminToken means Token serves both.
	Token, AdminToken string
	Logger            zerolog.Logger
}

// Server is the HTTP API's handler.
type Server struct {
	opts Options
	ops  *ops.Client
	mux  *http.ServeMux
	// guard counts failed token checks (bearer tokens and UI sign-ins)
	// per client address.
	guard *throttle.Throttle
}

// New returns the API; mount it with Handler.
func New(opts Options) *Server {
	if opts.AdminToken == "" {
		opts.AdminToken = opts.Token
	}
	s := &Server{opts: opts, ops: opts.Ops, mux: http.NewServeMux(), guard: throttle.New(throttle.Config{})}
	s.routes()
	return s
}

// Handler is the API as an http.Handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Mux lets the caller mount more routes (the UI, metrics) beside the API.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// access says which token a route needs.
type access int

const (
	accessPublic   access = iota // none
	accessProducer               // HTTP_TOKEN or HTTP_ADMIN_TOKEN
	accessOperator               // HTTP_ADMIN_TOKEN
)

// route is one documented route. routes() registers exactly these (and the
// /v1/ fallback); openapi_test.go checks openapi.json against this list, so
// a route added here without its documentation fails the tests.
type route struct {
	method, path string
	access       access
	handler      http.HandlerFunc
}

func (s *Server) routeTable() []route {
	return []route{
		{"POST", "/v1/launches", accessProducer, s.postLaunch},
		{"POST", "/v1/launches:batch", accessProducer, s.postBatch},
		{"GET", "/v1/launches", accessProducer, s.listLaunches},
		{"GET", "/v1/launches/{id}", accessProducer, s.getLaunch},
		{"GET", "/v1/batches", accessProducer, s.listBatches},
		{"GET", "/v1/batches/{id}", accessProducer, s.getBatch},

		{"GET", "/v1/deadletters", accessOperator, s.listDeadLetters},
		{"GET", "/v1/deadletters/{id}", accessOperator, s.getDeadLetter},
		{"POST", "/v1/deadletters/{id}/retry", accessOperator, s.retryDeadLetter},
		{"DELETE", "/v1/deadletters/{id}", accessOperator, s.deleteDeadLetter},
		{"POST", "/v1/deadletters:retry", accessOperator, s.retryDeadLetters},
		{"POST", "/v1/deadletters:delete", accessOperator, s.deleteDeadLetters},
		{"GET", "/v1/stats", accessOperator, s.stats},
		{"GET", "/metrics", accessOperator, s.metrics},

		{"GET", "/healthz", accessPublic, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}},
		{"GET", "/readyz", accessPublic, s.readyz},
		{"GET", "/openapi.json", accessPublic, serveOpenAPI},
	}
}

func (s *Server) routes() {
	for _, rt := range s.routeTable() {
		var h http.Handler = rt.handler
		switch rt.access {
		case accessProducer:
			h = s.auth(h, s.opts.Token, s.opts.AdminToken)
		case accessOperator:
			h = s.auth(h, s.opts.AdminToken)
		}
		s.mux.Handle(rt.method+" "+rt.path, h)
	}
	s.mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such route: "+r.Method+" "+r.URL.Path, nil)
	})
	s.mountUI() // the web UI under /ui/ (ui.go)
}

// auth lets a request through when it carries one of tokens as a bearer
// token. Tokens are compared in constant time. A token that is none of the
// server's counts as a guess against its address (a valid token of the
// wrong kind is not one); an address held off by too many is answered 429.
func (s *Server) auth(h http.Handler, tokens ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The scheme is case-insensitive (RFC 7235 §2.1).
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || got == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rcslaunch"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <token>", nil)
			return
		}
		known, wait := s.guard.Try(throttle.Key(r.RemoteAddr), func() bool {
			return TokenMatches(got, s.opts.Token, s.opts.AdminToken)
		})
		if wait > 0 {
			writeThrottled(w, wait)
			return
		}
		if !known || !TokenMatches(got, tokens...) {
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

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.opts.Metrics == nil {
		writeError(w, http.StatusNotFound, "not_found", "metrics are not served here", nil)
		return
	}
	s.opts.Metrics.ServeHTTP(w, r)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.ops.Check(ctx); err != nil {
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

// decodeStrict decodes data, one JSON value, into v: unknown members and
// anything after the value (a second object, say, which would otherwise be
// silently dropped) are errors.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
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
