package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// shutdownTimeout bounds how long ListenAndServe waits for answers still
// being written (a HUGE body to a slow client) once its context is done.
const shutdownTimeout = 5 * time.Second

// ListenAndServe runs a simulator configured by cfg on addr (port 0 picks a
// free port) until ctx is done, then shuts down gracefully: calls sleeping
// out their latency are answered at once and hung calls are dropped. ready,
// if not nil, gets the base URL (such as http://127.0.0.1:8089) once the
// simulator is listening. The control routes are unauthenticated, so addr
// should be a loopback address.
//
// It returns nil after a graceful shutdown, or the error that stopped it.
func ListenAndServe(ctx context.Context, addr string, cfg Config, ready func(url string)) error {
	return New(cfg).ListenAndServe(ctx, addr, ready)
}

// ListenAndServe is the package's ListenAndServe for a simulator already
// made, so that its caller can script it and read its calls directly.
func (s *Server) ListenAndServe(ctx context.Context, addr string, ready func(url string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if ready != nil {
		ready(baseURL(ln.Addr()))
	}

	select {
	case err := <-served:
		return fmt.Errorf("sim: %w", err)
	case <-ctx.Done():
	}
	s.shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("sim: shutting down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("sim: %w", err)
	}
	return nil
}

// Start serves s on addr in the background, for a caller in the same
// process (the demo, the bench), and returns its base URL and a stop
// function that shuts it down and waits for it.
func (s *Server) Start(addr string) (url string, stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() { done <- s.ListenAndServe(ctx, addr, func(u string) { ready <- u }) }()
	select {
	case url = <-ready:
		return url, func() { cancel(); <-done }, nil
	case err = <-done:
		cancel()
		return "", nil, err
	}
}

// baseURL is the URL a local client reaches the listener at; a listener on
// every interface is reached through loopback.
func baseURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
