package main

// `rcslaunch serve` and the worker's METRICS_ADDR server against hostile
// clients and misconfiguration (issue 13), as processes on real sockets.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/httpapi"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/testredis"
)

// TestServeSlowClients: 300 connections without a token (100 idle, 100
// sending a batch's head and then its body a byte at a time, 100 doing the
// same to the UI's login form) do not take serve offline: it keeps at most
// its connection cap open, closing the least recently active of them at
// once, and an authorised request on a new connection answers within 2 s.
// Before the cap, the idle ones stayed open until ReadHeaderTimeout (10 s)
// and the slow bodies for as long as they trickled.
func TestServeSlowClients(t *testing.T) {
	t.Parallel()
	const slow = 300
	max := httpapi.DefaultLimits.MaxConns
	if max >= slow {
		t.Fatalf("DefaultLimits.MaxConns is %d: %d slow connections would not reach it", max, slow)
	}
	e := newEnv(t, sim.Config{})
	srv := e.startServe()
	addr := strings.TrimPrefix(srv.base, "http://")

	var closed atomic.Int32
	var trickling []net.Conn
	for i := 0; i < slow; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		switch i % 3 {
		case 1:
			fmt.Fprintf(c, "POST /v1/launches:batch HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", addr)
			trickling = append(trickling, c)
		case 2:
			fmt.Fprintf(c, "POST /ui/login HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000\r\n\r\nt", addr, srv.base)
			trickling = append(trickling, c)
		}
		go func() {
			_, _ = io.Copy(io.Discard, c) // returns when serve closes it
			closed.Add(1)
		}()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for _, c := range trickling {
					_, _ = c.Write([]byte("x")) // fails once serve closed it
				}
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	// Well before ReadHeaderTimeout could close anything, serve is down to
	// its cap.
	waitFor(t, 5*time.Second, fmt.Sprintf("serve to close %d of the %d slow connections", slow-max, slow), func() bool {
		return int(closed.Load()) >= slow-max
	})

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 15 * time.Second}
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("GET", srv.base+"/v1/stats", nil)
		req.Header.Set("Authorization", "Bearer "+srv.admin)
		start := time.Now()
		resp, err := client.Do(req)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("authorised request %d with %d slow connections open: %v", i+1, slow, err)
		}
		resp.Body.Close()
		t.Logf("authorised request %d: %d after %v", i+1, resp.StatusCode, took)
		if resp.StatusCode != http.StatusOK || took > 2*time.Second {
			t.Errorf("authorised request %d: %d after %v, want 200 within 2 s", i+1, resp.StatusCode, took)
		}
	}
	if srv.p.exited() {
		t.Fatalf("serve exited: %s", tail(srv.p.stderr.String(), 3000))
	}
}

// TestMetricsServerLimits: the worker's METRICS_ADDR server has serve's
// limits (one configuration): here, headers beyond MaxHeaderBytes are 431,
// and a scrape with the admin token still works.
func TestMetricsServerLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	addr := freeAddr(t)
	admin := "admin-token-metrics-77"
	e.startWorker(map[string]string{"METRICS_ADDR": addr, "HTTP_ADMIN_TOKEN": admin})
	get := func(hdr ...string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, 20*time.Second, "the metrics server", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if code := get("Authorization", "Bearer "+admin); code != http.StatusOK {
		t.Errorf("scrape: %d", code)
	}
	if code := get("Authorization", "Bearer "+admin, "X-Big", strings.Repeat("x", httpapi.DefaultLimits.MaxHeaderBytes+8<<10)); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a scrape with %d KiB of headers: %d, want 431", httpapi.DefaultLimits.MaxHeaderBytes>>10+8, code)
	}
}

// TestMetricsAddrRefusalNamesIt: a worker refusing a non-loopback
// METRICS_ADDR without a token names METRICS_ADDR and the token it needs,
// not serve's HTTP_ADDR.
func TestMetricsAddrRefusalNamesIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	r := e.runWith(map[string]string{"METRICS_ADDR": "0.0.0.0:0"}, "", "worker")
	if r.code == 0 || !strings.Contains(r.err, "METRICS_ADDR") || !strings.Contains(r.err, "HTTP_ADMIN_TOKEN") || strings.Contains(r.err, "HTTP_ADDR") {
		t.Errorf("want a refusal naming METRICS_ADDR and HTTP_ADMIN_TOKEN only:\n%s", r)
	}
}

// TestServeRedisWrongPassword: a refused Redis password is reported as an
// authentication failure, not as Redis being unreachable, and without the
// password.
func TestServeRedisWrongPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{}, testredis.WithPassword("right-redis-password-5"))
	u, _ := url.Parse(e.Redis.URL())
	u.User = url.UserPassword("", "wrong-redis-password-6")
	r := e.runWith(map[string]string{"REDIS_URL": u.String(), "HTTP_ADDR": freeAddr(t)}, "", "serve")
	if r.code == 0 || !strings.Contains(r.err, "authentication failed") || strings.Contains(r.err, "cannot reach") ||
		strings.Contains(r.err, "wrong-redis-password-6") {
		t.Errorf("want an authentication failure without the password:\n%s", r)
	}
}

// TestServeWithoutTokenSaysSo: serve on loopback without a token starts, and
// says at once that its token routes will refuse everything.
func TestServeWithoutTokenSaysSo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	addr := freeAddr(t)
	p := e.start(map[string]string{"HTTP_ADDR": addr, "HTTP_TOKEN": "", "HTTP_ADMIN_TOKEN": ""}, "serve")
	defer p.stop()
	waitFor(t, 20*time.Second, "serve to warn that it has no token", func() bool {
		if p.exited() {
			t.Fatalf("serve exited %d; stderr:\n%s", p.code, tail(p.stderr.String(), 3000))
		}
		return strings.Contains(p.stderr.String(), "no HTTP_TOKEN or HTTP_ADMIN_TOKEN is set")
	})
}
