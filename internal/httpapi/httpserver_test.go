package httpapi

// The HTTP server's limits, over real sockets. The acceptance test (300
// slow clients against the `rcslaunch serve` binary with DefaultLimits) is
// TestServeSlowClients in cmd/rcslaunch; these check each mechanism with
// small limits.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// startHTTP serves h with lim on a loopback port until the test ends.
func startHTTP(t *testing.T, h http.Handler, lim Limits, log zerolog.Logger) (*HTTPServer, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(h, lim, log)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, ln.Addr().String()
}

// openConns dials n connections that send nothing (or, with head, a
// request's head and no more) and counts those the server closes.
func openConns(t *testing.T, addr string, n int, head string) *atomic.Int32 {
	t.Helper()
	var closed atomic.Int32
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if head != "" {
			if _, err := io.WriteString(c, head); err != nil {
				t.Fatal(err)
			}
		}
		go func() {
			_, _ = io.Copy(io.Discard, c) // returns when the server closes it
			closed.Add(1)
		}()
	}
	return &closed
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

func (s *HTTPServer) open() (conns, busy int) {
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	for e := s.conns.lru.Front(); e != nil; e = e.Next() {
		if e.Value.(*trackedConn).busy > 0 {
			busy++
		}
	}
	return s.conns.lru.Len(), busy
}

// authorised sends GET /v1/stats with the admin token on a new connection.
func authorised(t *testing.T, addr string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/stats", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("authorised request: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestHTTPServerCapEvictsIdlest: at MaxConns, each new connection closes
// the least recently active one that is not serving a request: idle and
// slow-body connections go, a paced redrive in progress stays and
// finishes, and an authorised request still gets in.
func TestHTTPServerCapEvictsIdlest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := time.Now()
	for i := 0; i < 8; i++ {
		e.deadLetter(fmt.Sprintf("cap-%d", i), "RCS904", now, false)
	}
	lim := DefaultLimits
	lim.MaxConns = 10
	srv, addr := startHTTP(t, e.h, lim, zerolog.Nop())

	// A redrive paced to 4 letters a second: its connection is busy for
	// nearly 2 s.
	bulk := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/deadletters:retry", strings.NewReader(`{"all": true, "rate": 4}`))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			bulk <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		bulk <- fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}()
	waitUntil(t, "the redrive to be served", func() bool { _, busy := srv.open(); return busy == 1 })

	idle := openConns(t, addr, 15, "")
	slow := openConns(t, addr, 15, "POST /v1/launches HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	waitUntil(t, "the server to close 21 connections", func() bool { return idle.Load()+slow.Load() >= 21 })
	if conns, _ := srv.open(); conns > lim.MaxConns {
		t.Errorf("%d connections open, cap %d", conns, lim.MaxConns)
	}
	if code := authorised(t, addr); code != http.StatusOK {
		t.Errorf("an authorised request at the cap: %d", code)
	}
	if got := <-bulk; got != `200 {"results":{"retried":8}}` {
		t.Errorf("the redrive: %s", got)
	}
}

// TestHTTPServerLongRoutes: ReadTimeout and WriteTimeout cut an ordinary
// request that is too slow, but not the routes that may rightly take
// longer: a paced redrive, a batch whose body arrives slowly.
func TestHTTPServerLongRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := time.Now()
	for i := 0; i < 4; i++ {
		e.deadLetter(fmt.Sprintf("long-%d", i), "RCS904", now, false)
	}
	lim := DefaultLimits
	lim.ReadTimeout, lim.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	_, addr := startHTTP(t, e.h, lim, zerolog.Nop())

	// Paced to 2 a second: 4 letters take 1.5 s.
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/deadletters:retry", strings.NewReader(`{"all": true, "rate": 2}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("paced redrive: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"results":{"retried":4}}` {
		t.Errorf("paced redrive: %d %s", resp.StatusCode, body)
	}

	// A body sent in three parts, 600 ms apart.
	trickle := func(path string, body []byte) (int, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", path, prodToken, len(body))
		for i, part := range [][]byte{body[:len(body)/3], body[len(body)/3 : 2*len(body)/3], body[2*len(body)/3:]} {
			if i > 0 {
				time.Sleep(600 * time.Millisecond)
			}
			if _, err := c.Write(part); err != nil {
				return 0, err
			}
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	batch := mustJSON(t, map[string]any{"jobs": []any{json.RawMessage(jobBody(t, "long-b"))}})
	if code, err := trickle("/v1/launches:batch", batch); code != http.StatusOK {
		t.Errorf("a slow batch: %d %v", code, err)
	}
	if code, err := trickle("/v1/launches", jobBody(t, "long-1")); code == http.StatusCreated || code == http.StatusOK {
		t.Errorf("a slow single launch was served (%d %v): ReadTimeout did not apply", code, err)
	}
}

// TestHTTPServerHeaderLimit: headers beyond MaxHeaderBytes are refused
// (431) before any handler runs.
func TestHTTPServerHeaderLimit(t *testing.T) {
	t.Parallel()
	_, addr := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), DefaultLimits, zerolog.Nop())
	req, _ := http.NewRequest("GET", "http://"+addr+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("x", DefaultLimits.MaxHeaderBytes+8<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("%d KiB of headers: %d, want 431", DefaultLimits.MaxHeaderBytes>>10+8, resp.StatusCode)
	}
}

// TestHTTPServerErrorLog: net/http's own log lines (here: a handler's
// panic) are zerolog events.
func TestHTTPServerErrorLog(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	_, addr := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") }), DefaultLimits, zerolog.New(&logs))
	if resp, err := http.Get("http://" + addr + "/"); err == nil {
		resp.Body.Close()
	}
	waitUntil(t, "the panic to be logged", func() bool { return strings.Contains(logs.String(), "boom") })
	var line struct{ Level, Source, Message string }
	if err := json.Unmarshal([]byte(logs.lineWith("boom")), &line); err != nil || line.Level != "error" || line.Source != "net/http" ||
		!strings.HasPrefix(line.Message, "http: panic serving") {
		t.Errorf("log line %q (%v)", logs.lineWith("boom"), err)
	}
}

// TestHTTPServerCloseWhileFull: Close returns while a connection waits for
// room behind busy ones.
func TestHTTPServerCloseWhileFull(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	defer close(hold)
	lim := DefaultLimits
	lim.MaxConns = 1
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hold }), lim, zerolog.Nop())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	go func() {
		if resp, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
			resp.Body.Close()
		}
	}()
	waitUntil(t, "the first request to be served", func() bool { _, busy := srv.open(); return busy == 1 })
	c, err := net.Dial("tcp", ln.Addr().String()) // accepted, then waits for room
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv.Close()
	select {
	case err := <-done:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
}
