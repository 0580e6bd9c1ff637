package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/limits"
	"github.com/rcslaunch/rcslaunch/internal/metrics"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
	"github.com/rcslaunch/rcslaunch/ops"
)

const (
	prodToken  = "prod-7f3a9c-token"
	adminToken = "admin-2b8e41-token"
)

// The tests that kill Redis would fill the output with go-redis's
// "failed to dial" lines; the answers they check say all that matters.
func init() { redis.SetLogger(quietDial{}) }

type quietDial struct{}

func (quietDial) Printf(_ context.Context, format string, v ...any) {
	if msg := fmt.Sprintf(format, v...); !strings.Contains(msg, "failed to dial") {
		log.Print(msg)
	}
}

// env is one API server on a test environment.
type env struct {
	*testenv.Env
	t   *testing.T
	h   http.Handler
	api *Server

	mu   sync.Mutex
	seen map[string]bool // "METHOD /documented/{path} STATUS" answered so far
}

// newEnv gives the test an API with the producer token prodToken and the
// admin token adminToken, unless opts change them.
func newEnv(t *testing.T, opts ...func(*Options)) *env {
	t.Helper()
	return newAPI(t, testenv.New(t), opts...)
}

// newDeadEnv gives the test an API whose Redis has been killed; its clients
// give up at once rather than after go-redis's retries.
func newDeadEnv(t *testing.T) *env {
	t.Helper()
	te := testenv.New(t, testenv.FailFast())
	te.Redis.Kill()
	return newAPI(t, te)
}

// newAPI is newEnv on te, which several APIs may share.
func newAPI(t *testing.T, te *testenv.Env, opts ...func(*Options)) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	lim, err := limits.New(te.Store.Redis(), limits.Config{Rate: 10})
	if err != nil {
		t.Fatal(err)
	}
	metrics.RegisterFleet(reg, te.Store, lim, func() []string { return []string{testenv.SID} }, te.Inspector)
	o := Options{Ops: te.Ops, Redis: te.Conn, Token: prodToken, AdminToken: adminToken, Logger: zerolog.Nop(),
		Metrics: metrics.Handler(reg)}
	for _, f := range opts {
		f(&o)
	}
	api := New(o)
	return &env{Env: te, t: t, h: api.Handler(), api: api, seen: map[string]bool{}}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// reply is one answer of the API.
type reply struct {
	code   int
	header http.Header
	body   []byte
}

// obj decodes the answer as a JSON object.
func (r reply) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v\n%s", r.code, err, r.body)
	}
	return m
}

// into decodes the answer into v.
func (r reply) into(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode answer %d: %v\n%s", r.code, err, r.body)
	}
}

// do sends a request with the bearer token (none when empty).
func (e *env) do(method, target, token string, body []byte) reply {
	e.t.Helper()
	var hdr []string
	if token != "" {
		hdr = []string{"Authorization", "Bearer " + token}
	}
	return e.req(method, target, body, hdr...)
}

// fromAddr, as a header name in req's pairs, sets the request's client
// address (RemoteAddr) instead of a header.
const fromAddr = "(RemoteAddr)"

// nextAddr numbers the client addresses req gives requests.
var nextAddr atomic.Uint32

// req sends a request with the given header pairs, and checks the answer
// against the OpenAPI document: a documented route must answer a documented
// status with a body of the documented schema. Each request comes from an
// address of its own unless the pairs name one (fromAddr): the tests of
// other things send wrong tokens freely, and the throttle's tests, which
// count failures per address, name theirs.
func (e *env) req(method, target string, body []byte, hdr ...string) reply {
	e.t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r := httptest.NewRequestWithContext(ctxT(e.t), method, target, rd)
	n := nextAddr.Add(1)
	r.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:40000", byte(n>>16), byte(n>>8), byte(n))
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == fromAddr {
			r.RemoteAddr = hdr[i+1]
			continue
		}
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	res := reply{code: w.Code, header: w.Header(), body: w.Body.Bytes()}
	if key := apiSpec(e.t).checkReply(e.t, method, r.URL, body, res); key != "" {
		e.mu.Lock()
		e.seen[key] = true
		e.mu.Unlock()
	}
	return res
}

// apiErr is the API's error shape, decoded.
type apiErr struct {
	Error struct {
		Code    string              `json:"code"`
		Message string              `json:"message"`
		Errors  []launch.FieldError `json:"errors"`
		ErrorID string              `json:"error_id"`
	} `json:"error"`
}

// wantError fails unless r is an error with status and code; with fields,
// its field errors must name exactly those fields, in order.
func wantError(t *testing.T, r reply, status int, code string, fields ...string) apiErr {
	t.Helper()
	var e apiErr
	if r.code != status {
		t.Fatalf("status %d, want %d: %s", r.code, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	r.into(t, &e)
	if e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("error %+v, want code %s and a message", e.Error, code)
	}
	if fields != nil {
		var got []string
		for _, fe := range e.Error.Errors {
			got = append(got, fe.Field)
			if fe.Reason == "" {
				t.Errorf("field error %q has no reason", fe.Field)
			}
		}
		if !slices.Equal(got, fields) {
			t.Fatalf("field errors %q, want fields %q", e.Error.Errors, fields)
		}
	}
	return e
}

func wantStatus(t *testing.T, r reply, status int) {
	t.Helper()
	if r.code != status {
		t.Fatalf("status %d, want %d: %s", r.code, status, r.body)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jobBody is the fixture job for agentNo, as a request body.
func jobBody(t *testing.T, agentNo string) []byte { return mustJSON(t, launchtest.Map(agentNo)) }

// derivedID is the ID the API gives body.
func derivedID(t *testing.T, body []byte) string {
	t.Helper()
	j, err := launch.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	return launch.IDFor(testenv.SID, j)
}

// deadLetter makes a dead letter with code, dead-lettered at at, the way
// the worker would: record, start, final outcome.
func (e *env) deadLetter(id, code string, at time.Time, uncertain bool) {
	e.t.Helper()
	ctx := ctxT(e.t)
	j, err := launch.Parse(jobBody(e.t, "agent-"+id))
	if err != nil {
		e.t.Fatal(err)
	}
	nj := store.NewJob{ID: id, SID: testenv.SID, AgentNo: j.Launch.AgentNo, Payload: j.Body()}
	if res, err := e.Store.Create(ctx, nj, at.Add(-2*time.Second)); err != nil || res != store.Created {
		e.t.Fatalf("create %s: %s %v", id, res, err)
	}
	if st, _, err := e.Store.Start(ctx, nj, 9, at.Add(-time.Second)); err != nil || st != store.StateRunning {
		e.t.Fatalf("start %s: %s %v", id, st, err)
	}
	o := store.Outcome{Kind: store.FinishDeadLettered, Attempt: store.Attempt{
		N: 1, Outcome: store.AttemptTerminal, Code: code, Message: "failed with " + code, HTTPStatus: 400,
		Uncertain: uncertain, StartedAt: at.Add(-time.Second), FinishedAt: at,
	}, Response: json.RawMessage(`{"code":"` + code + `"}`)}
	if st, err := e.Store.Finish(ctx, id, o, at); err != nil || st != store.StateDeadLettered {
		e.t.Fatalf("finish %s: %s %v", id, st, err)
	}
}

// succeeded makes a job that succeeded, from body.
func (e *env) succeeded(body []byte) string {
	e.t.Helper()
	ctx := ctxT(e.t)
	j, err := launch.Parse(body)
	if err != nil {
		e.t.Fatal(err)
	}
	id := launch.IDFor(testenv.SID, j)
	nj := store.NewJob{ID: id, SID: testenv.SID, AgentNo: j.Launch.AgentNo, Payload: j.Body()}
	now := time.Now()
	if _, err := e.Store.Create(ctx, nj, now); err != nil {
		e.t.Fatal(err)
	}
	if _, _, err := e.Store.Start(ctx, nj, 9, now); err != nil {
		e.t.Fatal(err)
	}
	o := store.Outcome{Kind: store.FinishSucceeded, AgentLaunchID: "launch-" + id,
		Attempt:  store.Attempt{N: 1, Outcome: store.AttemptSucceeded, Code: "RCS902", HTTPStatus: 200, StartedAt: now, FinishedAt: now},
		Response: json.RawMessage(`{"code":"RCS902"}`)}
	if _, err := e.Store.Finish(ctx, id, o, now); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// ---- auth ----

// protectedRoutes are the routes that need a token.
func protectedRoutes(t *testing.T) []route {
	t.Helper()
	var out []route
	for _, rt := range (&Server{}).routeTable() {
		if rt.access != accessPublic {
			out = append(out, rt)
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d protected routes", len(out))
	}
	return out
}

// samplePath fills a route's path parameters.
func samplePath(path string) string { return strings.ReplaceAll(path, "{id}", "some-job") }

func TestAuthRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, rt := range protectedRoutes(t) {
		target := samplePath(rt.path)
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			for _, hdr := range [][]string{
				nil,
				{"Authorization", "Bearer "},
				{"Authorization", "Bearer"},
				{"Authorization", "Basic " + prodToken},
				{"Authorization", prodToken},
			} {
				r := e.req(rt.method, target, []byte(`{}`), hdr...)
				wantError(t, r, http.StatusUnauthorized, "unauthorized")
				if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="rcslaunch"` {
					t.Fatalf("%q: WWW-Authenticate %q", hdr, got)
				}
			}
			for _, tok := range []string{"wrong", prodToken + "x", adminToken[:len(adminToken)-1], " " + adminToken} {
				wantError(t, e.do(rt.method, target, tok, []byte(`{}`)), http.StatusForbidden, "forbidden")
			}
			r := e.do(rt.method, target, prodToken, []byte(`{}`))
			if rt.access == accessOperator {
				wantError(t, r, http.StatusForbidden, "forbidden")
			} else if r.code == http.StatusUnauthorized || r.code == http.StatusForbidden {
				t.Fatalf("producer token refused on a producer route: %d %s", r.code, r.body)
			}
			// The admin token opens every route.
			if r := e.do(rt.method, target, adminToken, []byte(`{}`)); r.code == http.StatusUnauthorized || r.code == http.StatusForbidden {
				t.Fatalf("admin token refused: %d %s", r.code, r.body)
			}
			// The scheme is case-insensitive (RFC 7235 §2.1).
			if r := e.req(rt.method, target, []byte(`{}`), "Authorization", "bearer "+adminToken); r.code == http.StatusUnauthorized || r.code == http.StatusForbidden {
				t.Fatalf("lower-case bearer refused: %d %s", r.code, r.body)
			}
		})
	}
}

// TestAuthEmptyTokens checks that a token left unset never matches, not
// even an empty bearer token, and that without HTTP_ADMIN_TOKEN the producer
// token serves the operator routes too.
func TestAuthEmptyTokens(t *testing.T) {
	t.Parallel()
	te := testenv.New(t)
	noProducer := newAPI(t, te, func(o *Options) { o.Token = "" })
	noneAtAll := newAPI(t, te, func(o *Options) { o.Token, o.AdminToken = "", "" })
	sameToken := newAPI(t, te, func(o *Options) { o.AdminToken = "" })

	for _, rt := range protectedRoutes(t) {
		target := samplePath(rt.path)
		for _, e := range []*env{noProducer, noneAtAll} {
			for _, hdr := range []string{"Bearer ", "Bearer", "Bearer  "} {
				res := e.req(rt.method, target, nil, "Authorization", hdr)
				if res.code != http.StatusUnauthorized && res.code != http.StatusForbidden {
					t.Fatalf("%s %s with %q: %d, want a refusal", rt.method, target, hdr, res.code)
				}
			}
		}
		// Only the admin token opens noProducer's producer routes.
		wantError(t, noProducer.do(rt.method, target, prodToken, nil), http.StatusForbidden, "forbidden")
		if res := noProducer.do(rt.method, target, adminToken, nil); res.code == http.StatusForbidden {
			t.Fatalf("%s %s: admin token refused when HTTP_TOKEN is unset", rt.method, target)
		}
		// With no token at all every /v1/ route is shut.
		wantError(t, noneAtAll.do(rt.method, target, "anything", nil), http.StatusForbidden, "forbidden")
		// Without HTTP_ADMIN_TOKEN, HTTP_TOKEN opens everything; the old
		// admin token is nothing.
		if res := sameToken.do(rt.method, target, prodToken, nil); res.code == http.StatusForbidden || res.code == http.StatusUnauthorized {
			t.Fatalf("%s %s: HTTP_TOKEN refused when HTTP_ADMIN_TOKEN is unset: %s", rt.method, target, res.body)
		}
		wantError(t, sameToken.do(rt.method, target, adminToken, nil), http.StatusForbidden, "forbidden")
	}

	for _, c := range []struct {
		got    string
		tokens []string
		want   bool
	}{
		{"", nil, false},
		{"", []string{""}, false},
		{"", []string{"", ""}, false},
		{"x", []string{"", "x"}, true},
		{"x", []string{"x", ""}, true},
		{"x", []string{"y", "z"}, false},
		{"x", []string{"xx"}, false},
	} {
		if got := TokenMatches(c.got, c.tokens...); got != c.want {
			t.Errorf("TokenMatches(%q, %q) = %v, want %v", c.got, c.tokens, got, c.want)
		}
	}
}

func TestPublicRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do("GET", "/healthz", "", nil)
	wantStatus(t, r, 200)
	if r.obj(t)["status"] != "ok" {
		t.Fatalf("healthz: %s", r.body)
	}
	r = e.do("GET", "/readyz", "", nil)
	wantStatus(t, r, 200)
	if r.obj(t)["status"] != "ready" {
		t.Fatalf("readyz: %s", r.body)
	}
	r = e.do("GET", "/openapi.json", "", nil)
	wantStatus(t, r, 200)
	if !bytes.Equal(r.body, openAPIDoc) || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %s, %.80s…", r.header.Get("Content-Type"), r.body)
	}

	// Redis gone: not ready, but up.
	e.Redis.Kill()
	start := time.Now()
	wantError(t, e.do("GET", "/readyz", "", nil), http.StatusServiceUnavailable, "not_ready")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("readyz took %v with Redis down", d)
	}
	wantStatus(t, e.do("GET", "/healthz", "", nil), 200)
}

func TestUnknownRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct{ method, target, token string }{
		{"GET", "/v1/", ""},
		{"GET", "/v1/nope", adminToken},
		{"POST", "/v1/deadletters:purge", adminToken},
		{"GET", "/v1/launches/a/b", prodToken},
	} {
		r := e.do(c.method, c.target, c.token, nil)
		wantError(t, r, http.StatusNotFound, "not_found")
		apiSpec(t).checkSchema(t, "#/components/schemas/Error", r.body)
	}
}

func TestCheckListen(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		addr, token, admin string
		ok                 bool
	}{
		{"127.0.0.1:8080", "", "", true},
		{"127.0.0.2:8080", "", "", true},
		{"[::1]:8080", "", "", true},
		{"localhost:8080", "", "", true},
		{"0.0.0.0:8080", "", "", false},
		{":8080", "", "", false},
		{"[::]:8080", "", "", false},
		{"10.1.2.3:8080", "", "", false},
		{"example.com:8080", "", "", false},
		{"0.0.0.0:8080", "t", "", true},
		{":8080", "", "a", true},
		{"10.1.2.3:8080", "t", "a", true},
		{"127.0.0.1", "", "", false}, // not host:port
		{"", "t", "", false},
	} {
		err := CheckListen(c.addr, c.token, c.admin)
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, %q, %q) = %v, want ok %v", c.addr, c.token, c.admin, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "HTTP_ADDR") {
			t.Errorf("CheckListen(%q): error %q does not name HTTP_ADDR", c.addr, err)
		}
		// The worker's metrics server: its own variable, the admin token.
		err = CheckMetricsListen(c.addr, c.token+c.admin)
		if (err == nil) != c.ok {
			t.Errorf("CheckMetricsListen(%q, %q) = %v, want ok %v", c.addr, c.token+c.admin, err, c.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "METRICS_ADDR") || strings.Contains(err.Error(), "HTTP_ADDR") ||
			(c.addr != "" && c.addr != "127.0.0.1" && !strings.Contains(err.Error(), "HTTP_ADMIN_TOKEN"))) {
			t.Errorf("CheckMetricsListen(%q): error %q does not name METRICS_ADDR (and HTTP_ADMIN_TOKEN) alone", c.addr, err)
		}
	}
}

// ---- producer routes ----

func TestPostLaunch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := jobBody(t, "48900")
	id := derivedID(t, body)

	r := e.do("POST", "/v1/launches", prodToken, body)
	wantStatus(t, r, http.StatusCreated)
	var ans launchAnswer
	r.into(t, &ans)
	if ans.JobID != id || ans.Status != queue.Enqueued || ans.Job != nil {
		t.Fatalf("answer %s, want job %s enqueued", r.body, id)
	}
	if loc := r.header.Get("Location"); loc != "/v1/launches/"+id {
		t.Fatalf("Location %q", loc)
	}
	if e.Task(id) == nil {
		t.Fatal("no task on the queue")
	}

	// An idempotent repeat: 200, duplicate, with the job's state.
	r = e.do("POST", "/v1/launches", prodToken, body)
	wantStatus(t, r, http.StatusOK)
	r.into(t, &ans)
	if ans.JobID != id || ans.Status != queue.Duplicate || ans.Job == nil || ans.Job.State != store.StateQueued || ans.Job.ID != id {
		t.Fatalf("repeat: %s", r.body)
	}
	// The same job spelled differently (keys reordered, default written
	// out) is the same job.
	m := launchtest.Map("48900")
	m["launch"].(map[string]any)["launch_type"] = "1"
	r = e.do("POST", "/v1/launches", adminToken, mustJSON(t, m))
	wantStatus(t, r, http.StatusOK)
	r.into(t, &ans)
	if ans.JobID != id || ans.Status != queue.Duplicate {
		t.Fatalf("repeat with the default spelled out: %s", r.body)
	}

	// Own IDs: same ID, other payload → 409 naming id.
	m = launchtest.Map("1")
	m["id"] = "order-42"
	wantStatus(t, e.do("POST", "/v1/launches", prodToken, mustJSON(t, m)), http.StatusCreated)
	m["launch"].(map[string]any)["agent_no"] = "2"
	wantError(t, e.do("POST", "/v1/launches", prodToken, mustJSON(t, m)), http.StatusConflict, "conflict", "id")
	rec, err := e.Store.Get(ctxT(t), "order-42")
	if err != nil || rec.AgentNo != "1" {
		t.Fatalf("the conflict changed the record: %+v %v", rec, err)
	}

	// Already launched and dead-lettered jobs are reported, not enqueued.
	done := jobBody(t, "done-1")
	doneID := e.succeeded(done)
	r = e.do("POST", "/v1/launches", prodToken, done)
	wantStatus(t, r, http.StatusOK)
	r.into(t, &ans)
	if ans.Status != queue.AlreadyLaunched || ans.Job == nil || ans.Job.State != store.StateSucceeded || ans.Job.AgentLaunchID != "launch-"+doneID {
		t.Fatalf("already launched: %s", r.body)
	}
	e.deadLetter("dl-1", "RCS904", time.Now(), false)
	dl := launchtest.Map("agent-dl-1")
	dl["id"] = "dl-1"
	r = e.do("POST", "/v1/launches", prodToken, mustJSON(t, dl))
	wantStatus(t, r, http.StatusOK)
	r.into(t, &ans)
	if ans.Status != queue.DeadLettered || ans.Job == nil || ans.Job.State != store.StateDeadLettered || ans.Job.Code != "RCS904" {
		t.Fatalf("dead-lettered: %s", r.body)
	}
	if e.Task("dl-1") != nil || e.Task(doneID) != nil {
		t.Fatal("a finished job was put on the queue")
	}
}

func TestPostLaunchInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	post := func(body []byte) reply { return e.do("POST", "/v1/launches", prodToken, body) }

	m := launchtest.Map("1")
	l := m["launch"].(map[string]any)
	delete(l, "agent_no")
	l["optin_desription"] = "typo"
	l["video_uris"] = []any{"https://ok.example/x", "example.com/x"}
	m["regions"] = []any{map[string]any{"region": "IN", "region_id": "in-1"}}
	m["id"] = "bad id"
	ae := wantError(t, post(mustJSON(t, m)), http.StatusBadRequest, "invalid_job",
		"launch.optin_desription", "id", "launch.agent_no", "launch.video_uris[1]", "regions[0].region_id")
	if !strings.Contains(ae.Error.Errors[0].Reason, `did you mean "optin_description"`) {
		t.Errorf("no suggestion for the typo: %q", ae.Error.Errors[0].Reason)
	}

	wantError(t, post([]byte(`{"launch": `)), http.StatusBadRequest, "invalid_job", "")
	wantError(t, post([]byte(`[]`)), http.StatusBadRequest, "invalid_job", "")
	wantError(t, post([]byte(``)), http.StatusBadRequest, "invalid_job", "")
	wantError(t, post([]byte(`{}`)), http.StatusBadRequest, "invalid_job", "launch")
	wantError(t, post([]byte(`{"launch": 5}`)), http.StatusBadRequest, "invalid_job", "launch")

	m = launchtest.Map("1")
	m["launch"].(map[string]any)["launch_name"] = strings.Repeat("é", launch.MaxTextLen+1)
	wantError(t, post(mustJSON(t, m)), http.StatusBadRequest, "invalid_job", "launch.launch_name")

	// Nothing was stored for any of them.
	if n, _ := e.Redis.Client().DBSize(ctxT(t)).Result(); n != 0 {
		t.Fatalf("%d keys in Redis after invalid posts", n)
	}
}

func TestPostLaunchSizeLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Over the body limit: 413 before anything is parsed.
	big := bytes.Repeat([]byte("a"), maxJobBody+1)
	ae := wantError(t, e.do("POST", "/v1/launches", prodToken, big), http.StatusRequestEntityTooLarge, "too_large")
	if !strings.Contains(ae.Error.Message, strconv.Itoa(maxJobBody)) {
		t.Errorf("message %q does not give the limit", ae.Error.Message)
	}
	// Within the body limit but over a job's: 400 for the job as a whole.
	m := launchtest.Map("1")
	m["launch"].(map[string]any)["launch_name"] = strings.Repeat(" ", launch.MaxJobBytes) + "x"
	b := mustJSON(t, m)
	if len(b) > maxJobBody {
		t.Fatalf("test body too big: %d", len(b))
	}
	wantError(t, e.do("POST", "/v1/launches", prodToken, b), http.StatusBadRequest, "invalid_job", "")
}

func TestGetLaunch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	wantError(t, e.do("GET", "/v1/launches/unknown-job", prodToken, nil), http.StatusNotFound, "not_found")

	body := jobBody(t, "48900")
	id := derivedID(t, body)
	wantStatus(t, e.do("POST", "/v1/launches", prodToken, body), http.StatusCreated)
	r := e.do("GET", "/v1/launches/"+id, prodToken, nil)
	wantStatus(t, r, http.StatusOK)
	var rec store.Record
	r.into(t, &rec)
	j, _ := launch.Parse(body)
	if rec.ID != id || rec.State != store.StateQueued || rec.SID != testenv.SID || rec.AgentNo != "48900" ||
		rec.Attempts != 0 || string(rec.Payload) != string(j.Body()) || rec.EnqueuedAt.IsZero() {
		t.Fatalf("record %s", r.body)
	}
	// A dead letter is a job too, with its outcome.
	e.deadLetter("dl-1", "RCS601", time.Now(), true)
	r = e.do("GET", "/v1/launches/dl-1", adminToken, nil)
	wantStatus(t, r, http.StatusOK)
	r.into(t, &rec)
	if rec.State != store.StateDeadLettered || rec.Code != "RCS601" || !rec.Uncertain || len(rec.History) != 1 || rec.FinishedAt.IsZero() {
		t.Fatalf("dead letter as a job: %s", r.body)
	}
}

func TestListLaunchesOfAgent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ids []string
	for _, b := range [][]byte{jobBody(t, "48910"), jobBody(t, "48911"), jobBody(t, "48912")} {
		ids = append(ids, derivedID(t, b))
		wantStatus(t, e.do("POST", "/v1/launches", prodToken, b), http.StatusCreated)
	}
	var got struct{ Jobs []store.Record }
	r := e.do("GET", "/v1/launches?agent_no=48911", prodToken, nil)
	wantStatus(t, r, http.StatusOK)
	r.into(t, &got)
	if len(got.Jobs) != 1 || got.Jobs[0].ID != ids[1] || got.Jobs[0].AgentNo != "48911" {
		t.Fatalf("jobs of agent 48911: %s", r.body)
	}
	r = e.do("GET", "/v1/launches?agent_no=nobody", prodToken, nil)
	if wantStatus(t, r, http.StatusOK); !strings.Contains(string(r.body), `"jobs":[]`) {
		t.Errorf("jobs of an unknown agent: %q", r.body)
	}
	wantError(t, e.do("GET", "/v1/launches", prodToken, nil), http.StatusBadRequest, "bad_request")
}

func TestPostBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := launchtest.Map("a"), launchtest.Map("b")
	c := launchtest.Map("c")
	c["id"] = "own-c"
	c2 := launchtest.Map("c-other")
	c2["id"] = "own-c"
	done := jobBody(t, "done")
	doneID := e.succeeded(done)
	var doneMap map[string]any
	_ = json.Unmarshal(done, &doneMap)

	req := mustJSON(t, map[string]any{"jobs": []any{a, b, a, c, c2, doneMap}})
	r := e.do("POST", "/v1/launches:batch", prodToken, req)
	wantStatus(t, r, http.StatusOK)
	var ans batchAnswer
	r.into(t, &ans)
	ida, idb := derivedID(t, mustJSON(t, a)), derivedID(t, mustJSON(t, b))
	if !strings.HasPrefix(ans.BatchID, "b_") {
		t.Fatalf("batch_id %q", ans.BatchID)
	}
	want := batchAnswer{BatchID: ans.BatchID, Enqueued: 3, Duplicate: 1, AlreadyLaunched: 1, Conflict: 1, Jobs: []launchAnswer{
		{JobID: ida, Status: queue.Enqueued}, {JobID: idb, Status: queue.Enqueued}, {JobID: ida, Status: queue.Duplicate},
		{JobID: "own-c", Status: queue.Enqueued}, {JobID: "own-c", Status: queue.Conflict}, {JobID: doneID, Status: queue.AlreadyLaunched},
	}}
	if !reflect.DeepEqual(ans, want) {
		t.Fatalf("batch answer\n%+v\nwant\n%+v", ans, want)
	}
	// The batch counts the jobs it enqueued, is closed, and is named "api".
	var st store.Batch
	r = e.do("GET", "/v1/batches/"+ans.BatchID, prodToken, nil)
	wantStatus(t, r, http.StatusOK)
	r.into(t, &st)
	if st.ID != ans.BatchID || st.Name != DefaultBatchName || st.Total != 3 || st.Queued != 3 || st.FinishedAt != nil {
		t.Fatalf("batch status: %s", r.body)
	}
	if b, err := e.Store.GetBatch(ctxT(t), ans.BatchID); err != nil || !b.Closed {
		t.Fatalf("batch not closed after the request: %+v %v", b, err)
	}
	first := ans.BatchID
	// The same batch again: nothing new; a named batch of none.
	var named map[string]any
	_ = json.Unmarshal(req, &named)
	named["name"] = "retry of the morning's run"
	r = e.do("POST", "/v1/launches:batch", adminToken, mustJSON(t, named))
	wantStatus(t, r, http.StatusOK)
	r.into(t, &ans)
	if ans.Enqueued != 0 || ans.Duplicate != 4 || ans.AlreadyLaunched != 1 || ans.Conflict != 1 || ans.BatchID == first {
		t.Fatalf("batch repeat: %s", r.body)
	}
	r = e.do("GET", "/v1/batches/"+ans.BatchID, prodToken, nil)
	wantStatus(t, r, http.StatusOK)
	r.into(t, &st)
	if st.Name != "retry of the morning's run" || st.Total != 0 || st.FinishedAt == nil {
		t.Fatalf("a batch of known jobs only: %s", r.body)
	}
}

// TestBatches: GET /v1/batches pages newest first; GET /v1/batches/{id}
// is the status of `batch status --json`; names are checked.
func TestBatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var made []string
	for i := range 5 {
		r := e.do("POST", "/v1/launches:batch", prodToken, mustJSON(t, map[string]any{
			"name": fmt.Sprintf("run %d", i), "jobs": []any{launchtest.Map(fmt.Sprintf("batches-%d", i))}}))
		wantStatus(t, r, http.StatusOK)
		var ans batchAnswer
		r.into(t, &ans)
		made = append(made, ans.BatchID)
		time.Sleep(2 * time.Millisecond) // distinct creation times
	}
	slices.Reverse(made)
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		q := "/v1/batches?limit=2"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		r := e.do("GET", q, prodToken, nil)
		wantStatus(t, r, http.StatusOK)
		var p batchPage
		r.into(t, &p)
		if p.Total != 5 {
			t.Fatalf("total %d", p.Total)
		}
		for _, b := range p.Batches {
			got = append(got, b.ID)
			if b.Total != 1 || b.Queued != 1 || !strings.HasPrefix(b.Name, "run ") {
				t.Errorf("batch %+v", b)
			}
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, made) {
		t.Fatalf("pages list %v, want newest first %v", got, made)
	}
	// The answer has exactly the contract's members, finished_at null.
	r := e.do("GET", "/v1/batches/"+made[0], adminToken, nil)
	wantStatus(t, r, http.StatusOK)
	m := r.obj(t)
	if keys := sortedKeys(m); !slices.Equal(keys, []string{"batch_id", "created_at", "dead_lettered", "dead_lettered_by_code",
		"finished_at", "launch_states", "name", "queued", "retrying", "running", "succeeded", "total"}) || m["finished_at"] != nil {
		t.Fatalf("batch status members: %s", r.body)
	}
	wantError(t, e.do("GET", "/v1/batches/no-such-batch", prodToken, nil), http.StatusNotFound, "not_found")
	wantError(t, e.do("GET", "/v1/batches?limit=501", prodToken, nil), http.StatusBadRequest, "bad_request", "limit")
	wantError(t, e.do("GET", "/v1/batches?cursor=x", prodToken, nil), http.StatusBadRequest, "bad_request", "cursor")
	if r := e.do("GET", "/v1/batches?cursor=99", prodToken, nil); r.code != http.StatusOK || !strings.Contains(string(r.body), `"batches":[]`) {
		t.Fatalf("past the last page: %d %s", r.code, r.body)
	}
	for _, name := range []string{strings.Repeat("n", MaxBatchName+1), "a\nb", "tab\there"} {
		body := mustJSON(t, map[string]any{"name": name, "jobs": []any{launchtest.Map("named")}})
		wantError(t, e.do("POST", "/v1/launches:batch", prodToken, body), http.StatusBadRequest, "bad_request", "name")
	}
	if _, err := e.Store.Get(ctxT(t), derivedID(t, jobBody(t, "named"))); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a job of a batch with a bad name was stored: %v", err)
	}
	wantStatus(t, e.do("POST", "/v1/launches:batch", prodToken, mustJSON(t, map[string]any{
		"name": strings.Repeat("ü", MaxBatchName), "jobs": []any{launchtest.Map("named")}})), http.StatusOK)
}

func TestPostBatchInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	post := func(body string) reply { return e.do("POST", "/v1/launches:batch", prodToken, []byte(body)) }

	good := launchtest.Map("good")
	bad1 := launchtest.Map("1")
	delete(bad1["launch"].(map[string]any), "agent_no")
	bad2 := launchtest.Map("2")
	bad2["regions"] = []any{map[string]any{"region": "IN", "region_id": "nope"}}
	bad2["launch"].(map[string]any)["screenshot_uris"] = []any{"ftp://x"}
	req := mustJSON(t, map[string]any{"jobs": []any{good, bad1, bad2, nil, 7}})
	wantError(t, post(string(req)), http.StatusBadRequest, "invalid_job",
		"jobs[1].launch.agent_no", "jobs[2].launch.screenshot_uris[0]", "jobs[2].regions[0].region_id", "jobs[3]", "jobs[4]")
	// Validated together: the good job was not enqueued.
	if _, err := e.Store.Get(ctxT(t), derivedID(t, mustJSON(t, good))); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the good job of an invalid batch was stored: %v", err)
	}

	wantError(t, post(`{"jobs": []}`), http.StatusBadRequest, "bad_request", "jobs")
	wantError(t, post(`{"jobs": null}`), http.StatusBadRequest, "bad_request", "jobs")
	wantError(t, post(`{}`), http.StatusBadRequest, "bad_request", "jobs")
	wantError(t, post(`{"job": []}`), http.StatusBadRequest, "bad_request")
	wantError(t, post(`[]`), http.StatusBadRequest, "bad_request")
	wantError(t, post(`{"jobs": {}}`), http.StatusBadRequest, "bad_request")
	wantError(t, post(`not json`), http.StatusBadRequest, "bad_request")
	// A second object after the first is not silently dropped.
	one := string(mustJSON(t, map[string]any{"jobs": []any{good}}))
	wantError(t, post(one+one), http.StatusBadRequest, "bad_request")
	wantError(t, post(one+" x"), http.StatusBadRequest, "bad_request")
	if n, _ := e.Redis.Client().DBSize(ctxT(t)).Result(); n != 0 {
		t.Fatalf("%d keys in Redis after invalid batches", n)
	}
	// White space after the object is fine.
	wantStatus(t, post(one+"\n\t "), http.StatusOK)
}

func TestPostBatchLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Over the body limit.
	big := append([]byte(`{"jobs": ["`), bytes.Repeat([]byte("a"), maxBatchBody)...)
	wantError(t, e.do("POST", "/v1/launches:batch", prodToken, big), http.StatusRequestEntityTooLarge, "too_large")

	// One job too many: refused whole.
	jobs := make([]any, MaxBatchJobs+1)
	for i := range jobs {
		jobs[i] = launchtest.Map(fmt.Sprintf("agent-%d", i))
	}
	wantError(t, e.do("POST", "/v1/launches:batch", prodToken, mustJSON(t, map[string]any{"jobs": jobs})),
		http.StatusRequestEntityTooLarge, "too_large", "jobs")
	if n, _ := e.Redis.Client().DBSize(ctxT(t)).Result(); n != 0 {
		t.Fatalf("%d keys in Redis after refused batches", n)
	}
	// Exactly the limit is fine.
	r := e.do("POST", "/v1/launches:batch", prodToken, mustJSON(t, map[string]any{"jobs": jobs[:MaxBatchJobs]}))
	wantStatus(t, r, http.StatusOK)
	var ans batchAnswer
	r.into(t, &ans)
	if ans.Enqueued != MaxBatchJobs || len(ans.Jobs) != MaxBatchJobs {
		t.Fatalf("enqueued %d of %d", ans.Enqueued, MaxBatchJobs)
	}
}

// ---- operator routes ----

// letters makes n dead letters, dl-000 the newest, one minute apart and
// the newest 10 s old; every third has code RCS904, the others RCS502.
func (e *env) letters(n int) {
	e.t.Helper()
	base := time.Now().Add(-10 * time.Second)
	for i := 0; i < n; i++ {
		code := "RCS502"
		if i%3 == 0 {
			code = "RCS904"
		}
		e.deadLetter(fmt.Sprintf("dl-%03d", i), code, base.Add(-time.Duration(i)*time.Minute), false)
	}
}

// page reads one page of dead letters.
func (e *env) page(query string) deadLetterPage {
	e.t.Helper()
	r := e.do("GET", "/v1/deadletters"+query, adminToken, nil)
	wantStatus(e.t, r, http.StatusOK)
	var p deadLetterPage
	r.into(e.t, &p)
	return p
}

// readAll follows next_cursor from query and returns the IDs in order, the
// number of pages and the totals seen.
func (e *env) readAll(query string) (ids []string, pages int, totals []int64) {
	e.t.Helper()
	sep := "?"
	if query != "" {
		sep = "&"
	}
	p := e.page(query)
	for {
		pages++
		totals = append(totals, p.Total)
		for _, rec := range p.DeadLetters {
			ids = append(ids, rec.ID)
		}
		if p.NextCursor == "" {
			return
		}
		if pages > 100 {
			e.t.Fatal("more than 100 pages")
		}
		p = e.page(query + sep + "cursor=" + p.NextCursor)
	}
}

func TestDeadLettersPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 120
	e.letters(n)

	ids, pages, totals := e.readAll("?limit=50")
	if pages != 3 {
		t.Fatalf("%d pages, want 3", pages)
	}
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("dl-%03d", i)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("ids over the pages (newest first, no overlap, none missing):\n%q\nwant\n%q", ids, want)
	}
	for _, tot := range totals {
		if tot != n {
			t.Fatalf("totals %v, want %d on every page", totals, n)
		}
	}
	p := e.page("?limit=50")
	if len(p.DeadLetters) != 50 || p.NextCursor == "" {
		t.Fatalf("first page: %d letters, cursor %q", len(p.DeadLetters), p.NextCursor)
	}
	last := e.page("?limit=50&cursor=100")
	if len(last.DeadLetters) != 20 || last.NextCursor != "" {
		t.Fatalf("last page: %d letters, cursor %q", len(last.DeadLetters), last.NextCursor)
	}
	rec := p.DeadLetters[0]
	if rec.State != store.StateDeadLettered || rec.Code != "RCS904" || len(rec.History) != 1 || rec.FinishedAt.IsZero() {
		t.Fatalf("a listed letter: %+v", rec)
	}

	// Default page size; a page exactly at the end has no cursor.
	if p := e.page(""); len(p.DeadLetters) != defaultPageSize || p.NextCursor != strconv.Itoa(defaultPageSize) {
		t.Fatalf("default page: %d, cursor %q", len(p.DeadLetters), p.NextCursor)
	}
	if p := e.page("?limit=120"); len(p.DeadLetters) != n || p.NextCursor != "" {
		t.Fatalf("limit=n: %d, cursor %q", len(p.DeadLetters), p.NextCursor)
	}
	if p := e.page("?cursor=1000"); len(p.DeadLetters) != 0 || p.NextCursor != "" || p.Total != n || p.DeadLetters == nil {
		t.Fatalf("past the end: %+v", p)
	}

	// By code: 40 of them, across pages of 15.
	ids, pages, totals = e.readAll("?code=RCS904&limit=15")
	if len(ids) != 40 || pages != 3 || totals[0] != 40 {
		t.Fatalf("code filter: %d letters in %d pages, totals %v", len(ids), pages, totals)
	}
	for i, id := range ids {
		if id != fmt.Sprintf("dl-%03d", 3*i) {
			t.Fatalf("code filter: %q", ids)
		}
	}
	// Since 30 minutes: dl-000 … dl-029.
	ids, _, totals = e.readAll("?since=30m&limit=7")
	if !slices.Equal(ids, want[:30]) || totals[0] != 30 {
		t.Fatalf("since filter: %q, totals %v", ids, totals)
	}
	// Both.
	ids, _, totals = e.readAll("?since=30m&code=RCS904")
	if len(ids) != 10 || totals[0] != 10 || ids[9] != "dl-027" {
		t.Fatalf("code and since: %q, totals %v", ids, totals)
	}
	if p := e.page("?code=RCS999"); len(p.DeadLetters) != 0 || p.Total != 0 {
		t.Fatalf("unknown code: %+v", p)
	}

	// Bad queries name their field.
	for q, fields := range map[string][]string{
		"?limit=0":                         {"limit"},
		"?limit=501":                       {"limit"},
		"?limit=ten":                       {"limit"},
		"?limit=-5":                        {"limit"},
		"?cursor=abc":                      {"cursor"},
		"?cursor=-1":                       {"cursor"},
		"?since=yesterday":                 {"since"},
		"?since=-5m":                       {"since"},
		"?since=0s":                        {"since"},
		"?since=5":                         {"since"},
		"?since=x&limit=0&cursor=no":       {"since", "limit", "cursor"},
		"?code=RCS502&since=1d&limit=1000": {"since", "limit"},
	} {
		wantError(t, e.do("GET", "/v1/deadletters"+q, adminToken, nil), http.StatusBadRequest, "bad_request", fields...)
	}
}

func TestDeadLetterOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := time.Now()
	e.deadLetter("dl-a", "RCS904", now, false)
	e.deadLetter("dl-b", "RCS904", now.Add(-time.Minute), false)
	e.deadLetter("dl-u", "TIMEOUT", now.Add(-2*time.Minute), true)
	queued := jobBody(t, "queued")
	queuedID := derivedID(t, queued)
	wantStatus(t, e.do("POST", "/v1/launches", prodToken, queued), http.StatusCreated)

	// Show.
	wantError(t, e.do("GET", "/v1/deadletters/nope", adminToken, nil), http.StatusNotFound, "not_found")
	wantError(t, e.do("GET", "/v1/deadletters/"+queuedID, adminToken, nil), http.StatusNotFound, "not_found")
	r := e.do("GET", "/v1/deadletters/dl-a", adminToken, nil)
	wantStatus(t, r, http.StatusOK)
	var rec store.Record
	r.into(t, &rec)
	if rec.ID != "dl-a" || rec.State != store.StateDeadLettered || rec.Code != "RCS904" || rec.Message == "" ||
		rec.Attempts != 1 || len(rec.History) != 1 || rec.History[0].Code != "RCS904" || len(rec.Payload) == 0 || string(rec.Response) != `{"code":"RCS904"}` {
		t.Fatalf("dead letter: %s", r.body)
	}

	// Retry.
	wantError(t, e.do("POST", "/v1/deadletters/nope/retry", adminToken, nil), http.StatusNotFound, "not_found")
	wantError(t, e.do("POST", "/v1/deadletters/"+queuedID+"/retry", adminToken, nil), http.StatusConflict, "not_dead_lettered")
	wantError(t, e.do("POST", "/v1/deadletters/dl-u/retry", adminToken, nil), http.StatusConflict, "uncertain")
	wantError(t, e.do("POST", "/v1/deadletters/dl-u/retry?include_uncertain=false", adminToken, nil), http.StatusConflict, "uncertain")
	if e.Task("dl-u") != nil {
		t.Fatal("an uncertain letter was retried")
	}
	r = e.do("POST", "/v1/deadletters/dl-a/retry", adminToken, nil)
	wantStatus(t, r, http.StatusOK)
	if got := r.obj(t); got["job_id"] != "dl-a" || got["result"] != string(ops.Retried) {
		t.Fatalf("retry: %s", r.body)
	}
	if e.Task("dl-a") == nil {
		t.Fatal("the retried letter has no task")
	}
	wantError(t, e.do("GET", "/v1/deadletters/dl-a", adminToken, nil), http.StatusNotFound, "not_found")
	r = e.do("GET", "/v1/launches/dl-a", prodToken, nil)
	wantStatus(t, r, http.StatusOK)
	r.into(t, &rec)
	if rec.State != store.StateQueued || rec.Attempts != 0 {
		t.Fatalf("retried job: %s", r.body)
	}
	wantError(t, e.do("POST", "/v1/deadletters/dl-a/retry", adminToken, nil), http.StatusConflict, "not_dead_lettered")
	r = e.do("POST", "/v1/deadletters/dl-u/retry?include_uncertain=true", adminToken, nil)
	wantStatus(t, r, http.StatusOK)
	if e.Task("dl-u") == nil {
		t.Fatal("the uncertain letter retried on purpose has no task")
	}

	// Delete.
	wantError(t, e.do("DELETE", "/v1/deadletters/nope", adminToken, nil), http.StatusNotFound, "not_found")
	wantError(t, e.do("DELETE", "/v1/deadletters/dl-a", adminToken, nil), http.StatusConflict, "not_dead_lettered")
	r = e.do("DELETE", "/v1/deadletters/dl-b", adminToken, nil)
	wantStatus(t, r, http.StatusOK)
	if got := r.obj(t); got["job_id"] != "dl-b" || got["result"] != string(ops.Deleted) {
		t.Fatalf("delete: %s", r.body)
	}
	wantError(t, e.do("GET", "/v1/launches/dl-b", adminToken, nil), http.StatusNotFound, "not_found")
	wantError(t, e.do("DELETE", "/v1/deadletters/dl-b", adminToken, nil), http.StatusNotFound, "not_found")
	if p := e.page(""); p.Total != 0 || len(p.DeadLetters) != 0 {
		t.Fatalf("letters left: %+v", p)
	}
}

func TestDeadLettersBulk(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := time.Now()
	for i, c := range []struct {
		code      string
		uncertain bool
	}{{"RCS502", false}, {"RCS502", false}, {"RCS502", true}, {"RCS904", false}, {"RCS904", false}, {"RCS601", true}} {
		e.deadLetter(fmt.Sprintf("dl-%d", i), c.code, now.Add(-time.Duration(i)*time.Second), c.uncertain)
	}
	tally := func(path, body string) map[string]int {
		t.Helper()
		r := e.do("POST", path, adminToken, []byte(body))
		wantStatus(t, r, http.StatusOK)
		var out struct{ Results map[string]int }
		r.into(t, &out)
		return out.Results
	}
	if got := tally("/v1/deadletters:retry", `{"code": "RCS502"}`); !reflect.DeepEqual(got, map[string]int{"retried": 2, "uncertain": 1}) {
		t.Fatalf("retry by code: %v", got)
	}
	if e.Task("dl-0") == nil || e.Task("dl-1") == nil || e.Task("dl-2") != nil || e.Task("dl-3") != nil {
		t.Fatal("retry by code: wrong tasks on the queue")
	}
	if got := tally("/v1/deadletters:delete", `{"code": "RCS904"}`); !reflect.DeepEqual(got, map[string]int{"deleted": 2}) {
		t.Fatalf("delete by code: %v", got)
	}
	if got := tally("/v1/deadletters:retry", `{"all": true}`); !reflect.DeepEqual(got, map[string]int{"uncertain": 2}) {
		t.Fatalf("retry all: %v", got)
	}
	if got := tally("/v1/deadletters:retry", `{"code": "RCS601", "include_uncertain": true}`); !reflect.DeepEqual(got, map[string]int{"retried": 1}) {
		t.Fatalf("retry by code with uncertain: %v", got)
	}
	if got := tally("/v1/deadletters:delete", `{"all": true, "include_uncertain": true}`); !reflect.DeepEqual(got, map[string]int{"deleted": 1}) {
		t.Fatalf("delete all: %v", got)
	}
	if got := tally("/v1/deadletters:delete", `{"all": true}`); len(got) != 0 {
		t.Fatalf("delete all of none: %v", got)
	}
	if p := e.page(""); p.Total != 0 {
		t.Fatalf("letters left: %+v", p)
	}

	// Selections: exactly one of all and code.
	for _, path := range []string{"/v1/deadletters:retry", "/v1/deadletters:delete"} {
		for _, body := range []string{`{}`, `{"all": false}`, `{"all": true, "code": "RCS502"}`, `{"code": ""}`, `{"include_uncertain": true}`} {
			wantError(t, e.do("POST", path, adminToken, []byte(body)), http.StatusBadRequest, "bad_request", "all")
		}
		for _, body := range []string{``, `null x`, `[]`, `{"all": "yes"}`, `{"al": true}`, `{"all": true} {"all": true}`, `{"all": true} x`} {
			wantError(t, e.do("POST", path, adminToken, []byte(body)), http.StatusBadRequest, "bad_request")
		}
		big := append([]byte(`{"code": "`), bytes.Repeat([]byte("a"), maxAdminBody)...)
		wantError(t, e.do("POST", path, adminToken, big), http.StatusRequestEntityTooLarge, "too_large")
	}
}

// TestDeadLettersBulkRateAndCase: "rate" paces a bulk route and is checked;
// codes are found in any case, in the list and the bulk routes.
func TestDeadLettersBulkRateAndCase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := time.Now()
	for i := range 4 {
		e.deadLetter(fmt.Sprintf("dl-%d", i), "RCS502", now.Add(-time.Duration(i)*time.Second), false)
	}
	for _, path := range []string{"/v1/deadletters:retry", "/v1/deadletters:delete"} {
		for _, body := range []string{`{"all": true, "rate": 0}`, `{"all": true, "rate": -2.5}`} {
			wantError(t, e.do("POST", path, adminToken, []byte(body)), http.StatusBadRequest, "bad_request", "rate")
		}
		wantError(t, e.do("POST", path, adminToken, []byte(`{"all": true, "rate": "fast"}`)), http.StatusBadRequest, "bad_request")
		wantError(t, e.do("POST", path, adminToken, []byte(`{"code": "  ", "rate": 0}`)), http.StatusBadRequest, "bad_request", "all", "rate")
	}
	if p := e.page("?code=rcs502"); p.Total != 4 {
		t.Fatalf("list by lower-case code: %+v", p)
	}
	const rate = 10.0
	start := time.Now()
	r := e.do("POST", "/v1/deadletters:retry", adminToken, []byte(`{"code": "rcs502", "rate": 10}`))
	took := time.Since(start)
	wantStatus(t, r, http.StatusOK)
	var out struct{ Results map[string]int }
	r.into(t, &out)
	if !reflect.DeepEqual(out.Results, map[string]int{"retried": 4}) {
		t.Fatalf("paced retry by lower-case code: %s", r.body)
	}
	// Four letters at 10/s: the first at once, three waits of 100 ms.
	if least := time.Duration(3/rate*float64(time.Second)) - 20*time.Millisecond; took < least {
		t.Errorf("paced retry of 4 at %v/s answered after %v, want at least %v", rate, took, least)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do("GET", "/v1/stats", adminToken, nil)
	wantStatus(t, r, http.StatusOK)
	if got := r.obj(t); got["queue"] != nil || got["dead_letters"] != 0.0 || got["results"] != 0.0 {
		t.Fatalf("empty stats: %s", r.body)
	}

	wantStatus(t, e.do("POST", "/v1/launches", prodToken, jobBody(t, "1")), http.StatusCreated)
	wantStatus(t, e.do("POST", "/v1/launches", prodToken, jobBody(t, "2")), http.StatusCreated)
	e.deadLetter("dl-1", "RCS904", time.Now(), false)
	e.deadLetter("dl-2", "RCS904", time.Now(), false)
	e.succeeded(jobBody(t, "3"))
	r = e.do("GET", "/v1/stats", adminToken, nil)
	wantStatus(t, r, http.StatusOK)
	var st struct {
		Queue struct {
			Pending, Active, Scheduled, Retry, Archived int
			Paused                                      bool
		} `json:"queue"`
		DeadLetters int64 `json:"dead_letters"`
		Results     int64 `json:"results"`
	}
	r.into(t, &st)
	if st.Queue.Pending != 2 || st.Queue.Active != 0 || st.Queue.Paused || st.DeadLetters != 2 || st.Results != 3 {
		t.Fatalf("stats: %s", r.body)
	}
}

// TestRedisDown checks that every route that needs Redis answers 500 in the
// error shape when it is gone.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	e := newDeadEnv(t)
	for _, rt := range protectedRoutes(t) {
		var body []byte
		switch rt.path {
		case "/v1/launches":
			body = jobBody(t, "1")
		case "/v1/launches:batch":
			body = mustJSON(t, map[string]any{"jobs": []any{launchtest.Map("1")}})
		case "/v1/deadletters:retry", "/v1/deadletters:delete":
			body = []byte(`{"all": true}`)
		case "/metrics":
			// A scrape still answers, and says that it could not read Redis.
			rep := e.do(rt.method, rt.path, adminToken, nil)
			wantStatus(t, rep, http.StatusOK)
			if !strings.Contains(string(rep.body), "rcslaunch_scrape_error 1") {
				t.Errorf("metrics with Redis down do not report the scrape error:\n%s", rep.body)
			}
			continue
		}
		target := samplePath(rt.path)
		if rt.method == "GET" && rt.path == "/v1/launches" {
			target += "?agent_no=1" // required
		}
		wantError(t, e.do(rt.method, target, adminToken, body), http.StatusInternalServerError, "internal")
	}
	wantError(t, e.do("GET", "/readyz", "", nil), http.StatusServiceUnavailable, "not_ready")
	wantStatus(t, e.do("GET", "/healthz", "", nil), http.StatusOK)
}

// TestAPILaunchFollow reads followed launches through the API: a job's
// launch state and follow-up, a batch's launch-state counts.
func TestAPILaunchFollow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	at := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	batch := store.NewBatchID(at)
	if err := e.Store.CreateBatch(ctxT(t), batch, "followed", at); err != nil {
		t.Fatal(err)
	}
	followedJob(t, e.Store, batch, "f-1", "801", at, false, pollPending, pollLaunched)
	followedJob(t, e.Store, batch, "f-2", "802", at, false, pollTimeout)
	followedJob(t, e.Store, batch, "f-3", "803", at, true, pollPending)
	e.Settle(store.NewJob{ID: "plain", SID: testenv.SID, AgentNo: "804", Payload: launchtest.Job("804").Body(), Batch: batch},
		store.FinishSucceeded, "RCS902", false, at)

	var recs = map[string]store.Record{}
	for _, id := range []string{"f-1", "f-2", "f-3", "plain"} {
		r := e.do("GET", "/v1/launches/"+id, prodToken, nil)
		wantStatus(t, r, http.StatusOK)
		var rec store.Record
		r.into(t, &rec)
		recs[id] = rec
	}
	f1, f2, f3 := recs["f-1"], recs["f-2"], recs["f-3"]
	if f1.LaunchState != store.LaunchLaunched || f1.Launch == nil || f1.Launch.Polls != 2 || f1.Launch.Ended != store.FollowFinal ||
		!f1.Launch.NextPollAt.IsZero() || !f1.Launch.StateAt.Equal(at.Add(2*time.Minute)) || !f1.Launch.FollowedAt.Equal(at) {
		t.Errorf("f-1: %s %+v", f1.LaunchState, f1.Launch)
	}
	if f2.LaunchState != store.LaunchPending || f2.Launch == nil || f2.Launch.Code != "TIMEOUT" || f2.Launch.Ended != "" ||
		!f2.Launch.NextPollAt.Equal(at.Add(time.Minute+time.Hour)) {
		t.Errorf("f-2: %s %+v", f2.LaunchState, f2.Launch)
	}
	if f3.LaunchState != store.LaunchPending || f3.Launch == nil || f3.Launch.Ended != store.FollowExpired {
		t.Errorf("f-3: %s %+v", f3.LaunchState, f3.Launch)
	}
	if p := recs["plain"]; p.LaunchState != "" || p.Launch != nil {
		t.Errorf("a success not followed: %s %+v", p.LaunchState, p.Launch)
	}

	var b struct {
		LaunchStates map[string]int64 `json:"launch_states"`
	}
	e.do("GET", "/v1/batches/"+batch, prodToken, nil).into(t, &b)
	if want := map[string]int64{"pending": 2, "launched": 1, "rejected": 0, "suspended": 0, "unknown": 0}; fmt.Sprint(b.LaunchStates) != fmt.Sprint(want) {
		t.Errorf("launch_states %v, want %v", b.LaunchStates, want)
	}
}
