package main

// Security tests (issue 5): the API key is nowhere but in the api-key header
// of launch calls, and a base URL that would send it in clear is refused.
// That the HTTP routes refuse missing and wrong tokens (compared in constant
// time) is proven in internal/httpapi (TestAuthRefusals, TestAuthEmptyTokens)
// and not repeated here.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
)

// TestSecurityAPIKeyNowhere runs a batch with every kind of outcome (success,
// retry then success, retries exhausted, RCS904, timeout, malformed answers,
// HTTP 429) through a worker process and `serve`, calls every route `serve`
// documents in /openapi.json with good tokens (plus the web UI, asynqmon's API
// and the worker's own /metrics), and then searches every log line of every
// process, every HTTP answer (bodies and headers), every Redis key and value
// (a SAVEd dump, uncompressed, and each key's DUMP) for the API key: zero
// hits, in a corpus checked to hold the jobs, their launch IDs and their logs.
func TestSecurityAPIKeyNowhere(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{Latency: 20 * time.Millisecond})
	scripts := map[string][]sim.Step{
		"98001": {sim.StepGateway, sim.StepGateway},                   // retried, then succeeds
		"98002": {sim.StepGateway, sim.StepGateway, sim.StepGateway},  // retries exhausted
		"98003": {sim.StepMissingFields},                              // RCS904
		"98004": {sim.StepHang},                                       // TIMEOUT, uncertain
		"98005": {sim.StepHTML},                                       // BAD_RESPONSE
		"98006": {sim.StepTruncated},                                  // BAD_RESPONSE, uncertain
		"98007": {sim.StepThrottle, sim.StepThrottle},                 // HTTP 429, then success
		"98008": {sim.StepDisabled},                                   // RCS601
		"98009": {sim.StepCodeNotString},                              // BAD_RESPONSE, uncertain
		"98010": {sim.StepServerError},                                // RCS500
		"98011": {sim.StepNoLaunchID},                                 // BAD_RESPONSE, uncertain
		"98012": {sim.StepEmpty},                                      // BAD_RESPONSE, uncertain
		"98013": {sim.StepThrottle, sim.StepGateway, sim.StepSucceed}, // all three
	}
	var lines []string
	jobs := map[string]string{}
	for i := 0; i < 20; i++ {
		id, agent := fmt.Sprintf("sec-%d", i), fmt.Sprint(98000+i)
		if s := scripts[agent]; s != nil {
			e.Sim.Script(agent, s...)
		}
		jobs[id] = agent
		lines = append(lines, launchtest.Line(id, agent, nil))
	}
	s := parseSummary(t, e.mustRun(0, "enqueue", "--file", e.writeFile("sec.jsonl", lines...), "--json"))
	metricsAddr := freeAddr(t)
	srv := e.startServe()
	w := e.startWorker(map[string]string{"KALEYRA_TIMEOUT": "1s", "METRICS_ADDR": metricsAddr, "HTTP_ADMIN_TOKEN": srv.admin})
	e.waitResultCount(len(jobs), 60*time.Second)

	// Every documented route, with good tokens.
	hit := map[string]int{} // "METHOD /path" -> status
	call := func(method, route, path, token string, body any) answer {
		t.Helper()
		var b []byte
		if body != nil {
			var err error
			if b, err = json.Marshal(body); err != nil {
				t.Fatal(err)
			}
		}
		a := srv.do(method, path, token, b)
		if a.status/100 != 2 {
			t.Errorf("%s %s: HTTP %d %s", method, path, a.status, tail(a.body, 500))
		}
		if route != "" {
			hit[method+" "+route] = a.status
		}
		return a
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal([]byte(call("GET", "/openapi.json", "/openapi.json", "", nil).body), &doc); err != nil {
		t.Fatalf("/openapi.json: %v", err)
	}
	dead := e.dlqList()
	byCode := map[string]string{} // a dead letter of each code
	for _, d := range dead {
		byCode[d.Code] = d.JobID
	}
	var launched string // one agent_launch_id, which the corpus must hold
	for _, r := range e.results() {
		if r.Outcome == "succeeded" {
			launched = r.AgentLaunchID
		}
	}
	one := func(job string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(job), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	call("GET", "/healthz", "/healthz", "", nil)
	call("GET", "/readyz", "/readyz", "", nil)
	call("POST", "/v1/launches", "/v1/launches", srv.token, one(launchtest.Line("sec-api-1", "98101", nil)))
	call("GET", "/v1/launches", "/v1/launches?agent_no=98101", srv.token, nil)
	jobs["sec-api-1"] = "98101"
	call("POST", "/v1/launches:batch", "/v1/launches:batch", srv.token, map[string]any{"name": "security",
		"jobs": []any{one(launchtest.Line("sec-api-2", "98102", nil)), one(launchtest.Line("sec-api-3", "98103", nil))}})
	jobs["sec-api-2"], jobs["sec-api-3"] = "98102", "98103"
	for id := range jobs {
		call("GET", "/v1/launches/{id}", "/v1/launches/"+url.PathEscape(id), srv.token, nil)
	}
	call("GET", "/v1/batches", "/v1/batches", srv.token, nil)
	call("GET", "/v1/batches/{id}", "/v1/batches/"+*s.BatchID, srv.token, nil)
	call("GET", "/v1/deadletters", "/v1/deadletters?limit=100", srv.admin, nil)
	for _, d := range dead {
		call("GET", "/v1/deadletters/{id}", "/v1/deadletters/"+url.PathEscape(d.JobID), srv.admin, nil)
	}
	call("GET", "/v1/stats", "/v1/stats", srv.admin, nil)
	call("GET", "/metrics", "/metrics", srv.admin, nil)
	call("POST", "/v1/deadletters/{id}/retry", "/v1/deadletters/"+byCode["RCS601"]+"/retry", srv.admin, nil)
	call("DELETE", "/v1/deadletters/{id}", "/v1/deadletters/"+byCode["RCS500"], srv.admin, nil)
	call("POST", "/v1/deadletters:retry", "/v1/deadletters:retry", srv.admin, map[string]any{"code": "RCS904"})
	call("POST", "/v1/deadletters:delete", "/v1/deadletters:delete", srv.admin, map[string]any{"code": "RCS502"})
	var missed []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if op := strings.ToUpper(method) + " " + path; hit[op] == 0 && method != "parameters" {
				missed = append(missed, op)
			}
		}
	}
	sort.Strings(missed)
	if len(missed) > 0 {
		t.Errorf("routes documented in /openapi.json that the test did not call: %v", missed)
	}

	// The web UI, signed in with the admin token, and asynqmon's API.
	login := srv.do("POST", "/ui/login", "", []byte(url.Values{"token": {srv.admin}, "next": {"/ui/deadletters"}}.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", "Origin", srv.base)
	cookie := strings.Split(login.header.Get("Set-Cookie"), ";")[0]
	if login.status != http.StatusSeeOther || cookie == "" {
		t.Fatalf("UI login: HTTP %d, cookie %q: %s", login.status, cookie, tail(login.body, 500))
	}
	if a := srv.do("GET", "/ui/login", "", nil); a.status != http.StatusOK {
		t.Errorf("GET /ui/login: HTTP %d", a.status)
	}
	uiPages := []string{"/ui/deadletters", "/ui/asynq/", "/ui/asynq/api/queues", "/ui/asynq/api/queues/launch/archived_tasks",
		"/ui/asynq/api/servers", "/ui/static/ui.css"}
	for _, d := range e.dlqList() {
		uiPages = append(uiPages, "/ui/deadletters/"+url.PathEscape(d.JobID))
	}
	for _, p := range uiPages {
		if a := srv.do("GET", p, "", nil, "Cookie", cookie); a.status != http.StatusOK {
			t.Errorf("GET %s signed in: HTTP %d %s", p, a.status, tail(a.body, 300))
		}
	}
	// The worker's own metrics endpoint.
	wm := &api{e: e, base: "http://" + metricsAddr, client: srv.client}
	for _, p := range []string{"/metrics", "/healthz"} {
		if a := wm.do("GET", p, srv.admin, nil); a.status != http.StatusOK {
			t.Errorf("worker GET %s: HTTP %d", p, a.status)
		}
	}

	// The retried letters ran again; then everything stops.
	e.waitQueueEmpty(30*time.Second, w)
	w.stop()
	srv.p.stop()

	// The search.
	var logs strings.Builder
	for _, p := range []*proc{w, srv.p} {
		logs.WriteString(p.stderr.String())
		logs.WriteString(p.stdout.String())
		checkLogs(t, p.stderr.String())
	}
	if err := e.Redis.Client().Save(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	dump, err := os.ReadFile(filepath.Join(e.Redis.Dir(), "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	answers := strings.Join(e.outputs, "\n") // every HTTP answer and short command so far
	e.mu.Unlock()
	core := regexp.MustCompile(`[0-9a-f]{12}`).FindString(testenv.APIKey) // in case a key were cut or quoted
	for name, corpus := range map[string][]byte{"log lines": []byte(logs.String()), "the Redis dump": dump, "HTTP answers and command output": []byte(answers)} {
		for _, needle := range []string{testenv.APIKey, core} {
			if n := bytes.Count(corpus, []byte(needle)); n > 0 {
				t.Errorf("%s hold %q %d times", name, needle, n)
			}
		}
	}
	e.assertKeyNotInRedis(launched)

	// The corpus is not trivially empty: it holds every job, a launch ID,
	// the attempts' log lines and the answers' records.
	for id := range jobs {
		for name, corpus := range map[string]string{"the Redis dump": string(dump), "the HTTP answers": answers, "the logs": logs.String()} {
			if !strings.Contains(corpus, id) {
				t.Errorf("%s do not mention job %s: the search proves little", name, id)
			}
		}
	}
	attempts := len(logLines(t, "launch attempt", w))
	if launched == "" || !bytes.Contains(dump, []byte(launched)) || !strings.Contains(answers, launched) {
		t.Errorf("agent_launch_id %q missing from the dump or the answers", launched)
	}
	if attempts < len(jobs) {
		t.Errorf("%d launch attempts logged for %d jobs", attempts, len(jobs))
	}
	t.Logf("searched %d KiB of logs (%d launch attempts), a %d KiB Redis dump and %d KiB of HTTP answers and command output (%d routes, %d UI pages): no API key",
		logs.Len()>>10, attempts, len(dump)>>10, len(answers)>>10, len(hit), len(uiPages))
}

// TestSecurityPlainHTTPBaseURLRefused: a KALEYRA_BASE_URL that would send
// the api-key header in clear (plain http to a host other than loopback) is
// refused before the worker starts, with exit status 1 and a message naming
// the variable; TLS verification is not turned off anywhere in the code.
func TestSecurityPlainHTTPBaseURLRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	for _, u := range []string{"http://rcs-api.in.kaleyra.io", "http://kaleyra.example.com:8089/", "http://10.1.2.3:8089",
		"http://[2001:db8::1]:8089", "http://127.0.0.1.nip.io:8089", "ftp://rcs-api.in.kaleyra.io"} {
		r := e.runWith(map[string]string{"KALEYRA_BASE_URL": u}, "", "worker")
		if r.code != 1 || !strings.Contains(r.err, "KALEYRA_BASE_URL") || strings.Contains(r.err, "worker started") {
			t.Errorf("worker with KALEYRA_BASE_URL=%s: want exit 1 naming KALEYRA_BASE_URL before starting\n%s", u, r)
		}
	}
	// Loopback http is allowed (the simulator): newEnv's own URL starts a worker.
	if !strings.HasPrefix(e.vars["KALEYRA_BASE_URL"], "http://127.0.0.1:") {
		t.Fatalf("the simulator is at %s", e.vars["KALEYRA_BASE_URL"])
	}
	w := e.startWorker(nil)
	w.stop()

	// No code of ours turns TLS verification off.
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var checked int
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		if bytes.Contains(b, []byte("InsecureSkipVerify")) {
			t.Errorf("%s mentions InsecureSkipVerify", path)
		}
		return nil
	})
	if err != nil || checked < 20 {
		t.Fatalf("checked %d source files (%v)", checked, err)
	}
}

// TestWeakTokensRefusedAtStart: serve, and a worker whose METRICS_ADDR
// takes the admin token, refuse to start with a token too short to resist
// guessing or with a placeholder once published in docker-compose.yml,
// naming the variable (config.Check says why; this checks the wiring).
func TestWeakTokensRefusedAtStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	for _, c := range []struct {
		vars map[string]string
		cmd  string
		name string
	}{
		{map[string]string{"HTTP_TOKEN": "short-token"}, "serve", "HTTP_TOKEN"},
		{map[string]string{"HTTP_TOKEN": "producer-token-0123456789", "HTTP_ADMIN_TOKEN": "change-me-admin"}, "serve", "HTTP_ADMIN_TOKEN"},
		{map[string]string{"METRICS_ADDR": freeAddr(t), "HTTP_ADMIN_TOKEN": "change-me-admin"}, "worker", "HTTP_ADMIN_TOKEN"},
	} {
		c.vars["HTTP_ADDR"] = freeAddr(t)
		r := e.runWith(c.vars, "", c.cmd)
		if r.code != 1 || !strings.Contains(r.err, c.name+": ") {
			t.Errorf("want exit 1 naming %s:\n%s", c.name, r)
		}
	}
}
