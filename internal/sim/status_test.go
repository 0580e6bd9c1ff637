package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// launched launches agentNo on the simulator, with the test key as modified
// by opts, and returns its agent_launch_id.
func launched(t *testing.T, ts *httptest.Server, agentNo string, opts ...option) string {
	t.Helper()
	r := call(t, ts, body(agentNo), opts...)
	var a struct {
		Data struct {
			Launch struct {
				AgentLaunchID string `json:"agent_launch_id"`
			} `json:"launch"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &a); err != nil || r.status != 200 || a.Data.Launch.AgentLaunchID == "" {
		t.Fatalf("launch of %s: %d %s", agentNo, r.status, r.body)
	}
	return a.Data.Launch.AgentLaunchID
}

// poll sends one status call for (agentNo, id) with the test key, as
// modified by opts.
func poll(t *testing.T, ts *httptest.Server, agentNo, id string, opts ...option) reply {
	t.Helper()
	q := url.Values{"agent_number": {agentNo}, "agent_launch_id": {id}}
	req, err := http.NewRequest(http.MethodGet, ts.URL+"/v1/"+testSID+"/rcs/agent/agentlaunchstatus?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, ts, req, opts...)
}

// answers polls n times and returns each answer: the launch_status of a
// 200, else the HTTP status.
func answers(t *testing.T, ts *httptest.Server, agentNo, id string, n int) string {
	t.Helper()
	var got []string
	for range n {
		r := poll(t, ts, agentNo, id)
		if r.status != 200 {
			got = append(got, fmt.Sprint(r.status))
			continue
		}
		data, _ := r.kaleyra(t)["data"].(map[string]any)
		if data["agent_number"] != agentNo || data["agent_launch_id"] != id {
			t.Errorf("answer does not name the launch: %s", r.body)
		}
		got = append(got, fmt.Sprint(data["launch_status"]))
	}
	return strings.Join(got, " ")
}

func TestStatusDefaultSequences(t *testing.T) {
	s, ts := start(t, Config{})
	ok, rejected := launched(t, ts, "48900"), launched(t, ts, "48909")
	if got := answers(t, ts, "48900", ok, 5); got != "PENDING PENDING LAUNCHED LAUNCHED LAUNCHED" {
		t.Errorf("48900: %s", got)
	}
	if got := answers(t, ts, "48909", rejected, 3); got != "PENDING REJECTED REJECTED" {
		t.Errorf("48909: %s", got)
	}
	st := s.Stats()
	if st.StatusCalls != 8 || st.StatusByAgent["48900"] != 5 || st.StatusByAgent["48909"] != 3 ||
		st.StatusByAnswer["pending"] != 3 || st.StatusByAnswer["launched"] != 3 || st.StatusByAnswer["rejected"] != 2 {
		t.Errorf("stats %+v", st)
	}
	if st.Calls != 2 || st.ByAgent["48900"] != 1 {
		t.Errorf("status calls counted as launch calls: %+v", st)
	}
}

// Each launch has its own place in the sequence, even for one agent.
func TestStatusSequencePerLaunch(t *testing.T) {
	_, ts := start(t, Config{})
	first := launched(t, ts, "7")
	answers(t, ts, "7", first, 2)
	second := launched(t, ts, "7")
	if got := answers(t, ts, "7", second, 1) + "/" + answers(t, ts, "7", first, 1); got != "PENDING/LAUNCHED" {
		t.Errorf("got %s", got)
	}
}

func TestStatusScriptedByPrefix(t *testing.T) {
	_, ts := start(t, Config{
		LaunchStates: map[string][]StatusStep{
			"48":   {StatusPending, StatusSuspended},
			"4891": {StatusHTML, StatusThrottle, StatusGateway, StatusUnknown, StatusLaunched},
			"":     {StatusRejected},
		},
	})
	cases := map[string]string{
		"48900": "PENDING SUSPENDED SUSPENDED",
		"48919": "502 429 500 LAUNCH_STATE_UNSPECIFIED LAUNCHED LAUNCHED",
		"12345": "REJECTED REJECTED",
	}
	for agent, want := range cases {
		id := launched(t, ts, agent)
		if got := answers(t, ts, agent, id, strings.Count(want, " ")+1); got != want {
			t.Errorf("%s: %s, want %s", agent, got, want)
		}
	}

	_, ts = start(t, Config{LaunchStates: map[string][]StatusStep{"1": {StatusLaunched}}, DefaultLaunchStates: []StatusStep{StatusSuspended}})
	if got := answers(t, ts, "48909", launched(t, ts, "48909"), 2); got != "SUSPENDED SUSPENDED" {
		t.Errorf("DefaultLaunchStates: %s", got)
	}
}

func TestStatusFailureSteps(t *testing.T) {
	_, ts := start(t, Config{DefaultLaunchStates: []StatusStep{StatusHTML, StatusThrottle, StatusGateway}})
	id := launched(t, ts, "1")
	if r := poll(t, ts, "1", id); r.status != 502 || !strings.Contains(string(r.body), "<html>") {
		t.Errorf("HTML: %d %s", r.status, r.body)
	}
	if r := poll(t, ts, "1", id); r.status != 429 {
		t.Errorf("HTTP429: %d %s", r.status, r.body)
	}
	r := poll(t, ts, "1", id)
	sameJSON(t, r.body, sampleGateway)
}

func TestStatusUnknownLaunch(t *testing.T) {
	s, ts := start(t, Config{})
	id := launched(t, ts, "48900")
	for _, tc := range []struct{ agent, id string }{
		{"48900", "1370ed9d-53ed-47ec-b150-e2a1b2c3d43d"}, // never issued
		{"48901", id}, // issued, to another agent
	} {
		r := poll(t, ts, tc.agent, tc.id)
		m := r.kaleyra(t)
		e, _ := m["error"].(map[string]any)
		if r.status != 404 || m["code"] != "RCS404" || e["error_code"] != "NOT_FOUND" || !strings.Contains(fmt.Sprint(e["error_message"]), tc.id) {
			t.Errorf("%s %s: %d %s", tc.agent, tc.id, r.status, r.body)
		}
	}
	if got := answers(t, ts, "48900", id, 1); got != "PENDING" {
		t.Errorf("a 404 for another agent moved the launch on: %s", got)
	}
	if st := s.Stats(); st.StatusCalls != 3 || st.StatusByAnswer["RCS404"] != 2 || st.StatusByAgent["48901"] != 1 {
		t.Errorf("stats %+v", st)
	}
}

// Launch answers that carry no usable agent_launch_id issue none.
func TestStatusOnlyForIssuedLaunches(t *testing.T) {
	s, ts := start(t, Config{})
	s.Script("5", StepNoLaunchID, StepGateway)
	call(t, ts, body("5"))
	call(t, ts, body("5"))
	s.mu.Lock()
	n := len(s.launches)
	s.mu.Unlock()
	if n != 0 {
		t.Errorf("%d launches issued by NO_LAUNCH_ID and RCS502", n)
	}
	s.Script("5", StepCodeNotString)
	call(t, ts, body("5"))
	s.mu.Lock()
	n = len(s.launches)
	s.mu.Unlock()
	if n != 1 {
		t.Errorf("CODE_NUMBER issued %d launches, want 1", n)
	}
}

func TestStatusRequestChecks(t *testing.T) {
	s, ts := start(t, Config{})
	id := launched(t, ts, "48900")
	for _, tc := range []struct {
		name   string
		agent  string
		opts   []option
		status int
		code   string
	}{
		{"no key", "48900", []option{header("api-key", "")}, 401, "RCS401"},
		{"wrong key", "48900", []option{header("api-key", testKey+"x")}, 401, "RCS401"},
		{"POST", "48900", []option{method(http.MethodPost)}, 405, "RCS405"},
		{"no agent_number", "", nil, 400, "RCS400"},
	} {
		r := poll(t, ts, tc.agent, id, tc.opts...)
		if r.status != tc.status || r.kaleyra(t)["code"] != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
		if tc.status == 405 && r.header.Get("Allow") != http.MethodGet {
			t.Errorf("405 with Allow %q", r.header.Get("Allow"))
		}
	}
	if got := answers(t, ts, "48900", id, 1); got != "PENDING" {
		t.Errorf("rejected calls moved the launch on: %s", got)
	}
	st := s.Stats()
	if st.StatusCalls != 5 || st.StatusByAnswer["RCS401"] != 2 || st.StatusByAgent["48900"] != 4 {
		t.Errorf("stats %+v", st)
	}
	sj, _ := json.Marshal(st)
	if strings.Contains(string(sj), testKey) {
		t.Errorf("stats hold the key: %s", sj)
	}
}

func TestStatusResetAndControl(t *testing.T) {
	s, ts := start(t, Config{})
	id := launched(t, ts, "48900")
	answers(t, ts, "48900", id, 1)

	_, b := control(t, ts, "GET", "/_sim/stats", "")
	sameJSON(t, b, `{"calls":1,"by_code":{"RCS902":1},"by_agent":{"48900":1},"in_flight":0,"max_in_flight":1,
		"status_calls":1,"status_by_agent":{"48900":1},"status_by_answer":{"pending":1}}`)

	// Reset forgets the counts but not the launch, which keeps its place.
	control(t, ts, "POST", "/_sim/reset", "")
	if st := s.Stats(); st.StatusCalls != 0 || len(st.StatusByAgent) != 0 || len(st.StatusByAnswer) != 0 {
		t.Errorf("after reset: %+v", st)
	}
	if got := answers(t, ts, "48900", id, 1); got != "PENDING" {
		t.Errorf("after reset: %s, want the second step", got)
	}

	code, b := control(t, ts, "POST", "/_sim/config", `{"launch_states":{"489":["rejected"]},"default_launch_states":["suspended"]}`)
	if code != 204 {
		t.Fatalf("config: %d %s", code, b)
	}
	if got := answers(t, ts, "48900", id, 1) + " " + answers(t, ts, "1", launched(t, ts, "1"), 1); got != "REJECTED SUSPENDED" {
		t.Errorf("after config: %s", got)
	}
	if c := s.config(); c.FaultRate != 0 || c.APIKey != testKey || len(c.LaunchStates["489"]) != 1 {
		t.Errorf("config %+v", c)
	}

	for _, tc := range []struct{ body, field string }{
		{`{"launch_states":{"4":["pending","LIVE"]}}`, `launch_states["4"][1]: unknown step "LIVE"`},
		{`{"launch_states":{"4":[]}}`, `launch_states["4"]: must list at least one step`},
		{`{"default_launch_states":["PENDING"]}`, `default_launch_states[0]: unknown step`},
		{`{"launch_states":["pending"]}`, "launch_states: must be an object"},
	} {
		code, b := control(t, ts, "POST", "/_sim/config", tc.body)
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		if code != 400 || !strings.Contains(e.Error, tc.field) {
			t.Errorf("config %s: %d %s, want 400 naming %q", tc.body, code, b, tc.field)
		}
	}
}

func TestSetConfigPanicsOnUnknownStatusStep(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "LIVE") {
			t.Errorf("recovered %v, want a panic naming the step", r)
		}
	}()
	New(Config{DefaultLaunchStates: []StatusStep{"LIVE"}})
}

// Config given to New is copied: changing the caller's map afterwards
// changes nothing.
func TestStatusConfigCopied(t *testing.T) {
	states := map[string][]StatusStep{"1": {StatusRejected}}
	_, ts := start(t, Config{LaunchStates: states})
	states["1"][0] = StatusLaunched
	states["2"] = []StatusStep{StatusLaunched}
	if got := answers(t, ts, "1", launched(t, ts, "1"), 1); got != "REJECTED" {
		t.Errorf("got %s", got)
	}
}

// Every status call is recorded with its arrival, the launch's place in its
// sequence and the answer, apart from the launch calls; StatusLatency delays
// the answers, and a call whose client leaves during it is recorded too,
// having moved its launch on.
func TestStatusCallsRecorded(t *testing.T) {
	s, ts := start(t, Config{StatusLatency: 30 * time.Millisecond,
		LaunchStates: map[string][]StatusStep{"7": {StatusPending, StatusHTML, StatusLaunched}}})
	id := launched(t, ts, "71")
	before := time.Now()
	if got := answers(t, ts, "71", id, 2); got != "PENDING 502" {
		t.Fatalf("answers %s", got)
	}
	poll(t, ts, "71", id, header("api-key", "")) // refused: no step used

	// A client that leaves during StatusLatency.
	s.SetConfig(Config{APIKey: testKey, StatusLatency: time.Minute,
		LaunchStates: map[string][]StatusStep{"7": {StatusPending, StatusHTML, StatusLaunched}}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	q := url.Values{"agent_number": {"71"}, "agent_launch_id": {id}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/v1/"+testSID+"/rcs/agent/agentlaunchstatus?"+q.Encode(), nil)
	req.Header.Set("api-key", testKey)
	if _, err := ts.Client().Do(req); err == nil {
		t.Error("a status call that outlived its client's deadline was answered")
	}
	cancel()
	waitFor(t, "the left call's duration", func() bool { c := s.StatusCalls(); return len(c) == 4 && c[3].Duration > 0 })

	calls := s.StatusCalls()
	want := []struct {
		poll   int
		answer string
		status int
	}{{1, "pending", 200}, {2, "HTML", 502}, {0, "RCS401", 401}, {3, "launched", 200}}
	for i, w := range want {
		c := calls[i]
		if c.AgentNo != "71" || c.AgentLaunchID != id || c.SID != testSID || c.Poll != w.poll || c.Answer != w.answer || c.HTTPStatus != w.status {
			t.Errorf("status call %d: %+v, want poll %d answered %s (%d)", i, c, w.poll, w.answer, w.status)
		}
		if c.At.Before(before) || (i > 0 && c.At.Before(calls[i-1].At)) {
			t.Errorf("status call %d arrived at %v: not in order", i, c.At)
		}
	}
	for i := range 3 {
		if calls[i].Duration < 30*time.Millisecond {
			t.Errorf("status call %d took %v, less than StatusLatency", i, calls[i].Duration)
		}
	}
	if calls[3].Duration >= time.Minute {
		t.Errorf("the call whose client left took %v", calls[3].Duration)
	}
	// The left call took a step: the next answer is the last one's.
	s.SetConfig(Config{APIKey: testKey, LaunchStates: map[string][]StatusStep{"7": {StatusPending, StatusHTML, StatusLaunched}}})
	if got := answers(t, ts, "71", id, 1); got != "LAUNCHED" {
		t.Errorf("after the left call: %s", got)
	}
	if st := s.Stats(); len(s.Calls()) != 1 || st.Calls != 1 || st.StatusCalls != 5 || len(s.StatusCalls()) != 5 {
		t.Errorf("%d launch calls recorded, %d status calls; stats %+v", len(s.Calls()), len(s.StatusCalls()), st)
	}

	code, b := control(t, ts, "GET", "/_sim/status_calls", "")
	var got []StatusCall
	if err := json.Unmarshal(b, &got); code != 200 || err != nil || len(got) != 5 || got[4].Answer != "launched" || got[4].Poll != 4 {
		t.Errorf("GET /_sim/status_calls: %d %s (%v)", code, b, err)
	}
	if strings.Contains(string(b), testKey) {
		t.Errorf("status calls hold the key: %s", b)
	}
	if code, b := control(t, ts, "POST", "/_sim/config", `{"status_latency":"25ms"}`); code != 204 || s.config().StatusLatency != 25*time.Millisecond {
		t.Errorf("config status_latency: %d %s, now %v", code, b, s.config().StatusLatency)
	}
	if code, b := control(t, ts, "POST", "/_sim/config", `{"status_latency":"-1s"}`); code != 400 || !strings.Contains(string(b), "status_latency") {
		t.Errorf("config status_latency -1s: %d %s", code, b)
	}

	s.Reset()
	if c := s.StatusCalls(); len(c) != 0 {
		t.Errorf("%d status calls after Reset", len(c))
	}
}
