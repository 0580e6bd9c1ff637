package main

// The harness of the end-to-end tests: the rcslaunch binary built once by
// TestMain, run as separate processes against a test environment of
// internal/testenv (a private redis-server and a Kaleyra simulator) per test.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/internal/testredis"
)

const (
	// e2eRetryMax is the RETRY_MAX every test process gets.
	e2eRetryMax = 2
	// cmdTimeout bounds one short command (enqueue, status, dlq, results).
	cmdTimeout = 30 * time.Second
)

// binPath is the rcslaunch binary TestMain built; raceEnabled is set by
// race_test.go when the tests run with -race.
var (
	binPath     string
	raceEnabled bool
)

// managedVars are the variables rcslaunch reads; the tests' own environment
// never leaks one of them into a process under test.
var managedVars = []string{"REDIS_", "KALEYRA_", "RETRY_", "LOG_", "WORKER_", "JOB_RETENTION", "RESULTS_MAX_LEN", "HTTP_",
	"FOLLOW_", "LAUNCH_STATUS_PATH"}

// env is one test's world: a test environment (whose Redis and simulator
// the processes use; its in-process StartWorker is not this file's
// startWorker, which runs the binary) and the environment every rcslaunch
// process of the test gets.
type env struct {
	*testenv.Env
	t    testing.TB
	dir  string
	vars map[string]string

	mu      sync.Mutex
	outputs []string // everything any process printed, for the API key check
	// keys are the API keys no process may print nor write to Redis:
	// testenv.APIKey, and those of the test's accounts (addKeys).
	keys []string
}

// newEnv starts a test environment with the simulator configured by simCfg
// and Redis by opts, and checks, at the end of the test, that no process
// printed the API key.
func newEnv(t testing.TB, simCfg sim.Config, opts ...testredis.Option) *env {
	t.Helper()
	// Uncompressed dumps, so that a search of DUMP output for the API key
	// cannot miss it inside an LZF-compressed value.
	opts = append([]testredis.Option{testredis.WithArgs("--rdbcompression", "no")}, opts...)
	te := testenv.New(t, testenv.WithRedis(opts...), testenv.WithSim(simCfg))
	e := &env{Env: te, t: t, dir: t.TempDir(), keys: []string{testenv.APIKey}, vars: map[string]string{
		"REDIS_URL":             te.Redis.URL(),
		"KALEYRA_SID":           testenv.SID,
		"KALEYRA_API_KEY":       testenv.APIKey,
		"KALEYRA_BASE_URL":      te.SimURL,
		"KALEYRA_TIMEOUT":       "5s",
		"KALEYRA_RATE_LIMIT":    "200",
		"KALEYRA_RATE_BURST":    "20",
		"RETRY_BASE_DELAY":      "100ms",
		"RETRY_MAX_DELAY":       "400ms",
		"RETRY_MAX":             fmt.Sprint(e2eRetryMax),
		"LOG_FORMAT":            "json",
		"WORKER_CONCURRENCY":    "4",
		"KALEYRA_MAX_IN_FLIGHT": "5",
		// Scripted RCS502 answers would otherwise send the account into
		// cool-off; the fleet tests cover it.
		"COOLOFF_THRESHOLD": "0",
	}}
	t.Cleanup(e.checkNoKeyPrinted)
	return e
}

func (e *env) checkNoKeyPrinted() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, out := range e.outputs {
		for i, k := range e.keys {
			if strings.Contains(out, k) {
				e.t.Errorf("a process printed API key %d of the test:\n%s", i, tail(out, 2000))
			}
		}
	}
}

// addKeys adds API keys, such as the keys of an ACCOUNTS_FILE's accounts,
// to those that no process may print and assertKeyNotInRedis looks for.
func (e *env) addKeys(keys ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keys = append(e.keys, keys...)
}

func (e *env) record(outs ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.outputs = append(e.outputs, outs...)
}

// environ is the process environment: the test's own without any rcslaunch
// variable, plus vars, changed by mod (a value of unset removes a variable).
func (e *env) environ(mod map[string]string) []string {
	vars := map[string]string{}
	for k, v := range e.vars {
		vars[k] = v
	}
	for k, v := range mod {
		vars[k] = v
	}
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		managed := false
		for _, p := range managedVars {
			if strings.HasPrefix(name, p) {
				managed = true
			}
		}
		if !managed {
			out = append(out, kv)
		}
	}
	for k, v := range vars {
		if v != unset {
			out = append(out, k+"="+v)
		}
	}
	if raceEnabled {
		// A race-enabled binary sleeps a second before a successful exit
		// (atexit_sleep_ms); the tests run many short commands. halt_on_error
		// is not set, so a race still makes the process exit 66.
		out = append(out, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	}
	return out
}

// unset, as a value in a mod map, removes the variable.
const unset = "\x00unset"

// result is a finished command.
type result struct {
	args        []string
	stdout, err string
	code        int
}

func (r result) String() string {
	return fmt.Sprintf("rcslaunch %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, tail(r.stdout, 3000), tail(r.err, 3000))
}

// run runs one command to completion (bounded by cmdTimeout).
func (e *env) run(args ...string) result { return e.runWith(nil, "", args...) }

// runWith runs one command with a changed environment and stdin.
func (e *env) runWith(mod map[string]string, stdin string, args ...string) result {
	e.t.Helper()
	return e.runBounded(cmdTimeout, mod, stdin, args...)
}

// runBounded is runWith bounded by timeout.
func (e *env) runBounded(timeout time.Duration, mod map[string]string, stdin string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = e.environ(mod)
	cmd.Dir = e.dir
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), err: stderr.String()}
	e.record(r.stdout, r.err)
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		e.t.Fatalf("rcslaunch %s: still running after %v\n%s", strings.Join(args, " "), timeout, r)
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	case err != nil:
		e.t.Fatalf("rcslaunch %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustRun runs a command that must exit with want.
func (e *env) mustRun(want int, args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != want {
		e.t.Fatalf("want exit %d, got:\n%s", want, r)
	}
	return r
}

// proc is a long-running rcslaunch process (worker, sim).
type proc struct {
	t              testing.TB
	e              *env
	args           []string
	cmd            *exec.Cmd
	stdout, stderr *testenv.SyncBuffer
	done           chan struct{}
	code           int
}

// start starts a long-running command; t.Cleanup kills it if it is still
// running.
func (e *env) start(mod map[string]string, args ...string) *proc {
	e.t.Helper()
	p := &proc{t: e.t, e: e, args: args, stdout: &testenv.SyncBuffer{}, stderr: &testenv.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binPath, args...)
	p.cmd.Env = e.environ(mod)
	p.cmd.Dir = e.dir
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		e.t.Fatalf("start rcslaunch %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		err := p.cmd.Wait()
		var exitErr *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exitErr):
			p.code = exitErr.ExitCode()
			if p.code < 0 { // killed by a signal
				p.code = 128 + int(exitErr.Sys().(syscall.WaitStatus).Signal())
			}
		default:
			p.code = -1
		}
		close(p.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		e.record(p.stdout.String(), p.stderr.String())
	})
	return p
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig and waits up to within for the exit; it returns the exit
// code and how long the process took to exit. It fails the test if the
// process outlives within (and then kills it).
func (p *proc) signal(sig os.Signal, within time.Duration) (int, time.Duration) {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil && !p.exited() {
		p.t.Fatalf("signal rcslaunch %s: %v", strings.Join(p.args, " "), err)
	}
	select {
	case <-p.done:
		return p.code, time.Since(start)
	case <-time.After(within):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("rcslaunch %s did not exit within %v of %v; stderr:\n%s", strings.Join(p.args, " "), within, sig, tail(p.stderr.String(), 3000))
		return -1, 0
	}
}

// stop ends the process with SIGTERM and requires a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	if code, _ := p.signal(syscall.SIGTERM, 20*time.Second); code != 0 {
		p.t.Fatalf("rcslaunch %s exited %d after SIGTERM; stderr:\n%s", strings.Join(p.args, " "), code, tail(p.stderr.String(), 3000))
	}
}

// startWorker starts `rcslaunch worker` and waits until it logs that it is
// running, so that a test can tell a slow start from a stuck batch.
func (e *env) startWorker(mod map[string]string) *proc {
	e.t.Helper()
	p := e.start(mod, "worker")
	waitFor(e.t, 20*time.Second, "the worker to start", func() bool {
		if p.exited() {
			e.t.Fatalf("the worker exited %d at start; stderr:\n%s", p.code, tail(p.stderr.String(), 3000))
		}
		return strings.Contains(p.stderr.String(), "worker started")
	})
	return p
}

// waitFor polls cond every 50ms until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// summaryJSON is `enqueue --json`'s summary, as the contract defines it.
type summaryJSON struct {
	BatchID         *string `json:"batch_id"`
	Enqueued        int     `json:"enqueued"`
	Duplicate       int     `json:"duplicate"`
	AlreadyLaunched int     `json:"already_launched"`
	DeadLettered    int     `json:"dead_lettered"`
	Invalid         int     `json:"invalid"`
	Failed          int     `json:"failed"`
	InDoubt         int     `json:"in_doubt"`
	NotTried        int     `json:"not_tried"`
	ErrorsOmitted   int     `json:"errors_omitted"`
	Errors          []struct {
		Line   int    `json:"line"`
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

// contractSummaryKeys are the keys the contract promises in `enqueue --json`.
var contractSummaryKeys = []string{"batch_id", "enqueued", "duplicate", "already_launched", "dead_lettered", "invalid", "errors"}

// parseSummary checks that out is exactly one JSON object with every key the
// contract names, of the right JSON type, and decodes it.
func parseSummary(t *testing.T, r result) summaryJSON {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("enqueue --json did not print a JSON object: %v\n%s", err, r)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("enqueue --json printed more than one JSON value\n%s", r)
	}
	for _, k := range contractSummaryKeys {
		v, ok := raw[k]
		if !ok {
			t.Fatalf("enqueue --json summary lacks %q\n%s", k, r)
		}
		s := strings.TrimSpace(string(v))
		switch k {
		case "batch_id":
			if s != "null" && !strings.HasPrefix(s, `"`) {
				t.Errorf("batch_id is %s, want a string or null", s)
			}
		case "errors":
			if !strings.HasPrefix(s, "[") {
				t.Errorf("errors is %s, want an array", s)
			}
		default:
			if strings.HasPrefix(s, `"`) || strings.HasPrefix(s, "[") || strings.HasPrefix(s, "{") || s == "null" {
				t.Errorf("%s is %s, want a number", k, s)
			}
		}
	}
	var errs []map[string]json.RawMessage
	if err := json.Unmarshal(raw["errors"], &errs); err != nil {
		t.Fatalf("errors: %v", err)
	}
	for i, e := range errs {
		for _, k := range []string{"line", "field", "reason"} {
			if _, ok := e[k]; !ok {
				t.Errorf("errors[%d] lacks %q: %v", i, k, e)
			}
		}
	}
	var s summaryJSON
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("decode summary: %v\n%s", err, r)
	}
	return s
}

// resultEntry is one line of `results --json`.
type resultEntry struct {
	JobID         string `json:"job_id"`
	AgentNo       string `json:"agent_no"`
	Outcome       string `json:"outcome"`
	Code          string `json:"code"`
	Message       string `json:"message"`
	AgentLaunchID string `json:"agent_launch_id"`
	Attempts      int    `json:"attempts"`
	FinishedAt    string `json:"finished_at"`
	Uncertain     bool   `json:"uncertain"`
	BatchID       string `json:"batch_id"`
	// LaunchState is a launch_state entry's new state (and
	// PreviousLaunchState the one before), or "pending" on a followed
	// success.
	LaunchState         string          `json:"launch_state"`
	PreviousLaunchState string          `json:"previous_launch_state"`
	Response            json.RawMessage `json:"response"`
}

// results runs `results --json` and decodes its JSONL, one object per line.
func (e *env) results() []resultEntry {
	e.t.Helper()
	r := e.mustRun(0, "results", "--json")
	var out []resultEntry
	for i, line := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		if line == "" && r.stdout == "" {
			break
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			e.t.Fatalf("results --json line %d is not one JSON object: %v\n%q", i+1, err, line)
		}
		for _, k := range []string{"job_id", "agent_no", "outcome", "code", "message", "agent_launch_id", "attempts", "finished_at"} {
			if _, ok := raw[k]; !ok {
				e.t.Fatalf("results --json line %d lacks %q: %s", i+1, k, line)
			}
		}
		var re resultEntry
		if err := json.Unmarshal([]byte(line), &re); err != nil {
			e.t.Fatalf("results --json line %d: %v", i+1, err)
		}
		out = append(out, re)
	}
	return out
}

// waitResults polls `results --json` until done holds for it.
func (e *env) waitResults(timeout time.Duration, what string, done func([]resultEntry) bool) []resultEntry {
	e.t.Helper()
	var rs []resultEntry
	waitFor(e.t, timeout, what, func() bool {
		rs = e.results()
		return done(rs)
	})
	return rs
}

// byAgent groups results by agent_no.
func byAgent(rs []resultEntry) map[string][]resultEntry {
	out := map[string][]resultEntry{}
	for _, r := range rs {
		out[r.AgentNo] = append(out[r.AgentNo], r)
	}
	return out
}

// byJob groups results by job_id.
func byJob(rs []resultEntry) map[string][]resultEntry {
	out := map[string][]resultEntry{}
	for _, r := range rs {
		out[r.JobID] = append(out[r.JobID], r)
	}
	return out
}

// hasAgents reports whether every agent has at least one result.
func hasAgents(agents ...string) func([]resultEntry) bool {
	return func(rs []resultEntry) bool {
		m := byAgent(rs)
		for _, a := range agents {
			if len(m[a]) == 0 {
				return false
			}
		}
		return true
	}
}

// statusRecord is `status --json` / `dlq show --json`, as far as the tests read it.
type statusRecord struct {
	JobID         string          `json:"job_id"`
	SID           string          `json:"sid"`
	AgentNo       string          `json:"agent_no"`
	State         string          `json:"state"`
	Payload       json.RawMessage `json:"payload"`
	Attempts      int             `json:"attempts"`
	Code          string          `json:"code"`
	Message       string          `json:"message"`
	AgentLaunchID string          `json:"agent_launch_id"`
	Uncertain     bool            `json:"uncertain"`
	FinishedAt    time.Time       `json:"finished_at"`
	Response      json.RawMessage `json:"response"`
	History       []struct {
		N       int    `json:"attempt"`
		Outcome string `json:"outcome"`
		Code    string `json:"code"`
	} `json:"history"`
	// LaunchState and LaunchFollow are set for a followed success
	// (FOLLOW_LAUNCH).
	LaunchState  string `json:"launch_state"`
	LaunchFollow *struct {
		State      string    `json:"launch_state"`
		Polls      int       `json:"polls"`
		NextPollAt time.Time `json:"next_poll_at"`
		Ended      string    `json:"ended"`
		Code       string    `json:"last_code"`
	} `json:"launch_follow"`
}

func (e *env) statusJSON(id string) statusRecord {
	e.t.Helper()
	r := e.mustRun(0, "status", id, "--json")
	var rec statusRecord
	if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil {
		e.t.Fatalf("status --json: %v\n%s", err, r)
	}
	return rec
}

// dlqList runs `dlq list --json` with extra args and decodes the array.
func (e *env) dlqList(args ...string) []statusRecord {
	e.t.Helper()
	r := e.mustRun(0, append([]string{"dlq", "list", "--json"}, args...)...)
	var recs []statusRecord
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil {
		e.t.Fatalf("dlq list --json is not a JSON array: %v\n%s", err, r)
	}
	if recs == nil {
		e.t.Fatalf("dlq list --json printed null, want an array\n%s", r)
	}
	return recs
}

func ids(recs []statusRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.JobID
	}
	return out
}

// derivedID asks the CLI for the job ID it derives for one job, through a
// dry-run enqueue from stdin (which touches nothing).
func (e *env) derivedID(jobLine string) string {
	e.t.Helper()
	r := e.runWith(nil, jobLine, "enqueue", "--dry-run", "--json")
	if r.code != 0 {
		e.t.Fatalf("dry-run of one job:\n%s", r)
	}
	var s struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.JobID == "" {
		e.t.Fatalf("dry-run of one job printed no job_id (%v)\n%s", err, r)
	}
	return s.JobID
}

// assertNothingEnqueued checks Redis directly: no asynq queue or task, no
// rcslaunch record.
func (e *env) assertNothingEnqueued(jobIDs ...string) {
	e.t.Helper()
	insp := e.Inspector
	qs, err := insp.Queues()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, q := range qs {
		info, err := insp.GetQueueInfo(q)
		if err == nil && info.Size > 0 {
			e.t.Errorf("asynq queue %q holds %d tasks, want none", q, info.Size)
		}
	}
	for _, id := range jobIDs {
		if _, err := insp.GetTaskInfo(queue.Name, id); err == nil {
			e.t.Errorf("an asynq task for job %s exists", id)
		}
		if r := e.run("status", id); r.code != 1 {
			e.t.Errorf("status of a job that must not exist: want exit 1\n%s", r)
		}
	}
	keys, err := e.Redis.Client().Keys(context.Background(), "rcslaunch:*").Result()
	if err != nil {
		e.t.Fatal(err)
	}
	if len(keys) > 0 {
		e.t.Errorf("rcslaunch keys in Redis after nothing was to be enqueued: %v", keys)
	}
}

// assertKeyNotInRedis DUMPs every key and searches the dumps for the API
// keys (testenv.APIKey and those given to addKeys).
func (e *env) assertKeyNotInRedis(mustFind string) {
	e.t.Helper()
	ctx := context.Background()
	c := e.Redis.Client()
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		e.t.Fatal(err)
	}
	found := false
	for _, k := range keys {
		d, err := c.Dump(ctx, k).Result()
		if err != nil {
			continue // expired in between
		}
		for i, key := range e.keys {
			if strings.Contains(d, key) || strings.Contains(k, key) {
				e.t.Errorf("Redis key %q holds API key %d of the test", k, i)
			}
		}
		if strings.Contains(d, mustFind) {
			found = true
		}
	}
	if !found {
		e.t.Errorf("no Redis value holds %q: the search for the API key proves nothing", mustFind)
	}
}

// writeFile writes lines to name in the env's directory and returns its path.
func (e *env) writeFile(name string, lines ...string) string {
	e.t.Helper()
	path := e.dir + "/" + name
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// checkLogs checks a process's stderr under LOG_FORMAT=json: every line one
// JSON object without repeated keys. It returns the decoded lines.
func checkLogs(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if line == "" {
			continue
		}
		if err := noRepeatedKeys(line); err != nil {
			t.Errorf("log line %d: %v: %s", i+1, err, line)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line %d is not a JSON object (LOG_FORMAT=json): %v: %s", i+1, err, line)
			continue
		}
		out = append(out, m)
	}
	return out
}

// noRepeatedKeys reports a JSON object key that appears twice in one object:
// a log consumer keeps only one of them, and so loses the other's value.
func noRepeatedKeys(s string) error {
	dec := json.NewDecoder(strings.NewReader(s))
	type frame struct {
		object bool
		keys   map[string]bool
		expect bool // the next token in an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expect {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			k := tok.(string)
			if top.keys[k] {
				return fmt.Errorf("key %q appears twice in one object", k)
			}
			top.keys[k] = true
			top.expect = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			if top != nil && top.object {
				top.expect = true
			}
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, expect: true})
		case json.Delim('['):
			if top != nil && top.object {
				top.expect = true
			}
			stack = append(stack, &frame{})
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:len(stack)-1]
		default:
			if top != nil && top.object {
				top.expect = true
			}
		}
	}
}

// freeAddr is a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
