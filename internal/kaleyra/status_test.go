package kaleyra_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/internal/kaleyra"
	"github.com/rcslaunch/rcslaunch/internal/sim"
)

const (
	testAgent    = "48900"
	testLaunchID = "1370ed9d-53ed-47ec-b150-e2a1b2c3d43d"
)

// assertStatusNoKey fails the test if any part of out holds the API key, in
// any spelling.
func assertStatusNoKey(t *testing.T, out kaleyra.StatusOutcome) {
	t.Helper()
	all := strings.Join([]string{out.Code, out.Message, out.Reported, string(out.Raw), fmt.Sprintf("%+v", out)}, "\n")
	if strings.Contains(all, testKey[:8]) || strings.Contains(all, testKey[len(testKey)-8:]) || holdsKey(out.Raw, all) {
		t.Errorf("the API key leaked into the outcome: %+v", out)
	}
}

// checkStatus checks what every StatusOutcome keeps: a state exactly when
// the poll succeeded, a bounded one-line message, a cause for a failure.
func checkStatus(t *testing.T, out kaleyra.StatusOutcome) {
	t.Helper()
	assertStatusNoKey(t, out)
	if (out.Class == kaleyra.Succeeded) != out.State.Valid() || out.Failed() == out.State.Valid() {
		t.Errorf("Class %v with State %q", out.Class, out.State)
	}
	if out.Failed() && (out.Code == "" || out.Message == "") {
		t.Errorf("a failed poll without its cause: %+v", out)
	}
	if len(out.Message) > 1024 || !utf8.ValidString(out.Message) || strings.ContainsAny(out.Message, "\r\n") {
		t.Errorf("Message = %q", out.Message)
	}
	if len(out.Reported) > 64 || !utf8.ValidString(out.Reported) {
		t.Errorf("Reported = %q", out.Reported)
	}
}

func pollOnce(t *testing.T, c *kaleyra.Client, agentNo, id string) kaleyra.StatusOutcome {
	t.Helper()
	out := c.LaunchStatus(context.Background(), agentNo, id)
	checkStatus(t, out)
	return out
}

func TestLaunchStatusRequest(t *testing.T) {
	type seen struct{ method, path, query, apiKey, body string }
	got := make(chan seen, 1)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("api-key"), string(b)}
		io.WriteString(w, `{"data":{"launch_status":"PENDING"}}`)
	})
	for _, tc := range []struct{ prefix, path, want string }{
		{"", "", "/v1/" + testSID + "/rcs/agent/agentlaunchstatus"},
		{"/proxy", "", "/proxy/v1/" + testSID + "/rcs/agent/agentlaunchstatus"},
		{"", "/v2/{sid}/rcs/agent/launch/status/{sid}", "/v2/" + testSID + "/rcs/agent/launch/status/" + testSID},
		{"", "/rcs/launchstatus", "/rcs/launchstatus"},
	} {
		c := newClient(t, srv.URL+tc.prefix, func(o *kaleyra.Options) { o.StatusPath = tc.path })
		out := pollOnce(t, c, "+48 900&x", testLaunchID)
		if out.Class != kaleyra.Succeeded || out.State != kaleyra.StatePending || out.Duration <= 0 {
			t.Errorf("got %+v", out)
		}
		r := <-got
		wantQuery := "agent_number=%2B48+900%26x&agent_launch_id=" + testLaunchID
		if r.method != http.MethodGet || r.path != tc.want || r.query != wantQuery || r.apiKey != testKey || r.body != "" {
			t.Errorf("request %+v, want GET %s?%s with the key", r, tc.want, wantQuery)
		}
	}
}

func TestStatusPathChecked(t *testing.T) {
	for _, path := range []string{"v1/{sid}/status", "/v1/{sid}/status?x=1", "/v1/{sid}/status#f", "/v1/{SID}/status", "/v1/{sid} /status", "/v1/\n"} {
		_, err := kaleyra.New(kaleyra.Options{BaseURL: "https://rcs-api.in.kaleyra.io", SID: "S1", APIKey: testKey, StatusPath: path})
		if err == nil || !strings.Contains(err.Error(), "status path") {
			t.Errorf("StatusPath %q: err = %v, want a status path error", path, err)
		}
	}
}

func TestLaunchStatusEmptyArguments(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", nil)
	for _, args := range [][2]string{{"", testLaunchID}, {testAgent, " "}} {
		out := pollOnce(t, c, args[0], args[1])
		if out.Class != kaleyra.Terminal || !strings.Contains(out.Message, "empty") || out.HTTPStatus != 0 {
			t.Errorf("LaunchStatus(%q, %q) = %+v", args[0], args[1], out)
		}
	}
}

// statusCase is one answer to a status poll and what it must be read as.
type statusCase struct {
	name     string
	status   int
	header   map[string]string
	body     string
	class    kaleyra.Class
	state    kaleyra.LaunchState
	reported string
	code     string
	raw      bool     // Raw must be the body
	contains []string // substrings of Message
}

var statusCases = []statusCase{
	{name: "data.status", status: 200, body: `{"code":"RCS200","message":"ok","data":{"status":"PENDING"},"error":{}}`,
		class: kaleyra.Succeeded, state: kaleyra.StatePending, reported: "PENDING", code: "RCS200", raw: true},
	{name: "data.launch_status phrase", status: 200, body: `{"data":{"launch_status":"Launch requested"}}`,
		class: kaleyra.Succeeded, state: kaleyra.StatePending, reported: "Launch requested", raw: true},
	{name: "data.state", status: 200, body: `{"data":{"state":"under review"}}`,
		class: kaleyra.Succeeded, state: kaleyra.StatePending, reported: "under review", raw: true},
	{name: "submitted", status: 200, body: `{"data":{"status":"submitted"}}`, class: kaleyra.Succeeded, state: kaleyra.StatePending},
	{name: "in progress", status: 200, body: `{"data":{"status":"In-Progress"}}`, class: kaleyra.Succeeded, state: kaleyra.StatePending},
	{name: "top-level status", status: 201, body: `{"status":"LIVE"}`, class: kaleyra.Succeeded, state: kaleyra.StateLaunched, reported: "LIVE"},
	{name: "top-level launch_status", status: 200, body: `{"launch_status":"approved"}`, class: kaleyra.Succeeded, state: kaleyra.StateLaunched},
	{name: "camel launchState", status: 200, body: `{"launchState":"LAUNCH_STATE_LAUNCHED"}`, class: kaleyra.Succeeded, state: kaleyra.StateLaunched},
	{name: "keys in any case", status: 200, body: `{"Data":{"Launch-Status":"Launched"}}`, class: kaleyra.Succeeded, state: kaleyra.StateLaunched},
	{name: "data.launch.status", status: 200, body: `{"data":{"launch":{"agent_launch_id":"x","status":"REJECTED"}}}`,
		class: kaleyra.Succeeded, state: kaleyra.StateRejected},
	{name: "data.launch.launch_state", status: 200, body: `{"data":{"launch":{"launch_state":"denied"}}}`, class: kaleyra.Succeeded, state: kaleyra.StateRejected},
	{name: "failed", status: 200, body: `{"data":{"launch_status":"FAILED"}}`, class: kaleyra.Succeeded, state: kaleyra.StateRejected},
	{name: "suspended", status: 200, body: `{"data":{"status":"LAUNCH_STATE_SUSPENDED"}}`, class: kaleyra.Succeeded, state: kaleyra.StateSuspended},
	{name: "unlaunched", status: 200, body: `{"data":{"status":"unlaunched"}}`, class: kaleyra.Succeeded, state: kaleyra.StateSuspended},
	{name: "pending unlaunch is not pending", status: 200, body: `{"data":{"status":"LAUNCH_STATE_PENDING_UNLAUNCH"}}`,
		class: kaleyra.Succeeded, state: kaleyra.StateSuspended},
	{name: "data array of one", status: 200, body: `{"data":[{"launch_status":"LAUNCHED"}]}`, class: kaleyra.Succeeded, state: kaleyra.StateLaunched},
	{name: "recognised state preferred to a generic status", status: 200, body: `{"status":"success","data":{"status":"ACTIVE","launch":{"state":"approved"}}}`,
		class: kaleyra.Succeeded, state: kaleyra.StateLaunched, reported: "approved"},
	{name: "unrecognised state", status: 200, body: `{"message":"fetched","data":{"status":"ACTIVE"}}`,
		class: kaleyra.Succeeded, state: kaleyra.StateUnknown, reported: "ACTIVE", raw: true,
		contains: []string{`launch state "ACTIVE" not recognised`, "Kaleyra says: fetched"}},
	{name: "unspecified", status: 200, body: `{"data":{"status":"LAUNCH_STATE_UNSPECIFIED"}}`, class: kaleyra.Succeeded, state: kaleyra.StateUnknown},
	{name: "no state", status: 200, body: `{"code":"RCS200","data":{"agent_number":"48900"}}`,
		class: kaleyra.Succeeded, state: kaleyra.StateUnknown, reported: "", contains: []string{"no launch state"}},
	{name: "numeric state", status: 200, body: `{"data":{"launch_state":3}}`, class: kaleyra.Succeeded, state: kaleyra.StateUnknown},
	{name: "data array of two", status: 200, body: `{"data":[{"status":"LAUNCHED"},{"status":"REJECTED"}]}`, class: kaleyra.Succeeded, state: kaleyra.StateUnknown},
	{name: "long state", status: 200, body: `{"data":{"status":"` + strings.Repeat("PENDING ", 20) + `"}}`, class: kaleyra.Succeeded, state: kaleyra.StateUnknown},
	{name: "control characters escaped", status: 200, body: `{"data":{"status":"LIVE\n\u202e"}}`,
		class: kaleyra.Succeeded, state: kaleyra.StateUnknown, reported: `LIVE\n\u202e`},
	{name: "error in a 200", status: 200, body: `{"code":"RCS904","message":"Failed","data":{"status":"REJECTED"},"error":{"error_code":"PROV_ERROR","error_message":"no such launch"}}`,
		class: kaleyra.Retryable, code: "RCS904", raw: true, contains: []string{"HTTP 200", "PROV_ERROR", "no such launch"}},
	{name: "error string in a 200", status: 200, body: `{"status":"FAILED","error":"launch not found"}`,
		class: kaleyra.Retryable, code: kaleyra.CodeBadResponse, contains: []string{"launch not found"}},
	{name: "HTML gateway page", status: 502, header: map[string]string{"Content-Type": "text/html"}, body: "<html><head><title>502 Bad Gateway</title></head></html>",
		class: kaleyra.Retryable, code: kaleyra.CodeBadResponse, contains: []string{"HTTP 502", "<title>502 Bad Gateway"}},
	{name: "HTML with 200", status: 200, body: "<html>maintenance</html>", class: kaleyra.Retryable, code: kaleyra.CodeBadResponse,
		contains: []string{"not valid JSON", "maintenance"}},
	{name: "empty 200", status: 200, body: " \n", class: kaleyra.Retryable, code: kaleyra.CodeBadResponse, contains: []string{"empty body"}},
	{name: "JSON array", status: 200, body: `[{"status":"LAUNCHED"}]`, class: kaleyra.Retryable, code: kaleyra.CodeBadResponse, raw: true,
		contains: []string{"not a JSON object"}},
	{name: "truncated JSON", status: 200, body: `{"data":{"status":"LAUN`, class: kaleyra.Retryable, code: kaleyra.CodeBadResponse},
	{name: "invalid UTF-8", status: 200, body: "{\"data\":{\"status\":\"PEND\xffING\"}}",
		class: kaleyra.Succeeded, state: kaleyra.StateUnknown, reported: "PEND\uFFFDING"},
	{name: "404 Kaleyra-shaped", status: 404, body: `{"code":"RCS404","message":"Agent launch not found","data":[],"error":{"error_code":"NOT_FOUND","error_message":"Agent launch not found"}}`,
		class: kaleyra.Retryable, code: "RCS404", raw: true, contains: []string{"RCS404 (HTTP 404): Agent launch not found"}},
	{name: "404 plain", status: 404, body: "404 page not found\n", class: kaleyra.Retryable, code: kaleyra.CodeBadResponse,
		contains: []string{"HTTP 404", "404 page not found"}},
	{name: "RCS502", status: 500, body: sampleRCS502, class: kaleyra.Retryable, code: "RCS502", raw: true, contains: []string{"Internal Gateway Error", "HTTP 500"}},
	{name: "503 empty", status: 503, body: "", class: kaleyra.Retryable, code: kaleyra.CodeBadResponse, contains: []string{"HTTP 503"}},
	{name: "401", status: 401, body: `{"code":"RCS401","message":"Unauthorized"}`, class: kaleyra.Retryable, code: "RCS401"},
	{name: "redirect", status: 302, header: map[string]string{"Location": "https://elsewhere.example/"}, body: "",
		class: kaleyra.Retryable, code: kaleyra.CodeBadResponse, contains: []string{"redirect", "elsewhere.example"}},
	{name: "throttled", status: 429, header: map[string]string{"Retry-After": "7"}, body: `{"message":"Too Many Requests"}`,
		class: kaleyra.Throttled, code: kaleyra.CodeThrottled, raw: true, contains: []string{"HTTP 429", "Too Many Requests"}},
	{name: "huge", status: 200, body: `{"data":{"status":"LAUNCHED","pad":"` + strings.Repeat("x", 1<<20) + `"}}`,
		class: kaleyra.Retryable, code: kaleyra.CodeBadResponse, contains: []string{"larger than 1 MiB"}},
}

func TestParseLaunchStatus(t *testing.T) {
	for _, tc := range statusCases {
		t.Run(tc.name, func(t *testing.T) {
			header := http.Header{}
			for k, v := range tc.header {
				header.Set(k, v)
			}
			body := []byte(tc.body)
			out := kaleyra.ParseLaunchStatus(tc.status, header, body)
			tc.check(t, out)
			if out.Duration != 0 {
				t.Errorf("Duration = %v", out.Duration)
			}
			if len(body) > 0 && len(out.Raw) > 0 && &out.Raw[0] == &body[0] {
				t.Errorf("Raw aliases the body")
			}
		})
	}
}

func TestLaunchStatusAnswers(t *testing.T) {
	for _, tc := range statusCases {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			out := pollOnce(t, newClient(t, srv.URL, nil), testAgent, testLaunchID)
			tc.check(t, out)
			if out.Duration <= 0 {
				t.Errorf("Duration = %v", out.Duration)
			}
		})
	}
}

func (tc statusCase) check(t *testing.T, out kaleyra.StatusOutcome) {
	t.Helper()
	checkStatus(t, out)
	if out.Class != tc.class || out.State != tc.state || out.HTTPStatus != tc.status {
		t.Errorf("got %v %q HTTP %d, want %v %q HTTP %d (%+v)", out.Class, out.State, out.HTTPStatus, tc.class, tc.state, tc.status, out)
	}
	if tc.reported != "" || tc.state == kaleyra.StateUnknown && tc.contains != nil {
		if out.Reported != tc.reported {
			t.Errorf("Reported = %q, want %q", out.Reported, tc.reported)
		}
	}
	if tc.code != "" && out.Code != tc.code {
		t.Errorf("Code = %q, want %q", out.Code, tc.code)
	}
	if tc.raw && !bytes.Equal(out.Raw, []byte(tc.body)) {
		t.Errorf("Raw = %.100q, want the body", out.Raw)
	}
	if !tc.raw && tc.class != kaleyra.Succeeded && out.Raw != nil && !strings.HasPrefix(tc.body, "{") {
		t.Errorf("Raw = %.100q for a body that is not JSON", out.Raw)
	}
	for _, s := range tc.contains {
		if !strings.Contains(out.Message, s) {
			t.Errorf("Message %q lacks %q", out.Message, s)
		}
	}
	if tc.class == kaleyra.Throttled && out.RetryAfter != 7*time.Second {
		t.Errorf("RetryAfter = %v", out.RetryAfter)
	}
}

func TestLaunchStatusScrubsEchoedKey(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		fmt.Fprintf(w, `{"code":"RCS404","message":"no launch for key %s","data":{"status":"%s"}}`, r.Header.Get("api-key"), r.Header.Get("api-key"))
	})
	out := pollOnce(t, newClient(t, srv.URL, nil), testAgent, testLaunchID)
	if out.Class != kaleyra.Retryable || !strings.Contains(out.Message, "[redacted]") {
		t.Errorf("got %+v", out)
	}
}

func TestLaunchStatusTimeout(t *testing.T) {
	stop := make(chan struct{})
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	defer close(stop)
	c := newClient(t, srv.URL, func(o *kaleyra.Options) { o.Timeout = 100 * time.Millisecond })
	out := pollOnce(t, c, testAgent, testLaunchID)
	if out.Class != kaleyra.Retryable || out.Code != kaleyra.CodeTimeout || out.HTTPStatus != 0 {
		t.Errorf("got %+v", out)
	}
	if !strings.Contains(out.Message, "100ms") || !strings.Contains(out.Message, "polling the launch status") {
		t.Errorf("Message = %q", out.Message)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out = c.LaunchStatus(ctx, testAgent, testLaunchID)
	checkStatus(t, out)
	if out.Class != kaleyra.Retryable || !strings.Contains(out.Message, "cancelled by the caller") {
		t.Errorf("cancelled: got %+v", out)
	}
}

func TestLaunchStatusTransportError(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {})
	url := srv.URL
	srv.Close()
	out := pollOnce(t, newClient(t, url, nil), testAgent, testLaunchID)
	if out.Class != kaleyra.Retryable || out.Code != kaleyra.CodeTransport || !strings.Contains(out.Message, "polling the launch status") {
		t.Errorf("got %+v", out)
	}
}

func TestLaunchStatusBodyCutShort(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		io.WriteString(w, `{"data":{"status":"LAUN`)
	})
	out := pollOnce(t, newClient(t, srv.URL, nil), testAgent, testLaunchID)
	if out.Class != kaleyra.Retryable || out.HTTPStatus != 200 || !strings.Contains(out.Message, "reading the body") {
		t.Errorf("got %+v", out)
	}
}

func TestLaunchStateValid(t *testing.T) {
	for _, s := range []kaleyra.LaunchState{kaleyra.StatePending, kaleyra.StateLaunched, kaleyra.StateRejected, kaleyra.StateSuspended, kaleyra.StateUnknown} {
		if !s.Valid() {
			t.Errorf("%q not Valid", s)
		}
	}
	for _, s := range []kaleyra.LaunchState{"", "PENDING", "launched "} {
		if s.Valid() {
			t.Errorf("%q Valid", s)
		}
	}
}

// simClient serves a simulator configured by cfg and returns a Client for it.
func simClient(t *testing.T, cfg sim.Config) (*sim.Server, *kaleyra.Client) {
	t.Helper()
	cfg.APIKey = testKey
	s := sim.New(cfg)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, newClient(t, srv.URL, nil)
}

// launchAgent launches agentNo through c and returns its agent_launch_id.
func launchAgent(t *testing.T, c *kaleyra.Client, agentNo string) string {
	t.Helper()
	job := testJob()
	job.Launch.AgentNo = agentNo
	out := c.Launch(context.Background(), job.Body())
	if out.Class != kaleyra.Succeeded {
		t.Fatalf("launch of %s: %+v", agentNo, out)
	}
	return out.AgentLaunchID
}

// polled polls n times and returns each outcome's state, or its code when
// the poll failed.
func polled(t *testing.T, c *kaleyra.Client, agentNo, id string, n int) string {
	t.Helper()
	var got []string
	for range n {
		out := pollOnce(t, c, agentNo, id)
		if out.Failed() {
			got = append(got, out.Class.String()+":"+out.Code)
		} else {
			got = append(got, string(out.State))
		}
	}
	return strings.Join(got, " ")
}

func TestLaunchStatusAgainstSimulator(t *testing.T) {
	s, c := simClient(t, sim.Config{LaunchStates: map[string][]sim.StatusStep{
		"4891": {sim.StatusHTML, sim.StatusThrottle, sim.StatusGateway, sim.StatusUnknown, sim.StatusSuspended},
	}})
	for agent, want := range map[string]string{
		"48900": "pending pending launched launched",
		"48909": "pending rejected rejected",
		"48910": "retryable:BAD_RESPONSE throttled:THROTTLED retryable:RCS502 unknown suspended",
	} {
		id := launchAgent(t, c, agent)
		if got := polled(t, c, agent, id, strings.Count(want, " ")+1); got != want {
			t.Errorf("%s: %s, want %s", agent, got, want)
		}
	}
	out := pollOnce(t, c, "48900", testLaunchID)
	if out.Class != kaleyra.Retryable || out.Code != "RCS404" || out.HTTPStatus != 404 || !strings.Contains(out.Message, testLaunchID) {
		t.Errorf("unknown launch: %+v", out)
	}
	st := s.Stats()
	if st.StatusCalls != 13 || st.StatusByAgent["48900"] != 5 || st.StatusByAgent["48909"] != 3 || st.StatusByAgent["48910"] != 5 {
		t.Errorf("simulator counted %+v", st)
	}
}

func TestLaunchStatusWrongKeyAgainstSimulator(t *testing.T) {
	_, c := simClient(t, sim.Config{})
	id := launchAgent(t, c, "48900")
	s := sim.New(sim.Config{APIKey: "another-key"})
	srv := httptest.NewServer(s)
	defer srv.Close()
	out := pollOnce(t, newClient(t, srv.URL, nil), "48900", id)
	if out.Class != kaleyra.Retryable || out.Code != "RCS401" || out.HTTPStatus != 401 {
		t.Errorf("got %+v", out)
	}
}
