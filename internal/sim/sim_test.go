package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/launch"
)

const (
	testKey = "k3y-that-must-never-leak"
	testSID = "HXAP16XXXX"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// start serves a simulator for one test.
func start(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.APIKey == "" {
		cfg.APIKey = testKey
	}
	s := New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

// job is a valid launch job, as rcslaunch sends it.
func job(agentNo string) launch.Job {
	return launch.Job{
		Launch: launch.Launch{
			OptinDescription:        "Bigbasket Optin",
			TriggerDescription:      "START",
			InteractionsDescription: "Demo Messages",
			OptoutDescription:       "Stop",
			AgentAccessInstructions: "This is a demo account <b>&</b>",
			ProviderLaunchID:        "launch_001_google_rcs",
			LaunchName:              "launch_" + agentNo,
			LaunchType:              "1",
			VideoURIs:               []string{"https://www.example.com/videos"},
			ScreenshotURIs:          []string{"https://www.example.com/uris"},
			AgentNo:                 agentNo,
		},
		Regions: []launch.Region{{
			RegionID: "8346a250-d7a9-47dc-8202-a8b1c2d3e4e8",
			Region:   "4f4bf2b0-5110-44e1-9aa1-43392c7d3b17",
		}},
	}
}

func body(agentNo string) []byte { return job(agentNo).Body() }

// reply is an answer as the client sees it.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// kaleyra decodes a Kaleyra-shaped answer, numbers kept exact.
func (r reply) kaleyra(t *testing.T) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %.200q", err, r.body)
	}
	return m
}

type option func(*http.Request)

func header(k, v string) option { return func(r *http.Request) { r.Header.Set(k, v) } }
func method(m string) option    { return func(r *http.Request) { r.Method = m } }
func withSID(sid string) option {
	return func(r *http.Request) { r.URL.Path = "/v1/" + sid + "/rcs/agent/launch" }
}

// call sends one launch request with the test key and JSON content type,
// as modified by opts.
func call(t *testing.T, ts *httptest.Server, b []byte, opts ...option) reply {
	t.Helper()
	return callCtx(t, context.Background(), ts, b, opts...)
}

func callCtx(t *testing.T, ctx context.Context, ts *httptest.Server, b []byte, opts ...option) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/"+testSID+"/rcs/agent/launch", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return send(t, ts, req, opts...)
}

// send sends req with the test key, as modified by opts, and reads the
// answer.
func send(t *testing.T, ts *httptest.Server, req *http.Request, opts ...option) reply {
	t.Helper()
	req.Header.Set("api-key", testKey)
	for _, o := range opts {
		o(req)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	return reply{resp.StatusCode, resp.Header, got}
}

// sameJSON fails unless got and want decode to equal values.
func sameJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("answer is not JSON: %v: %q", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation: %v", err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("answer\n  got  %s\n  want %s", gb, wb)
	}
}

// The failure samples of Kaleyra's launch page, verbatim.
const (
	sampleMissing = `{
"code": "RCS904",
"message": "Failed to create Agent launch request",
"data": [],
"error": {
"error_code": "PROV_ERROR",
"error_message": "{\"status\":\"FAILED\",\"message\":\"Missing required fields in launch payload\"}"
}
}`
	sampleInvalidJSON = `{
"code": "RCS701",
"message": "Invalid json format passed",
"data": [],
"error": {
"error_code": "INVALID_JSON_PAYLOAD",
"error_message": "invalid character '}' looking for beginning of object key string"
}
}`
	sampleDisabled = `{
"code": "RCS601",
"message": "RCS Channel is not enabled for this User",
"data": [],
"error": {
"error_code": "RCS_CHANNEL_DISABLED",
"error_message": "RCS Channel is not enabled for this User"
}
}`
	sampleMethod = `{
"code": "RCS405",
"message": "Method not allowed",
"data": [],
"error": {
"error_code": "METHOD_NOT_ALLOWED",
"error_message": "Method not allowed"
}
}`
	sampleGateway = `{
"code": "RCS502",
"message": "Internal Gateway Error",
"data": [],
"error": {
"error_code": "RCS_CHANNEL_INTERNAL_ERROR",
"error_message": "Internal Gateway Error"
}
}`
)

func TestSuccessEchoesLaunch(t *testing.T) {
	s, ts := start(t, Config{})
	before := time.Now().UTC().Add(-time.Second)
	r := call(t, ts, body("48900"))
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	prefix := `{"code":"RCS902","message":"Agent launch request created successfully","data":{"launch":{"provider_launch_id":`
	if !bytes.HasPrefix(r.body, []byte(prefix)) {
		t.Errorf("answer does not follow the sample's order:\n%s", r.body)
	}
	m := r.kaleyra(t)
	data := m["data"].(map[string]any)
	l := data["launch"].(map[string]any)
	want := map[string]any{
		"provider_launch_id":        "launch_001_google_rcs",
		"launch_name":               "launch_48900",
		"launch_type":               json.Number("1"),
		"optin_description":         "Bigbasket Optin",
		"trigger_description":       "START",
		"interactions_description":  "Demo Messages",
		"optout_description":        "Stop",
		"agent_access_instructions": "This is a demo account <b>&</b>",
		"status":                    "ACTIVE",
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("launch.%s = %#v, want %#v", k, l[k], v)
		}
	}
	if fmt.Sprint(l["video_uris"]) != "[https://www.example.com/videos]" || fmt.Sprint(l["screenshot_uris"]) != "[https://www.example.com/uris]" {
		t.Errorf("uris not echoed: %v %v", l["video_uris"], l["screenshot_uris"])
	}
	if _, ok := l["agent_no"]; ok {
		t.Errorf("launch echoes agent_no, which Kaleyra's sample does not")
	}
	for _, k := range []string{"create_date", "modified_date"} {
		at, err := time.Parse(dateLayout, l[k].(string))
		if err != nil || at.Before(before.Truncate(time.Second)) || at.After(time.Now().UTC().Add(time.Second)) {
			t.Errorf("launch.%s = %q (%v), want now as in %q", k, l[k], err, "Jan 12, 2026, 12:42:58 PM")
		}
	}
	id, _ := l["agent_launch_id"].(string)
	if !uuidV4.MatchString(id) {
		t.Errorf("agent_launch_id %q is not a UUID v4", id)
	}
	regions := data["regions"].([]any)
	if len(regions) != 1 {
		t.Fatalf("regions %v", regions)
	}
	wantRegion := map[string]any{
		"region_id": "8346a250-d7a9-47dc-8202-a8b1c2d3e4e8", "region": "4f4bf2b0-5110-44e1-9aa1-43392c7d3b17",
		"entry_point": json.Number("0"), "launch_state": json.Number("0"), "dirty_flag": "NEW",
	}
	if fmt.Sprint(regions[0]) != fmt.Sprint(wantRegion) {
		t.Errorf("region %v, want %v", regions[0], wantRegion)
	}
	if c, ok := data["contacts"].([]any); !ok || len(c) != 0 {
		t.Errorf("contacts %#v, want []", data["contacts"])
	}
	if e, ok := m["error"].(map[string]any); !ok || len(e) != 0 {
		t.Errorf("error %#v, want {}", m["error"])
	}

	again := call(t, ts, body("48900")).kaleyra(t)
	if again["data"].(map[string]any)["launch"].(map[string]any)["agent_launch_id"] == id {
		t.Errorf("two launches got the same agent_launch_id %s", id)
	}
	calls := s.Calls()
	if len(calls) != 2 || calls[0].Code != "RCS902" || calls[0].HTTPStatus != 200 || calls[0].SID != testSID ||
		calls[0].AgentNo != "48900" || !bytes.Equal(calls[0].Body, body("48900")) {
		t.Errorf("calls %+v", calls)
	}
}

func TestSuccessWithoutOptionalFields(t *testing.T) {
	_, ts := start(t, Config{})
	cases := map[string]string{ // launch_type as sent -> as echoed
		`"3"`: "3", `7`: "7", `""`: "1", `null`: "1", ``: "1",
	}
	for sent, echoed := range cases {
		lt := ""
		if sent != "" {
			lt = `,"launch_type":` + sent
		}
		b := `{"launch":{"optin_description":"a","trigger_description":"b","interactions_description":"c",` +
			`"optout_description":"d","agent_access_instructions":"e","agent_no":"1","provider_launch_id":null` + lt + `}}`
		r := call(t, ts, []byte(b))
		if r.status != 200 {
			t.Fatalf("launch_type %s: status %d %s", sent, r.status, r.body)
		}
		d := r.kaleyra(t)["data"].(map[string]any)
		l := d["launch"].(map[string]any)
		if l["launch_type"] != json.Number(echoed) {
			t.Errorf("launch_type %s echoed as %#v, want %s", sent, l["launch_type"], echoed)
		}
		if _, ok := l["provider_launch_id"]; ok {
			t.Errorf("null provider_launch_id echoed")
		}
		if rs, ok := d["regions"].([]any); !ok || len(rs) != 0 {
			t.Errorf("regions %#v, want []", d["regions"])
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	s, ts := start(t, Config{})
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		r := call(t, ts, body("1"), method(m))
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
			t.Errorf("%s: status %d, Allow %q", m, r.status, r.header.Get("Allow"))
		}
		sameJSON(t, r.body, sampleMethod)
	}
	if got := s.Stats().ByCode["RCS405"]; got != 4 {
		t.Errorf("RCS405 counted %d times, want 4", got)
	}
}

func TestAPIKey(t *testing.T) {
	const unauthorized = `{"code":"RCS401","message":"Unauthorized","data":[],` +
		`"error":{"error_code":"UNAUTHORIZED","error_message":"Invalid or missing api-key"}}`
	_, ts := start(t, Config{})
	for name, opt := range map[string]option{
		"missing": func(r *http.Request) { r.Header.Del("api-key") },
		"empty":   header("api-key", ""),
		"wrong":   header("api-key", testKey+"x"),
		"prefix":  header("api-key", testKey[:5]),
	} {
		r := call(t, ts, body("1"), opt)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s key: status %d, want 401", name, r.status)
		}
		sameJSON(t, r.body, unauthorized)
	}

	anyKey := httptest.NewServer(New(Config{})) // no key configured
	defer anyKey.Close()
	if r := call(t, anyKey, body("1"), header("api-key", "whatever")); r.status != 200 {
		t.Errorf("no key configured, some key sent: status %d, want 200", r.status)
	}
	if r := call(t, anyKey, body("1"), header("api-key", "")); r.status != 401 {
		t.Errorf("no key configured, none sent: status %d, want 401", r.status)
	}
}

func TestContentType(t *testing.T) {
	_, ts := start(t, Config{})
	for ct, ok := range map[string]bool{
		"application/json":                  true,
		"Application/JSON":                  true,
		"application/json; charset=utf-8":   true,
		"APPLICATION/json;charset=UTF-8":    true,
		"":                                  false,
		"text/plain":                        false,
		"application/x-www-form-urlencoded": false,
		"application/jsonx":                 false,
		"application/json; =":               false,
	} {
		r := call(t, ts, body("1"), header("Content-Type", ct))
		if ok {
			if r.status != 200 {
				t.Errorf("Content-Type %q: status %d, want 200", ct, r.status)
			}
			continue
		}
		m := r.kaleyra(t)
		e, _ := m["error"].(map[string]any)
		if r.status != 400 || m["code"] != "RCS701" || e["error_code"] != "INVALID_JSON_PAYLOAD" ||
			!strings.Contains(e["error_message"].(string), "Content-Type must be application/json") {
			t.Errorf("Content-Type %q: status %d %s", ct, r.status, r.body)
		}
	}
}

func TestInvalidJSON(t *testing.T) {
	s, ts := start(t, Config{})
	r := call(t, ts, []byte(`{"launch":{"agent_no":"1",}}`))
	if r.status != 400 {
		t.Errorf("status %d, want 400", r.status)
	}
	sameJSON(t, r.body, sampleInvalidJSON)

	huge := append([]byte(`{"launch":{"agent_no":"`), bytes.Repeat([]byte("9"), maxBody)...)
	huge = append(huge, `"}}`...)
	for name, tc := range map[string]struct {
		body []byte
		msg  string
	}{
		"empty":      {nil, "unexpected end of JSON input"},
		"array":      {[]byte(`[1,2]`), "request body must be a JSON object"},
		"null":       {[]byte(`null`), "request body must be a JSON object"},
		"truncated":  {body("1")[:20], "unexpected end of JSON input"},
		"over 1 MiB": {huge, "request body is larger than 1048576 bytes"},
	} {
		r := call(t, ts, tc.body)
		m := r.kaleyra(t)
		e, _ := m["error"].(map[string]any)
		if r.status != 400 || m["code"] != "RCS701" || e["error_message"] != tc.msg {
			t.Errorf("%s: status %d %s, want RCS701 %q", name, r.status, r.body, tc.msg)
		}
	}
	// Only the valid JSON ([1,2] and null) is recorded.
	var recorded []string
	for _, c := range s.Calls() {
		if c.Body != nil {
			recorded = append(recorded, string(c.Body))
		}
	}
	slices.Sort(recorded) // the cases ran in a map's order
	if fmt.Sprint(recorded) != "[[1,2] null]" {
		t.Errorf("recorded bodies %.100q, want only [1,2] and null", recorded)
	}
}

func TestDisabledSID(t *testing.T) {
	_, ts := start(t, Config{DisabledSIDs: []string{"OFF1", "OFF2"}})
	r := call(t, ts, body("1"), withSID("OFF2"))
	if r.status != 400 {
		t.Errorf("status %d, want 400", r.status)
	}
	sameJSON(t, r.body, sampleDisabled)
	// The account is checked before the payload.
	sameJSON(t, call(t, ts, []byte(`{}`), withSID("OFF1")).body, sampleDisabled)
	if r := call(t, ts, body("1"), withSID("ON")); r.status != 200 {
		t.Errorf("enabled SID: status %d", r.status)
	}
}

func TestMissingRequiredFields(t *testing.T) {
	_, ts := start(t, Config{})
	for _, b := range missingFieldBodies() {
		r := call(t, ts, []byte(b))
		if r.status != 400 {
			t.Errorf("%s: status %d, want 400", b, r.status)
		}
		sameJSON(t, r.body, sampleMissing)
	}
	for _, b := range invalidFieldBodies {
		m := call(t, ts, []byte(b)).kaleyra(t)
		e := m["error"].(map[string]any)
		if m["code"] != "RCS904" || e["error_code"] != "PROV_ERROR" || !strings.Contains(e["error_message"].(string), "Invalid") {
			t.Errorf("%s: %v", b, m)
		}
	}
}

// missingFieldBodies are launch bodies answered with Kaleyra's RCS904
// sample: each required field absent, empty, blank, null or no string, no
// launch object, and a region without its region.
func missingFieldBodies() []string {
	var bodies []string
	for _, f := range requiredFields {
		for _, v := range []string{"<absent>", `""`, `"   "`, `null`, `12`, `["x"]`} {
			var m map[string]any
			json.Unmarshal(body("1"), &m)
			l := m["launch"].(map[string]any)
			if v == "<absent>" {
				delete(l, f)
			} else {
				var x any
				json.Unmarshal([]byte(v), &x)
				l[f] = x
			}
			b, _ := json.Marshal(m)
			bodies = append(bodies, string(b))
		}
	}
	return append(bodies,
		`{}`, `{"launch":null}`, `{"launch":"x"}`, `{"launch":[]}`,
		`{"launch":{"optin_description":"a","trigger_description":"b","interactions_description":"c","optout_description":"d","agent_access_instructions":"e","agent_no":"1"},"regions":[{"region_id":"x"}]}`,
	)
}

// invalidFieldBodies are launch bodies answered RCS904 with a message of the
// simulator's own.
var invalidFieldBodies = []string{
	`{"launch":{"optin_description":"a","trigger_description":"b","interactions_description":"c","optout_description":"d","agent_access_instructions":"e","agent_no":"1","launch_type":"one"}}`,
	`{"launch":{"optin_description":"a","trigger_description":"b","interactions_description":"c","optout_description":"d","agent_access_instructions":"e","agent_no":"1"},"regions":{"region":"x"}}`,
}

func TestScriptedKaleyraFailures(t *testing.T) {
	s, ts := start(t, Config{})
	for _, tc := range []struct {
		step   Step
		status int
		want   string
	}{
		{StepGateway, 500, sampleGateway},
		{StepServerError, 500, `{"code":"RCS500","message":"Internal server error","data":[],"error":{"error_code":"INTERNAL_SERVER_ERROR","error_message":"Internal server error"}}`},
		{StepMissingFields, 400, sampleMissing},
		{StepInvalidJSON, 400, sampleInvalidJSON},
		{StepDisabled, 400, sampleDisabled},
	} {
		s.Script("A", tc.step)
		r := call(t, ts, body("A"))
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d", tc.step, r.status, tc.status)
		}
		sameJSON(t, r.body, tc.want)
	}
}

func TestScriptedMisbehaviour(t *testing.T) {
	s, ts := start(t, Config{})
	check := map[Step]func(t *testing.T, r reply){
		StepThrottle: func(t *testing.T, r reply) {
			if r.status != 429 || string(r.body) != `{"message":"Too Many Requests"}` || r.header.Get("Retry-After") != "" {
				t.Errorf("status %d, body %s, Retry-After %q", r.status, r.body, r.header.Get("Retry-After"))
			}
		},
		StepEmpty: func(t *testing.T, r reply) {
			if r.status != 200 || len(r.body) != 0 {
				t.Errorf("status %d, %d bytes", r.status, len(r.body))
			}
		},
		StepHTML: func(t *testing.T, r reply) {
			if r.status != 502 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !bytes.Contains(r.body, []byte("<html>")) {
				t.Errorf("status %d, %s: %s", r.status, r.header.Get("Content-Type"), r.body)
			}
		},
		StepTruncated: func(t *testing.T, r reply) {
			if r.status != 200 || json.Valid(r.body) || !bytes.HasPrefix(r.body, []byte(`{"code":"RCS902"`)) || len(r.body) < 200 {
				t.Errorf("status %d, body %s", r.status, r.body)
			}
		},
		StepHuge: func(t *testing.T, r reply) {
			if r.status != 200 || len(r.body) != 10<<20 || !bytes.HasPrefix(r.body, []byte(`{"code":"RCS902"`)) || !json.Valid(r.body) {
				t.Errorf("status %d, %d bytes", r.status, len(r.body))
			}
		},
		StepCodeNotString: func(t *testing.T, r reply) {
			m := r.kaleyra(t)
			l := m["data"].(map[string]any)["launch"].(map[string]any)
			if r.status != 200 || m["code"] != json.Number("902") || !uuidV4.MatchString(l["agent_launch_id"].(string)) {
				t.Errorf("status %d, body %s", r.status, r.body)
			}
		},
		StepNoLaunchID: func(t *testing.T, r reply) {
			m := r.kaleyra(t)
			l := m["data"].(map[string]any)["launch"].(map[string]any)
			if _, has := l["agent_launch_id"]; r.status != 200 || m["code"] != "RCS902" || has || l["status"] != "ACTIVE" {
				t.Errorf("status %d, body %s", r.status, r.body)
			}
		},
	}
	for st, fn := range check {
		t.Run(string(st), func(t *testing.T) {
			s.Reset()
			s.Script("A", st)
			fn(t, call(t, ts, body("A")))
			c := s.Calls()
			if len(c) != 1 || c[0].Code != string(st) || c[0].HTTPStatus != status[st] {
				t.Errorf("recorded %+v", c)
			}
			if r := call(t, ts, body("A")); r.status != 200 {
				t.Errorf("after the script: status %d", r.status)
			}
		})
	}
}

func TestScriptSequenceThenNormal(t *testing.T) {
	s, ts := start(t, Config{})
	s.Script("A", StepGateway, StepGateway)
	s.Script("A", StepThrottle) // appends
	// A rejected request does not use a step.
	if r := call(t, ts, []byte(`{"launch":{"agent_no":"A"}}`)); r.status != 400 {
		t.Fatalf("status %d", r.status)
	}
	if r := call(t, ts, body("B")); r.status != 200 {
		t.Errorf("other agent: status %d, want 200", r.status)
	}
	var got []int
	for range 5 {
		got = append(got, call(t, ts, body("A")).status)
	}
	if fmt.Sprint(got) != "[500 500 429 200 200]" {
		t.Errorf("statuses %v, want [500 500 429 200 200]", got)
	}
	st := s.Stats()
	if st.Calls != 7 || st.ByAgent["A"] != 6 || st.ByAgent["B"] != 1 || st.ByCode["RCS502"] != 2 ||
		st.ByCode["HTTP429"] != 1 || st.ByCode["RCS902"] != 3 || st.ByCode["RCS904"] != 1 {
		t.Errorf("stats %+v", st)
	}

	defer func() {
		if recover() == nil {
			t.Errorf("Script with an unknown step did not panic")
		}
	}()
	s.Script("A", "RCS999")
}

func TestFaultRate(t *testing.T) {
	s, ts := start(t, Config{FaultRate: 1})
	for range 5 {
		if r := call(t, ts, body("1")); r.status != 500 || r.kaleyra(t)["code"] != "RCS502" {
			t.Fatalf("fault rate 1: status %d %s", r.status, r.body)
		}
	}
	s.Script("1", StepSucceed)
	if r := call(t, ts, body("1")); r.status != 200 {
		t.Errorf("a scripted success under fault rate 1: status %d", r.status)
	}
	// The 502 storm ends.
	s.SetConfig(Config{APIKey: testKey, FaultRate: 0})
	for range 5 {
		if r := call(t, ts, body("1")); r.status != 200 {
			t.Fatalf("fault rate 0: status %d", r.status)
		}
	}

	// A seed replays the same faults.
	seq := func() string {
		_, ts := start(t, Config{FaultRate: 0.5, Seed: 42})
		var b strings.Builder
		for range 40 {
			fmt.Fprint(&b, call(t, ts, body("1")).status/100)
		}
		return b.String()
	}
	a, b := seq(), seq()
	if a != b || !strings.Contains(a, "2") || !strings.Contains(a, "5") {
		t.Errorf("seeded sequences %s and %s", a, b)
	}
}

func TestLatency(t *testing.T) {
	s, ts := start(t, Config{Latency: 80 * time.Millisecond, Jitter: 20 * time.Millisecond})
	t0 := time.Now()
	r := call(t, ts, body("1"), method(http.MethodGet)) // every answer waits
	if el := time.Since(t0); el < 80*time.Millisecond || r.status != 405 {
		t.Errorf("answered %d after %v, want 405 after at least 80ms", r.status, el)
	}
	if d := s.Calls()[0].Duration; d < 80*time.Millisecond || d > 2*time.Second {
		t.Errorf("recorded duration %v", d)
	}

	// Jitter alone: answers spread over 0..Jitter.
	s.SetConfig(Config{APIKey: testKey, Jitter: 40 * time.Millisecond, Seed: 7})
	s.Reset()
	for range 8 {
		call(t, ts, body("1"))
	}
	var lo, hi time.Duration = time.Hour, 0
	for _, c := range s.Calls() {
		lo, hi = min(lo, c.Duration), max(hi, c.Duration)
	}
	if hi-lo < 5*time.Millisecond || hi > time.Second {
		t.Errorf("durations with 40ms jitter from %v to %v", lo, hi)
	}
}

// Leaving calls return promptly when the client gives up, and stop counting
// as in flight.
func TestClientGoneDuringLatencyOrHang(t *testing.T) {
	s, ts := start(t, Config{})
	for _, tc := range []struct {
		name  string
		setup func()
	}{
		{"latency", func() { s.SetConfig(Config{APIKey: testKey, Latency: time.Minute}) }},
		{"hang", func() { s.SetConfig(Config{APIKey: testKey}); s.Script("1", StepHang) }},
	} {
		tc.setup()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/S/rcs/agent/launch", bytes.NewReader(body("1")))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("api-key", testKey)
		t0 := time.Now()
		_, err := ts.Client().Do(req)
		cancel()
		if err == nil || time.Since(t0) > time.Second {
			t.Errorf("%s: err %v after %v, want a timeout after 100ms", tc.name, err, time.Since(t0))
		}
		waitFor(t, tc.name+": in-flight back to 0", func() bool { return s.Stats().InFlight == 0 })
	}
	c := s.Calls()
	if len(c) != 2 || c[1].Code != "HANG" || c[1].HTTPStatus != 0 || c[1].Duration < 50*time.Millisecond {
		b, _ := json.Marshal(c)
		t.Errorf("calls %s", b)
	}
}

// config returns a copy of the simulator's current configuration.
func (s *Server) config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestInFlight(t *testing.T) {
	// Every call must still be in flight when the last one arrives: on a
	// busy machine 150ms was not always enough to start 20 calls.
	s, ts := start(t, Config{Latency: 1500 * time.Millisecond})
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if r := call(t, ts, body(fmt.Sprint(i))); r.status != 200 {
				t.Errorf("status %d", r.status)
			}
		})
	}
	waitFor(t, "every call in flight", func() bool { return s.Stats().InFlight == n })
	wg.Wait()
	st := s.Stats()
	if st.InFlight != 0 || st.MaxInFlight != n || st.Calls != n || len(st.ByAgent) != n {
		t.Errorf("stats %+v, want %d calls, max %d in flight, none now", st, n, n)
	}
}

// Many goroutines share scripts, the fault source and the history.
func TestConcurrentUse(t *testing.T) {
	s, ts := start(t, Config{FaultRate: 0.3, Jitter: time.Millisecond})
	const agents, per = 10, 8
	for a := range agents {
		s.Script(fmt.Sprint(a), StepThrottle, StepThrottle)
	}
	var wg sync.WaitGroup
	for a := range agents {
		for range per {
			wg.Go(func() { call(t, ts, body(fmt.Sprint(a))) })
		}
	}
	wg.Go(func() {
		for range 20 {
			s.Stats()
			s.Calls()
			s.SetConfig(Config{APIKey: testKey, FaultRate: 0.3, Jitter: time.Millisecond})
		}
	})
	wg.Wait()
	st := s.Stats()
	if st.Calls != agents*per || st.ByCode["HTTP429"] != 2*agents ||
		st.ByCode["RCS902"]+st.ByCode["RCS502"] != agents*(per-2) {
		t.Errorf("stats %+v", st)
	}
	for a := range agents {
		if st.ByAgent[fmt.Sprint(a)] != per {
			t.Errorf("agent %d: %d calls", a, st.ByAgent[fmt.Sprint(a)])
		}
	}
}

func TestReset(t *testing.T) {
	s, ts := start(t, Config{})
	s.Script("1", StepGateway)
	s.Script("2", StepGateway)
	call(t, ts, body("1"))
	s.Reset()
	if c, st := s.Calls(), s.Stats(); len(c) != 0 || st.Calls != 0 || len(st.ByCode) != 0 || st.MaxInFlight != 0 {
		t.Errorf("after Reset: calls %v, stats %+v", c, st)
	}
	if r := call(t, ts, body("2")); r.status != 200 {
		t.Errorf("script survived Reset: status %d", r.status)
	}
}

// control sends one control request and returns its status and body.
func control(t *testing.T, ts *httptest.Server, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestControlAPI(t *testing.T) {
	s, ts := start(t, Config{FaultRate: 0})

	if code, b := control(t, ts, "POST", "/_sim/script", `{"agent_no":"A","steps":["RCS502","HTTP429"]}`); code != 204 {
		t.Fatalf("script: %d %s", code, b)
	}
	if got := []int{call(t, ts, body("A")).status, call(t, ts, body("A")).status, call(t, ts, body("A")).status}; fmt.Sprint(got) != "[500 429 200]" {
		t.Errorf("scripted over HTTP: %v", got)
	}

	code, b := control(t, ts, "GET", "/_sim/calls", "")
	var calls []map[string]any
	if err := json.Unmarshal(b, &calls); code != 200 || err != nil || len(calls) != 3 {
		t.Fatalf("calls: %d %v %s", code, err, b)
	}
	for _, k := range []string{"at", "sid", "agent_no", "code", "http_status", "body", "key_ok", "duration_ns"} {
		if _, ok := calls[0][k]; !ok {
			t.Errorf("calls[0] lacks %q: %v", k, calls[0])
		}
	}
	if calls[0]["code"] != "RCS502" || calls[1]["http_status"] != 429.0 || calls[2]["sid"] != testSID {
		t.Errorf("calls %v", calls)
	}
	var typed []Call
	if err := json.Unmarshal(b, &typed); err != nil || typed[0].AgentNo != "A" || !bytes.Equal(typed[0].Body, body("A")) {
		t.Errorf("calls do not decode into []Call: %v %+v", err, typed)
	}

	code, b = control(t, ts, "GET", "/_sim/stats", "")
	sameJSON(t, b, `{"calls":3,"by_code":{"RCS502":1,"HTTP429":1,"RCS902":1},"by_agent":{"A":3},"in_flight":0,"max_in_flight":1}`)

	if code, b := control(t, ts, "POST", "/_sim/config", `{"fault_rate":1,"latency":"30ms"}`); code != 204 {
		t.Fatalf("config: %d %s", code, b)
	}
	if r := call(t, ts, body("B")); r.status != 500 {
		t.Errorf("after fault_rate 1: status %d", r.status)
	}
	// Only the given fields change.
	control(t, ts, "POST", "/_sim/config", `{"disabled_sids":["`+testSID+`"]}`)
	c := s.config()
	if c.FaultRate != 1 || c.Latency != 30*time.Millisecond || c.APIKey != testKey || len(c.DisabledSIDs) != 1 {
		t.Errorf("config %+v", c)
	}
	if r := call(t, ts, body("B")); r.status != 400 || r.kaleyra(t)["code"] != "RCS601" {
		t.Errorf("after disabling the SID: %d %s", r.status, r.body)
	}
	control(t, ts, "POST", "/_sim/config", `{"fault_rate":0,"latency":"0s","jitter":"0s","disabled_sids":[]}`)
	if r := call(t, ts, body("B")); r.status != 200 {
		t.Errorf("after clearing: %d %s", r.status, r.body)
	}

	if code, _ := control(t, ts, "POST", "/_sim/reset", ""); code != 204 || len(s.Calls()) != 0 {
		t.Errorf("reset: %d, %d calls left", code, len(s.Calls()))
	}
	if _, b := control(t, ts, "GET", "/_sim/calls", ""); string(b) != "[]" {
		t.Errorf("calls after reset: %s", b)
	}
}

func TestControlAPIRejectsBadRequests(t *testing.T) {
	_, ts := start(t, Config{})
	for _, tc := range []struct{ path, body, field string }{
		{"/_sim/script", `{"agent_no":"A","steps":["RCS502","RCS999"]}`, `steps[1]: unknown step "RCS999"`},
		{"/_sim/script", `{"steps":["RCS502"]}`, "agent_no: is required, or sid"},
		{"/_sim/script", `{"agent_no":"A"}`, "steps: must list"},
		{"/_sim/script", `{"agent_no":"A","steps":"RCS502"}`, "steps: must be an array of strings"},
		{"/_sim/script", `{"agent_no":"A","step":["RCS502"]}`, "step: unknown field"},
		{"/_sim/script", ``, "body: is empty"},
		{"/_sim/script", `{"agent_no":`, "body: invalid JSON"},
		{"/_sim/script", `[]`, "body: must be a JSON object"},
		{"/_sim/config", `{"fault_rate":1.5}`, "fault_rate: must be between 0 and 1"},
		{"/_sim/config", `{"fault_rate":"high"}`, "fault_rate: must be a number"},
		{"/_sim/config", `{"latency":"soon"}`, "latency: must be a non-negative duration"},
		{"/_sim/config", `{"latency":150}`, "latency: must be a string"},
		{"/_sim/config", `{"jitter":"-1s"}`, "jitter: must be a non-negative duration"},
		{"/_sim/config", `{"disabled_sids":"X"}`, "disabled_sids: must be an array of strings"},
		{"/_sim/config", `{"api_key":"x"}`, "api_key: unknown field"},
		{"/_sim/config", `{} {}`, "body: unexpected data"},
	} {
		code, b := control(t, ts, "POST", tc.path, tc.body)
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		if code != 400 || !strings.Contains(e.Error, tc.field) {
			t.Errorf("POST %s %s: %d %s, want 400 naming %q", tc.path, tc.body, code, b, tc.field)
		}
	}
	if code, _ := control(t, ts, "GET", "/_sim/script", ""); code != 405 {
		t.Errorf("GET /_sim/script: %d, want 405", code)
	}
}

// The api-key never shows up in what the simulator reports.
func TestAPIKeyNeverRecorded(t *testing.T) {
	s, ts := start(t, Config{})
	call(t, ts, body("1"))
	call(t, ts, body("1"), header("api-key", testKey+"-wrong"))
	call(t, ts, body("1"), method(http.MethodGet))
	cj, _ := json.Marshal(s.Calls())
	sj, _ := json.Marshal(s.Stats())
	_, hc := control(t, ts, "GET", "/_sim/calls", "")
	_, hs := control(t, ts, "GET", "/_sim/stats", "")
	for name, b := range map[string][]byte{"Calls": cj, "Stats": sj, "/_sim/calls": hc, "/_sim/stats": hs} {
		if bytes.Contains(b, []byte(testKey)) || bytes.Contains(b, []byte("k3y")) {
			t.Errorf("%s contains the api-key: %s", name, b)
		}
	}
	if len(s.Calls()) != 3 {
		t.Errorf("%d calls recorded, want 3", len(s.Calls()))
	}
}

func TestListenAndServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- ListenAndServe(ctx, "127.0.0.1:0", Config{APIKey: testKey, Latency: time.Minute}, func(u string) { urls <- u })
	}()
	var base string
	select {
	case base = <-urls:
	case err := <-done:
		t.Fatalf("ListenAndServe: %v", err)
	case <-time.After(2 * time.Second):
		t.Fatal("ready never called")
	}
	if !regexp.MustCompile(`^http://127\.0\.0\.1:[1-9][0-9]*$`).MatchString(base) {
		t.Fatalf("base URL %q", base)
	}
	post := func(path, body string, h ...string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		for i := 0; i+1 < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		return http.DefaultClient.Do(req)
	}
	if resp, err := post("/_sim/script", `{"agent_no":"H","steps":["HANG"]}`); err != nil || resp.StatusCode != 204 {
		t.Fatalf("script: %v %v", resp, err)
	}
	// One call sleeps out its latency, one hangs; shutdown must not wait
	// for either.
	type result struct {
		status int
		err    error
	}
	results := make(chan result, 2)
	for _, agent := range []string{"1", "H"} {
		go func() {
			resp, err := post("/v1/S/rcs/agent/launch", string(body(agent)), "Content-Type", "application/json", "api-key", testKey)
			if err != nil {
				results <- result{0, err}
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results <- result{resp.StatusCode, nil}
		}()
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		resp, err := http.Get(base + "/_sim/stats")
		if err != nil {
			t.Fatal(err)
		}
		var st Stats
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if st.InFlight == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls never in flight: %+v", st)
		}
	}
	t0 := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ListenAndServe returned %v, want nil", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("ListenAndServe did not return after cancel")
	}
	if el := time.Since(t0); el > time.Second {
		t.Errorf("shutdown took %v", el)
	}
	var got []string
	for range 2 {
		r := <-results
		got = append(got, fmt.Sprint(r.status, r.err != nil))
	}
	// The sleeping call is answered at once, the hung one dropped.
	if !(got[0] == "200 false" && got[1] == "0 true") && !(got[1] == "200 false" && got[0] == "0 true") {
		t.Errorf("in-flight calls at shutdown ended as %v", got)
	}

	if err := ListenAndServe(context.Background(), "256.0.0.1:http", Config{}, nil); err == nil {
		t.Errorf("bad address: no error")
	}
}

// TestStart: Start serves in the background until stop, and reports an
// address it cannot listen on.
func TestStart(t *testing.T) {
	s := New(Config{APIKey: testKey})
	base, stop, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/"+testSID+"/rcs/agent/launch", bytes.NewReader(body("1")))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("api-key", testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || s.Stats().Calls != 1 {
		t.Fatalf("HTTP %d, %d calls", resp.StatusCode, s.Stats().Calls)
	}
	stop()
	if _, err := http.Get(base + "/_sim/stats"); err == nil {
		t.Error("still serving after stop")
	}
	if _, _, err := New(Config{}).Start("256.0.0.1:http"); err == nil {
		t.Error("Start on a bad address did not fail")
	}
}
