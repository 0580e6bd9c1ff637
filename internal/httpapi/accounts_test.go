package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
	"github.com/rcslaunch/rcslaunch/ops"
)

// otherSID is an account of the tests besides testenv.SID.
const otherSID = "OTHERSID02"

// withSID is the fixture job of agentNo for the account sid.
func withSID(agentNo, sid string) map[string]any {
	j := launchtest.Map(agentNo)
	j["sid"] = sid
	return j
}

// TestEnqueuePriority: ?priority= on both enqueue routes puts the jobs on
// their account's queue of that priority (one a live worker serves; the
// others wait on the shared queue), as GET /v1/stats shows, unless a job
// has a priority of its own; anything else is refused naming the parameter
// or the member.
func TestEnqueuePriority(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := queue.Serve(context.Background(), e.Store.Redis(), "w1", []string{testenv.SID}, time.Now()); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.do("POST", "/v1/launches?priority=high", prodToken, jobBody(t, "1")), http.StatusCreated)
	for _, bad := range []string{"urgent", "1"} {
		wantError(t, e.do("POST", "/v1/launches?priority="+bad, prodToken, jobBody(t, "2")), http.StatusBadRequest, "bad_request", "priority")
		wantError(t, e.do("POST", "/v1/launches:batch?priority="+bad, prodToken,
			mustJSON(t, map[string]any{"jobs": []any{launchtest.Map("2")}})), http.StatusBadRequest, "bad_request", "priority")
	}
	batch := mustJSON(t, map[string]any{"jobs": []any{launchtest.Map("2"), withSID("3", otherSID)}})
	wantStatus(t, e.do("POST", "/v1/launches:batch?priority=low", prodToken, batch), http.StatusOK)
	own := launchtest.Map("4")
	own["priority"] = "high"
	wantStatus(t, e.do("POST", "/v1/launches?priority=low", prodToken, mustJSON(t, own)), http.StatusCreated)
	own["priority"] = "urgent"
	wantError(t, e.do("POST", "/v1/launches", prodToken, mustJSON(t, own)), http.StatusBadRequest, "invalid_job", "priority")
	wantError(t, e.do("POST", "/v1/launches:batch", prodToken, mustJSON(t, map[string]any{"jobs": []any{own}})),
		http.StatusBadRequest, "invalid_job", "jobs[0].priority")

	r := e.do("GET", "/v1/stats", adminToken, nil)
	wantStatus(t, r, http.StatusOK)
	var st struct {
		Queue       struct{ Pending int }        `json:"queue"`
		SharedQueue struct{ Pending int }        `json:"shared_queue"`
		Accounts    map[string]ops.AccountQueues `json:"accounts"`
	}
	r.into(t, &st)
	a, ok := st.Accounts[testenv.SID]
	if st.Queue.Pending != 4 || st.SharedQueue.Pending != 1 || len(st.Accounts) != 1 || !ok || a.Pending != 3 ||
		a.PendingByPriority[ops.PriorityHigh] != 2 || a.PendingByPriority[ops.PriorityLow] != 1 {
		t.Fatalf("stats: %s", r.body)
	}
}

// TestEnqueueNeedsAccount: on a server without KALEYRA_SID, a job must name
// its account; one that does not is refused as a field error of sid.
func TestEnqueueNeedsAccount(t *testing.T) {
	t.Parallel()
	te := testenv.New(t)
	c, err := ops.New(ops.Options{Redis: te.Conn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e := newAPI(t, te, func(o *Options) { o.Ops = c })
	ae := wantError(t, e.do("POST", "/v1/launches", prodToken, jobBody(t, "1")), http.StatusBadRequest, "invalid_job", "sid")
	if !strings.Contains(ae.Error.Errors[0].Reason, "KALEYRA_SID") {
		t.Errorf("the reason does not name KALEYRA_SID: %+v", ae.Error.Errors)
	}
	batch := mustJSON(t, map[string]any{"jobs": []any{withSID("1", otherSID), launchtest.Map("2")}})
	wantError(t, e.do("POST", "/v1/launches:batch", prodToken, batch), http.StatusBadRequest, "invalid_job", "jobs[1].sid")
	var ans launchAnswer
	r := e.do("POST", "/v1/launches", prodToken, mustJSON(t, withSID("1", otherSID)))
	wantStatus(t, r, http.StatusCreated)
	r.into(t, &ans)
	if rec, err := te.Ops.Job(ctxT(t), ans.JobID); err != nil || rec.SID != otherSID {
		t.Errorf("job %s: sid %q (%v), want %s", ans.JobID, rec.SID, err, otherSID)
	}
}

// deadLetterOf is deadLetter of the account sid.
func (e *env) deadLetterOf(id, sid, code string, at time.Time) {
	e.t.Helper()
	e.Settle(store.NewJob{ID: id, SID: sid, AgentNo: "agent-" + id, Payload: launchtest.Job("48900").Body()},
		store.FinishDeadLettered, code, false, at)
}

// TestFilterBySIDRoutes: sid selects one account's dead letters (to list,
// retry or delete) and an agent's jobs.
func TestFilterBySIDRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	at := time.Now().Add(-time.Hour)
	e.deadLetterOf("a-1", testenv.SID, "RCS904", at)
	e.deadLetterOf("o-1", otherSID, "UNKNOWN_ACCOUNT", at.Add(time.Second))
	e.deadLetterOf("o-2", otherSID, "RCS904", at.Add(2*time.Second))

	if ids, _, totals := e.readAll("?sid=" + otherSID); !sameIDs(ids, []string{"o-2", "o-1"}) || totals[0] != 2 {
		t.Errorf("dead letters of %s: %v (totals %v)", otherSID, ids, totals)
	}
	if ids, _, _ := e.readAll("?sid=" + otherSID + "&code=rcs904"); !sameIDs(ids, []string{"o-2"}) {
		t.Errorf("RCS904 of %s: %v", otherSID, ids)
	}
	wantError(t, e.do("POST", "/v1/deadletters:delete", adminToken, []byte(`{"all": true, "sid": "`+otherSID+`"}`)),
		http.StatusBadRequest, "bad_request", "all")
	r := e.do("POST", "/v1/deadletters:retry", adminToken, []byte(`{"sid": "`+otherSID+`", "code": "unknown_account"}`))
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"retried":1`) || e.Task("o-1") == nil {
		t.Errorf("retry of %s's UNKNOWN_ACCOUNT: %s", otherSID, r.body)
	}
	r = e.do("POST", "/v1/deadletters:delete", adminToken, []byte(`{"sid": "`+otherSID+`"}`))
	if wantStatus(t, r, http.StatusOK); !strings.Contains(string(r.body), `"deleted":1`) {
		t.Errorf("delete of %s's letters: %s", otherSID, r.body)
	}
	if ids, _, _ := e.readAll(""); !sameIDs(ids, []string{"a-1"}) {
		t.Errorf("left: %v, want a-1", ids)
	}

	wantStatus(t, e.do("POST", "/v1/launches", prodToken, mustJSON(t, withSID("77", otherSID))), http.StatusCreated)
	wantStatus(t, e.do("POST", "/v1/launches", prodToken, jobBody(t, "77")), http.StatusCreated)
	var list struct{ Jobs []ops.Record }
	r = e.do("GET", "/v1/launches?agent_no=77&sid="+url.QueryEscape(otherSID), prodToken, nil)
	wantStatus(t, r, http.StatusOK)
	if r.into(t, &list); len(list.Jobs) != 1 || list.Jobs[0].SID != otherSID {
		t.Errorf("jobs of agent 77 in %s: %s", otherSID, r.body)
	}
}

// TestUIFilterBySID: the dead-letter page filters by account (with a code
// too), shows each letter's account, and its bulk retry and delete act on
// the filtered letters only; the batch page shows each job's account, and
// the agent search filters by account.
func TestUIFilterBySID(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	at := time.Now().Add(-time.Hour)
	e.deadLetter("job-1", "100", "UNKNOWN_ACCOUNT", false, at)
	for i, id := range []string{"o-1", "o-2", "o-3"} {
		j := e.newJob("", id, "100")
		j.SID = otherSID
		e.Settle(j, store.FinishDeadLettered, []string{"UNKNOWN_ACCOUNT", "UNKNOWN_ACCOUNT", "RCS904"}[i], false, at.Add(time.Duration(i+1)*time.Second))
	}
	sess := e.login()
	page := e.get("/ui/deadletters?sid="+otherSID+"&code=unknown_account", sess)
	if got := rowsOf(page.body); !sameIDs(got, []string{"o-2", "o-1"}) {
		t.Errorf("UNKNOWN_ACCOUNT of %s: rows %v", otherSID, got)
	}
	for _, want := range []string{`value="` + otherSID + `"`, "Retry all 2 with code UNKNOWN_ACCOUNT of account " + otherSID,
		`href="/ui/deadletters?sid=` + otherSID + `"`, `<input type="hidden" name="sid" value="` + otherSID + `">`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the filtered page lacks %q", want)
		}
	}
	csrf := csrfOf(t, page.body)
	r := e.req("POST", "/ui/deadletters:retry", url.Values{"csrf": {csrf}, "code": {"UNKNOWN_ACCOUNT"}, "sid": {otherSID}},
		[]*http.Cookie{sess}, e.origin()...)
	if page, flash := e.follow(r, sess); flash != "ok: Dead letters with code UNKNOWN_ACCOUNT of account "+otherSID+": retried 2." ||
		len(rowsOf(page.body)) != 0 {
		t.Errorf("retry by account and code: %q, rows %v", flash, rowsOf(page.body))
	}
	if st := e.state("job-1"); st != store.StateDeadLettered {
		t.Errorf("job-1 (another account): %s", st)
	}
	// Delete by account: confirmed, it takes the account's letters only.
	r = e.req("POST", "/ui/deadletters:delete", url.Values{"csrf": {csrf}, "sid": {otherSID}}, []*http.Cookie{sess}, e.origin()...)
	if r.location() != "/ui/deadletters:delete?sid="+otherSID {
		t.Fatalf("unconfirmed delete went to %q", r.location())
	}
	if confirm := e.get(r.location(), sess); !strings.Contains(confirm.body, "of account <strong>"+otherSID) {
		t.Errorf("the confirmation does not name the account:\n%.1500s", confirm.body)
	}
	r = e.req("POST", "/ui/deadletters:delete", url.Values{"csrf": {csrf}, "sid": {otherSID}, "confirm": {"yes"}}, []*http.Cookie{sess}, e.origin()...)
	if _, flash := e.follow(r, sess); flash != "ok: Deleted 1 dead letter of account "+otherSID+"." {
		t.Errorf("delete by account: %q", flash)
	}
	if got := rowsOf(e.get("/ui/deadletters", sess).body); !sameIDs(got, []string{"job-1"}) {
		t.Errorf("left: %v", got)
	}

	b := e.smallBatch(at)
	if page := e.get("/ui/batches/"+b, sess); !strings.Contains(page.body, `<td class="sid">`+testenv.SID+`</td>`) {
		t.Errorf("the batch page does not show the jobs' account")
	}

	page = e.get("/ui/jobs?agent=100&sid="+otherSID, sess)
	if got := rowsOf(page.body); !sameIDs(got, []string{"o-2", "o-1"}) || !strings.Contains(page.body, "in account <strong>"+otherSID) {
		t.Errorf("jobs of agent 100 in %s: %v", otherSID, got)
	}
	if page = e.get("/ui/jobs?agent=100", sess); len(rowsOf(page.body)) != 3 || !strings.Contains(page.body, `&amp;sid=`+testenv.SID+`">`+testenv.SID) {
		t.Errorf("jobs of agent 100: %v, each with its account", rowsOf(page.body))
	}
}
