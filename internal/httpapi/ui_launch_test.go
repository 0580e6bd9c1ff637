package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
)

// testPoll is one launch status poll to record: a launch state answered,
// or, with state "", a failed poll.
type testPoll struct {
	state         store.LaunchState
	code, message string
	response      string // JSON, or "" for none
}

// followedJob creates job id of agentNo (in batch, when one is named) and
// settles it as a success at `at` whose launch is followed (launch ID
// "launch-<id>"), then records polls a minute apart, each as the worker
// would: a final state ends following; after the last poll, expire ends it
// as expired, else the next poll is due an hour later.
func followedJob(t testing.TB, st *store.Store, batch, id, agentNo string, at time.Time, expire bool, polls ...testPoll) {
	t.Helper()
	ctx := context.Background()
	nj := store.NewJob{ID: id, SID: testenv.SID, AgentNo: agentNo, Payload: launchtest.Job(agentNo).Body(), Batch: batch}
	if res, err := st.Create(ctx, nj, at); err != nil || res != store.Created {
		t.Fatalf("create %s: %s %v", id, res, err)
	}
	if state, _, err := st.Start(ctx, nj, 9, at); err != nil || state != store.StateRunning {
		t.Fatalf("start %s: %s %v", id, state, err)
	}
	o := store.Outcome{Kind: store.FinishSucceeded, AgentLaunchID: "launch-" + id, FollowAt: at.Add(time.Minute),
		Attempt: store.Attempt{N: 1, Outcome: store.AttemptSucceeded, Code: "RCS902", Message: "submitted", HTTPStatus: 200, StartedAt: at, FinishedAt: at}}
	if res, err := st.Finish(ctx, id, o, at); err != nil || res != store.StateSucceeded {
		t.Fatalf("finish %s: %s %v", id, res, err)
	}
	for i, p := range polls {
		now := at.Add(time.Duration(i+1) * time.Minute)
		poll := store.Poll{AgentLaunchID: "launch-" + id, PollsBefore: i, State: p.state, Code: p.code, Message: p.message}
		if p.response != "" {
			poll.Response = json.RawMessage(p.response)
		}
		switch {
		case p.state.Final():
			poll.Ended = store.FollowFinal
		case expire && i == len(polls)-1:
			poll.Ended = store.FollowExpired
		default:
			poll.NextPollAt = now.Add(time.Hour)
		}
		if res, err := st.RecordLaunchPoll(ctx, id, poll, now); err != nil || (res != store.PollChanged && res != store.PollRecorded) {
			t.Fatalf("poll %d of %s: %s %v", i+1, id, res, err)
		}
	}
}

// Polls as the simulator answers them.
var (
	pollPending   = testPoll{state: store.LaunchPending, code: "RCS200", message: "ok", response: `{"code":"RCS200","data":{"launch_status":"PENDING"}}`}
	pollLaunched  = testPoll{state: store.LaunchLaunched, code: "RCS200", message: "ok", response: `{"code":"RCS200","data":{"launch_status":"LAUNCHED"}}`}
	pollRejected  = testPoll{state: store.LaunchRejected, code: "RCS200", message: "ok", response: `{"code":"RCS200","data":{"launch_status":"REJECTED"}}`}
	pollSuspended = testPoll{state: store.LaunchSuspended, code: "RCS200", message: "ok"}
	pollTimeout   = testPoll{code: "TIMEOUT", message: "no answer within 30s"}
	pollGateway   = testPoll{code: "RCS502", message: "Internal Gateway Error (HTTP 500)", response: `{"code":"RCS502","message":"Internal Gateway Error"}`}
)

// followedBatch is an open batch "followed" whose successes are followed:
// f-1 launched, f-2 rejected, f-3 pending after a failed poll, f-4 pending
// and never polled, f-5 given up (expired) while pending, f-6 suspended;
// with plain-1, a success not followed, and dl-9, a dead letter. Agents are
// 801..806, 807 and 809. It returns the batch ID.
func (e *uiEnv) followedBatch(at time.Time) string {
	e.t.Helper()
	id := store.NewBatchID(at)
	if err := e.Store.CreateBatch(context.Background(), id, "followed", at); err != nil {
		e.t.Fatal(err)
	}
	followedJob(e.t, e.Store, id, "f-1", "801", at, false, pollPending, pollLaunched)
	followedJob(e.t, e.Store, id, "f-2", "802", at, false, pollRejected)
	followedJob(e.t, e.Store, id, "f-3", "803", at, false, pollPending, pollTimeout)
	followedJob(e.t, e.Store, id, "f-4", "804", at, false)
	e.Settle(e.newJob(id, "plain-1", "807"), store.FinishSucceeded, "RCS902", false, at)
	followedJob(e.t, e.Store, id, "f-5", "805", at, true, pollPending, pollGateway)
	e.Settle(e.newJob(id, "dl-9", "809"), store.FinishDeadLettered, "RCS904", false, at)
	followedJob(e.t, e.Store, id, "f-6", "806", at, false, pollPending, pollSuspended)
	return id
}

func TestUILaunchStatesOnBatchPages(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	at := time.Now().Add(-time.Hour)
	plain := e.smallBatch(at.Add(-time.Hour))
	id := e.followedBatch(at)
	sess := e.login()

	// The list: a launch-state column, with the non-zero counts of the
	// followed batch, each linking to its jobs; none for the other batch.
	list := e.get("/ui/batches", sess)
	for _, want := range []string{"<th>Launch states</th>",
		`href="/ui/batches/` + id + `?launch_state=pending" data-launch-state="pending">3 pending</a>`,
		`data-launch-state="launched">1 launched</a>`, `data-launch-state="rejected">1 rejected</a>`, `data-launch-state="suspended">1 suspended</a>`} {
		if !strings.Contains(list.body, want) {
			t.Errorf("batch list lacks %q", want)
		}
	}
	if strings.Contains(list.body, "0 unknown") || strings.Contains(list.body, `href="/ui/batches/`+plain+`?launch_state=`) {
		t.Error("batch list shows zero counts or counts of a batch not followed")
	}

	page := e.get("/ui/batches/"+id, sess)
	if got := rowsOf(page.body); !sameIDs(got, []string{"f-1", "f-2", "f-3", "f-4", "plain-1", "f-5", "dl-9", "f-6"}) {
		t.Errorf("jobs %v", got)
	}
	for _, want := range []string{`id="launch-states"`, `data-launch-state="unknown">0 unknown</a>`, `<nav class="tabs launch"`,
		`href="/ui/batches/` + id + `?launch_state=rejected" data-launch-state="rejected">rejected <span class="n">1</span></a>`,
		"<th>Launch state</th>", `<span class="badge launch launched">launched</span>`, `<span class="badge launch suspended">suspended</span>`,
		`href="/ui/jobs/f-1"`, `href="/ui/deadletters/dl-9"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("batch page lacks %q", want)
		}
	}
	for ls, want := range map[string][]string{
		"pending": {"f-3", "f-4", "f-5"}, "launched": {"f-1"}, "rejected": {"f-2"}, "suspended": {"f-6"}, "unknown": nil,
		"bogus": rowsOf(page.body),
	} {
		r := e.get("/ui/batches/"+id+"?launch_state="+ls, sess)
		if got := rowsOf(r.body); !sameIDs(got, want) {
			t.Errorf("launch state %s: %v, want %v", ls, got, want)
		}
		if want != nil && ls != "bogus" && !strings.Contains(r.body, fmt.Sprintf("with launch state %s, in the order", ls)) {
			t.Errorf("launch state %s: the count line does not name the filter", ls)
		}
	}
	// The launch filter wins over an outcome filter: launch states are of
	// successes, and no outcome tab is on.
	r := e.get("/ui/batches/"+id+"?state=dead_lettered&launch_state=rejected", sess)
	if got := rowsOf(r.body); !sameIDs(got, []string{"f-2"}) || strings.Contains(r.body, `class="on" aria-current="page">dead_lettered`) {
		t.Errorf("both filters: %v", got)
	}

	// A batch with nothing followed: no launch states, and the filter is
	// ignored.
	pp := e.get("/ui/batches/"+plain, sess)
	for _, unwanted := range []string{"Launch state", `id="launch-states"`, `<nav class="tabs launch"`} {
		if strings.Contains(pp.body, unwanted) {
			t.Errorf("a batch not followed shows %q", unwanted)
		}
	}
	if got := rowsOf(e.get("/ui/batches/"+plain+"?launch_state=pending", sess).body); !sameIDs(got, rowsOf(pp.body)) {
		t.Errorf("launch filter on a batch not followed: %v", got)
	}
}

func TestUILaunchStateFilterPages(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	at := time.Now().Add(-time.Hour)
	id := store.NewBatchID(at)
	if err := e.Store.CreateBatch(context.Background(), id, "", at); err != nil {
		t.Fatal(err)
	}
	// Rejected launches between every two launched ones, enough for two
	// pages of each.
	var rejected, launched []string
	for i := range 2*uiPageSize + 4 {
		jid, poll := fmt.Sprintf("j-%03d", i), pollLaunched
		if i%2 == 1 {
			poll = pollRejected
			rejected = append(rejected, jid)
		} else {
			launched = append(launched, jid)
		}
		followedJob(t, e.Store, id, jid, fmt.Sprint(500+i), at, false, poll)
	}
	sess := e.login()
	path := "/ui/batches/" + id + "?launch_state=rejected"
	p1, p2 := e.get(path, sess), e.get(path+"&page=2", sess)
	if !sameIDs(rowsOf(p1.body), rejected[:uiPageSize]) || !sameIDs(rowsOf(p2.body), rejected[uiPageSize:]) {
		t.Errorf("rejected pages: %v / %v", rowsOf(p1.body), rowsOf(p2.body))
	}
	if !strings.Contains(p1.body, `href="/ui/batches/`+id+`?launch_state=rejected&amp;page=2" rel="next"`) ||
		!strings.Contains(p2.body, fmt.Sprintf("%d–%d of %d", uiPageSize+1, len(rejected), len(rejected))) {
		t.Errorf("rejected page navigation: %.3000s", p2.body)
	}
	if got := rowsOf(e.get("/ui/batches/"+id+"?launch_state=launched&page=2", sess).body); !sameIDs(got, launched[uiPageSize:]) {
		t.Errorf("page 2 of the launched: %v", got)
	}
	// A page past the last is the last.
	if got := rowsOf(e.get(path+"&page=9", sess).body); !sameIDs(got, rejected[uiPageSize:]) {
		t.Errorf("page 9 of the rejected: %v", got)
	}
}

func TestUIJobPage(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	id := e.followedBatch(time.Now().Add(-time.Hour))
	if r := e.req("GET", "/ui/jobs/f-1", nil, nil); r.status != http.StatusSeeOther {
		t.Fatalf("job page without a session: %d", r.status)
	}
	sess := e.login()
	for job, wants := range map[string][]string{
		"f-1": {`Job <code>f-1</code> <span class="badge launch launched">launched</span>`, `id="follow"`, "no more polls: launched is final",
			`<dd id="follow-polls">2, the last at`, "launch-f-1", `<a id="batch-link" href="/ui/batches/` + id + `">`, "RCS200: ok"},
		// A failed last poll: its answer, and when the next one is due.
		"f-3": {`<span class="badge launch pending">pending</span>`, `<dt>Next poll</dt>`, `<dd id="follow-answer">TIMEOUT: no answer within 30s</dd>`},
		"f-4": {`<dd id="follow-polls">0</dd>`, `<dt>Next poll</dt>`},
		"f-5": {"gave up: FOLLOW_MAX_AGE passed with the launch still pending", "RCS502: Internal Gateway Error (HTTP 500)",
			"The last poll's answer as received", "&#34;message&#34;: &#34;Internal Gateway Error&#34;"},
		"plain-1": {"succeeded, agent_launch_id launch-plain-1"},
		"dl-9":    {`id="deadletter-link" href="/ui/deadletters/dl-9"`, "dead-lettered, code RCS904"},
	} {
		page := e.get("/ui/jobs/"+job, sess)
		for _, want := range wants {
			if !strings.Contains(page.body, want) {
				t.Errorf("job %s lacks %q:\n%.3000s", job, want, page.body)
			}
		}
		if followed := strings.Contains(page.body, `id="follow"`); followed != strings.HasPrefix(job, "f-") {
			t.Errorf("job %s: follow-up shown %v", job, followed)
		}
	}
	if r := e.req("GET", "/ui/jobs/nope", nil, []*http.Cookie{sess}); r.status != http.StatusNotFound || !strings.Contains(r.body, "no job with ID") {
		t.Errorf("unknown job: %d", r.status)
	}
}

func TestUIJobsOfAgentLaunchState(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	at := time.Now().Add(-time.Hour)
	e.smallBatch(at)
	e.followedBatch(at)
	sess := e.login()
	page := e.get("/ui/jobs?agent=802", sess)
	for _, want := range []string{"<th>Launch state</th>", `<span class="badge launch rejected">rejected</span>`, `href="/ui/jobs/f-2"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("jobs of agent 802 lack %q", want)
		}
	}
	if page = e.get("/ui/jobs?agent=700", sess); strings.Contains(page.body, "Launch state") || !strings.Contains(page.body, `href="/ui/jobs/ok-1"`) {
		t.Error("jobs of agent 700, not followed: a launch-state column, or no link to the job")
	}
}
