package httpapi

// The HTTP server under `rcslaunch serve` and the worker's METRICS_ADDR:
// net/http with every limit set, so that slow or idle clients cannot take
// it offline.

import (
	"container/list"
	"context"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Limits bounds what clients can hold of a server.
type Limits struct {
	// ReadHeaderTimeout bounds sending a request's headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included. When it
	// passes, net/http also cancels the request's context, so it is an
	// ordinary request's whole budget; the routes that rightly take
	// longer lift it (see extendDeadlines and liftDeadlines).
	ReadTimeout time.Duration
	// WriteTimeout bounds writing the answer, from the end of the headers.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes int
	// MaxConns caps open connections; 0 is no cap. At the cap, a new
	// connection closes the least recently active one that is not serving
	// a request (idle, still sending its headers, or being drained after
	// a refusal), so idle and slow clients cannot lock out the others;
	// when every connection is serving one, it waits for one to finish.
	MaxConns int
}

// DefaultLimits are serve's and the worker's metrics server's limits.
var DefaultLimits = Limits{
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       time.Minute,
	WriteTimeout:      time.Minute,
	IdleTimeout:       time.Minute,
	MaxHeaderBytes:    64 << 10,
	MaxConns:          256,
}

// HTTPServer serves a handler within Limits, and logs net/http's own
// errors (a handler's panic, an accept failure) through zerolog.
type HTTPServer struct {
	srv   *http.Server
	conns *connTable
}

// NewHTTPServer returns a server of h within lim.
func NewHTTPServer(h http.Handler, lim Limits, log zerolog.Logger) *HTTPServer {
	t := &connTable{max: lim.MaxConns, log: log}
	t.room = sync.NewCond(&t.mu)
	return &HTTPServer{conns: t, srv: &http.Server{
		Handler:           t.track(h),
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ErrorLog:          stdlog.New(httpErrorLog{log}, "", 0),
		ConnContext:       t.connContext,
	}}
}

// ListenAndServe listens on addr and serves until Shutdown or Close.
func (s *HTTPServer) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Serve serves on ln until Shutdown or Close.
func (s *HTTPServer) Serve(ln net.Listener) error {
	return s.srv.Serve(&capListener{Listener: ln, t: s.conns})
}

// Shutdown stops the server gracefully, as http.Server's does. (Closing
// the listener wakes an Accept waiting for room.)
func (s *HTTPServer) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Close stops the server at once.
func (s *HTTPServer) Close() error { return s.srv.Close() }

// extendDeadlines gives a request d from now to be read and answered, for
// a route whose body may rightly take long to arrive (a big batch).
func extendDeadlines(w http.ResponseWriter, d time.Duration) {
	rc := http.NewResponseController(w)
	at := time.Now().Add(d)
	_ = rc.SetReadDeadline(at) // not supported by test recorders: nothing to extend
	_ = rc.SetWriteDeadline(at)
}

// liftDeadlines removes a request's deadlines once its body is read, for a
// route that may rightly run for minutes (a paced dead-letter redrive):
// the read deadline would otherwise cancel its context halfway.
func liftDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
}

// httpErrorLog writes net/http's log lines (http.Server.ErrorLog) as
// zerolog events.
type httpErrorLog struct{ log zerolog.Logger }

func (l httpErrorLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	ev := l.log.Warn()
	if strings.Contains(msg, "panic") {
		ev = l.log.Error()
	}
	ev.Str("source", "net/http").Msg(msg)
	return len(p), nil
}

// ---- the connection cap ----

// connTable is the open connections, least recently active first.
type connTable struct {
	max int
	log zerolog.Logger

	mu     sync.Mutex
	room   *sync.Cond // a connection closed or finished a request
	lru    list.List  // of *trackedConn
	closed bool
	// Evictions are logged at most once a minute, with how many there were.
	evicted int
	warned  time.Time
}

// trackedConn is an open connection and how many requests it is serving.
type trackedConn struct {
	net.Conn
	t    *connTable
	elem *list.Element // nil once closed
	busy int
}

type connKey struct{}

// capListener admits each accepted connection into the table.
type capListener struct {
	net.Listener
	t *connTable
}

func (l *capListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, err := l.t.admit(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

func (l *capListener) Close() error {
	l.t.shut()
	return l.Listener.Close()
}

// admit makes room for c, evicting the least recently active connection
// that is not serving a request, or waiting while every one is.
func (t *connTable) admit(c net.Conn) (*trackedConn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.max > 0 && t.lru.Len() >= t.max && !t.closed {
		if v := t.idlest(); v != nil {
			t.removeLocked(v)
			_ = v.Conn.Close()
			t.noteEviction()
			continue
		}
		t.room.Wait()
	}
	if t.closed {
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, t: t}
	tc.elem = t.lru.PushBack(tc)
	return tc, nil
}

func (t *connTable) idlest() *trackedConn {
	for e := t.lru.Front(); e != nil; e = e.Next() {
		if c := e.Value.(*trackedConn); c.busy == 0 {
			return c
		}
	}
	return nil
}

func (t *connTable) noteEviction() {
	t.evicted++
	if now := time.Now(); now.Sub(t.warned) >= time.Minute {
		t.log.Warn().Int("max_conns", t.max).Int("closed", t.evicted).
			Msg("at the connection cap: closed the least recently active idle connections")
		t.warned, t.evicted = now, 0
	}
}

func (t *connTable) removeLocked(c *trackedConn) {
	if c.elem != nil {
		t.lru.Remove(c.elem)
		c.elem = nil
		t.room.Broadcast()
	}
}

// shut wakes an Accept waiting for room, for the server to stop.
func (t *connTable) shut() {
	t.mu.Lock()
	t.closed = true
	t.room.Broadcast()
	t.mu.Unlock()
}

func (c *trackedConn) Close() error {
	c.t.mu.Lock()
	c.t.removeLocked(c)
	c.t.mu.Unlock()
	return c.Conn.Close()
}

func (t *connTable) connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*trackedConn); ok {
		return context.WithValue(ctx, connKey{}, tc)
	}
	return ctx
}

// track marks a connection busy while it serves a request, so that it is
// not evicted, and most recently active when it is done.
func (t *connTable) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(connKey{}).(*trackedConn)
		if c == nil || readsBodyFirst(r) {
			h.ServeHTTP(w, r)
			return
		}
		t.mu.Lock()
		c.busy++
		t.mu.Unlock()
		defer func() {
			t.mu.Lock()
			c.busy--
			if c.elem != nil {
				t.lru.MoveToBack(c.elem)
			}
			t.room.Broadcast()
			t.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

// readsBodyFirst reports whether a request is read before anything tells
// who sent it: the UI's login form. Its connection stays evictable, or slow
// login posts from anyone could hold every connection.
func readsBodyFirst(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == uiLoginPath
}
