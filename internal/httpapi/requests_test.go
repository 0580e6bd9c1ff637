package httpapi

// What the API does with requests it should not serve as sent (issue 13):
// wrong methods, bad IDs in paths, bodies not sent as JSON, too many big
// batches at once; and what it tells a client about its own failures.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
)

// TestHTTPWrongMethods405: a method a path does not serve is 405 with
// Allow, in the API's error shape (plain text under /ui/), on every path,
// before any token is asked for; the /v1/ and /ui/ fallbacks used to
// answer 404 or the login redirect instead.
func TestHTTPWrongMethods405(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct{ method, target, allow string }{
		{"DELETE", "/v1/launches", "GET, HEAD, POST"},
		{"PUT", "/v1/launches/x", "GET, HEAD"},
		{"GET", "/v1/launches:batch", "POST"},
		{"PATCH", "/v1/deadletters/x", "DELETE, GET, HEAD"},
		{"GET", "/v1/deadletters/x/retry", "POST"},
		{"DELETE", "/v1/deadletters:retry", "POST"},
		{"POST", "/healthz", "GET, HEAD"},
		{"POST", "/metrics", "GET, HEAD"},
		{"PUT", "/ui/deadletters", "GET, HEAD"},
		{"DELETE", "/ui/login", "GET, HEAD, POST"},
		{"POST", "/ui/jobs/x", "GET, HEAD"},
		{"GET", "/ui/deadletters/x/retry", "POST"},
	} {
		r := e.do(c.method, c.target, "", nil)
		if r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d, Allow %q; want 405, Allow %q: %.200s", c.method, c.target, r.code, r.header.Get("Allow"), c.allow, r.body)
			continue
		}
		if !strings.HasPrefix(c.target, "/ui/") {
			wantError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
			apiSpec(t).checkSchema(t, "#/components/schemas/Error", r.body)
		}
	}
	// Every registered path, every other method.
	n := 0
	for _, path := range e.api.mux.paths {
		if e.api.mux.anyVerbs[path] {
			continue
		}
		target := strings.NewReplacer("{id}", "x", "{$}", "").Replace(path)
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if slices.Contains(e.api.mux.methods[path], m) {
				continue
			}
			if r := e.do(m, target, adminToken, nil); r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") == "" {
				t.Errorf("%s %s: %d, Allow %q, want 405", m, target, r.code, r.header.Get("Allow"))
			}
			n++
		}
	}
	if n < 50 {
		t.Errorf("only %d wrong methods tried: the router's paths were not all seen", n)
	}
}

// TestHTTPPathIDs: an {id} that is not an ID (too long, or outside the job
// ID alphabet) is 400 naming the field, on every route that takes one, API
// and UI; a valid one that does not exist is still 404.
func TestHTTPPathIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bad := []string{strings.Repeat("x", launch.MaxIDLen+1), "a%20b", "-x", "%C3%A4", "a%2Fb", "a%00b", "x%3Cscript%3E"}
	var routes []route
	for _, rt := range e.api.routeTable() {
		if strings.Contains(rt.path, "{id}") {
			routes = append(routes, rt)
		}
	}
	if len(routes) != 5 {
		t.Fatalf("%d routes with {id}, want 5", len(routes))
	}
	for _, rt := range routes {
		for _, id := range bad {
			r := e.do(rt.method, strings.ReplaceAll(rt.path, "{id}", id), adminToken, nil)
			wantError(t, r, http.StatusBadRequest, "bad_request", "id")
		}
		wantStatus(t, e.do(rt.method, strings.ReplaceAll(rt.path, "{id}", strings.Repeat("x", launch.MaxIDLen)), adminToken, nil), http.StatusNotFound)
		// The token is checked first: a bad ID tells nothing to a stranger.
		wantStatus(t, e.do(rt.method, strings.ReplaceAll(rt.path, "{id}", "a%20b"), "", nil), http.StatusUnauthorized)
	}

	u := newUIEnv(t)
	sess := u.login()
	csrf := csrfOf(t, u.get("/ui/deadletters", sess).body)
	for _, c := range []struct{ method, path string }{
		{"GET", "/ui/jobs/"}, {"GET", "/ui/deadletters/"}, {"GET", "/ui/batches/"}, {"GET", "/ui/deadletters/%s/delete"},
		{"POST", "/ui/deadletters/%s/retry"}, {"POST", "/ui/deadletters/%s/delete"},
	} {
		path := c.path + "%s"
		if strings.Contains(c.path, "%s") {
			path = c.path
		}
		var form url.Values
		if c.method == "POST" {
			form = url.Values{"csrf": {csrf}, "confirm": {"yes"}}
		}
		r := u.req(c.method, fmt.Sprintf(path, "a%20b"), form, []*http.Cookie{sess}, u.origin()...)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "ID in the address is not valid") {
			t.Errorf("%s %s: %d, want 400 saying the ID is not valid: %.300s", c.method, path, r.status, r.body)
		}
	}
}

// TestHTTPContentType: a body on a JSON route must say it is JSON (415
// otherwise, before anything is read or enqueued); the UI's form posts are
// not JSON routes and keep working (the UI tests post forms throughout).
func TestHTTPContentType(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	job := jobBody(t, "ct-1")
	batch := mustJSON(t, map[string]any{"jobs": []any{launchtest.Map("ct-2")}})
	for _, c := range []struct {
		target string
		body   []byte
	}{{"/v1/launches", job}, {"/v1/launches:batch", batch}, {"/v1/deadletters:retry", []byte(`{"all": true}`)}, {"/v1/deadletters:delete", []byte(`{"all": true}`)}} {
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1", "application/jsonx", "", "multipart/form-data; boundary=x"} {
			r := e.req("POST", c.target, c.body, "Authorization", "Bearer "+adminToken, "Content-Type", ct)
			wantError(t, r, http.StatusUnsupportedMediaType, "unsupported_media_type")
		}
	}
	if _, err := e.Store.Get(ctxT(t), derivedID(t, job)); err == nil {
		t.Fatal("a job sent as text/plain was enqueued")
	}
	for i, ct := range []string{"application/json", "Application/JSON", "application/json; charset=utf-8", "application/json;charset=UTF-8"} {
		j := launchtest.Map("ct-ok")
		j["id"] = fmt.Sprintf("ct-ok-%d", i)
		r := e.req("POST", "/v1/launches", mustJSON(t, j), "Authorization", "Bearer "+prodToken, "Content-Type", ct)
		wantStatus(t, r, http.StatusCreated)
	}
}

// TestHTTPInternalErrorsHidden: with Redis gone, every route that fails
// answers an error ID and no cause (the cause names Redis's address), and
// the log holds the cause under that ID; so does the UI's error page.
func TestHTTPInternalErrorsHidden(t *testing.T) {
	t.Parallel()
	te := testenv.New(t, testenv.FailFast())
	addr := te.Redis.Addr()
	_, port, _ := strings.Cut(addr, ":")
	var logs syncBuffer
	e := newAPI(t, te, func(o *Options) { o.Logger = zerolog.New(&logs) })
	te.Redis.Kill()
	leaks := func(body string) bool {
		return strings.Contains(body, port) || strings.Contains(body, "dial") || strings.Contains(body, "refused")
	}
	for _, rt := range e.api.routeTable() {
		if rt.access == accessPublic || rt.path == "/metrics" {
			continue
		}
		target, body := samplePath(rt.path), sampleRequest(t, rt.method+" "+rt.path)
		if rt.method == "GET" && rt.path == "/v1/launches" {
			target += "?agent_no=1"
		}
		r := e.do(rt.method, target, adminToken, body)
		ae := wantError(t, r, http.StatusInternalServerError, "internal")
		id := ae.Error.ErrorID
		if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(id) || !strings.Contains(ae.Error.Message, id) || leaks(string(r.body)) {
			t.Errorf("%s %s: %s", rt.method, target, r.body)
			continue
		}
		if line := logs.lineWith(id); !strings.Contains(line, port) || !strings.Contains(line, `"error_id":"`+id+`"`) {
			t.Errorf("%s %s: the log has no line with error ID %s and the cause:\n%s", rt.method, target, id, line)
		}
	}
	r := e.do("GET", "/readyz", "", nil)
	ae := wantError(t, r, http.StatusServiceUnavailable, "not_ready")
	if leaks(string(r.body)) || ae.Error.ErrorID == "" || !strings.Contains(ae.Error.Message, "cannot reach") {
		t.Errorf("readyz with Redis down: %s", r.body)
	}
	if line := logs.lineWith(ae.Error.ErrorID); !strings.Contains(line, port) {
		t.Errorf("readyz: the log has no cause under %s:\n%s", ae.Error.ErrorID, line)
	}

	// The UI: an error page with the ID, not the cause.
	ui := httptest.NewServer(e.h)
	defer ui.Close()
	hc := ui.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	login, _ := http.NewRequest("POST", ui.URL+"/ui/login", strings.NewReader(url.Values{"token": {adminToken}}.Encode()))
	login.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	login.Header.Set("Origin", ui.URL)
	resp, err := hc.Do(login)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	page, _ := http.NewRequest("GET", ui.URL+"/ui/deadletters", nil)
	for _, c := range resp.Cookies() {
		page.AddCookie(c)
	}
	resp, err = hc.Do(page)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`error ID ([0-9a-f]{12})`).FindSubmatch(html)
	if resp.StatusCode != http.StatusInternalServerError || m == nil || leaks(string(html)) {
		t.Fatalf("UI page with Redis down: %d\n%.2000s", resp.StatusCode, html)
	}
	if line := logs.lineWith(string(m[1])); !strings.Contains(line, port) {
		t.Errorf("UI: the log has no cause under %s:\n%s", m[1], line)
	}
}

// syncBuffer is a log sink the handlers write to concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lineWith is the log line holding s, or the whole log when none does.
func (b *syncBuffer) lineWith(s string) string {
	all := b.String()
	for _, line := range strings.Split(all, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return all
}

// TestReadyzRefusedWrites: a Redis that answers PING but refuses writes
// (min-replicas-to-write with no replica; out of memory with noeviction is
// the same refusal) is not ready, and /readyz says so without Redis's
// address; once it takes writes again, it is ready.
func TestReadyzRefusedWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	wantStatus(t, e.do("GET", "/readyz", "", nil), http.StatusOK)
	admin := e.Redis.Client()
	defer admin.Close()
	ctx := context.Background()
	for _, set := range [][3]string{{"min-replicas-to-write", "1", "0"}, {"maxmemory", "1", "0"}} {
		if err := admin.ConfigSet(ctx, set[0], set[1]).Err(); err != nil {
			t.Fatal(err)
		}
		r := e.do("GET", "/readyz", "", nil)
		ae := wantError(t, r, http.StatusServiceUnavailable, "not_ready")
		if !strings.Contains(ae.Error.Message, "refuses writes") || strings.Contains(string(r.body), e.Redis.Addr()) {
			t.Errorf("%s %s: %s", set[0], set[1], r.body)
		}
		if err := admin.ConfigSet(ctx, set[0], set[2]).Err(); err != nil {
			t.Fatal(err)
		}
		wantStatus(t, e.do("GET", "/readyz", "", nil), http.StatusOK)
	}
}

// TestBatchConcurrencyBounded: thirty 7 MiB batches at once (what took
// serve to 782 MB) are not all buffered: those beyond the byte budget get
// 429 with Retry-After at once, without reading their bodies; the others
// succeed; and the bytes held never exceed the budget. Then small batches
// beyond the count bound get 429 too. The admitted requests are held
// mid-body by a gate, so which ones are admitted does not depend on timing.
func TestBatchConcurrencyBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	run := func(n int, size int) (admitted, refused int) {
		t.Helper()
		gate := make(chan struct{})
		type result struct {
			r   reply
			err string
		}
		results := make(chan result, n)
		var wg sync.WaitGroup
		spaces := bytes.Repeat([]byte(" "), size) // shared: only the server's copies count
		for i := 0; i < n; i++ {
			job := jobBody(t, fmt.Sprintf("big-%d-%d", size, i))
			head := []byte(`{"jobs": [` + string(job) + `]`)
			pad := spaces[:size-len(head)-1]
			body := io.MultiReader(bytes.NewReader(head), gated{gate}, bytes.NewReader(pad), strings.NewReader("}"))
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := httptest.NewRequestWithContext(ctxT(t), "POST", "/v1/launches:batch", body)
				req.ContentLength = int64(size)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+prodToken)
				w := httptest.NewRecorder()
				e.h.ServeHTTP(w, req)
				results <- result{r: reply{code: w.Code, header: w.Header(), body: w.Body.Bytes()}}
			}()
		}
		// Every request beyond the bounds is refused without waiting for the gate.
		want := min(n, maxBatchRequests, int(batchBodyBudget/int64(size)))
		for refused < n-want {
			var res result
			select {
			case res = <-results:
			case <-time.After(30 * time.Second):
				close(gate)
				t.Fatalf("%d of %d batches refused, want %d: the others are all being received", refused, n, n-want)
			}
			if res.r.code != http.StatusTooManyRequests {
				t.Fatalf("a batch was answered %d before the gate opened: %s", res.r.code, res.r.body)
			}
			if ra := res.r.header.Get("Retry-After"); ra != fmt.Sprint(batchRetryAfter) {
				t.Errorf("429 with Retry-After %q", ra)
			}
			wantError(t, res.r, http.StatusTooManyRequests, "busy")
			refused++
		}
		e.api.batches.mu.Lock()
		held, holders := e.api.batches.bytes, e.api.batches.n
		e.api.batches.mu.Unlock()
		if holders != want || held != int64(want*size) || held > batchBodyBudget {
			t.Errorf("%d requests hold %d bytes; want %d holding %d, within %d", holders, held, want, want*size, batchBodyBudget)
		}
		close(gate)
		wg.Wait()
		close(results)
		for res := range results {
			if res.r.code != http.StatusOK {
				t.Errorf("an admitted batch: %d %s", res.r.code, res.r.body)
			}
			admitted++
		}
		return admitted, refused
	}

	if a, r := run(30, 7<<20); a != int(batchBodyBudget/(7<<20)) || a+r != 30 {
		t.Errorf("30 × 7 MiB: %d admitted, %d refused", a, r)
	}
	if a, r := run(maxBatchRequests+5, 64<<10); a != maxBatchRequests || r != 5 {
		t.Errorf("%d small batches: %d admitted, %d refused", maxBatchRequests+5, a, r)
	}
	if e.api.batches.peak > batchBodyBudget || e.api.batches.n != 0 || e.api.batches.bytes != 0 {
		t.Errorf("budget: peak %d (budget %d), %d still held, %d bytes", e.api.batches.peak, batchBodyBudget, e.api.batches.n, e.api.batches.bytes)
	}

	// Without a Content-Length a batch counts as the largest allowed.
	req := httptest.NewRequestWithContext(ctxT(t), "POST", "/v1/launches:batch", io.NopCloser(bytes.NewReader(mustJSON(t, map[string]any{"jobs": []any{launchtest.Map("chunked")}}))))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+prodToken)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	if w.Code != http.StatusOK || e.api.batches.peak < maxBatchBody {
		t.Errorf("a chunked batch: %d, peak %d", w.Code, e.api.batches.peak)
	}
	var ans batchAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil || ans.Enqueued != 1 {
		t.Errorf("a chunked batch: %s", w.Body.Bytes())
	}
}

// gated reads nothing until its gate closes, then ends.
type gated struct{ gate chan struct{} }

func (g gated) Read([]byte) (int, error) {
	<-g.gate
	return 0, io.EOF
}

// TestBatchBudget: the budget's two bounds, and a release given twice.
func TestBatchBudget(t *testing.T) {
	b := newBudget(2, 100)
	r1, ok1 := b.take(60)
	_, ok2 := b.take(41) // 101 bytes
	r3, ok3 := b.take(40)
	_, ok4 := b.take(0) // a third holder
	if !ok1 || ok2 || !ok3 || ok4 {
		t.Fatalf("takes: %v %v %v %v, want true false true false", ok1, ok2, ok3, ok4)
	}
	r1()
	r1() // no effect
	if b.n != 1 || b.bytes != 40 || b.peak != 100 {
		t.Fatalf("after one release: %d holders, %d bytes, peak %d", b.n, b.bytes, b.peak)
	}
	if _, ok := b.take(60); !ok {
		t.Fatal("60 more bytes refused with 40 held of 100")
	}
	r3()
}
