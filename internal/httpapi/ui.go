package httpapi

// The web UI under /ui/: a server-rendered dead-letter page of our own and
// asynq's monitor (asynqmon) at /ui/asynq/, both behind the admin token.
//
// A browser cannot send a bearer token by itself, so GET /ui/login asks for
// the admin token once and POST /ui/login answers with a session cookie. The
// cookie never holds the token: it holds a random session ID, its expiry and
// an HMAC of both under a key drawn at random when the process starts, so
// sessions end when the process restarts (or after sessionTTL, or at logout)
// and a cookie cannot be forged without the key.
//
// Every state-changing request is a POST that must come from one of our own
// pages: it carries the session's CSRF token (an HMAC of the session ID) in
// a hidden form field, checked in constant time, and its Origin (or, without
// one, its Referer) must name the host the request was sent to. GET requests
// never change state. Pages are framed by no one (X-Frame-Options DENY,
// frame-ancestors 'none'), cached by no one (no-store), and load nothing
// but our own resources (Content-Security-Policy default-src 'self').

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynqmon"

	"github.com/rcslaunch/rcslaunch/internal/throttle"
	"github.com/rcslaunch/rcslaunch/ops"
)

// UI paths and settings.
const (
	uiRoot      = "/ui"
	uiLoginPath = "/ui/login"
	uiListPath  = "/ui/deadletters"
	// UIAsynqRoot is where asynqmon is mounted.
	UIAsynqRoot = "/ui/asynq"

	sessionCookie = "rcslaunch_ui"
	flashCookie   = "rcslaunch_ui_flash"
	// sessionTTL is how long a UI login lasts.
	sessionTTL = 12 * time.Hour
	// uiPageSize is how many dead letters one page lists.
	uiPageSize = 25
	// maxUIForm bounds the body of a UI form post.
	maxUIForm = 16 << 10
	// maxFlash bounds a flash message (it travels in a cookie).
	maxFlash = 600
)

// uiCSP is the Content-Security-Policy of our own pages: nothing but our
// own stylesheet, no script at all, forms posting only to us.
const uiCSP = "default-src 'self'; script-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

//go:embed ui
var uiFiles embed.FS

// mountUI registers the web UI's routes on the server's mux.
func (s *Server) mountUI() {
	u := newUI(s)
	m := s.mux
	static, _ := fs.Sub(uiFiles, "ui/static")
	files := http.StripPrefix("/ui/static/", http.FileServerFS(static))
	m.Handle("GET /ui/static/", u.headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})))
	m.Handle("GET /ui/login", u.headers(http.HandlerFunc(u.loginPage)))
	m.Handle("POST /ui/login", u.headers(http.HandlerFunc(u.login)))
	m.Handle("POST /ui/logout", u.action(u.logout))
	m.Handle("GET /ui/{$}", u.page(func(w http.ResponseWriter, r *http.Request, _ uiSession) {
		http.Redirect(w, r, uiListPath, http.StatusSeeOther)
	}))
	m.Handle("GET /ui/deadletters", u.page(u.list))
	m.Handle("GET /ui/jobs", u.page(u.jobs))
	m.Handle("GET /ui/jobs/{id}", u.page(u.withID(u.job)))
	m.Handle("GET /ui/deadletters/{id}", u.page(u.withID(u.show)))
	m.Handle("POST /ui/deadletters/{id}/retry", u.action(u.withID(u.retry)))
	m.Handle("POST /ui/deadletters/{id}/delete", u.action(u.withID(u.delete)))
	m.Handle("POST /ui/deadletters:retry", u.action(u.retrySelected))
	u.mountBatches(m)
	m.Handle(u.mon.RootPath()+"/", u.page(u.asynqmon))
	m.Handle("/ui/", u.page(func(w http.ResponseWriter, r *http.Request, sess uiSession) {
		u.fail(w, r, sess, http.StatusNotFound, "Not found", "There is no page at "+r.URL.Path+".")
	}))
}

// ui is the web UI's state: the per-process key, the templates and the
// sessions that logged out before they expired.
type ui struct {
	s     *Server
	key   []byte
	pages map[string]*template.Template
	mon   *asynqmon.HTTPHandler
	// monCSP is asynqmon's policy: its page has two inline scripts
	// (allowed by hash) and its components inject style elements. It
	// also asks Google for the Roboto and Material Icons fonts; they are
	// not allowed (the console contacts no third party): its icons are
	// SVG, and the text falls back to a system font.
	monCSP string
	// monIndex is asynqmon's page with a link back to ours (monBackLink),
	// nil when the page could not take one.
	monIndex []byte

	mu      sync.Mutex
	revoked map[string]time.Time // session ID -> its expiry
}

func newUI(s *Server) *ui {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic("httpapi: no randomness for the UI session key: " + err.Error())
	}
	u := &ui{s: s, key: key, pages: map[string]*template.Template{}, revoked: map[string]time.Time{}}
	funcs := template.FuncMap{
		"when":   uiTime,
		"idPath": url.PathEscape,
	}
	for _, name := range []string{"login", "deadletters", "deadletter", "error", "batches", "batch", "confirm", "jobs", "job"} {
		u.pages[name] = template.Must(template.New("layout.html").Funcs(funcs).
			ParseFS(uiFiles, "ui/layout.html", "ui/parts.html", "ui/"+name+".html"))
	}
	// Read-only: asynqmon could otherwise delete, run or archive launch
	// tasks behind the back of our job records (a deleted task leaves its
	// job "queued" forever, a re-run one bypasses the dead-letter store).
	// Operators steer launches through the dead-letter page and the API.
	u.mon = asynqmon.New(asynqmon.Options{
		RootPath:     UIAsynqRoot,
		RedisConnOpt: s.opts.Redis,
		ReadOnly:     true,
	})
	index := asynqmonIndex(u.mon)
	u.monCSP = asynqmonCSP(index)
	u.monIndex = withBackLink(index)
	return u
}

// asynqmonIndex renders asynqmon's index page: the same for every request,
// since it depends only on asynqmon's options.
func asynqmonIndex(h http.Handler) []byte {
	rec := &bufferWriter{header: http.Header{}}
	req, _ := http.NewRequest(http.MethodGet, UIAsynqRoot+"/", nil)
	h.ServeHTTP(rec, req)
	return rec.body.Bytes()
}

// asynqmonCSP allows exactly the inline scripts of asynqmon's index page,
// by hash.
func asynqmonCSP(index []byte) string {
	scripts := "'self'"
	for _, m := range inlineScript.FindAllSubmatch(index, -1) {
		sum := sha256.Sum256(m[1])
		scripts += " 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	return "default-src 'self'; script-src " + scripts +
		"; style-src 'self' 'unsafe-inline'" +
		"; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}

var inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

// monBackLink is the link back to our pages that asynqmon's page gets, in a
// corner over it. asynqmon's Failed and Archived counters stay 0 whatever
// fails (a launch with a final answer, refusals included, is a success to
// asynq, a retry is not a failure to it, and the dead letters are ours), so
// the link says where failures are. It is markup only, under asynqmon's
// policy: style attributes ('unsafe-inline' styles, which asynqmon needs
// anyway) and no script.
const monBackLink = `<a id="rcslaunch-back" href="/ui/" title="rcslaunch's pages" ` +
	`style="position:fixed;right:16px;bottom:16px;z-index:1600;padding:8px 12px;border-radius:6px;background:#101828;color:#fff;font:14px/1.4 system-ui,sans-serif;` +
	`text-decoration:none;box-shadow:0 2px 8px rgba(0,0,0,.3)">&larr; rcslaunch: dead letters, batches, jobs<br>` +
	`<small style="color:#d0d5dd">Failed and Archived stay 0 here: failed launches are dead letters in rcslaunch</small></a>`

// withBackLink is asynqmon's page with monBackLink at the end of its body
// (asynqmon has no option for a link of ours), or nil without a body end.
func withBackLink(index []byte) []byte {
	i := bytes.LastIndex(index, []byte("</body>"))
	if i < 0 {
		return nil
	}
	return slices.Concat(index[:i], []byte(monBackLink), index[i:])
}

// asynqmonPage reports whether asynqmon answers rest, a path under
// UIAsynqRoot+"/", with its index page: every path but its API's and its
// files' (the React app routes in the browser). A route with a dot in its
// last part (a queue named "a.b") is taken for a file: it gets asynqmon's
// page as asynqmon serves it, without the link back.
func asynqmonPage(rest string) bool {
	return rest != "api" && !strings.HasPrefix(rest, "api/") && !strings.HasPrefix(rest, "static/") && path.Ext(rest) == ""
}

// bufferWriter is a ResponseWriter that keeps what is written.
type bufferWriter struct {
	header http.Header
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferWriter) WriteHeader(int)             {}

// ---- sessions ----

// uiSession is a logged-in browser.
type uiSession struct {
	id      []byte
	expires time.Time
	csrf    string
}

func (u *ui) mac(parts ...[]byte) []byte {
	m := hmac.New(sha256.New, u.key)
	for _, p := range parts {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		m.Write(n[:])
		m.Write(p)
	}
	return m.Sum(nil)
}

// newSession draws a session and returns it with its cookie value:
// base64url(id ‖ expiry ‖ HMAC("session", id, expiry)).
func (u *ui) newSession(now time.Time) (uiSession, string) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		panic("httpapi: no randomness for a UI session: " + err.Error())
	}
	exp := now.Add(sessionTTL).Truncate(time.Second)
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], uint64(exp.Unix()))
	raw := append(append(append([]byte{}, id...), e[:]...), u.mac([]byte("session"), id, e[:])...)
	return u.sessionFor(id, exp), base64.RawURLEncoding.EncodeToString(raw)
}

func (u *ui) sessionFor(id []byte, exp time.Time) uiSession {
	return uiSession{id: id, expires: exp, csrf: base64.RawURLEncoding.EncodeToString(u.mac([]byte("csrf"), id))}
}

// session returns the request's valid session, if any.
func (u *ui) session(r *http.Request) (uiSession, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return uiSession{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(raw) != 16+8+sha256.Size {
		return uiSession{}, false
	}
	id, e, sum := raw[:16], raw[16:24], raw[24:]
	if !hmac.Equal(sum, u.mac([]byte("session"), id, e)) {
		return uiSession{}, false
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(e)), 0)
	if !time.Now().Before(exp) {
		return uiSession{}, false
	}
	u.mu.Lock()
	_, gone := u.revoked[string(id)]
	u.mu.Unlock()
	if gone {
		return uiSession{}, false
	}
	return u.sessionFor(id, exp), true
}

// revoke ends a session before its expiry (logout).
func (u *ui) revoke(sess uiSession) {
	now := time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	for id, exp := range u.revoked {
		if !now.Before(exp) {
			delete(u.revoked, id)
		}
	}
	u.revoked[string(sess.id)] = sess.expires
}

// secure reports whether the browser reached us over TLS (directly, or
// through a proxy that says so; a false claim only makes the browser drop
// the cookie).
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (u *ui) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: uiRoot, MaxAge: maxAge,
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode,
	})
}

// ---- flash messages ----

type uiFlash struct {
	OK  bool
	Msg string
}

// flash leaves a message for the next page: a signed cookie, read once.
func (u *ui) flash(w http.ResponseWriter, r *http.Request, ok bool, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if len(msg) > maxFlash {
		msg = msg[:maxFlash] + "…"
	}
	kind := []byte{'e'}
	if ok {
		kind[0] = 'o'
	}
	data := append(kind, msg...)
	raw := append(u.mac([]byte("flash"), data), data...)
	u.setCookie(w, r, flashCookie, base64.RawURLEncoding.EncodeToString(raw), 60)
}

// takeFlash returns the pending message, if any, and clears it.
func (u *ui) takeFlash(w http.ResponseWriter, r *http.Request) *uiFlash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	u.setCookie(w, r, flashCookie, "", -1)
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(raw) < sha256.Size+1 {
		return nil
	}
	sum, data := raw[:sha256.Size], raw[sha256.Size:]
	if !hmac.Equal(sum, u.mac([]byte("flash"), data)) {
		return nil
	}
	return &uiFlash{OK: data[0] == 'o', Msg: string(data[1:])}
}

// ---- middleware ----

// headers sets the security headers of every UI answer.
func (u *ui) headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", uiCSP)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

type uiHandler func(w http.ResponseWriter, r *http.Request, sess uiSession)

// page serves h to a logged-in browser and sends any other to the login
// page (with the page to come back to).
func (u *ui) page(h uiHandler) http.Handler {
	return u.headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, ok := u.session(r)
		if !ok {
			u.toLogin(w, r)
			return
		}
		h(w, r, sess)
	}))
}

func (u *ui) toLogin(w http.ResponseWriter, r *http.Request) {
	target := uiLoginPath
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		target += "?" + url.Values{"next": {r.URL.RequestURI()}}.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// action serves a state-changing form post: from a logged-in browser, sent
// by one of our pages (same host, the session's CSRF token).
func (u *ui) action(h uiHandler) http.Handler {
	return u.headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, ok := u.session(r)
		if !ok {
			u.toLogin(w, r)
			return
		}
		if !sameOrigin(r) {
			u.forbidden(w, r, sess, "The request did not come from a page of this site.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxUIForm)
		if err := r.ParseForm(); err != nil {
			u.fail(w, r, sess, http.StatusBadRequest, "Bad request", "The form could not be read: "+err.Error())
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.csrf)) != 1 {
			u.forbidden(w, r, sess, "The form is missing its security token or is stale.")
			return
		}
		h(w, r, sess)
	}))
}

// sameOrigin reports whether a state-changing request came from a page of
// this host: its Origin header (or, when a browser sent none, its Referer)
// must name the host the request was addressed to, and the browser must not
// say that it is cross-site. A request with neither header is refused.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" || src == "null" {
		return false
	}
	o, err := url.Parse(src)
	if err != nil || (o.Scheme != "http" && o.Scheme != "https") || o.Host == "" {
		return false
	}
	return strings.EqualFold(o.Host, r.Host)
}

func (u *ui) forbidden(w http.ResponseWriter, r *http.Request, sess uiSession, why string) {
	u.s.opts.Logger.Warn().Str("path", r.URL.Path).Str("origin", r.Header.Get("Origin")).
		Str("remote", r.RemoteAddr).Msg("UI: refused a cross-site or stale form post")
	u.fail(w, r, sess, http.StatusForbidden, "Forbidden", why+" Reload the page and try again.")
}

// ---- rendering ----

// uiBase is what the layout needs on every page.
type uiBase struct {
	Title    string
	CSRF     string // empty when not logged in
	Flash    *uiFlash
	LoggedIn bool
}

func (u *ui) base(w http.ResponseWriter, r *http.Request, sess *uiSession, title string) uiBase {
	b := uiBase{Title: title, Flash: u.takeFlash(w, r)}
	if sess != nil {
		b.CSRF, b.LoggedIn = sess.csrf, true
	}
	return b
}

func (u *ui) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	var buf bytes.Buffer
	if err := u.pages[page].Execute(&buf, data); err != nil {
		u.s.opts.Logger.Error().Err(err).Str("page", page).Msg("UI: render failed")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type uiErrorData struct {
	uiBase
	Status  int
	Message string
}

func (u *ui) fail(w http.ResponseWriter, r *http.Request, sess uiSession, status int, title, msg string) {
	u.render(w, r, status, "error", uiErrorData{uiBase: u.base(w, r, &sess, title), Status: status, Message: msg})
}

// internal shows an error page with an error ID and logs the cause under
// it: the cause (a Redis address, a script's error) stays in the log.
func (u *ui) internal(w http.ResponseWriter, r *http.Request, sess uiSession, err error) {
	id := u.s.logFailure(r, err, "UI request failed")
	u.fail(w, r, sess, http.StatusInternalServerError, "Something went wrong",
		"The request failed; the server logged why as error ID "+id+".")
}

// withID answers 400 when the {id} of the path is not an ID.
func (u *ui) withID(h uiHandler) uiHandler {
	return func(w http.ResponseWriter, r *http.Request, sess uiSession) {
		if fields := pathIDErrors(r); fields != nil {
			u.fail(w, r, sess, http.StatusBadRequest, "Bad request", "The ID in the address is not valid: it "+fields[0].Reason+".")
			return
		}
		h(w, r, sess)
	}
}

func uiTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// ---- login ----

type uiLoginData struct {
	uiBase
	Next     string
	Error    string
	Disabled bool
}

// safeNext returns next when it is a page of the UI, else the list.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil ||
		!strings.HasPrefix(next, uiRoot+"/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") ||
		u.Path == uiLoginPath {
		return uiListPath
	}
	return next
}

func (u *ui) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if _, ok := u.session(r); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	u.render(w, r, http.StatusOK, "login", uiLoginData{
		uiBase: u.base(w, r, nil, "Sign in"), Next: next, Disabled: u.s.opts.AdminToken == "",
	})
}

func (u *ui) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		u.render(w, r, http.StatusForbidden, "error", uiErrorData{uiBase: u.base(w, r, nil, "Forbidden"), Status: http.StatusForbidden,
			Message: "The login form did not come from a page of this site."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxUIForm)
	if err := r.ParseForm(); err != nil {
		u.render(w, r, http.StatusBadRequest, "error", uiErrorData{uiBase: u.base(w, r, nil, "Bad request"), Status: http.StatusBadRequest,
			Message: "The form could not be read."})
		return
	}
	next := safeNext(r.PostFormValue("next"))
	token := r.PostFormValue("token")
	ok := false
	// An empty form is no guess: only tokens count against the address.
	if token != "" {
		var wait time.Duration
		ok, wait = u.s.guard.Try(throttle.Key(r.RemoteAddr), func() bool { return TokenMatches(token, u.s.opts.AdminToken) })
		if wait > 0 {
			n := retryAfter(wait)
			w.Header().Set("Retry-After", strconv.Itoa(n))
			u.render(w, r, http.StatusTooManyRequests, "login", uiLoginData{
				uiBase: u.base(w, r, nil, "Sign in"), Next: next, Disabled: u.s.opts.AdminToken == "",
				Error: fmt.Sprintf("Too many failed sign-ins from your address: try again in %d seconds.", n),
			})
			return
		}
	}
	if !ok {
		u.s.opts.Logger.Warn().Str("remote", r.RemoteAddr).Msg("UI: login with a wrong admin token")
		u.render(w, r, http.StatusUnauthorized, "login", uiLoginData{
			uiBase: u.base(w, r, nil, "Sign in"), Next: next, Disabled: u.s.opts.AdminToken == "",
			Error: "That is not the admin token.",
		})
		return
	}
	_, value := u.newSession(time.Now())
	u.setCookie(w, r, sessionCookie, value, int(sessionTTL/time.Second))
	u.s.opts.Logger.Info().Str("remote", r.RemoteAddr).Msg("UI: signed in")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *ui) logout(w http.ResponseWriter, r *http.Request, sess uiSession) {
	u.revoke(sess)
	u.setCookie(w, r, sessionCookie, "", -1)
	u.flash(w, r, true, "Signed out.")
	http.Redirect(w, r, uiLoginPath, http.StatusSeeOther)
}

// ---- dead letters ----

type uiListData struct {
	uiBase
	uiFilter
	Which     string // the filters in words: " with code RCS904 of account AC1"
	Back      string // the filters and page, as a query for links that come back
	DeleteURL string // the confirmation page for deleting every letter listed
	uiPaging
	Letters  []ops.Record
	ClearURL string
}

// uiFilter is what the dead-letter list is filtered by, read from its query
// or from a form that acts on it, and passed on in the links and forms
// that come back to it (template "filterFields"): a code, a batch (only its
// letters) and an account.
type uiFilter struct {
	Code, Batch, SID string
}

// uiFilterOf reads a filter from a query or a form's values.
func uiFilterOf(v url.Values) uiFilter {
	return uiFilter{Code: uiCode(v.Get("code")), Batch: v.Get("batch"), SID: uiSID(v.Get("sid"))}
}

// query is the filter's part of a URL's query, as withQuery takes it.
func (f uiFilter) query() []string { return []string{"code", f.Code, "batch", f.Batch, "sid", f.SID} }

// selection is the dead letters the filter shows, for a bulk operation.
func (f uiFilter) selection() ops.Selection {
	return ops.Selection{Code: f.Code, Batch: f.Batch, SID: f.SID}
}

// uiCode normalises a code filter: codes are upper case (RCS904, TIMEOUT).
func uiCode(v string) string { return uiShort(ops.NormalizeCode(v), 64) }

// uiSID reads an account filter typed into a form.
func uiSID(v string) string { return uiShort(strings.TrimSpace(v), 128) }

// uiShort is v cut to at most n bytes, for a filter typed into a form.
func uiShort(v string, n int) string {
	if len(v) > n {
		v = v[:n]
	}
	return v
}

func uiPage(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// listURL is the list page with its filters and page.
func listURL(f uiFilter, page int) string { return withQuery(uiListPath, page, f.query()...) }

func (u *ui) list(w http.ResponseWriter, r *http.Request, sess uiSession) {
	q := r.URL.Query()
	uf, page := uiFilterOf(q), uiPage(q.Get("page"))
	f := ops.Filter{Code: uf.Code, Batch: uf.Batch, SID: uf.SID}
	// One read gives the page and the count (which, filtered, reads every
	// letter's record); a page past the last is read again as the last.
	recs, total, err := u.s.ops.ListDeadLetters(r.Context(), f, (page-1)*uiPageSize, uiPageSize)
	if err != nil {
		u.internal(w, r, sess, err)
		return
	}
	p, offset := paging(page, total, func(n int) string { return listURL(uf, n) })
	if offset != (page-1)*uiPageSize {
		if recs, _, err = u.s.ops.ListDeadLetters(r.Context(), f, offset, uiPageSize); err != nil {
			u.internal(w, r, sess, err)
			return
		}
	}
	p.To = offset + len(recs)
	d := uiListData{
		uiBase:   u.base(w, r, &sess, "Dead letters"),
		uiFilter: uf, Which: uf.selection().Describe(), uiPaging: p, Letters: recs,
		Back:      withQuery("", p.Page, uf.query()...),
		DeleteURL: withQuery("/ui/deadletters:delete", 0, uf.query()...),
	}
	if uf != (uiFilter{}) {
		d.ClearURL = uiListPath
	}
	u.render(w, r, http.StatusOK, "deadletters", d)
}

type uiShowData struct {
	uiBase
	R       ops.Record
	Payload string
}

func (u *ui) show(w http.ResponseWriter, r *http.Request, sess uiSession) {
	id := r.PathValue("id")
	rec, err := u.s.ops.DeadLetter(r.Context(), id)
	switch {
	case errors.Is(err, ops.ErrNotFound) || errors.Is(err, ops.ErrNotDeadLettered):
		u.fail(w, r, sess, http.StatusNotFound, "Not found", fmt.Sprintf("There is no dead letter with ID %q.", id))
		return
	case err != nil:
		u.internal(w, r, sess, err)
		return
	}
	u.render(w, r, http.StatusOK, "deadletter", uiShowData{uiBase: u.base(w, r, &sess, "Dead letter "+id), R: rec, Payload: indentJSON(rec.Payload)})
}

// audit logs what an operator did through the UI.
func (u *ui) audit(r *http.Request, action string, res ops.DeadLetterResult, err error) {
	u.s.opts.Logger.Info().Str("action", action).Str("job_id", res.JobID).Str("result", res.Key()).Err(err).
		Str("remote", r.RemoteAddr).Msg("UI: dead letter " + action)
}

// back sends the browser to the list it acted from.
func back(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, listURL(uiFilterOf(r.PostForm), uiPage(r.PostFormValue("page"))), http.StatusSeeOther)
}

func (u *ui) retry(w http.ResponseWriter, r *http.Request, sess uiSession) {
	res, err := u.s.ops.RetryDeadLetter(r.Context(), r.PathValue("id"), r.PostFormValue("include_uncertain") == "1")
	u.audit(r, "retry", res, err)
	u.flashOutcome(w, r, "Retrying", res, err, "Retried %s: it is back on the launch queue with a fresh attempt budget.")
}

// delete deletes one dead letter once the operator has confirmed it.
func (u *ui) delete(w http.ResponseWriter, r *http.Request, sess uiSession) {
	if !confirmed(w, r, "/ui/deadletters/"+url.PathEscape(r.PathValue("id"))+"/delete") {
		return
	}
	res, err := u.s.ops.DeleteDeadLetter(r.Context(), r.PathValue("id"))
	u.audit(r, "delete", res, err)
	u.flashOutcome(w, r, "Deleting", res, err, "Deleted dead letter %s.")
}

// flashOutcome tells the operator what a retry or delete of one dead letter
// did, and goes back to the list.
func (u *ui) flashOutcome(w http.ResponseWriter, r *http.Request, doing string, res ops.DeadLetterResult, err error, done string) {
	id := res.JobID
	switch {
	case err != nil:
		u.flash(w, r, false, "%s %s failed; the server logged why as error ID %s.", doing, id,
			u.s.logFailure(r, err, "UI: "+strings.ToLower(doing)+" failed"))
	case res.Action == ops.NotFound:
		u.flash(w, r, false, "There is no dead letter %s (already retried or deleted?).", id)
	case res.Action == ops.SkippedUncertain:
		u.flash(w, r, false, "Left %s alone: it is uncertain (the agent may have been launched). Tick \"launch anyway\" to retry it regardless.", id)
	case res.Action == ops.NotDeadLettered:
		u.flash(w, r, false, "Job %s is %s, not a dead letter.", id, res.State)
	default:
		u.flash(w, r, true, done, id)
	}
	back(w, r)
}

// retrySelected retries every dead letter with one code, of one account,
// or both (of one batch, when the form names it).
func (u *ui) retrySelected(w http.ResponseWriter, r *http.Request, sess uiSession) {
	liftDeadlines(w) // every letter of a code: it may take long
	f := uiFilterOf(r.PostForm)
	if f.Code == "" && f.SID == "" {
		u.flash(w, r, false, "Choose a code or an account to retry.")
		back(w, r)
		return
	}
	include := r.PostFormValue("include_uncertain") == "1"
	t, err := u.s.ops.RetryDeadLetters(r.Context(), f.selection(), &ops.BulkOpts{IncludeUncertain: include})
	u.s.opts.Logger.Info().Str("code", f.Code).Str("batch", f.Batch).Str("sid", f.SID).Bool("include_uncertain", include).
		Interface("results", t.Counts()).Err(err).Str("remote", r.RemoteAddr).Msg("UI: retry by code or account")
	msg := fmt.Sprintf("Dead letters%s: retried %d", f.selection().Describe(), t.Count(string(ops.Retried)))
	uncertain := t.Count(string(ops.SkippedUncertain))
	if uncertain > 0 {
		msg += fmt.Sprintf(", left %d uncertain alone", uncertain)
	}
	if err != nil {
		u.flash(w, r, false, "%s, then stopped; the server logged why as error ID %s.", msg, u.s.logFailure(r, err, "UI: retry by code failed"))
	} else {
		u.flash(w, r, uncertain == 0, "%s.", msg)
	}
	// The retried letters have left this list: back to its first page
	// without the batch, or to the batch they came from.
	to := listURL(uiFilter{Code: f.Code, SID: f.SID}, 1)
	if f.Batch != "" {
		to = uiBatchesPath + "/" + url.PathEscape(f.Batch)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// asynqmon serves asynq's monitor, read-only.
func (u *ui) asynqmon(w http.ResponseWriter, r *http.Request, _ uiSession) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "asynq's monitor is read-only here", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Security-Policy", u.monCSP)
	if u.monIndex != nil && asynqmonPage(strings.TrimPrefix(r.URL.Path, UIAsynqRoot+"/")) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(u.monIndex)
		return
	}
	u.mon.ServeHTTP(w, r)
}
