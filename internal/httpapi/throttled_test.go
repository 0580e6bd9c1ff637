package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/rcslaunch/rcslaunch/internal/throttle"
)

// wantThrottled fails unless r is the API's 429 with a Retry-After.
func wantThrottled(t *testing.T, r reply) {
	t.Helper()
	wantError(t, r, http.StatusTooManyRequests, "throttled")
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
		t.Fatalf("Retry-After %q, want whole seconds >= 1", r.header.Get("Retry-After"))
	}
}

// TestBearerFailuresThrottled: after throttle.DefaultFree wrong tokens from
// one address, the next request from it is refused 429 with Retry-After
// even with the right token (else the throttle would say which guess was
// right); another address, or another IPv6 /64, is not held off.
func TestBearerFailuresThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	from := func(addr, token string) reply {
		return e.req("GET", "/v1/stats", nil, fromAddr, addr, "Authorization", "Bearer "+token)
	}
	for _, addrs := range [][2]string{
		{"203.0.113.5:4000", "203.0.113.6:4000"},
		{"[2001:db8:0:1::5]:4000", "[2001:db8:0:2::5]:4000"},
	} {
		guesser, other := addrs[0], addrs[1]
		for i := 0; i < throttle.DefaultFree; i++ {
			wantError(t, from(guesser, "guess-"+strconv.Itoa(i)), http.StatusForbidden, "forbidden")
		}
		wantThrottled(t, from(guesser, adminToken))
		wantThrottled(t, from(guesser, "another-guess"))
		if strings.HasPrefix(guesser, "[") { // the same /64 is the same guesser
			wantThrottled(t, from("[2001:db8:0:1::ffff]:4001", adminToken))
		}
		wantStatus(t, from(other, adminToken), http.StatusOK)
		// A producer route is held off too: the count is the address's.
		wantThrottled(t, e.req("GET", "/v1/batches", nil, fromAddr, guesser, "Authorization", "Bearer "+prodToken))
	}
	// A valid token of the wrong kind is no guess: never held off.
	for i := 0; i < 3*throttle.DefaultFree; i++ {
		wantError(t, from("203.0.113.7:4000", prodToken), http.StatusForbidden, "forbidden")
	}
	wantStatus(t, from("203.0.113.7:4000", adminToken), http.StatusOK)
	// Nor is a missing token.
	for i := 0; i < 3*throttle.DefaultFree; i++ {
		wantError(t, e.req("GET", "/v1/stats", nil, fromAddr, "203.0.113.8:4000"), http.StatusUnauthorized, "unauthorized")
	}
	wantStatus(t, from("203.0.113.8:4000", adminToken), http.StatusOK)
	// A success forgets the failures before it.
	for round := 0; round < 3; round++ {
		for i := 0; i < throttle.DefaultFree-1; i++ {
			wantError(t, from("203.0.113.9:4000", "wrong"), http.StatusForbidden, "forbidden")
		}
		wantStatus(t, from("203.0.113.9:4000", adminToken), http.StatusOK)
	}
}

// TestUILoginFailuresThrottled: the same for the web UI's sign-in: after
// throttle.DefaultFree wrong tokens, the right one is refused 429 (the
// login page, saying why, with Retry-After, and no session); another
// address signs in.
func TestUILoginFailuresThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	login := func(addr, token string) reply {
		// httptest's requests are addressed to example.com.
		return e.req("POST", uiLoginPath, []byte(url.Values{"token": {token}}.Encode()), fromAddr, addr,
			"Content-Type", "application/x-www-form-urlencoded", "Origin", "http://example.com")
	}
	session := func(r reply) bool {
		for _, c := range r.header.Values("Set-Cookie") {
			if strings.HasPrefix(c, sessionCookie+"=") && !strings.HasPrefix(c, sessionCookie+"=;") {
				return true
			}
		}
		return false
	}
	for i := 0; i < throttle.DefaultFree; i++ {
		if r := login("203.0.113.20:5000", "guess-"+strconv.Itoa(i)); r.code != http.StatusUnauthorized || session(r) {
			t.Fatalf("wrong token %d: %d %.200s", i, r.code, r.body)
		}
	}
	r := login("203.0.113.20:5000", adminToken)
	if r.code != http.StatusTooManyRequests || session(r) || !strings.Contains(string(r.body), "Too many failed sign-ins") {
		t.Fatalf("right token after %d wrong ones: %d, session %v: %.300s", throttle.DefaultFree, r.code, session(r), r.body)
	}
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// The bearer routes share the count: one guesser, one budget.
	wantThrottled(t, e.req("GET", "/v1/stats", nil, fromAddr, "203.0.113.20:5000", "Authorization", "Bearer "+adminToken))
	if r := login("203.0.113.21:5000", adminToken); r.code != http.StatusSeeOther || !session(r) {
		t.Fatalf("another address: %d, session %v", r.code, session(r))
	}
	// An empty form is no guess.
	for i := 0; i < 3*throttle.DefaultFree; i++ {
		if r := login("203.0.113.22:5000", ""); r.code != http.StatusUnauthorized {
			t.Fatalf("empty token: %d", r.code)
		}
	}
	if r := login("203.0.113.22:5000", adminToken); r.code != http.StatusSeeOther {
		t.Fatalf("after empty forms: %d", r.code)
	}
}

// TestMetricsOnlyThrottled: the worker's metrics server throttles wrong
// tokens the same way.
func TestMetricsOnlyThrottled(t *testing.T) {
	t.Parallel()
	const token = "metrics-admin-token-0123"
	h := MetricsOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("m 1\n")) }), token)
	get := func(addr, tok string) *http.Response {
		r, _ := http.NewRequest("GET", "/metrics", nil)
		r.RemoteAddr = addr
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Result()
	}
	for i := 0; i < throttle.DefaultFree; i++ {
		if c := get("203.0.113.30:1", "wrong").StatusCode; c != http.StatusUnauthorized {
			t.Fatalf("wrong token: %d", c)
		}
	}
	res := get("203.0.113.30:1", token)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("right token after wrong ones: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if c := get("203.0.113.31:1", token).StatusCode; c != http.StatusOK {
		t.Fatalf("another address: %d", c)
	}
}
