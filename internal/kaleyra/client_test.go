package kaleyra_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/kaleyra"
	"github.com/rcslaunch/rcslaunch/launch"
)

const testSID = "HXIN1234567890AB"

func testJob() launch.Job {
	return launch.Job{
		ID: "job-with-its-own-id-42",
		Launch: launch.Launch{
			OptinDescription:        "Bigbasket Optin",
			TriggerDescription:      "START",
			InteractionsDescription: "Demo Messages <b>&</b>",
			OptoutDescription:       "Stop",
			AgentAccessInstructions: "This is a demo account",
			ProviderLaunchID:        "launch_001_google_rcs",
			LaunchName:              "launch_48900",
			VideoURIs:               []string{"https://www.example.com/videos"},
			ScreenshotURIs:          []string{"https://www.example.com/uris"},
			AgentNo:                 "48900",
		},
		Regions: []launch.Region{{RegionID: "8346a250-d7a9-47dc-8202-a8b1c2d3e4e8", Region: "4f4bf2b0"}},
	}
}

// newClient returns a Client for base with the test SID and key, after
// applying mod to its options.
func newClient(t *testing.T, base string, mod func(*kaleyra.Options)) *kaleyra.Client {
	t.Helper()
	o := kaleyra.Options{BaseURL: base, SID: testSID, APIKey: testKey}
	if mod != nil {
		mod(&o)
	}
	c, err := kaleyra.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// assertNoKey fails the test if any part of out holds the API key (in any
// spelling) or a recognisable piece of it.
func assertNoKey(t *testing.T, out kaleyra.Outcome) {
	t.Helper()
	all := strings.Join([]string{out.Code, out.Message, out.ErrorCode, out.AgentLaunchID, string(out.Raw), fmt.Sprintf("%+v", out)}, "\n")
	if strings.Contains(all, testKey[:8]) || strings.Contains(all, testKey[len(testKey)-8:]) || holdsKey(out.Raw, all) {
		t.Errorf("the API key leaked into the outcome: %+v", out)
	}
}

func launchOnce(t *testing.T, c *kaleyra.Client) kaleyra.Outcome {
	t.Helper()
	out := c.Launch(context.Background(), testJob().Body())
	assertNoKey(t, out)
	checkMessage(t, out)
	return out
}

func TestLaunchRequest(t *testing.T) {
	type seen struct {
		method, path, contentType, apiKey string
		body                              []byte
	}
	got := make(chan seen, 1)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("api-key"), body}
		io.WriteString(w, sampleSuccess)
	})
	for _, prefix := range []string{"", "/proxy/kaleyra"} {
		c := newClient(t, srv.URL+prefix+"/", nil)
		out := launchOnce(t, c)
		if out.Class != kaleyra.Succeeded {
			t.Fatalf("got %v %s %q", out.Class, out.Code, out.Message)
		}
		r := <-got
		if r.method != http.MethodPost {
			t.Errorf("method %s, want POST", r.method)
		}
		if want := prefix + "/v1/" + testSID + "/rcs/agent/launch"; r.path != want {
			t.Errorf("path %q, want %q", r.path, want)
		}
		if r.contentType != "application/json" {
			t.Errorf("Content-Type %q", r.contentType)
		}
		if r.apiKey != testKey {
			t.Errorf("api-key %q, want the key", r.apiKey)
		}
		job := testJob()
		if !bytes.Equal(r.body, job.Body()) {
			t.Errorf("body\n%s\nwant job.Body()\n%s", r.body, job.Body())
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &fields); err != nil {
			t.Fatalf("body is not a JSON object: %v", err)
		}
		if _, ok := fields["id"]; ok || len(fields) != 2 || bytes.Contains(r.body, []byte(job.ID)) {
			t.Errorf("body carries more than launch and regions (the job's ID?): %s", r.body)
		}
	}
}

func TestLaunchTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, sampleSuccess)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, func(o *kaleyra.Options) { o.HTTPClient = srv.Client() })
	if out := launchOnce(t, c); out.Class != kaleyra.Succeeded {
		t.Errorf("got %v %s %q", out.Class, out.Code, out.Message)
	}
	// Without the test CA the certificate must be refused: verification
	// is never turned off.
	c = newClient(t, srv.URL, nil)
	out := launchOnce(t, c)
	if out.Code != kaleyra.CodeTransport || out.Uncertain || !strings.Contains(out.Message, "certificate") {
		t.Errorf("untrusted certificate: got %+v", out)
	}
}

func TestLaunchResponses(t *testing.T) {
	for _, tc := range responseCases {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			c := newClient(t, srv.URL, func(o *kaleyra.Options) { o.RetryCodes = tc.retry })
			out := launchOnce(t, c)
			tc.check(t, out)
			if out.Duration <= 0 {
				t.Errorf("Duration = %v", out.Duration)
			}
		})
	}
}

func TestLaunchRetryCodesNormalised(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		io.WriteString(w, sampleRCS500)
	})
	c := newClient(t, srv.URL, func(o *kaleyra.Options) { o.RetryCodes = []string{" rcs500 "} })
	if out := launchOnce(t, c); out.Class != kaleyra.Retryable {
		t.Errorf("got %v %s", out.Class, out.Code)
	}
}

func TestLaunchTimeout(t *testing.T) {
	stop := make(chan struct{})
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	defer close(stop)
	c := newClient(t, srv.URL, func(o *kaleyra.Options) { o.Timeout = 100 * time.Millisecond })
	out := launchOnce(t, c)
	if out.Class != kaleyra.Terminal || out.Code != kaleyra.CodeTimeout || !out.Uncertain || out.HTTPStatus != 0 {
		t.Errorf("got %+v", out)
	}
	if !strings.Contains(out.Message, "100ms") || !strings.Contains(out.Message, "may have been launched") {
		t.Errorf("Message = %q", out.Message)
	}
	if out.Duration < 100*time.Millisecond || out.Duration > 5*time.Second {
		t.Errorf("Duration = %v, want about 100ms", out.Duration)
	}
}

func TestLaunchCallerDeadline(t *testing.T) {
	stop := make(chan struct{})
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	defer close(stop)
	c := newClient(t, srv.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	out := c.Launch(ctx, testJob().Body())
	assertNoKey(t, out)
	if out.Code != kaleyra.CodeTimeout || !out.Uncertain || !strings.Contains(out.Message, "caller's deadline") {
		t.Errorf("got %+v", out)
	}
}

func TestLaunchCancelledBeforeSending(t *testing.T) {
	var hits atomic.Int32
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	c := newClient(t, srv.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := c.Launch(ctx, testJob().Body())
	assertNoKey(t, out)
	if out.Class != kaleyra.Terminal || out.Code != kaleyra.CodeTransport || out.Uncertain {
		t.Errorf("got %+v", out)
	}
	if !strings.Contains(out.Message, "cancelled") || !strings.Contains(out.Message, "before the request was sent") {
		t.Errorf("Message = %q", out.Message)
	}
	if hits.Load() != 0 {
		t.Errorf("the server got %d requests", hits.Load())
	}
}

func TestLaunchCancelledAfterSending(t *testing.T) {
	received := make(chan struct{})
	stop := make(chan struct{})
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		close(received)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	defer close(stop)
	c := newClient(t, srv.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-received
		cancel()
	}()
	out := c.Launch(ctx, testJob().Body())
	assertNoKey(t, out)
	if out.Code != kaleyra.CodeTransport || !out.Uncertain {
		t.Errorf("got %+v", out)
	}
}

func TestLaunchConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, "http://"+addr, nil)
	out := launchOnce(t, c)
	if out.Class != kaleyra.Terminal || out.Code != kaleyra.CodeTransport || out.Uncertain || out.HTTPStatus != 0 {
		t.Errorf("got %+v", out)
	}
	if !strings.Contains(out.Message, "before the request was sent") {
		t.Errorf("Message = %q", out.Message)
	}
}

// hijack answers a request with raw bytes and then drops the connection.
func hijack(t *testing.T, raw string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		buf.WriteString(raw)
		buf.Flush()
		conn.Close()
	}
}

func TestLaunchConnectionLostAfterSending(t *testing.T) {
	srv := serve(t, hijack(t, ""))
	out := launchOnce(t, newClient(t, srv.URL, nil))
	if out.Code != kaleyra.CodeTransport || !out.Uncertain || out.HTTPStatus != 0 {
		t.Errorf("got %+v", out)
	}
}

func TestLaunchBodyCutShort(t *testing.T) {
	for _, tc := range []struct {
		status    int
		uncertain bool
	}{{200, true}, {400, false}} {
		srv := serve(t, hijack(t, fmt.Sprintf("HTTP/1.1 %d X\r\nContent-Length: 1000\r\n\r\n{\"code\":", tc.status)))
		out := launchOnce(t, newClient(t, srv.URL, nil))
		if out.Code != kaleyra.CodeTransport || out.Uncertain != tc.uncertain || out.HTTPStatus != tc.status {
			t.Errorf("HTTP %d cut short: got %+v", tc.status, out)
		}
	}
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

type countingTransport struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err == nil {
		resp.Body = countingBody{resp.Body, &c.n}
	}
	return resp, err
}

func TestLaunchBodyTooLarge(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"code":"RCS902","pad":"`)
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		for range 160 { // 10 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		io.WriteString(w, `"}`)
	})
	ct := &countingTransport{rt: http.DefaultTransport.(*http.Transport).Clone()}
	c := newClient(t, srv.URL, func(o *kaleyra.Options) { o.HTTPClient = &http.Client{Transport: ct} })
	out := launchOnce(t, c)
	if out.Code != kaleyra.CodeBadResponse || !strings.Contains(out.Message, "larger than 1 MiB") || out.Raw != nil || !out.Uncertain {
		t.Errorf("got %+v", out)
	}
	if n := ct.n.Load(); n > 1<<20+1 {
		t.Errorf("read %d bytes of the body, want at most 1 MiB + 1", n)
	}
}

func TestLaunchRedirectNotFollowed(t *testing.T) {
	var hits atomic.Int32
	elsewhere := serve(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, sampleSuccess)
	})
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	for _, hc := range []*http.Client{nil, {}} {
		c := newClient(t, srv.URL, func(o *kaleyra.Options) { o.HTTPClient = hc })
		out := launchOnce(t, c)
		if out.Class != kaleyra.Terminal || out.Code != kaleyra.CodeBadResponse || out.HTTPStatus != http.StatusTemporaryRedirect {
			t.Errorf("got %+v", out)
		}
		if !strings.Contains(out.Message, "redirect to \""+elsewhere.URL) {
			t.Errorf("Message = %q", out.Message)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("the redirect was followed %d times", hits.Load())
	}
}

// TestLaunchScrubsEchoedKey serves answers that repeat the api-key header,
// as a debugging proxy might, and checks that none of it is kept.
func TestLaunchScrubsEchoedKey(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"HTML": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			fmt.Fprintf(w, "<pre>api-key: %s</pre>", r.Header.Get("api-key"))
		},
		"JSON without code": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"headers":{"Api-Key":%q}}`, r.Header.Get("api-key"))
		},
		"JSON with code": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"code":"RCS904","message":"bad key %s","data":[],"error":{"error_code":"%s","error_message":"key %s"}}`,
				r.Header.Get("api-key"), r.Header.Get("api-key"), r.Header.Get("api-key"))
		},
		"key across the excerpt's end": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			io.WriteString(w, strings.Repeat("x", 190)+r.Header.Get("api-key"))
		},
		"redirect": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "https://evil.example/?k="+r.Header.Get("api-key"))
			w.WriteHeader(302)
		},
		"429": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(429)
			io.WriteString(w, "slow down, "+r.Header.Get("api-key"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := serve(t, h)
			out := launchOnce(t, newClient(t, srv.URL, nil))
			if !strings.Contains(out.Message+string(out.Raw), "[redacted]") && name != "key across the excerpt's end" {
				t.Errorf("want [redacted] in %+v", out)
			}
		})
	}
}

func TestLaunchConcurrent(t *testing.T) {
	var n atomic.Int32
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if n.Add(1)%2 == 0 {
			w.WriteHeader(500)
			io.WriteString(w, sampleRCS502)
			return
		}
		io.WriteString(w, sampleSuccess)
	})
	c := newClient(t, srv.URL, nil)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			out := c.Launch(context.Background(), testJob().Body())
			if out.Class != kaleyra.Succeeded && out.Class != kaleyra.Retryable {
				t.Errorf("got %+v", out)
			}
		})
	}
	wg.Wait()
}

func TestNewRejects(t *testing.T) {
	good := kaleyra.Options{BaseURL: "https://rcs-api.in.kaleyra.io", SID: testSID, APIKey: testKey}
	for _, tc := range []struct {
		name string
		mod  func(*kaleyra.Options)
		err  string
	}{
		{"no base URL", func(o *kaleyra.Options) { o.BaseURL = "" }, "kaleyra: base URL: empty"},
		{"plain http elsewhere", func(o *kaleyra.Options) { o.BaseURL = "http://example.com" }, "loopback"},
		{"key in base URL", func(o *kaleyra.Options) { o.BaseURL = "https://u:" + testKey + "@example.com" }, "user information"},
		{"no SID", func(o *kaleyra.Options) { o.SID = "" }, "kaleyra: SID: empty"},
		{"SID with a slash", func(o *kaleyra.Options) { o.SID = "a/../b" }, "only letters, digits"},
		{"SID with a space", func(o *kaleyra.Options) { o.SID = "a b" }, "only letters, digits"},
		{"SID with a query", func(o *kaleyra.Options) { o.SID = "a?x=1" }, "only letters, digits"},
		{"long SID", func(o *kaleyra.Options) { o.SID = strings.Repeat("a", 129) }, "more than the 128"},
		{"no key", func(o *kaleyra.Options) { o.APIKey = "" }, "kaleyra: API key: empty"},
		{"blank key", func(o *kaleyra.Options) { o.APIKey = " \t" }, "kaleyra: API key: empty"},
		{"key with newline", func(o *kaleyra.Options) { o.APIKey = testKey + "\n" }, "control character"},
		{"negative timeout", func(o *kaleyra.Options) { o.Timeout = -time.Second }, "negative"},
		{"pseudo-code retried", func(o *kaleyra.Options) { o.RetryCodes = []string{"RCS502", "TIMEOUT"} }, `"TIMEOUT" is not a Kaleyra code`},
		{"success retried", func(o *kaleyra.Options) { o.RetryCodes = []string{"RCS902"} }, "RCS902 means success"},
		{"empty retry code", func(o *kaleyra.Options) { o.RetryCodes = []string{"RCS502", " "} }, "empty code"},
		{"retry code with space", func(o *kaleyra.Options) { o.RetryCodes = []string{"RCS 502"} }, "not a Kaleyra code"},
	} {
		o := good
		tc.mod(&o)
		c, err := kaleyra.New(o)
		if err == nil {
			t.Errorf("%s: New succeeded: %v", tc.name, c)
			continue
		}
		if !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q in it", tc.name, err, tc.err)
		}
		if strings.Contains(err.Error(), testKey) {
			t.Errorf("%s: the error repeats the key: %v", tc.name, err)
		}
	}
	if _, err := kaleyra.New(good); err != nil {
		t.Errorf("New(good): %v", err)
	}
}
