package kaleyra_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/kaleyra"
)

// A worker's calls all go to one host (every account of a pod shares it),
// as many at once as the worker has handlers. The shared HTTP client must
// keep a connection for each of them between calls: one it closes is
// redialled for the next call, with a TLS handshake each time.
func TestHTTPClientKeepsAConnectionPerHandler(t *testing.T) {
	const handlers = 150 // more than http.DefaultTransport keeps (100)
	var dials atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"code":"RCS902","message":"ok","data":{"id":"L1"}}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	hc := kaleyra.NewHTTPClient(handlers)
	t.Cleanup(hc.CloseIdleConnections)
	clients := make([]*kaleyra.Client, 3) // three accounts sharing the client
	for i := range clients {
		clients[i] = newClient(t, srv.URL, func(o *kaleyra.Options) { o.HTTPClient = hc })
	}
	round := func() {
		var wg sync.WaitGroup
		for i := range handlers {
			wg.Go(func() { clients[i%len(clients)].Launch(context.Background(), testJob().Body()) })
		}
		// Every call in flight at once, as under load, then all answered.
		deadline := time.Now().Add(10 * time.Second)
		for dials.Load() < handlers && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		for range handlers {
			release <- struct{}{}
		}
		wg.Wait()
	}
	round()
	first := dials.Load()
	if first != handlers {
		t.Fatalf("first round: %d connections for %d calls at once", first, handlers)
	}
	round()
	if again := dials.Load() - first; again != 0 {
		t.Errorf("second round: %d new connections, want 0: the client closed them between calls", again)
	}
}
