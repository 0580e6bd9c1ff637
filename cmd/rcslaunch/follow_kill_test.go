package main

// The launch follow-up's acceptance test (issue 12): a batch through worker
// processes with FOLLOW_LAUNCH on, the simulator scripting each launch's
// states by agent prefix, and one worker killed while it polls. The harness
// is in e2e_helpers_test.go; the rate check is the fleet tests'.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/limits"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
)

// recordGrants watches Redis (MONITOR) for the rate limiter's grants to
// the test's account, at a rate limit whose tolerance (burst × interval)
// is given: each call granted sets the limiter's theoretical arrival time,
// inside limiter_acquire, and MONITOR stamps it on Redis's clock, the one
// the limiter reads. A call granted ahead of its rate token goes at the
// token's time, the new arrival time less the tolerance: that time is the
// grant's here. Unlike the simulator's arrival times, these are not
// delayed by a loaded machine's scheduling between the grant and the call.
// The returned function ends the watch, once every command sent before it
// has been seen, and returns the grants in order.
func (e *env) recordGrants(tolerance time.Duration) func() []time.Time {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.Redis.Addr())
	if err != nil {
		e.t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		e.t.Fatal(err)
	}
	if line, err := rd.ReadString('\n'); err != nil || line != "+OK\r\n" {
		e.t.Fatalf("MONITOR: %q, %v", line, err)
	}
	set := `[0 lua] "SET" "` + rdb.LimiterKeys(testenv.SID).TAT() + `"`
	marker := fmt.Sprintf("end-of-grants-%d", time.Now().UnixNano())
	var grants []time.Time
	done := make(chan error, 1)
	go func() {
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				done <- err
				return
			}
			if strings.Contains(line, marker) {
				done <- nil
				return
			}
			if !strings.Contains(line, set) {
				continue
			}
			f := strings.Fields(line)
			sec, usec, _ := strings.Cut(f[0], ".")
			s, err1 := strconv.ParseInt(sec, 10, 64)
			us, err2 := strconv.ParseInt(usec, 10, 64)
			if err1 != nil || err2 != nil || len(f) < 6 {
				done <- fmt.Errorf("MONITOR line %q: no timestamp", line)
				return
			}
			tat, err := strconv.ParseInt(strings.Trim(f[5], `"`), 10, 64)
			if err != nil {
				done <- fmt.Errorf("MONITOR line %q: no arrival time: %v", line, err)
				return
			}
			at, token := time.Unix(s, us*1000), time.UnixMicro(tat).Add(-tolerance)
			if token.After(at) {
				at = token
			}
			grants = append(grants, at)
		}
	}()
	e.t.Cleanup(func() { conn.Close() })
	return func() []time.Time {
		e.t.Helper()
		if err := e.Redis.Client().Echo(context.Background(), marker).Err(); err != nil {
			e.t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				e.t.Fatalf("watching the limiter's grants: %v", err)
			}
		case <-time.After(30 * time.Second):
			e.t.Fatal("MONITOR did not show the end marker within 30s")
		}
		conn.Close()
		return grants
	}
}

// followClass is a group of a batch's jobs: the agents whose number starts
// with prefix, and the launch states the simulator answers their status
// calls with, one step per call.
type followClass struct {
	prefix string
	n      int
	// deadLetter: the launch call is answered RCS904, so the job is a dead
	// letter, not followed.
	deadLetter bool
	states     []sim.StatusStep
}

func (c followClass) final() string { return string(c.states[len(c.states)-1]) }

// followPlan is what a launch's follow-up comes to: the status calls the
// simulator receives, the polls recorded and the launch states the results
// stream reports after the success.
type followPlan struct {
	calls, polls int
	changes      []string
}

// planFollow replays the worker's follow-up of a launch answered seq when
// the status calls at the (0-based) places in lost never reached the
// record: the simulator moved the launch on, and the worker made the poll
// again. A launch's sequence stays on its last step, and only its last step
// is final: a lost call before it skips a step, a lost final answer costs a
// call more.
func planFollow(seq []sim.StatusStep, lost map[int]bool) followPlan {
	var p followPlan
	state := store.LaunchPending
	for k := 0; ; k++ {
		p.calls++
		if lost[k] {
			continue
		}
		p.polls++
		s := store.LaunchState(seq[min(k, len(seq)-1)])
		if !slices.Contains(store.LaunchStates, s) {
			continue // a bad answer: a failed poll, polled again
		}
		if s != state {
			p.changes = append(p.changes, string(s))
			state = s
		}
		if s.Final() {
			return p
		}
	}
}

// pollKey names one poll of one job in the worker's log.
type pollKey struct {
	job  string
	poll int
}

// pollTracker reads a worker's log (LOG_LEVEL=debug, JSON) as it grows
// and keeps the polls it has begun ("polling launch status") without
// logging their outcome ("launch status poll ..."), with their agents: of a
// killed worker, the only status calls the kill may have made without a
// record. A line not yet ended (or cut by a kill) waits.
type pollTracker struct {
	p      *proc
	off    int
	begun  map[pollKey]string
	broken []string // lines that are not JSON
}

func trackPolls(p *proc) *pollTracker { return &pollTracker{p: p, begun: map[pollKey]string{}} }

// update reads the lines logged since the last update.
func (pt *pollTracker) update() {
	s := pt.p.stderr.String()
	end := strings.LastIndexByte(s, '\n') + 1
	if end <= pt.off {
		return
	}
	lines := strings.Split(s[pt.off:end-1], "\n")
	pt.off = end
	for _, line := range lines {
		if !strings.Contains(line, "launch status") {
			continue
		}
		var l struct {
			Message string `json:"message"`
			JobID   string `json:"job_id"`
			AgentNo string `json:"agent_no"`
			Poll    int    `json:"poll"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			pt.broken = append(pt.broken, line)
			continue
		}
		k := pollKey{l.JobID, l.Poll}
		switch {
		case l.Message == "polling launch status":
			pt.begun[k] = l.AgentNo
		case strings.HasPrefix(l.Message, "launch status poll"):
			delete(pt.begun, k)
		}
	}
}

// TestFollowLaunchesThroughWorkerKill (LONG, about 90s): issue 12's
// acceptance test. 200 jobs, enqueued as one batch, go through three worker
// processes with FOLLOW_LAUNCH on and a rate limit that binds. The
// simulator scripts each launch's states by agent prefix: launched after
// pendings, rejected, suspended, launched through an unknown state, with
// HTML pages and RCS502 answers on the way that are survived and polled
// again; a twentieth of the launches fail (RCS904) and are not followed.
// Once every launch is made, one worker is killed (SIGKILL) while it has
// status calls in flight, one of them for a final state; a replacement
// starts 2s later.
//
// Then: every RCS902 job is in its scripted final state (status --json);
// the batch's launch_states counts are exact (batch status --json); the
// results stream has one launch_state entry per change of state. Each
// agent got exactly the status calls its script needs, except where the
// killed worker had a poll in flight (its log says "polling launch status"
// without the outcome after it): such a call may have been lost and made
// again, and replaying the script without it must give the status calls,
// polls and changes seen. A lost call before the last step only skips a
// step; a lost final answer is the one duplicate call, and the kill is
// timed to cause one. Launch and status calls together never exceed the
// rate limit (the fleet tests' check), exactly on the limiter's grants and,
// within the scheduling delay of a loaded machine, at the simulator.
//
// LONG: the killed worker's follow-up tasks come back only through asynq's
// recoverer, about a minute after the kill (see TestFleetSIGKILLFreesSlots).
func TestFollowLaunchesThroughWorkerKill(t *testing.T) {
	if testing.Short() {
		t.Skip("LONG: waits for asynq's recovery of the killed worker's follow-up tasks (about a minute)")
	}
	t.Parallel()
	const (
		rate, burst = 40, 2
		// statusLatency keeps status calls in flight long enough for the
		// kill to catch some; survivors' calls all last at least this.
		statusLatency = 250 * time.Millisecond
		// arrivalJitter bounds how much later than its grant a call may
		// reach the simulator on a loaded machine: the calls granted within
		// t+arrivalJitter may arrive within t. With -race on 2 cores at a
		// load average of 23, arrivals bunched as if up to 125ms late.
		arrivalJitter = 500 * time.Millisecond
	)
	classes := []followClass{
		{prefix: "71", n: 60, states: []sim.StatusStep{sim.StatusPending, sim.StatusPending, sim.StatusLaunched}},
		{prefix: "72", n: 30, states: []sim.StatusStep{sim.StatusPending, sim.StatusHTML, sim.StatusPending, sim.StatusLaunched}},
		{prefix: "73", n: 30, states: []sim.StatusStep{sim.StatusPending, sim.StatusGateway, sim.StatusRejected}},
		{prefix: "74", n: 25, states: []sim.StatusStep{sim.StatusHTML, sim.StatusPending, sim.StatusSuspended}},
		{prefix: "75", n: 25, states: []sim.StatusStep{sim.StatusPending, sim.StatusUnknown, sim.StatusGateway, sim.StatusPending, sim.StatusLaunched}},
		{prefix: "76", n: 20, states: []sim.StatusStep{sim.StatusLaunched}},
		{prefix: "79", n: 10, deadLetter: true},
	}
	scripts := map[string][]sim.StatusStep{}
	for _, c := range classes {
		if !c.deadLetter {
			scripts[c.prefix] = c.states
		}
	}
	begin := time.Now()
	e := newEnv(t, sim.Config{Latency: 50 * time.Millisecond, StatusLatency: statusLatency, LaunchStates: scripts})

	// The batch: job ID -> its class; agent -> job ID.
	classOf := map[string]followClass{}
	jobOf := map[string]string{}
	var lines []string
	followed, wantStates := 0, map[string]int{}
	for _, c := range classes {
		for i := 0; i < c.n; i++ {
			id, agent := fmt.Sprintf("follow-%s-%03d", c.prefix, i), fmt.Sprintf("%s%03d", c.prefix, i)
			classOf[id], jobOf[agent] = c, id
			lines = append(lines, launchtest.Line(id, agent, nil))
			if c.deadLetter {
				e.Sim.Script(agent, sim.StepMissingFields)
				continue
			}
			followed++
			wantStates[c.final()]++
		}
	}
	const n = 200
	if len(lines) != n {
		t.Fatalf("the classes hold %d jobs, want %d", len(lines), n)
	}
	s := parseSummary(t, e.mustRun(0, "enqueue", "--file", e.writeFile("follow.jsonl", lines...), "--json"))
	if s.Enqueued != n || s.BatchID == nil {
		t.Fatalf("enqueue: %+v", s)
	}
	batch := *s.BatchID

	mod := map[string]string{
		"FOLLOW_LAUNCH": "true", "FOLLOW_INTERVAL": "1s", "FOLLOW_MAX_INTERVAL": "2s",
		"KALEYRA_RATE_LIMIT": fmt.Sprint(rate), "KALEYRA_RATE_BURST": fmt.Sprint(burst),
		// The rate binds, not the cap: at 40/s, 250ms status calls keep
		// about 10 in flight.
		"KALEYRA_MAX_IN_FLIGHT": "16", "WORKER_CONCURRENCY": "8",
		"LOG_LEVEL": "debug",
	}
	stopGrants := e.recordGrants(burst * rdb.Interval(rate, limits.Margin))
	ws := e.startWorkers(3, mod)
	victim := ws[0]

	// Every launch made and acknowledged; then the kill, when the victim
	// has a poll in flight whose answer will be its launch's final state
	// (its poll number reaches the script's length; no poll has been lost
	// yet): the one kind of lost call that costs a status call more.
	waitFor(t, 90*time.Second, "every launch call made and acknowledged", func() bool {
		info := e.queueInfo()
		return e.Sim.Stats().Calls >= n && info.Pending+info.Active+info.Scheduled+info.Retry == 0
	})
	launched := time.Now()
	polls := trackPolls(victim)
	waitFor(t, 60*time.Second, "a poll of a final state in flight in the worker to kill", func() bool {
		polls.update()
		for k := range polls.begun {
			if k.poll >= len(classOf[k.job].states) {
				return true
			}
		}
		return false
	})
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	killed := time.Now()
	statusAtKill := len(e.Sim.StatusCalls())
	time.Sleep(2 * time.Second)
	replacement := e.startWorker(mod)
	t.Logf("launches done %v after the test began; worker killed %v later, after %d status calls; replacement started",
		launched.Sub(begin).Round(time.Millisecond), killed.Sub(launched).Round(time.Millisecond), statusAtKill)

	// Every followed launch in a final state, and no follow-up task left.
	waitFor(t, 180*time.Second, "every followed launch in a final state", func() bool {
		time.Sleep(250 * time.Millisecond) // spare the CPU the workers need
		b, err := e.Store.GetBatch(t.Context(), batch)
		if err != nil {
			t.Fatal(err)
		}
		return b.LaunchStates[store.LaunchLaunched]+b.LaunchStates[store.LaunchRejected]+b.LaunchStates[store.LaunchSuspended] >= int64(followed)
	})
	done := time.Now()
	waitFor(t, 30*time.Second, "the follow queue to empty", func() bool {
		info, err := e.Inspector.GetQueueInfo(queue.FollowName)
		if errors.Is(err, asynq.ErrQueueNotFound) {
			return true
		}
		if err != nil {
			t.Fatal(err)
		}
		return info.Pending+info.Active+info.Scheduled+info.Retry+info.Archived == 0
	})
	survivors := []*proc{ws[1], ws[2], replacement}
	for _, w := range survivors {
		if w.exited() {
			t.Fatalf("a worker exited %d; stderr:\n%s", w.code, tail(w.stderr.String(), 3000))
		}
		w.stop()
	}
	grants := stopGrants()
	t.Logf("every followed launch final %v after the kill, %v after the test began", done.Sub(killed).Round(time.Millisecond), done.Sub(begin).Round(time.Millisecond))

	// What the kill may have cost: the victim's polls in flight, and the
	// status calls it cut off (they arrived before the kill and ended
	// before StatusLatency, the connection dropped; the survivors' calls
	// all took StatusLatency at least).
	calls, statusCalls := e.Sim.Calls(), e.Sim.StatusCalls()
	polls.update()
	inFlight := polls.begun
	for _, l := range polls.broken {
		t.Errorf("the killed worker's log line is not JSON: %s", l)
	}
	unmatched := map[string]int{}
	for _, agent := range inFlight {
		unmatched[agent]++
	}
	cut := map[string]map[int]bool{}     // agent -> places of its cut-off calls
	lastBefore := map[string]int{}       // agent -> place of its last call before the kill
	byAgent := map[string]map[int]bool{} // agent -> places of its calls
	cutFinal := 0                        // cut-off calls answered a final state
	for _, c := range statusCalls {
		k := c.Poll - 1
		if byAgent[c.AgentNo] == nil {
			byAgent[c.AgentNo] = map[int]bool{}
		}
		if c.Poll < 1 || byAgent[c.AgentNo][k] {
			t.Errorf("status call %+v: not a launch's next status call", c)
		}
		byAgent[c.AgentNo][k] = true
		if !c.At.Before(killed) {
			continue
		}
		lastBefore[c.AgentNo] = max(lastBefore[c.AgentNo], k)
		if c.Duration < statusLatency {
			if cut[c.AgentNo] == nil {
				cut[c.AgentNo] = map[int]bool{}
			}
			cut[c.AgentNo][k] = true
			if store.LaunchState(c.Answer).Final() {
				cutFinal++
			}
		}
	}
	nCut := 0
	for agent, ks := range cut {
		nCut += len(ks)
		if len(ks) > unmatched[agent] {
			t.Errorf("agent %s: %d status calls cut off by the kill, but the killed worker's log shows %d polls in flight for it", agent, len(ks), unmatched[agent])
		}
	}
	t.Logf("the killed worker had %d polls in flight (%v); the simulator saw %d status calls cut off, %d of them answered a final state",
		len(inFlight), inFlight, nCut, cutFinal)
	if len(inFlight) == 0 {
		t.Fatal("the kill caught no poll in flight: the test proves nothing about repeated polls")
	}

	// Each job: its record, its results entries, its calls.
	res := byJob(e.results())
	needed, made, extra := 0, 0, 0
	for agent, id := range jobOf {
		c := classOf[id]
		rec := e.statusJSON(id)
		entries := res[id]
		if n := e.Sim.Stats().ByAgent[agent]; n != 1 {
			t.Errorf("agent %s: %d launch calls, want 1", agent, n)
		}
		if c.deadLetter {
			if rec.State != "dead_lettered" || rec.Code != "RCS904" || rec.LaunchState != "" || rec.LaunchFollow != nil {
				t.Errorf("job %s: %s %s, launch state %q, want a dead letter RCS904, not followed", id, rec.State, rec.Code, rec.LaunchState)
			}
			if len(entries) != 1 || entries[0].Outcome != "dead_lettered" {
				t.Errorf("job %s: results %+v, want one dead letter", id, entries)
			}
			if len(byAgent[agent]) != 0 {
				t.Errorf("job %s, a dead letter: %d status calls", id, len(byAgent[agent]))
			}
			continue
		}
		// The replay: exact for an agent the kill did not touch; else with
		// its cut-off calls lost, and perhaps also (when the victim's log
		// leaves one of its polls unexplained) its last call before the
		// kill, answered but never recorded.
		got := followPlan{calls: len(byAgent[agent])}
		if f := rec.LaunchFollow; f != nil {
			got.polls = f.Polls
		}
		if len(entries) == 0 || entries[0].Outcome != "succeeded" || entries[0].LaunchState != "pending" {
			t.Errorf("job %s: first results entry %+v, want a success in launch state pending", id, entries)
			continue
		}
		prev := "pending"
		for _, r := range entries[1:] {
			if r.Outcome != store.OutcomeLaunchState || r.PreviousLaunchState != prev || r.BatchID != batch ||
				r.AgentLaunchID != entries[0].AgentLaunchID || r.AgentNo != agent {
				t.Errorf("job %s: results entry %+v after state %s, want a launch_state entry of the same launch and batch", id, r, prev)
			}
			got.changes = append(got.changes, r.LaunchState)
			prev = r.LaunchState
		}
		lost := cut[agent]
		options := []map[int]bool{lost}
		if unmatched[agent] > len(lost) {
			if k, ok := lastBefore[agent]; ok && !lost[k] {
				more := map[int]bool{k: true}
				for j := range lost {
					more[j] = true
				}
				options = append(options, more)
			}
		}
		var plans []followPlan
		matched := false
		for _, l := range options {
			p := planFollow(c.states, l)
			plans = append(plans, p)
			matched = matched || (p.calls == got.calls && p.polls == got.polls && slices.Equal(p.changes, got.changes))
		}
		if !matched {
			t.Errorf("job %s (agent %s, script %v; %d polls in flight at the kill, calls cut off at %v): %d status calls, %d polls recorded, changes %v; want one of %+v",
				id, agent, c.states, unmatched[agent], sortedInts(lost), got.calls, got.polls, got.changes, plans)
		}
		needed += len(c.states)
		made += got.calls
		extra += got.calls - len(c.states)
		if rec.State != "succeeded" || rec.LaunchState != c.final() || rec.LaunchFollow == nil ||
			rec.LaunchFollow.State != c.final() || rec.LaunchFollow.Ended != store.FollowFinal || !rec.LaunchFollow.NextPollAt.IsZero() {
			t.Errorf("job %s: status --json %s, launch state %q, follow-up %+v; want succeeded, %s, ended final", id, rec.State, rec.LaunchState, rec.LaunchFollow, c.final())
		}
	}
	if len(res) != n {
		t.Errorf("%d jobs in the results stream, want %d", len(res), n)
	}
	t.Logf("%d status calls for %d followed launches: %d needed by the scripts, %d made again after the kill (%d polls were in flight)",
		made, followed, needed, extra, len(inFlight))
	if made != len(statusCalls) {
		t.Errorf("%d status calls at the simulator, %d for the batch's agents", len(statusCalls), made)
	}

	// The batch counts.
	b := e.batchStatus(batch)
	if b.Total != n || b.Succeeded != followed || b.DeadLettered != n-followed || b.DeadLetteredByCode["RCS904"] != n-followed || b.FinishedAt == nil {
		t.Errorf("batch status: %+v, want %d succeeded and %d RCS904 dead letters, finished", b, followed, n-followed)
	}
	for _, st := range store.LaunchStates {
		if b.LaunchStates[string(st)] != wantStates[string(st)] {
			t.Errorf("batch launch_states %v, want %v", b.LaunchStates, wantStates)
			break
		}
	}

	// The rate limit held for launch and status calls together: at most
	// burst + rate*t calls in any window t, the fleet tests' check, for t
	// of 1s, 2s and 5s. Exactly on the limiter's grants, on Redis's clock,
	// where every call made must have taken one (the killed worker may
	// have taken some it never used); GCRA allows burst + rate*t in a
	// closed window, which the microseconds between the limiter's TIME and
	// MONITOR's stamp can fit in a half-open one, so the bound is reached
	// but cannot be exceeded. At the simulator a call arrives
	// after its grant, delayed by however the loaded machine schedules the
	// worker and the simulator: there, within arrivalJitter.
	var at []time.Time
	for _, c := range calls {
		at = append(at, c.At)
	}
	for _, c := range statusCalls {
		at = append(at, c.At)
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	if len(grants) < len(at) || len(grants) > len(at)+8 {
		t.Errorf("the limiter granted %d calls; %d were made (and the killed worker could hold 8 grants unused)", len(grants), len(at))
	}
	achieved, span := achievedRate(at)
	t.Logf("%d calls (%d launch, %d status) over %v: %.1f calls/s, limit %d/s burst %d; %d grants",
		len(at), len(calls), len(statusCalls), span.Round(time.Millisecond), achieved, rate, burst, len(grants))
	checkRate := func(what string, at []time.Time, jitter time.Duration) {
		t.Helper()
		for _, w := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second} {
			win, winAt := maxWindow(at, w)
			limit := burst + int(rate*(w+jitter).Seconds())
			t.Logf("%s: a %v window holds %d calls at most (at +%v); limit %d", what, w, win, winAt.Sub(at[0]).Round(time.Millisecond), limit)
			if win > limit {
				var offs []string
				for _, a := range at {
					if !a.Before(winAt) && a.Sub(winAt) < w {
						offs = append(offs, fmt.Sprint(a.Sub(winAt).Milliseconds()))
					}
				}
				t.Errorf("%s: a %v window holds %d calls, more than %d; at +ms: %s", what, w, win, limit, strings.Join(offs, " "))
			}
		}
	}
	checkRate("limiter grants", grants, 0)
	checkRate("arrivals at the simulator", at, arrivalJitter)
	for _, w := range survivors {
		checkLogs(t, w.stderr.String())
	}
}

func sortedInts(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
