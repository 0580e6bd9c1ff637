package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
)

const (
	uiTestAdmin = "ui-admin-token-0123456789abcdef"
	uiTestProd  = "ui-producer-token-0123456789"
)

// uiEnv is a UI on a loopback test server with its own redis-server.
type uiEnv struct {
	*testenv.Env
	t   *testing.T
	srv *httptest.Server
	hc  *http.Client
}

func newUIEnv(t *testing.T) *uiEnv { return newUIEnvWith(t, httptest.NewServer) }

func newUIEnvWith(t *testing.T, start func(http.Handler) *httptest.Server, opts ...testenv.Option) *uiEnv {
	t.Helper()
	te := testenv.New(t, opts...)
	s := New(Options{
		Ops:   te.Ops,
		Redis: te.Conn,
		Token: uiTestProd, AdminToken: uiTestAdmin,
		Logger: zerolog.Nop(),
	})
	srv := start(s.Handler())
	t.Cleanup(srv.Close)
	hc := srv.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &uiEnv{Env: te, t: t, srv: srv, hc: hc}
}

// deadLetter makes job id a dead letter with code, dead-lettered at `at`.
func (e *uiEnv) deadLetter(id, agentNo, code string, uncertain bool, at time.Time) {
	e.t.Helper()
	e.Settle(e.newJob("", id, agentNo), store.FinishDeadLettered, code, uncertain, at)
}

// newJob is a valid job of agentNo with ID id, in batch when one is named.
func (e *uiEnv) newJob(batch, id, agentNo string) store.NewJob {
	return store.NewJob{ID: id, SID: testenv.SID, AgentNo: agentNo, Payload: launchtest.Job(agentNo).Body(), Batch: batch}
}

// state is the job's state, or "gone" when it has no record.
func (e *uiEnv) state(id string) store.State {
	e.t.Helper()
	rec, err := e.Store.Get(context.Background(), id)
	if errors.Is(err, store.ErrNotFound) {
		return "gone"
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return rec.State
}

type uiReply struct {
	status int
	header http.Header
	body   string
	resp   *http.Response
}

func (r uiReply) location() string { return r.header.Get("Location") }

func (r uiReply) cookie(name string) *http.Cookie {
	for _, c := range r.resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// req sends a request; a form makes it a POST with the form's body. hdr
// are name, value pairs; cookies go along as they are.
func (e *uiEnv) req(method, path string, form url.Values, cookies []*http.Cookie, hdr ...string) uiReply {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return uiReply{status: resp.StatusCode, header: resp.Header, body: string(data), resp: resp}
}

// origin is the Origin header a browser sends with our own forms.
func (e *uiEnv) origin() []string { return []string{"Origin", e.srv.URL} }

// login signs in with the admin token and returns the session cookie.
func (e *uiEnv) login() *http.Cookie {
	e.t.Helper()
	r := e.req("POST", "/ui/login", url.Values{"token": {uiTestAdmin}}, nil, e.origin()...)
	c := r.cookie(sessionCookie)
	if r.status != http.StatusSeeOther || c == nil || c.Value == "" {
		e.t.Fatalf("login: %d, cookie %v: %.300s", r.status, c, r.body)
	}
	return c
}

// get loads a page with the session, failing unless it answers 200.
func (e *uiEnv) get(path string, sess *http.Cookie) uiReply {
	e.t.Helper()
	r := e.req("GET", path, nil, []*http.Cookie{sess})
	if r.status != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s: %.300s", path, r.status, r.location(), r.body)
	}
	return r
}

var (
	csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	jobRow    = regexp.MustCompile(`<tr data-job="([^"]+)"`)
	flashText = regexp.MustCompile(`(?s)<p class="flash (ok|err)"[^>]*>(.*?)</p>`)
)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field on the page: %.500s", page)
	}
	return m[1]
}

func rowsOf(page string) []string {
	var ids []string
	for _, m := range jobRow.FindAllStringSubmatch(page, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// follow loads the page a POST redirected to, with the flash cookie it set,
// and returns it with its flash message ("ok: …" or "err: …").
func (e *uiEnv) follow(r uiReply, sess *http.Cookie) (uiReply, string) {
	e.t.Helper()
	if r.status != http.StatusSeeOther {
		e.t.Fatalf("want 303, got %d: %.300s", r.status, r.body)
	}
	cookies := []*http.Cookie{sess}
	if f := r.cookie(flashCookie); f != nil {
		cookies = append(cookies, f)
	}
	page := e.req("GET", r.location(), nil, cookies)
	if page.status != http.StatusOK {
		e.t.Fatalf("GET %s: %d", r.location(), page.status)
	}
	if c := page.cookie(flashCookie); c == nil || c.MaxAge >= 0 {
		e.t.Errorf("the page did not clear the flash cookie: %v", c)
	}
	m := flashText.FindStringSubmatch(page.body)
	if m == nil {
		return page, ""
	}
	return page, m[1] + ": " + m[2]
}

func sameIDs(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestUILoginWrongToken(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	for _, tok := range []string{"", "wrong", uiTestProd, uiTestAdmin + "x", uiTestAdmin[:10]} {
		r := e.req("POST", "/ui/login", url.Values{"token": {tok}}, nil, e.origin()...)
		if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "not the admin token") || !strings.Contains(r.body, `id="login"`) {
			t.Errorf("token %q: %d: %.300s", tok, r.status, r.body)
		}
		if c := r.cookie(sessionCookie); c != nil {
			t.Errorf("token %q: got a session cookie %v", tok, c)
		}
	}
	// The login form must come from our own page too.
	r := e.req("POST", "/ui/login", url.Values{"token": {uiTestAdmin}}, nil, "Origin", "https://evil.example")
	if r.status != http.StatusForbidden || r.cookie(sessionCookie) != nil {
		t.Errorf("cross-site login: %d, cookie %v", r.status, r.cookie(sessionCookie))
	}
}

func TestUILoginCookie(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	page := e.req("GET", "/ui/login?next=/ui/deadletters?code=RCS904", nil, nil)
	if page.status != 200 || !strings.Contains(page.body, `name="token"`) || !strings.Contains(page.body, `value="/ui/deadletters?code=RCS904"`) {
		t.Fatalf("login page: %d: %.500s", page.status, page.body)
	}
	r := e.req("POST", "/ui/login", url.Values{"token": {uiTestAdmin}, "next": {"/ui/deadletters?code=RCS904"}}, nil, e.origin()...)
	if r.status != http.StatusSeeOther || r.location() != "/ui/deadletters?code=RCS904" {
		t.Fatalf("login: %d to %q", r.status, r.location())
	}
	c := r.cookie(sessionCookie)
	if c == nil {
		t.Fatal("no session cookie")
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui" || c.Secure || c.MaxAge <= 0 {
		t.Errorf("cookie flags: %+v (want HttpOnly, SameSite=Strict, Path=/ui, not Secure over plain HTTP)", c)
	}
	raw := r.header.Get("Set-Cookie")
	for _, secret := range []string{uiTestAdmin, base64.StdEncoding.EncodeToString([]byte(uiTestAdmin)),
		base64.RawURLEncoding.EncodeToString([]byte(uiTestAdmin)), fmt.Sprintf("%x", sha256.Sum256([]byte(uiTestAdmin)))} {
		if strings.Contains(raw, secret) || strings.Contains(c.Value, secret) {
			t.Errorf("the cookie carries the token (%q): %s", secret, raw)
		}
	}
	// Two logins are two sessions.
	if c2 := e.login(); c2.Value == c.Value {
		t.Error("two logins got the same session cookie")
	}
	e.get("/ui/deadletters", c)

	// next never leads off the UI.
	for _, next := range []string{"//evil.example/ui/", "https://evil.example/ui/x", "/v1/stats", "/ui/login", `/ui/\evil`, "javascript:alert(1)"} {
		r := e.req("POST", "/ui/login", url.Values{"token": {uiTestAdmin}, "next": {next}}, nil, e.origin()...)
		if r.status != http.StatusSeeOther || r.location() != "/ui/deadletters" {
			t.Errorf("next %q: %d to %q", next, r.status, r.location())
		}
	}
	// Logged in already: the login page sends the browser on.
	if r := e.req("GET", "/ui/login", nil, []*http.Cookie{c}); r.status != http.StatusSeeOther || r.location() != "/ui/deadletters" {
		t.Errorf("login page with a session: %d %q", r.status, r.location())
	}
}

func TestUILoginCookieSecureOverTLS(t *testing.T) {
	t.Parallel()
	e := newUIEnvWith(t, httptest.NewTLSServer)
	c := e.login()
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui" {
		t.Errorf("cookie over TLS: %+v", c)
	}
	e.get("/ui/deadletters", c)
}

func TestUIWithoutSessionRedirectsToLogin(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	at := time.Now()
	e.deadLetter("job-a", "100", "RCS904", false, at)
	good := e.login()

	// Forged or tampered cookies count as none.
	tampered := []byte(good.Value)
	if i := len(tampered) / 2; tampered[i] == 'A' {
		tampered[i] = 'B'
	} else {
		tampered[i] = 'A'
	}
	for _, bad := range []*http.Cookie{nil,
		{Name: sessionCookie, Value: "x"},
		{Name: sessionCookie, Value: uiTestAdmin},
		{Name: sessionCookie, Value: string(tampered)},
		{Name: sessionCookie, Value: base64.RawURLEncoding.EncodeToString(make([]byte, 56))},
	} {
		cookies := []*http.Cookie{}
		if bad != nil {
			cookies = append(cookies, bad)
		}
		for _, path := range []string{"/ui/", "/ui/deadletters", "/ui/deadletters?code=RCS904&page=2", "/ui/deadletters/job-a",
			"/ui/asynq/", "/ui/asynq/queues/launch", "/ui/asynq/api/queues", "/ui/nope"} {
			r := e.req("GET", path, nil, cookies)
			want := "/ui/login?" + url.Values{"next": {path}}.Encode()
			if r.status != http.StatusSeeOther || r.location() != want {
				t.Errorf("GET %s with %v: %d to %q, want 303 to %q", path, bad, r.status, r.location(), want)
			}
		}
		for _, path := range []string{"/ui/deadletters/job-a/retry", "/ui/deadletters/job-a/delete", "/ui/deadletters:retry", "/ui/logout", "/ui/asynq/api/queues/launch:pause"} {
			r := e.req("POST", path, url.Values{"code": {"RCS904"}}, cookies, e.origin()...)
			if r.status != http.StatusSeeOther || r.location() != "/ui/login" {
				t.Errorf("POST %s with %v: %d to %q", path, bad, r.status, r.location())
			}
		}
	}
	if got := e.state("job-a"); got != store.StateDeadLettered {
		t.Errorf("job-a is %s after requests without a session", got)
	}
	// The login page and the stylesheet need no session.
	if r := e.req("GET", "/ui/login", nil, nil); r.status != 200 {
		t.Errorf("login page: %d", r.status)
	}
	if r := e.req("GET", "/ui/static/ui.css", nil, nil); r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: %d %s", r.status, r.header.Get("Content-Type"))
	}
	if r := e.req("GET", "/ui/static/", nil, nil); r.status != http.StatusNotFound {
		t.Errorf("static directory listing: %d", r.status)
	}
	// A bearer token is no way into the UI.
	if r := e.req("GET", "/ui/deadletters", nil, nil, "Authorization", "Bearer "+uiTestAdmin); r.status != http.StatusSeeOther {
		t.Errorf("bearer token on the UI: %d", r.status)
	}
}

func TestUISecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	sess := e.login()
	for _, r := range []uiReply{
		e.req("GET", "/ui/login", nil, nil),
		e.req("GET", "/ui/deadletters", nil, nil),
		e.get("/ui/deadletters", sess),
		e.req("GET", "/ui/deadletters/none", nil, []*http.Cookie{sess}),
		e.get("/ui/asynq/", sess),
	} {
		h := r.header
		if csp := h.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", r.resp.Request.URL.Path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", r.resp.Request.URL.Path, h)
		}
	}
	if r := e.req("GET", "/ui/deadletters/none", nil, []*http.Cookie{sess}); r.status != 404 || !strings.Contains(r.body, "no dead letter") {
		t.Errorf("unknown dead letter: %d %.200s", r.status, r.body)
	}
}

func TestUIRetryAndDelete(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	at := time.Now().Add(-time.Hour)
	e.deadLetter("job-a", "100", "RCS904", false, at)
	e.deadLetter("job-b", "200", "RCS601", false, at.Add(time.Second))
	e.deadLetter("job-c", "300", "RCS904", false, at.Add(2*time.Second))
	sess := e.login()

	page := e.get("/ui/deadletters", sess)
	if got := rowsOf(page.body); !sameIDs(got, []string{"job-c", "job-b", "job-a"}) {
		t.Fatalf("rows %v, want newest first", got)
	}
	for _, want := range []string{"RCS601", "refused: RCS601", ">200<", "1/9", uiTime(at), `action="/ui/deadletters/job-b/retry"`, `href="/ui/deadletters/job-b/delete"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("list lacks %q", want)
		}
	}
	csrf := csrfOf(t, page.body)

	r := e.req("POST", "/ui/deadletters/job-b/retry", url.Values{"csrf": {csrf}}, []*http.Cookie{sess}, e.origin()...)
	page, flash := e.follow(r, sess)
	if flash != "ok: Retried job-b: it is back on the launch queue with a fresh attempt budget." {
		t.Errorf("flash after retry: %q", flash)
	}
	if got := rowsOf(page.body); !sameIDs(got, []string{"job-c", "job-a"}) {
		t.Errorf("rows after retry: %v", got)
	}
	if st := e.state("job-b"); st != store.StateQueued || e.Task("job-b") == nil {
		t.Errorf("job-b after retry: %s, task %v", st, e.Task("job-b") != nil)
	}

	// The form sends the filter and page back, and the answer keeps them.
	r = e.req("POST", "/ui/deadletters/job-c/delete", url.Values{"csrf": {csrf}, "code": {"RCS904"}, "confirm": {"yes"}}, []*http.Cookie{sess}, e.origin()...)
	if r.location() != "/ui/deadletters?code=RCS904" {
		t.Errorf("after delete: to %q", r.location())
	}
	page, flash = e.follow(r, sess)
	if flash != "ok: Deleted dead letter job-c." {
		t.Errorf("flash after delete: %q", flash)
	}
	if got := rowsOf(page.body); !sameIDs(got, []string{"job-a"}) {
		t.Errorf("rows after delete: %v", got)
	}
	if st := e.state("job-c"); st != "gone" || e.Task("job-c") != nil {
		t.Errorf("job-c after delete: %s", st)
	}

	// A second click on a letter that has gone says so.
	r = e.req("POST", "/ui/deadletters/job-c/retry", url.Values{"csrf": {csrf}}, []*http.Cookie{sess}, e.origin()...)
	if _, flash = e.follow(r, sess); !strings.HasPrefix(flash, "err: There is no dead letter job-c") {
		t.Errorf("flash after retrying a deleted letter: %q", flash)
	}
	r = e.req("POST", "/ui/deadletters/job-b/delete", url.Values{"csrf": {csrf}, "confirm": {"yes"}}, []*http.Cookie{sess}, e.origin()...)
	if _, flash = e.follow(r, sess); flash != "err: Job job-b is queued, not a dead letter." {
		t.Errorf("flash after deleting a retried letter: %q", flash)
	}
	if st := e.state("job-b"); st != store.StateQueued {
		t.Errorf("job-b: %s", st)
	}

	// The detail page shows one letter with its payload and actions.
	d := e.get("/ui/deadletters/job-a", sess)
	for _, want := range []string{"job-a", "RCS904", "refused: RCS904", testenv.SID, "&#34;agent_no&#34;: &#34;100&#34;", `action="/ui/deadletters/job-a/retry"`, "terminal"} {
		if !strings.Contains(d.body, want) {
			t.Errorf("detail page lacks %q", want)
		}
	}
	r = e.req("POST", "/ui/deadletters/job-a/retry", url.Values{"csrf": {csrfOf(t, d.body)}}, []*http.Cookie{sess}, e.origin()...)
	if page, _ = e.follow(r, sess); len(rowsOf(page.body)) != 0 || !strings.Contains(page.body, "No dead letters") {
		t.Errorf("list after the last retry: %v", rowsOf(page.body))
	}
}

func TestUIUncertain(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	e.deadLetter("job-u", "100", "TIMEOUT", true, time.Now())
	sess := e.login()
	page := e.get("/ui/deadletters", sess)
	if !strings.Contains(page.body, `<span class="badge uncertain"`) || !strings.Contains(page.body, "launch anyway") {
		t.Fatalf("no uncertain badge: %.1000s", page.body)
	}
	csrf := csrfOf(t, page.body)
	r := e.req("POST", "/ui/deadletters/job-u/retry", url.Values{"csrf": {csrf}}, []*http.Cookie{sess}, e.origin()...)
	page, flash := e.follow(r, sess)
	if !strings.HasPrefix(flash, "err: Left job-u alone: it is uncertain") || !sameIDs(rowsOf(page.body), []string{"job-u"}) {
		t.Errorf("retry of an uncertain letter: %q, rows %v", flash, rowsOf(page.body))
	}
	r = e.req("POST", "/ui/deadletters/job-u/retry", url.Values{"csrf": {csrf}, "include_uncertain": {"1"}}, []*http.Cookie{sess}, e.origin()...)
	if page, flash = e.follow(r, sess); !strings.HasPrefix(flash, "ok: Retried job-u") || len(rowsOf(page.body)) != 0 {
		t.Errorf("retry anyway: %q, rows %v", flash, rowsOf(page.body))
	}
}

func TestUICSRF(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	e.deadLetter("job-a", "100", "RCS904", false, time.Now())
	sess := e.login()
	other := e.login()
	csrf := csrfOf(t, e.get("/ui/deadletters", sess).body)
	otherCSRF := csrfOf(t, e.get("/ui/deadletters", other).body)
	if csrf == otherCSRF {
		t.Fatal("two sessions share a CSRF token")
	}
	host := strings.TrimPrefix(e.srv.URL, "http://")
	type attempt struct {
		name string
		form url.Values
		hdr  []string
	}
	var attempts []attempt
	for _, c := range []struct {
		name string
		csrf []string
	}{{"no CSRF token", nil}, {"empty CSRF token", []string{""}}, {"wrong CSRF token", []string{"AAAA" + csrf[4:]}},
		{"another session's token", []string{otherCSRF}}, {"the token in the query only", nil}} {
		form := url.Values{"csrf": c.csrf, "code": {"RCS904"}}
		if c.csrf == nil {
			form.Del("csrf")
		}
		attempts = append(attempts, attempt{c.name, form, e.origin()})
	}
	good := url.Values{"csrf": {csrf}, "code": {"RCS904"}}
	for _, c := range []struct {
		name string
		hdr  []string
	}{
		{"foreign Origin", []string{"Origin", "https://evil.example"}},
		{"foreign Origin with our port", []string{"Origin", "http://evil.example:" + host[strings.LastIndex(host, ":")+1:]}},
		{"sibling host", []string{"Origin", "http://" + host + ".evil.example"}},
		{"null Origin", []string{"Origin", "null"}},
		{"no Origin, no Referer", nil},
		{"no Origin, foreign Referer", []string{"Referer", "https://evil.example/ui/deadletters"}},
		{"Sec-Fetch-Site cross-site", []string{"Origin", e.srv.URL, "Sec-Fetch-Site", "cross-site"}},
		{"Sec-Fetch-Site same-site", []string{"Origin", e.srv.URL, "Sec-Fetch-Site", "same-site"}},
	} {
		attempts = append(attempts, attempt{c.name, good, c.hdr})
	}
	for _, a := range attempts {
		for _, path := range []string{"/ui/deadletters/job-a/retry", "/ui/deadletters/job-a/delete", "/ui/deadletters:retry", "/ui/logout"} {
			target := path
			if a.name == "the token in the query only" {
				target += "?csrf=" + url.QueryEscape(csrf)
			}
			r := e.req("POST", target, a.form, []*http.Cookie{sess}, a.hdr...)
			if r.status != http.StatusForbidden || !strings.Contains(r.body, "Forbidden") {
				t.Errorf("%s, POST %s: %d, want 403", a.name, path, r.status)
			}
			if r.cookie(sessionCookie) != nil {
				t.Errorf("%s, POST %s touched the session cookie", a.name, path)
			}
		}
	}
	if st := e.state("job-a"); st != store.StateDeadLettered || e.Task("job-a") != nil {
		t.Fatalf("job-a after refused posts: %s", st)
	}
	e.get("/ui/deadletters", sess) // still logged in

	// GET never changes anything, whatever it carries.
	for _, path := range []string{"/ui/deadletters/job-a/retry?csrf=" + url.QueryEscape(csrf), "/ui/deadletters/job-a/delete", "/ui/deadletters:retry?code=RCS904", "/ui/logout"} {
		e.req("GET", path, nil, []*http.Cookie{sess}, e.origin()...)
	}
	if st := e.state("job-a"); st != store.StateDeadLettered {
		t.Fatalf("job-a after GETs: %s", st)
	}

	// A same-host Referer stands in for a missing Origin.
	r := e.req("POST", "/ui/deadletters/job-a/retry", url.Values{"csrf": {csrf}}, []*http.Cookie{sess}, "Referer", e.srv.URL+"/ui/deadletters")
	if _, flash := e.follow(r, sess); !strings.HasPrefix(flash, "ok: Retried job-a") {
		t.Errorf("retry with a same-host Referer: %q", flash)
	}
}

func TestUIFilterByCode(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	at := time.Now().Add(-time.Hour)
	e.deadLetter("job-1", "100", "RCS904", false, at)
	e.deadLetter("job-2", "200", "RCS601", false, at.Add(time.Second))
	e.deadLetter("job-3", "300", "RCS904", true, at.Add(2*time.Second))
	e.deadLetter("job-4", "400", "RCS904", false, at.Add(3*time.Second))
	sess := e.login()

	for _, q := range []string{"RCS904", "rcs904", " RCS904 "} {
		page := e.get("/ui/deadletters?code="+url.QueryEscape(q), sess)
		if got := rowsOf(page.body); !sameIDs(got, []string{"job-4", "job-3", "job-1"}) {
			t.Errorf("code %q: rows %v", q, got)
		}
		if !strings.Contains(page.body, `value="RCS904"`) || !strings.Contains(page.body, "Retry all 3 with code RCS904") {
			t.Errorf("code %q: the filter form or the bulk retry is missing", q)
		}
	}
	page := e.get("/ui/deadletters?code=RCS601", sess)
	if got := rowsOf(page.body); !sameIDs(got, []string{"job-2"}) {
		t.Errorf("RCS601: rows %v", got)
	}
	page = e.get("/ui/deadletters?code=NOPE", sess)
	if got := rowsOf(page.body); len(got) != 0 || !strings.Contains(page.body, "No dead letters with code") {
		t.Errorf("unknown code: rows %v", got)
	}
	if page = e.get("/ui/deadletters", sess); strings.Contains(page.body, "Retry all") {
		t.Error("a bulk retry without a code filter")
	}

	// Retry all with the code: the uncertain one stays unless asked for.
	csrf := csrfOf(t, page.body)
	r := e.req("POST", "/ui/deadletters:retry", url.Values{"csrf": {csrf}, "code": {"RCS904"}}, []*http.Cookie{sess}, e.origin()...)
	if r.location() != "/ui/deadletters?code=RCS904" {
		t.Errorf("bulk retry went to %q", r.location())
	}
	page, flash := e.follow(r, sess)
	if flash != "err: Dead letters with code RCS904: retried 2, left 1 uncertain alone." || !sameIDs(rowsOf(page.body), []string{"job-3"}) {
		t.Errorf("bulk retry: %q, rows %v", flash, rowsOf(page.body))
	}
	r = e.req("POST", "/ui/deadletters:retry", url.Values{"csrf": {csrf}, "code": {"RCS904"}, "include_uncertain": {"1"}}, []*http.Cookie{sess}, e.origin()...)
	if page, flash = e.follow(r, sess); flash != "ok: Dead letters with code RCS904: retried 1." || len(rowsOf(page.body)) != 0 {
		t.Errorf("bulk retry with uncertain: %q, rows %v", flash, rowsOf(page.body))
	}
	for _, id := range []string{"job-1", "job-3", "job-4"} {
		if st := e.state(id); st != store.StateQueued {
			t.Errorf("%s: %s", id, st)
		}
	}
	if st := e.state("job-2"); st != store.StateDeadLettered {
		t.Errorf("job-2 (another code): %s", st)
	}
	if got := rowsOf(e.get("/ui/deadletters", sess).body); !sameIDs(got, []string{"job-2"}) {
		t.Errorf("left: %v", got)
	}
}

func TestUIPagination(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	const n = uiPageSize + 7
	at := time.Now().Add(-time.Hour)
	var want []string // newest first
	for i := range n {
		id := fmt.Sprintf("job-%02d", i)
		code := "RCS904"
		if i%2 == 1 {
			code = "RCS601"
		}
		e.deadLetter(id, fmt.Sprint(100+i), code, false, at.Add(time.Duration(i)*time.Second))
		want = append([]string{id}, want...)
	}
	sess := e.login()

	p1 := e.get("/ui/deadletters", sess)
	if got := rowsOf(p1.body); !sameIDs(got, want[:uiPageSize]) {
		t.Errorf("page 1: %v", got)
	}
	if !strings.Contains(p1.body, fmt.Sprintf("1–%d of %d", uiPageSize, n)) || !strings.Contains(p1.body, "Page 1 of 2") ||
		!strings.Contains(p1.body, `href="/ui/deadletters?page=2" rel="next"`) || strings.Contains(p1.body, `rel="prev"`) {
		t.Errorf("page 1 navigation: %.3000s", p1.body)
	}
	p2 := e.get("/ui/deadletters?page=2", sess)
	if got := rowsOf(p2.body); !sameIDs(got, want[uiPageSize:]) {
		t.Errorf("page 2: %v", got)
	}
	if !strings.Contains(p2.body, fmt.Sprintf("%d–%d of %d", uiPageSize+1, n, n)) || !strings.Contains(p2.body, `href="/ui/deadletters" rel="prev"`) ||
		strings.Contains(p2.body, `rel="next"`) || !strings.Contains(p2.body, `name="page" value="2"`) {
		t.Errorf("page 2 navigation: %.3000s", p2.body)
	}
	// Beyond the last page: the last page; nonsense: the first.
	if got := rowsOf(e.get("/ui/deadletters?page=99", sess).body); !sameIDs(got, want[uiPageSize:]) {
		t.Errorf("page 99: %v", got)
	}
	for _, p := range []string{"0", "-1", "x", ""} {
		if got := rowsOf(e.get("/ui/deadletters?page="+p, sess).body); !sameIDs(got, want[:uiPageSize]) {
			t.Errorf("page %q: %v", p, got)
		}
	}
	// With a filter, pages count the matching letters and links keep the code.
	var odd []string
	for _, id := range want {
		var i int
		fmt.Sscanf(id, "job-%d", &i)
		if i%2 == 1 {
			odd = append(odd, id)
		}
	}
	if got := rowsOf(e.get("/ui/deadletters?code=RCS601", sess).body); !sameIDs(got, odd) {
		t.Errorf("RCS601: %v, want %v", got, odd)
	}

	// Acting on page 2 comes back to page 2.
	r := e.req("POST", "/ui/deadletters/"+want[n-1]+"/delete", url.Values{"csrf": {csrfOf(t, p2.body)}, "page": {"2"}, "confirm": {"yes"}}, []*http.Cookie{sess}, e.origin()...)
	if r.location() != "/ui/deadletters?page=2" {
		t.Errorf("delete on page 2 went to %q", r.location())
	}
	page, _ := e.follow(r, sess)
	if got := rowsOf(page.body); !sameIDs(got, want[uiPageSize:n-1]) {
		t.Errorf("page 2 after delete: %v", got)
	}
}

func TestUIAsynqmon(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	e.deadLetter("job-a", "100", "RCS904", false, time.Now())
	// Put a task on the launch queue so asynqmon has a queue to show.
	sess := e.login()
	r := e.req("POST", "/ui/deadletters/job-a/retry", url.Values{"csrf": {csrfOf(t, e.get("/ui/deadletters", sess).body)}}, []*http.Cookie{sess}, e.origin()...)
	e.follow(r, sess)

	idx := e.get("/ui/asynq/", sess)
	if !strings.Contains(idx.body, "Asynq") || !strings.Contains(idx.body, `/ui/asynq/static/js/`) {
		t.Fatalf("asynqmon index: %.500s", idx.body)
	}
	csp := idx.header.Get("Content-Security-Policy")
	if strings.Count(csp, "'sha256-") != 2 || strings.Contains(csp, "script-src 'self' 'unsafe-inline'") {
		t.Errorf("asynqmon CSP: %s", csp)
	}
	for _, m := range inlineScript.FindAllStringSubmatch(idx.body, -1) {
		sum := sha256.Sum256([]byte(m[1]))
		if !strings.Contains(csp, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
			t.Errorf("inline script %.60q is not allowed by the CSP", m[1])
		}
	}
	// Sub-paths: an SPA route, a static file and the API. Every page of
	// asynqmon links back to ours (asynqmon's counters say nothing of our
	// dead letters), with no script, under the same policy.
	if r := e.get("/ui/asynq/queues/launch", sess); !strings.Contains(r.body, "Asynq") || r.body != idx.body ||
		r.header.Get("Content-Security-Policy") != csp || r.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("SPA route: %s %.200s", r.header, r.body)
	}
	back := `<a id="rcslaunch-back" href="/ui/"`
	if strings.Count(idx.body, back) != 1 || !strings.Contains(idx.body, "failed launches are dead letters") ||
		!strings.HasSuffix(strings.TrimSpace(idx.body), "</a></body></html>") || strings.Count(idx.body, "<script") != 4 {
		t.Errorf("asynqmon's page lacks the link back to ours (or it is misplaced): %s", idx.body[max(0, len(idx.body)-800):])
	}
	if r := e.get("/ui/asynq/favicon.ico", sess); len(r.body) == 0 || strings.Contains(r.body, "rcslaunch-back") {
		t.Error("favicon: empty or altered")
	}
	if r := e.get("/ui/asynq/static/js/no-such-file.js", sess); strings.Contains(r.body, "rcslaunch-back") {
		t.Error("a file path got our page")
	}
	// And ours link to asynqmon, saying what its counters mean here.
	list := e.get("/ui/deadletters", sess)
	if !strings.Contains(list.body, `<a href="/ui/asynq/" title="asynq's view of the queues: 'Failed' and 'Archived' stay 0`) ||
		!strings.Contains(list.body, "Failed and Archived counters stay 0") {
		t.Errorf("the dead-letter page does not link to asynqmon with a note: %s", list.body)
	}
	q := e.get("/ui/asynq/api/queues", sess)
	if !strings.Contains(q.body, `"queue":"launch"`) {
		t.Errorf("asynqmon API: %.300s", q.body)
	}
	// Read-only: nothing but GET and HEAD.
	for _, c := range []struct{ method, path string }{
		{"POST", "/ui/asynq/api/queues/launch:pause"},
		{"DELETE", "/ui/asynq/api/queues/launch"},
		{"POST", "/ui/asynq/api/queues/launch/pending_tasks:archive_all"},
	} {
		r := e.req(c.method, c.path, url.Values{"csrf": {"x"}}, []*http.Cookie{sess}, e.origin()...)
		if r.status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d", c.method, c.path, r.status)
		}
	}
	if e.Task("job-a") == nil {
		t.Error("the task went away")
	}
	// Without a session: to the login page.
	if r := e.req("GET", "/ui/asynq/", nil, nil); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/ui/login?next=") {
		t.Errorf("asynqmon without a session: %d %q", r.status, r.location())
	}
}

func TestUILogout(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	sess := e.login()
	other := e.login()
	page := e.get("/ui/deadletters", sess)
	r := e.req("POST", "/ui/logout", url.Values{"csrf": {csrfOf(t, page.body)}}, []*http.Cookie{sess}, e.origin()...)
	if r.status != http.StatusSeeOther || r.location() != "/ui/login" {
		t.Fatalf("logout: %d %q", r.status, r.location())
	}
	if c := r.cookie(sessionCookie); c == nil || c.MaxAge >= 0 || c.Value != "" || c.Path != "/ui" {
		t.Errorf("logout did not clear the cookie: %v", c)
	}
	login, flash := e.follow(r, sess)
	if flash != "ok: Signed out." || !strings.Contains(login.body, `name="token"`) {
		t.Errorf("after logout: %q", flash)
	}
	// The old cookie is dead even if the browser kept it; other sessions live.
	if r := e.req("GET", "/ui/deadletters", nil, []*http.Cookie{sess}); r.status != http.StatusSeeOther {
		t.Errorf("logged-out cookie: %d", r.status)
	}
	e.get("/ui/deadletters", other)
}

func TestUILoginDisabledWithoutAdminToken(t *testing.T) {
	t.Parallel()
	te := testenv.New(t)
	s := New(Options{Ops: te.Ops, Redis: te.Conn, Logger: zerolog.Nop()})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	e := &uiEnv{Env: te, t: t, srv: srv, hc: srv.Client()}
	e.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if p := e.req("GET", "/ui/login", nil, nil); !strings.Contains(p.body, "No admin token is configured") {
		t.Errorf("login page without tokens: %.300s", p.body)
	}
	for _, tok := range []string{"", "x"} {
		if r := e.req("POST", "/ui/login", url.Values{"token": {tok}}, nil, e.origin()...); r.status != http.StatusUnauthorized || r.cookie(sessionCookie) != nil {
			t.Errorf("login with %q and no tokens: %d", tok, r.status)
		}
	}
}

func TestUISafeNext(t *testing.T) {
	t.Parallel()
	for next, want := range map[string]string{
		"":                             "/ui/deadletters",
		"/ui/deadletters?code=RCS904":  "/ui/deadletters?code=RCS904",
		"/ui/asynq/queues/launch":      "/ui/asynq/queues/launch",
		"/ui/login":                    "/ui/deadletters",
		"/ui/login?next=//evil":        "/ui/deadletters",
		"//evil.example/ui/":           "/ui/deadletters",
		"/ui/\\evil":                   "/ui/deadletters",
		"https://evil.example/ui/":     "/ui/deadletters",
		"/v1/stats":                    "/ui/deadletters",
		"/ui/x\r\nSet-Cookie: a=b":     "/ui/deadletters",
		"/uix":                         "/ui/deadletters",
		"/ui/deadletters/job%2Fa%3Fb=": "/ui/deadletters/job%2Fa%3Fb=",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}
