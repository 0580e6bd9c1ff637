// Package httpapi is rcslaunch's HTTP API: producers enqueue launches, and
// operators read and steer the dead-letter store and the queue. Every /v1/
// route needs a bearer token; answers are JSON, and every error has one
// shape: {"error": {"code", "message", "errors": [{"field", "reason"}],
// "error_id"}} (error_id on internal errors only).
package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/rdb"
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

// Bounds on what batch requests hold at once: each buffers its whole body
// (and its parsed jobs), so thirty big ones at once would take the server
// to gigabytes. Beyond either bound a batch is refused with 429 and
// Retry-After.
const (
	// maxBatchRequests is how many POST /v1/launches:batch are served at once.
	maxBatchRequests = 8
	// batchBodyBudget is how many body bytes they may hold together: each
	// reserves its Content-Length, or maxBatchBody when it does not say.
	batchBodyBudget = 3 * maxBatchBody
	// batchRetryAfter is the Retry-After of a refused batch, in seconds.
	batchRetryAfter = 2
	// batchDeadline is how long a batch request may take to arrive and be
	// answered (8 MiB over a slow link); other routes have the server's
	// ReadTimeout.
	batchDeadline = 5 * time.Minute
)

// Options configures a Server.
type Options struct {
	// Ops is the operations layer every route acts through. Required.
	Ops *ops.Client
	// Redis is the Redis asynq uses, for asynq's monitor under the UI.
	Redis asynq.RedisConnOpt
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
	opts    Options
	ops     *ops.Client
	mux     *router
	batches *budget
	// guard counts failed token checks (bearer tokens and UI sign-ins)
	// per client address.
	guard *throttle.Throttle
}

// New returns the API; mount it with Handler.
func New(opts Options) *Server {
	if opts.AdminToken == "" {
		opts.AdminToken = opts.Token
	}
	s := &Server{opts: opts, ops: opts.Ops, mux: newRouter(), batches: newBudget(maxBatchRequests, batchBodyBudget),
		guard: throttle.New(throttle.Config{})}
	s.routes()
	return s
}

// Handler is the API as an http.Handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Mux lets the caller mount more routes (the UI, metrics) beside the API.
func (s *Server) Mux() *http.ServeMux { return s.mux.ServeMux }

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
		if strings.Contains(rt.path, "{id}") {
			h = checkPathID(h)
		}
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
	s.mux.refuseOtherMethods()
}

// checkPathID answers 400 when the {id} of a request's path is not an ID
// (launch.ValidateID: job IDs, and batch IDs too, keep to its alphabet and
// length): it goes into Redis keys and log lines.
func checkPathID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fields := pathIDErrors(r); fields != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "the ID in the path is not valid", fields)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// pathIDErrors is what is wrong with the request's {id}, or nil.
func pathIDErrors(r *http.Request) []launch.FieldError {
	var ve *launch.ValidationError
	if errors.As(launch.ValidateID(r.PathValue("id")), &ve) {
		return ve.Errors
	}
	return nil
}

// router is a ServeMux that remembers which methods each path is served
// for, so that any other method is refused with 405 and Allow (ServeMux's
// own 405 is plain text, and its /v1/ and /ui/ fallbacks would answer 404
// first).
type router struct {
	*http.ServeMux
	methods  map[string][]string // path -> methods served
	paths    []string            // in registration order
	anyVerbs map[string]bool     // paths registered for every method
}

func newRouter() *router {
	return &router{ServeMux: http.NewServeMux(), methods: map[string][]string{}, anyVerbs: map[string]bool{}}
}

// Handle is ServeMux.Handle, noting the pattern's method.
func (m *router) Handle(pattern string, h http.Handler) {
	if method, path, ok := strings.Cut(pattern, " "); ok {
		if _, seen := m.methods[path]; !seen {
			m.paths = append(m.paths, path)
		}
		m.methods[path] = append(m.methods[path], method)
		if method == http.MethodGet {
			m.methods[path] = append(m.methods[path], http.MethodHead)
		}
	} else {
		m.anyVerbs[pattern] = true
	}
	m.ServeMux.Handle(pattern, h)
}

// HandleFunc is ServeMux.HandleFunc, noting the pattern's method.
func (m *router) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

// refuseOtherMethods answers 405 on every registered path for the methods
// it is not served for: in the API's error shape, plain text under /ui/.
func (m *router) refuseOtherMethods() {
	for _, path := range m.paths {
		if m.anyVerbs[path] {
			continue
		}
		allow := slices.Clone(m.methods[path])
		slices.Sort(allow)
		allow = slices.Compact(allow)
		m.ServeMux.Handle(path, methodNotAllowed(path, strings.Join(allow, ", ")))
	}
}

func methodNotAllowed(path, allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		if strings.HasPrefix(path, uiRoot+"/") {
			http.Error(w, "method not allowed; allowed: "+allow, http.StatusMethodNotAllowed)
			return
		}
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s is not served for %s; allowed: %s", r.Method, r.URL.Path, allow), nil)
	})
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

// TokenWarning is what `serve` says at start when it has no token: with
// none, every route behind one refuses every request (an empty token never
// matches), which a first run would otherwise find out one 401 at a time.
// It is "" when a token is set.
func TokenWarning(token, adminToken string) string {
	if token != "" || adminToken != "" {
		return ""
	}
	return "no HTTP_TOKEN or HTTP_ADMIN_TOKEN is set: the /v1/ routes, /metrics and the web UI will refuse " +
		"every request (only /healthz, /readyz and /openapi.json answer); set HTTP_TOKEN (16 characters or more)"
}

// CheckListen refuses to serve on a non-loopback address without tokens:
// the API can enqueue and replay launches.
func CheckListen(addr, token, adminToken string) error {
	return checkListen("HTTP_ADDR", addr, "HTTP_TOKEN", "enqueue and replay launches", token, adminToken)
}

// CheckMetricsListen refuses to serve the worker's metrics (METRICS_ADDR)
// on a non-loopback address without the admin token.
func CheckMetricsListen(addr, adminToken string) error {
	return checkListen("METRICS_ADDR", addr, "HTTP_ADMIN_TOKEN", "read the fleet's metrics", adminToken)
}

// checkListen is CheckListen for the variable addrVar, whose address needs
// tokenVar set (any of tokens) unless it is loopback.
func checkListen(addrVar, addr, tokenVar, risk string, tokens ...string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %q is not host:port: %w", addrVar, addr, err)
	}
	if slices.ContainsFunc(tokens, func(t string) bool { return t != "" }) || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s: refusing to serve on %s without %s: anyone who can reach it could %s", addrVar, addr, tokenVar, risk)
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.opts.Metrics == nil {
		writeError(w, http.StatusNotFound, "not_found", "metrics are not served here", nil)
		return
	}
	s.opts.Metrics.ServeHTTP(w, r)
}

// readyz answers whether Redis takes reads and writes. The answer says
// which check failed but not how (the cause names Redis's address): that is
// logged under the answer's error ID.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.ops.Ready(ctx); err != nil {
		msg := "redis check failed"
		for _, known := range []error{rdb.ErrUnreachable, rdb.ErrAuth, rdb.ErrTooOld, rdb.ErrNotWritable} {
			if errors.Is(err, known) {
				msg = known.Error()
			}
		}
		id := s.logFailure(r, err, "not ready")
		writeErrorID(w, http.StatusServiceUnavailable, "not_ready", msg+" (error ID "+id+" in the server's log)", id)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// apiError is the one error shape of the API.
type apiError struct {
	Code    string              `json:"code"`
	Message string              `json:"message"`
	Errors  []launch.FieldError `json:"errors,omitempty"`
	// ErrorID names the server's log line of an internal error.
	ErrorID string `json:"error_id,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, message string, fields []launch.FieldError) {
	writeJSON(w, status, map[string]apiError{"error": {Code: code, Message: message, Errors: fields}})
}

func writeErrorID(w http.ResponseWriter, status int, code, message, errorID string) {
	writeJSON(w, status, map[string]apiError{"error": {Code: code, Message: message, ErrorID: errorID}})
}

// newErrorID names one logged failure, for a client to quote.
func newErrorID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// logFailure logs err under a new error ID, which it returns.
func (s *Server) logFailure(r *http.Request, err error, msg string) string {
	id := newErrorID()
	s.opts.Logger.Error().Err(err).Str("error_id", id).Str("method", r.Method).Str("path", r.URL.Path).Msg(msg)
	return id
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

// jsonBody answers 415 (and returns false) when a request has a body that
// is not said to be JSON (UTF-8, the only charset JSON has).
func jsonBody(w http.ResponseWriter, r *http.Request) bool {
	if r.ContentLength == 0 {
		return true
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && mt == "application/json" && (params["charset"] == "" || strings.EqualFold(params["charset"], "utf-8")) {
		return true
	}
	writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
		fmt.Sprintf("the body must be JSON, sent with Content-Type: application/json (got %q)", r.Header.Get("Content-Type")), nil)
	return false
}

// readBody reads a JSON request body of at most limit bytes, answering 415
// (and returning false) when it is not said to be JSON and 413 when it is
// larger.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	if !jsonBody(w, r) {
		return nil, false
	}
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body is larger than %d bytes", limit), nil)
		return nil, false
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		// Room for the body and the read that finds its end, so that the
		// buffer never doubles: a batch's bytes are counted against a budget.
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	data := buf.Bytes()
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
