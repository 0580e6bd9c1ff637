package main

// End-to-end tests of many Kaleyra accounts in one fleet: worker processes
// serving the accounts of an ACCOUNTS_FILE, each account with its own key,
// queues and limits, measured from the simulator's records of every call
// (which SID, whether it carried that SID's key, when it arrived). The
// harness is in e2e_helpers_test.go and fleet_test.go.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
)

// testAccount is one account of a test's ACCOUNTS_FILE, with its key.
type testAccount struct {
	sid, key                           string
	rate, burst, maxInFlight, retryMax int
}

// keyVar is the variable holding a's key (its api_key_env).
func (a testAccount) keyVar() string { return "ACCT_KEY_" + a.sid }

// simKeys are the accounts' keys as the simulator checks them.
func simKeys(accts ...testAccount) map[string]string {
	m := make(map[string]string, len(accts))
	for _, a := range accts {
		m[a.sid] = a.key
	}
	return m
}

// useAccounts makes every process of the test run with ACCOUNTS_FILE set to
// the file name (in the env's directory) listing accts, and without the
// single-SID variables: a job's account comes from its own "sid". It
// returns the file's path.
func (e *env) useAccounts(name string, accts ...testAccount) string {
	e.t.Helper()
	e.giveKeys(accts...)
	path := e.writeAccounts(name, accountsYAML(accts...), time.Time{})
	e.vars["ACCOUNTS_FILE"] = path
	e.vars["KALEYRA_SID"] = unset
	e.vars["KALEYRA_API_KEY"] = unset
	return path
}

// giveKeys puts the accounts' keys in their variables for every process
// started from now on, and has the test check that none is ever printed.
func (e *env) giveKeys(accts ...testAccount) {
	for _, a := range accts {
		e.vars[a.keyVar()] = a.key
		e.addKeys(a.key)
	}
}

// accountsYAML is an accounts file listing accts.
func accountsYAML(accts ...testAccount) string {
	var b strings.Builder
	for _, a := range accts {
		fmt.Fprintf(&b, "- sid: %s\n  api_key_env: %s\n  rate: %d\n  burst: %d\n  max_in_flight: %d\n  retry_max: %d\n",
			a.sid, a.keyVar(), a.rate, a.burst, a.maxInFlight, a.retryMax)
	}
	return b.String()
}

// writeAccounts replaces the file name (in the env's directory) by content,
// atomically, so that a worker watching it never reads half of it, and
// returns its path. A non-zero mtime is given to the file as its
// modification time.
func (e *env) writeAccounts(name, content string, mtime time.Time) string {
	e.t.Helper()
	path := e.dir + "/" + name
	if err := os.WriteFile(path+".new", []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(path+".new", time.Time{}, mtime); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := os.Rename(path+".new", path); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// acctJob is one job of a test of many accounts.
type acctJob struct{ id, sid, agent string }

// acctJobs makes n jobs of account sid, IDs prefix-0.., agents agentBase+0..
func acctJobs(prefix, sid string, agentBase, n int) []acctJob {
	out := make([]acctJob, n)
	for i := range out {
		out[i] = acctJob{id: fmt.Sprintf("%s-%d", prefix, i), sid: sid, agent: fmt.Sprint(agentBase + i)}
	}
	return out
}

// line is the job as a JSONL line naming its account.
func (j acctJob) line() string {
	m := launchtest.Map(j.agent)
	m["id"], m["sid"] = j.id, j.sid
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// enqueueJobs enqueues jobs as one file with `enqueue --file` and checks
// that every one was enqueued.
func (e *env) enqueueJobs(name string, jobs ...acctJob) {
	e.t.Helper()
	lines := make([]string, len(jobs))
	for i, j := range jobs {
		lines[i] = j.line()
	}
	r := e.mustRun(0, "enqueue", "--file", e.writeFile(name, lines...), "--json")
	var s summaryJSON
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.Enqueued != len(jobs) {
		e.t.Fatalf("enqueue of %d jobs (%v):\n%s", len(jobs), err, r)
	}
}

// waitServed waits until live workers claim every one of sids, so that
// their jobs go to the accounts' own queues.
func (e *env) waitServed(sids ...string) {
	e.t.Helper()
	fleet := queue.NewFleet(e.Redis.Client())
	waitFor(e.t, 20*time.Second, fmt.Sprintf("workers to serve %v", sids), func() bool {
		live, err := fleet.SIDs(context.Background())
		if err != nil {
			return false
		}
		for _, sid := range sids {
			if !slices.Contains(live, sid) {
				return false
			}
		}
		return true
	})
}

// finishedJobs counts the jobs among ids with an entry on the results
// stream, read from Redis directly: a process per poll would take CPU from
// the workers being measured.
func (e *env) finishedJobs(ids map[string]bool) int {
	e.t.Helper()
	rs, err := e.Store.ReadResults(context.Background(), "0", 100_000, 0)
	if err != nil {
		e.t.Fatalf("read results: %v", err)
	}
	n := 0
	for _, r := range rs {
		if ids[r.JobID] {
			n++
		}
	}
	return n
}

func idSet(jobs ...[]acctJob) map[string]bool {
	m := map[string]bool{}
	for _, js := range jobs {
		for _, j := range js {
			m[j.id] = true
		}
	}
	return m
}

// checkCallsKeyed checks that every launch call went to the account of the
// job it launched, carrying that account's key, and that no call was made
// for an SID or agent in none.
func checkCallsKeyed(t *testing.T, calls []sim.Call, jobs ...[]acctJob) {
	t.Helper()
	sidOf := map[string]string{}
	for _, js := range jobs {
		for _, j := range js {
			sidOf[j.agent] = j.sid
		}
	}
	for _, c := range calls {
		switch want, ok := sidOf[c.AgentNo]; {
		case !ok:
			t.Errorf("a call for agent %q (SID %s), which no job to be sent has", c.AgentNo, c.SID)
		case c.SID != want:
			t.Errorf("agent %s of account %s was sent to account %s", c.AgentNo, want, c.SID)
		case !c.KeyOK || c.Code == "RCS401":
			t.Errorf("agent %s of account %s was sent without that account's key (code %s)", c.AgentNo, c.SID, c.Code)
		}
	}
}

// checkOneLaunchEach checks every job's record: succeeded, with one history
// entry per call the simulator received for its agent (no call without its
// attempt: no double launch; an UNKNOWN_ACCOUNT entry made no call) and one
// success among them. It returns the records by job ID.
func (e *env) checkOneLaunchEach(t *testing.T, calls []sim.Call, jobs ...[]acctJob) map[string]store.Record {
	t.Helper()
	byAgentCode := map[string]map[string]int{}
	for _, c := range calls {
		if byAgentCode[c.AgentNo] == nil {
			byAgentCode[c.AgentNo] = map[string]int{}
		}
		byAgentCode[c.AgentNo][c.Code]++
	}
	out := map[string]store.Record{}
	for _, js := range jobs {
		for _, j := range js {
			rec, err := e.Store.Get(context.Background(), j.id)
			if err != nil {
				t.Errorf("job %s: %v", j.id, err)
				continue
			}
			out[j.id] = rec
			n, tried := 0, 0
			for _, k := range byAgentCode[j.agent] {
				n += k
			}
			for _, h := range rec.History {
				if h.Code != "UNKNOWN_ACCOUNT" {
					tried++
				}
			}
			if rec.State != store.StateSucceeded || rec.SID != j.sid {
				t.Errorf("job %s: %s (%s %s) for SID %s, want succeeded for %s", j.id, rec.State, rec.Code, rec.Message, rec.SID, j.sid)
			}
			if n != tried || byAgentCode[j.agent]["RCS902"] != 1 {
				t.Errorf("job %s: %d calls (%v) for %d calls recorded, want one call per history entry and one success",
					j.id, n, byAgentCode[j.agent], tried)
			}
		}
	}
	return out
}

// checkAccountLimits checks, from the simulator's records, that account a's
// calls kept to its rate (no one-second window over rate + burst) and its
// cap on calls in flight, and returns its calls.
func checkAccountLimits(t *testing.T, calls []sim.Call, a testAccount) []sim.Call {
	t.Helper()
	mine := filterCalls(calls, func(c sim.Call) bool { return c.SID == a.sid })
	at := arrivals(mine)
	win, winAt := maxWindow(at, time.Second)
	inFlight, _ := concurrency(mine, time.Time{})
	achieved, span := achievedRate(at)
	t.Logf("account %s: %d calls over %v (%.2f/s, limit %d/s burst %d); largest 1s window %d calls (at +%v); at most %d in flight (cap %d)",
		a.sid, len(mine), span.Round(time.Millisecond), achieved, a.rate, a.burst, win, winAt.Sub(at[0]).Round(time.Millisecond),
		inFlight, a.maxInFlight)
	if win > a.rate+a.burst {
		t.Errorf("account %s: a one-second window holds %d calls, more than rate+burst = %d", a.sid, win, a.rate+a.burst)
	}
	if inFlight > a.maxInFlight {
		t.Errorf("account %s: %d calls in flight at once, cap %d", a.sid, inFlight, a.maxInFlight)
	}
	return mine
}

// countIn counts the calls that arrived within [from, to).
func countIn(calls []sim.Call, from, to time.Time) int {
	n := 0
	for _, c := range calls {
		if !c.At.Before(from) && c.At.Before(to) {
			n++
		}
	}
	return n
}

// TestManyAccountsOneFleet is issue 14's acceptance test: two worker
// processes serve three accounts, each with its own key and limits.
// Account A is flooded with 400 jobs; while its backlog drains, a small
// batch of account C finishes; then account B's gateway fails (RCS502)
// until B goes into cool-off, and C is throttled (HTTP 429), while one job
// names an account no worker serves. Each account stays within its rate,
// burst and in-flight cap; B makes no call during its cool-off while A keeps
// its pace and C goes on; C's 429s cost no retry (its retry_max is 0);
// every call carries its own account's key; the unknown account's job is
// dead-lettered UNKNOWN_ACCOUNT without a call; every other job succeeds
// with one call per attempt.
//
// The test is not parallel: it measures rates, and on a small machine the
// other tests' processes would take the CPU its workers need.
func TestManyAccountsOneFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("a 400-job flood at 20/s: about 25s")
	}
	const (
		nFlood, nSmall, nCool, nThrottled = 400, 10, 20, 30
		latency                           = 40 * time.Millisecond
		threshold                         = 3
		coolWindow, coolDuration          = 5 * time.Second, 3 * time.Second
		throttles                         = 3
		// slack is left at each end of the cool-off: a call that took its
		// slot just before the cool-off began may arrive a little after.
		slack = 250 * time.Millisecond
		// minBacklog is how many of A's jobs must still wait when C's small
		// batch is done: C's jobs do not queue behind A's.
		minBacklog = 100
	)
	flood := testAccount{sid: "FLOOD_A1", key: "sk-acct-flood-4c1d9e7b2a60-NEVER-LOG", rate: 20, burst: 1, maxInFlight: 2, retryMax: 2}
	cool := testAccount{sid: "COOL_B2", key: "sk-acct-cool-7e3f0a9c5d21-NEVER-LOG", rate: 10, burst: 1, maxInFlight: 3, retryMax: 3}
	thr := testAccount{sid: "THROTTLE_C3", key: "sk-acct-throttle-2b8d6f1e0c94-NEVER-LOG", rate: 10, burst: 2, maxInFlight: 3, retryMax: 0}
	const ghost = "GHOST_Z9" // in no accounts file
	accts := []testAccount{flood, cool, thr}

	e := newEnv(t, sim.Config{Latency: latency, Keys: simKeys(accts...)})
	e.useAccounts("accounts.yaml", accts...)
	ws := e.startWorkers(2, map[string]string{
		"WORKER_CONCURRENCY": "20",
		"COOLOFF_THRESHOLD":  fmt.Sprint(threshold),
		"COOLOFF_WINDOW":     coolWindow.String(),
		"COOLOFF_DURATION":   coolDuration.String(),
	})
	e.waitServed(flood.sid, cool.sid, thr.sid)

	floodJobs := acctJobs("flood", flood.sid, 10000, nFlood)
	smallJobs := acctJobs("small", thr.sid, 20000, nSmall)
	coolJobs := acctJobs("cool", cool.sid, 30000, nCool)
	throttledJobs := acctJobs("throttled", thr.sid, 40000, nThrottled)
	ghostJob := acctJob{id: "ghost-0", sid: ghost, agent: "90000"}

	// Phase 1: the flood, then, once it is in full swing, a small batch of
	// another account.
	start := time.Now()
	e.enqueueJobs("flood.jsonl", floodJobs...)
	flooding := idSet(floodJobs)
	waitFor(t, 30*time.Second, "the flood to be under way", func() bool { return e.finishedJobs(flooding) >= 2*flood.rate })
	smallAt := time.Now()
	e.enqueueJobs("small.jsonl", smallJobs...)
	small := idSet(smallJobs)
	waitFor(t, 60*time.Second, "the small batch", func() bool { return e.finishedJobs(small) == nSmall })
	smallTook := time.Since(smallAt)
	floodDone := e.finishedJobs(flooding)
	t.Logf("small batch of %d done %v after its enqueue, with %d of the flood's %d jobs done", nSmall,
		smallTook.Round(time.Millisecond), floodDone, nFlood)
	if floodDone > nFlood-minBacklog {
		t.Errorf("the small batch finished only once %d of the flood's %d jobs were done: it waited behind the flood", floodDone, nFlood)
	}

	// Phase 2, the flood still draining: B's gateway fails until B cools
	// off, C is throttled, and a job names an unknown account.
	e.Sim.ScriptSID(cool.sid, slices.Repeat([]sim.Step{sim.StepGateway}, threshold)...)
	e.Sim.ScriptSID(thr.sid, slices.Repeat([]sim.Step{sim.StepThrottle}, throttles)...)
	e.enqueueJobs("trouble.jsonl", append(append(slices.Clone(coolJobs), throttledJobs...), ghostJob)...)
	total := nFlood + nSmall + nCool + nThrottled + 1
	e.waitResultCount(total, 90*time.Second)
	t.Logf("all %d jobs done %v after the flood's enqueue", total, time.Since(start).Round(time.Millisecond))
	for _, w := range ws {
		w.stop()
	}

	calls := e.Sim.Calls()
	all := [][]acctJob{floodJobs, smallJobs, coolJobs, throttledJobs}
	checkCallsKeyed(t, calls, all...)
	recs := e.checkOneLaunchEach(t, calls, all...)
	floodCalls := checkAccountLimits(t, calls, flood)
	coolCalls := checkAccountLimits(t, calls, cool)
	thrCalls := checkAccountLimits(t, calls, thr)
	checkUnknownAccount(t, e, calls, ghostJob)
	checkThrottledKeepBudget(t, recs, thrCalls, throttles, smallJobs, throttledJobs)
	for _, j := range floodJobs {
		if r := recs[j.id]; r.Attempts != 1 {
			t.Errorf("flood job %s: %d attempts, want 1", j.id, r.Attempts)
		}
	}

	checkRateChanges(t, ws, thr.sid)
	e.assertKeyNotInRedis(floodJobs[0].id)
	coolAt := checkCoolOff(t, ws, coolCalls, threshold, coolDuration, slack, cool.sid)
	if coolAt.IsZero() {
		return
	}
	// During B's cool-off, A keeps its pace and C goes on.
	from, to := coolAt.Add(slack), coolAt.Add(coolDuration-slack)
	floodAt := arrivals(floodCalls)
	if floodAt[len(floodAt)-1].Before(to) {
		t.Fatalf("the flood's last call came %v before the end of B's cool-off: the test did not overlap them",
			to.Sub(floodAt[len(floodAt)-1]).Round(time.Millisecond))
	}
	overall, _ := achievedRate(floodAt)
	during := float64(countIn(floodCalls, from, to)) / to.Sub(from).Seconds()
	c := countIn(thrCalls, from, to)
	t.Logf("during B's cool-off: A at %.2f calls/s (%.2f/s over its whole flood), C made %d calls", during, overall, c)
	if during < 0.75*overall {
		t.Errorf("A made %.2f calls/s during B's cool-off, against %.2f/s over its flood: B's cool-off slowed A", during, overall)
	}
	if c == 0 {
		t.Errorf("C made no call during B's cool-off")
	}
}

// checkUnknownAccount checks that the job of an account no worker serves
// was dead-lettered UNKNOWN_ACCOUNT, listed as such by `dlq list`, and that
// the simulator saw no call for its SID or agent.
func checkUnknownAccount(t *testing.T, e *env, calls []sim.Call, j acctJob) {
	t.Helper()
	dl := e.dlqList("--code", "UNKNOWN_ACCOUNT")
	if len(dl) != 1 || dl[0].JobID != j.id {
		t.Errorf("dlq list --code UNKNOWN_ACCOUNT: %v, want only %s", ids(dl), j.id)
	}
	if all := e.dlqList(); len(all) != 1 {
		t.Errorf("%d dead letters (%v), want only the unknown account's", len(all), ids(all))
	}
	for _, c := range calls {
		if c.SID == j.sid || c.AgentNo == j.agent {
			t.Errorf("a call for the unknown account's job: %+v", c)
		}
	}
}

// checkThrottledKeepBudget checks that the account throttled with HTTP 429
// (retry_max 0) received exactly the scripted 429s, that each throttled job
// recorded its 429s as throttled and still succeeded on its first counted
// attempt, and that every job of the account made one counted attempt.
func checkThrottledKeepBudget(t *testing.T, recs map[string]store.Record, calls []sim.Call, throttles int, jobs ...[]acctJob) {
	t.Helper()
	got := map[string]int{}
	n := 0
	for _, c := range calls {
		if c.Code == string(sim.StepThrottle) {
			got[c.AgentNo]++
			n++
		}
	}
	if n != throttles {
		t.Errorf("%d HTTP 429 answers, want the %d scripted", n, throttles)
	}
	for _, js := range jobs {
		for _, j := range js {
			r := recs[j.id]
			throttled := 0
			for _, h := range r.History {
				if h.Outcome == store.AttemptThrottled {
					throttled++
				}
			}
			if r.Attempts != 1 || throttled != got[j.agent] {
				t.Errorf("job %s: %d attempts, %d throttled in its history, %d HTTP 429 answers: want 1 attempt and every 429 throttled",
					j.id, r.Attempts, throttled, got[j.agent])
			}
		}
	}
}

// checkCoolOff checks that the account whose gateway failed went into
// cool-off once, logged by the worker under its SID only, and made no call
// during it. The cool-off begins, on the simulator's clock, with the answer
// of the threshold-th RCS502; checkCoolOff returns that time, or zero when
// there is none.
func checkCoolOff(t *testing.T, ws []*proc, calls []sim.Call, threshold int, d, slack time.Duration, sid string) time.Time {
	t.Helper()
	var errs []time.Time
	for _, c := range calls {
		if c.Code == string(sim.StepGateway) {
			errs = append(errs, c.At.Add(c.Duration))
		}
	}
	slices.SortFunc(errs, func(a, b time.Time) int { return a.Compare(b) })
	entered := logLines(t, "account enters cool-off", ws...)
	for _, l := range entered {
		if l["sid"] != sid {
			t.Errorf("cool-off logged for account %v, want only %s: %v", l["sid"], sid, l)
		}
	}
	if len(errs) != threshold || len(entered) != 1 {
		t.Errorf("%d RCS502 answers and %d cool-offs logged, want the %d scripted and one", len(errs), len(entered), threshold)
	}
	if len(errs) < threshold {
		return time.Time{}
	}
	s := errs[threshold-1]
	after := 0
	for _, c := range calls {
		switch {
		case c.At.After(s.Add(slack)) && c.At.Before(s.Add(d-slack)):
			t.Errorf("account %s: a call arrived %v into its cool-off", sid, c.At.Sub(s).Round(time.Millisecond))
		case c.At.After(s):
			after++
		}
	}
	if after < threshold {
		t.Errorf("account %s: %d calls after its cool-off began, want at least the %d jobs its gateway failed", sid, after, threshold)
	}
	return s
}

// checkRateChanges checks that only the throttled account's effective rate
// changed: one account's 429s never lower another's rate.
func checkRateChanges(t *testing.T, ws []*proc, sid string) {
	t.Helper()
	var rates []any
	for _, l := range logLines(t, "account's effective rate changed", ws...) {
		if l["sid"] != sid {
			t.Errorf("the effective rate of account %v changed, want only %s's: %v", l["sid"], sid, l)
		}
		rates = append(rates, l["effective_rate"])
	}
	t.Logf("account %s's effective rate: %v", sid, rates)
	if len(rates) == 0 {
		t.Errorf("account %s's effective rate never changed after HTTP 429 answers", sid)
	}
}

// TestAccountsReload: a worker serving one account takes on another without
// a restart. A job of an account not yet in the file is dead-lettered
// UNKNOWN_ACCOUNT without a call; once the account is added and SIGHUP
// sent, `dlq retry` and new jobs launch with that account's key. An account
// added by rewriting the file alone, without a signal, is served too.
func TestAccountsReload(t *testing.T) {
	t.Parallel()
	first := testAccount{sid: "RELOAD_A1", key: "sk-acct-reload-a-5e2c8b1f9d07-NEVER-LOG", rate: 50, burst: 5, maxInFlight: 5, retryMax: 1}
	late := testAccount{sid: "LATE_E5", key: "sk-acct-late-e-0a4f7c3e6b18-NEVER-LOG", rate: 50, burst: 5, maxInFlight: 5, retryMax: 1}
	later := testAccount{sid: "LATER_F6", key: "sk-acct-later-f-9c1b5d2a8e43-NEVER-LOG", rate: 50, burst: 5, maxInFlight: 5, retryMax: 1}
	e := newEnv(t, sim.Config{Keys: simKeys(first, late, later)})
	path := e.useAccounts("accounts.yaml", first)
	e.giveKeys(late, later) // in the worker's environment from the start, as an operator's would be
	// The file with the late account is as long as the first one, padded
	// with a comment, and is given the same modification time: the file
	// looks unchanged to the worker's poll, so only SIGHUP can bring the
	// late account in.
	withLate := accountsYAML(first, late)
	pad := len(withLate) - len(accountsYAML(first)) - len("#\n")
	e.writeAccounts("accounts.yaml", accountsYAML(first)+"#"+strings.Repeat(" ", pad)+"\n", time.Time{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	w := e.startWorker(nil)
	e.waitServed(first.sid)

	early := acctJob{id: "late-early", sid: late.sid, agent: "60000"}
	e.enqueueJobs("early.jsonl", early)
	waitFor(t, 20*time.Second, "the unknown account's job to be dead-lettered", func() bool {
		rec, err := e.Store.Get(context.Background(), early.id)
		return err == nil && rec.State == store.StateDeadLettered
	})
	if rec, _ := e.Store.Get(context.Background(), early.id); rec.Code != "UNKNOWN_ACCOUNT" {
		t.Fatalf("job of an account not served: dead-lettered %s (%s), want UNKNOWN_ACCOUNT", rec.Code, rec.Message)
	}
	if n := len(e.Sim.Calls()); n != 0 {
		t.Fatalf("%d calls for a job of an account not served", n)
	}

	e.writeAccounts("accounts.yaml", withLate, fi.ModTime())
	if now, err := os.Stat(path); err != nil || now.Size() != fi.Size() || !now.ModTime().Equal(fi.ModTime()) {
		t.Fatalf("the rewritten file does not look unchanged (%v): size %d, was %d", err, now.Size(), fi.Size())
	}
	if err := w.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitReloaded(t, w, late.sid)
	e.mustRun(0, "dlq", "retry", early.id)
	firstJobs := acctJobs("first", first.sid, 61000, 3)
	lateJobs := append(acctJobs("late", late.sid, 62000, 5), early)
	e.enqueueJobs("late.jsonl", append(slices.Clone(firstJobs), lateJobs[:5]...)...)

	// No signal this time: the worker notices the file changed.
	e.writeAccounts("accounts.yaml", accountsYAML(first, late, later), time.Time{})
	waitReloaded(t, w, later.sid)
	laterJobs := acctJobs("later", later.sid, 63000, 3)
	e.enqueueJobs("later.jsonl", laterJobs...)

	all := idSet(firstJobs, lateJobs, laterJobs)
	waitFor(t, 30*time.Second, "every job after the reloads", func() bool { return e.finishedJobs(all) >= len(all) })
	w.stop()
	calls := e.Sim.Calls()
	checkCallsKeyed(t, calls, firstJobs, lateJobs, laterJobs)
	e.checkOneLaunchEach(t, calls, firstJobs, lateJobs, laterJobs)
	if dl := e.dlqList(); len(dl) != 0 {
		t.Errorf("dead letters left after the retry: %v", ids(dl))
	}
	e.assertKeyNotInRedis(early.id)
	checkLogs(t, w.stderr.String())
}

// waitReloaded waits until the worker logs that it reloaded its accounts
// file with sid among the added accounts. Only whole lines are read: the
// worker may be writing the last one.
func waitReloaded(t *testing.T, w *proc, sid string) {
	t.Helper()
	waitFor(t, 15*time.Second, "the accounts file to be reloaded with "+sid, func() bool {
		out := w.stderr.String()
		for _, line := range strings.Split(out[:strings.LastIndexByte(out, '\n')+1], "\n") {
			var l struct {
				Message string   `json:"message"`
				Added   []string `json:"added"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Message == "accounts file reloaded" && slices.Contains(l.Added, sid) {
				return true
			}
		}
		return false
	})
}
