package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/store"
)

var batchRowFinder = regexp.MustCompile(`<tr data-batch="([^"]+)"`)

func batchRowsOf(page string) []string {
	var ids []string
	for _, m := range batchRowFinder.FindAllStringSubmatch(page, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// smallBatch is an open batch "onboarding" with three successes (ok-1..3),
// dead letters dl-1, dl-2 (RCS904) and dl-3 (RCS601), and one queued job,
// q-1; outside it, a RCS904 dead letter "loose". It returns the batch ID.
func (e *uiEnv) smallBatch(at time.Time) string {
	e.t.Helper()
	id := store.NewBatchID(at)
	if err := e.Store.CreateBatch(context.Background(), id, "onboarding", at); err != nil {
		e.t.Fatal(err)
	}
	for i, j := range []struct {
		id   string
		kind store.FinishKind
		code string
	}{{"ok-1", store.FinishSucceeded, "RCS902"}, {"dl-1", store.FinishDeadLettered, "RCS904"}, {"ok-2", store.FinishSucceeded, "RCS902"},
		{"dl-2", store.FinishDeadLettered, "RCS904"}, {"ok-3", store.FinishSucceeded, "RCS902"}, {"dl-3", store.FinishDeadLettered, "RCS601"},
		{"q-1", "", ""}} {
		e.Settle(e.newJob(id, j.id, fmt.Sprint(700+i)), j.kind, j.code, false, at.Add(time.Duration(i)*time.Second))
	}
	e.deadLetter("loose", "799", "RCS904", false, at.Add(time.Minute))
	return id
}

func TestUIBatchPages(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	at := time.Now().Add(-time.Hour)
	older := store.NewBatchID(at.Add(-time.Hour))
	if err := e.Store.CreateBatch(context.Background(), older, "older <b>", at.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	id := e.smallBatch(at)
	sess := e.login()

	list := e.get("/ui/batches", sess)
	if got := batchRowsOf(list.body); !sameIDs(got, []string{id, older}) {
		t.Fatalf("batches %v, want newest first", got)
	}
	for _, want := range []string{`href="/ui/batches/` + id + `"`, ">onboarding<", "older &lt;b&gt;", `<svg class="bar"`, `<rect class="ok" width="42.86"`,
		`<rect class="dead" x="42.86" width="42.86"`, "6 of 7 done (85.7%)", `href="/ui/deadletters?batch=` + id + `"`, "still enqueuing", `href="/ui/batches">Batches</a>`} {
		if !strings.Contains(list.body, want) {
			t.Errorf("batch list lacks %q", want)
		}
	}

	page := e.get("/ui/batches/"+id, sess)
	if got := rowsOf(page.body); !sameIDs(got, []string{"ok-1", "dl-1", "ok-2", "dl-2", "ok-3", "dl-3", "q-1"}) {
		t.Errorf("jobs %v", got)
	}
	for _, want := range []string{"Batch onboarding", "6 of 7 done (85.7%)", `<tr data-code="RCS904">`, "Retry 2 with code RCS904",
		`href="/ui/deadletters?batch=` + id + `&amp;code=RCS904"`, `href="/ui/deadletters/dl-1"`, `href="/ui/deadletters?batch=` + id + `"`,
		`href="/ui/deadletters:delete?code=RCS904&amp;batch=` + id + `"`, "succeeded <span class=\"n\">3</span>", "launch-ok-1"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("batch page lacks %q", want)
		}
	}
	if strings.Contains(page.body, `href="/ui/deadletters/ok-1"`) {
		t.Error("a success links to a dead-letter page")
	}
	for state, want := range map[string][]string{
		"succeeded": {"ok-1", "ok-2", "ok-3"}, "dead_lettered": {"dl-1", "dl-2", "dl-3"}, "queued": {"q-1"}, "running": nil, "bogus": rowsOf(page.body),
	} {
		got := rowsOf(e.get("/ui/batches/"+id+"?state="+state, sess).body)
		if !sameIDs(got, want) {
			t.Errorf("state %s: %v, want %v", state, got, want)
		}
	}
	if r := e.req("GET", "/ui/batches/nope", nil, []*http.Cookie{sess}); r.status != http.StatusNotFound || !strings.Contains(r.body, "no batch") {
		t.Errorf("unknown batch: %d", r.status)
	}

	// Links both ways: a dead letter names its batch, the batch's letters list.
	if d := e.get("/ui/deadletters/dl-1", sess); !strings.Contains(d.body, `<a id="batch-link" href="/ui/batches/`+id+`">`) {
		t.Error("the dead letter does not link to its batch")
	}
	letters := e.get("/ui/deadletters?batch="+id, sess)
	if got := rowsOf(letters.body); !sameIDs(got, []string{"dl-3", "dl-2", "dl-1"}) {
		t.Errorf("the batch's dead letters: %v", got)
	}
	if got := rowsOf(e.get("/ui/deadletters?batch="+id+"&code=rcs904", sess).body); !sameIDs(got, []string{"dl-2", "dl-1"}) {
		t.Errorf("the batch's RCS904 letters: %v", got)
	}
}

func TestUIBatchRetryByCode(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	id := e.smallBatch(time.Now().Add(-time.Hour))
	sess := e.login()
	csrf := csrfOf(t, e.get("/ui/batches/"+id, sess).body)
	form := url.Values{"csrf": {csrf}, "code": {"RCS904"}, "batch": {id}}
	if r := e.req("POST", "/ui/deadletters:retry", form, []*http.Cookie{sess}, "Origin", "https://evil.example"); r.status != http.StatusForbidden {
		t.Errorf("cross-site batch retry: %d", r.status)
	}
	bad := url.Values{"csrf": {"x"}, "code": {"RCS904"}, "batch": {id}}
	if r := e.req("POST", "/ui/deadletters:retry", bad, []*http.Cookie{sess}, e.origin()...); r.status != http.StatusForbidden {
		t.Errorf("batch retry with a wrong token: %d", r.status)
	}
	r := e.req("POST", "/ui/deadletters:retry", form, []*http.Cookie{sess}, e.origin()...)
	if r.location() != "/ui/batches/"+id {
		t.Errorf("batch retry went to %q", r.location())
	}
	page, flash := e.follow(r, sess)
	if flash != "ok: Dead letters with code RCS904 of batch "+id+": retried 2." {
		t.Errorf("flash: %q", flash)
	}
	if strings.Contains(page.body, `<tr data-code="RCS904">`) || !strings.Contains(page.body, `<tr data-code="RCS601">`) {
		t.Error("the batch page still offers RCS904 or lost RCS601")
	}
	for id, want := range map[string]store.State{"dl-1": store.StateQueued, "dl-2": store.StateQueued, "dl-3": store.StateDeadLettered, "loose": store.StateDeadLettered} {
		if st := e.state(id); st != want {
			t.Errorf("%s: %s, want %s", id, st, want)
		}
	}
}

func TestUIDeleteNeedsConfirmation(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	id := e.smallBatch(time.Now().Add(-time.Hour))
	sess := e.login()
	csrf := csrfOf(t, e.get("/ui/deadletters", sess).body)

	// One letter: a post without confirming goes to the confirmation page.
	r := e.req("POST", "/ui/deadletters/dl-1/delete", url.Values{"csrf": {csrf}, "code": {"RCS904"}, "page": {"2"}}, []*http.Cookie{sess}, e.origin()...)
	if r.status != http.StatusSeeOther || r.location() != "/ui/deadletters/dl-1/delete?code=RCS904&page=2" {
		t.Fatalf("unconfirmed delete: %d to %q", r.status, r.location())
	}
	if st := e.state("dl-1"); st != store.StateDeadLettered {
		t.Fatalf("dl-1 after an unconfirmed delete: %s", st)
	}
	c := e.get(r.location(), sess)
	for _, want := range []string{"1 dead letter</strong> will be deleted", `name="confirm" value="yes"`, `action="/ui/deadletters/dl-1/delete"`,
		`name="code" value="RCS904"`, `name="page" value="2"`, `href="/ui/deadletters?code=RCS904&amp;page=2" id="cancel"`} {
		if !strings.Contains(c.body, want) {
			t.Errorf("confirmation page lacks %q: %.2000s", want, c.body)
		}
	}
	r = e.req("POST", "/ui/deadletters/dl-1/delete", url.Values{"csrf": {csrf}, "confirm": {"yes"}}, []*http.Cookie{sess}, e.origin()...)
	if _, flash := e.follow(r, sess); flash != "ok: Deleted dead letter dl-1." || e.state("dl-1") != "gone" {
		t.Errorf("confirmed delete: %q, dl-1 %s", flash, e.state("dl-1"))
	}
	if r := e.req("GET", "/ui/deadletters/ok-1/delete", nil, []*http.Cookie{sess}); r.status != http.StatusNotFound {
		t.Errorf("confirming the delete of a success: %d", r.status)
	}

	// A code of a batch: the page says how many; only a confirmed post deletes.
	c = e.get("/ui/deadletters:delete?code=rcs904&batch="+id, sess)
	if !strings.Contains(c.body, "1 dead letter</strong> will be deleted (code <strong>RCS904</strong>) from batch") {
		t.Errorf("bulk confirmation: %.2000s", c.body)
	}
	sel := url.Values{"csrf": {csrf}, "code": {"RCS904"}, "batch": {id}}
	if r := e.req("POST", "/ui/deadletters:delete", sel, []*http.Cookie{sess}, e.origin()...); r.status != http.StatusSeeOther ||
		!strings.HasPrefix(r.location(), "/ui/deadletters:delete?") || e.state("dl-2") != store.StateDeadLettered {
		t.Fatalf("unconfirmed bulk delete: %d to %q, dl-2 %s", r.status, r.location(), e.state("dl-2"))
	}
	for _, hdr := range [][]string{{"Origin", "https://evil.example"}, nil} {
		bad := url.Values{"csrf": {"AAAA"}, "code": {"RCS904"}, "batch": {id}, "confirm": {"yes"}}
		if hdr == nil {
			hdr, bad = e.origin(), url.Values{"code": {"RCS904"}, "confirm": {"yes"}}
		}
		if r := e.req("POST", "/ui/deadletters:delete", bad, []*http.Cookie{sess}, hdr...); r.status != http.StatusForbidden {
			t.Errorf("bulk delete with %v: %d", hdr, r.status)
		}
	}
	sel.Set("confirm", "yes")
	r = e.req("POST", "/ui/deadletters:delete", sel, []*http.Cookie{sess}, e.origin()...)
	if _, flash := e.follow(r, sess); flash != "ok: Deleted 1 dead letter with code RCS904 of batch "+id+"." {
		t.Errorf("bulk delete: %q", flash)
	}
	if e.state("dl-2") != "gone" || e.state("loose") != store.StateDeadLettered || e.state("dl-3") != store.StateDeadLettered {
		t.Errorf("after the bulk delete: dl-2 %s, loose %s, dl-3 %s", e.state("dl-2"), e.state("loose"), e.state("dl-3"))
	}
	if r := e.req("GET", "/ui/deadletters:delete", nil, []*http.Cookie{sess}); r.status != http.StatusBadRequest {
		t.Errorf("a bulk delete of everything: %d", r.status)
	}
}

func TestUINoRetryAllOfNothing(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	e.deadLetter("job-a", "100", "RCS904", false, time.Now())
	sess := e.login()
	page := e.get("/ui/deadletters?code=NOPE", sess)
	if strings.Contains(page.body, "Retry all") || strings.Contains(page.body, "Delete all") || !strings.Contains(page.body, "No dead letters with code") {
		t.Errorf("a filter matching nothing: %.2000s", page.body)
	}
	if page = e.get("/ui/deadletters?code=RCS904", sess); !strings.Contains(page.body, "Retry all 1 with code RCS904") || !strings.Contains(page.body, "Delete all 1…") {
		t.Error("a filter matching one offers no bulk actions")
	}
}

func TestUIBatchPagination(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	ctx := context.Background()
	at := time.Now().Add(-time.Hour)
	var batches []string // newest first
	for i := range uiPageSize + 2 {
		id := fmt.Sprintf("b_%03d", i)
		if err := e.Store.CreateBatch(ctx, id, "", at.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
		batches = append([]string{id}, batches...)
	}
	var jobs []string
	for i := range uiPageSize + 3 {
		jobs = append(jobs, fmt.Sprintf("j-%02d", i))
		e.Settle(e.newJob("b_000", jobs[i], fmt.Sprint(300+i)), store.FinishSucceeded, "RCS902", false, at)
	}
	e.Settle(e.newJob("b_000", "j-dead", "399"), store.FinishDeadLettered, "RCS904", false, at)
	sess := e.login()

	p1, p2 := e.get("/ui/batches", sess), e.get("/ui/batches?page=2", sess)
	if !sameIDs(batchRowsOf(p1.body), batches[:uiPageSize]) || !sameIDs(batchRowsOf(p2.body), batches[uiPageSize:]) {
		t.Errorf("batch pages: %v / %v", batchRowsOf(p1.body), batchRowsOf(p2.body))
	}
	if !strings.Contains(p1.body, `href="/ui/batches?page=2" rel="next"`) || !strings.Contains(p2.body, `href="/ui/batches" rel="prev"`) {
		t.Error("batch list navigation")
	}
	path := "/ui/batches/b_000?state=succeeded"
	j1, j2 := e.get(path, sess), e.get(path+"&page=2", sess)
	if !sameIDs(rowsOf(j1.body), jobs[:uiPageSize]) || !sameIDs(rowsOf(j2.body), jobs[uiPageSize:]) {
		t.Errorf("job pages: %v / %v", rowsOf(j1.body), rowsOf(j2.body))
	}
	if !strings.Contains(j1.body, `href="/ui/batches/b_000?page=2&amp;state=succeeded" rel="next"`) ||
		!strings.Contains(j2.body, fmt.Sprintf("%d–%d of %d", uiPageSize+1, uiPageSize+3, uiPageSize+3)) {
		t.Errorf("job page navigation: %.3000s", j2.body)
	}
	if got := rowsOf(e.get("/ui/batches/b_000?page=2", sess).body); !sameIDs(got, append(jobs[uiPageSize:], "j-dead")) {
		t.Errorf("page 2 of every job: %v", got)
	}
}

func TestUIBatchPagesNeedASession(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	id := e.smallBatch(time.Now())
	for _, path := range []string{"/ui/batches", "/ui/batches?page=2", "/ui/batches/" + id, "/ui/deadletters/dl-1/delete", "/ui/deadletters:delete?code=RCS904"} {
		r := e.req("GET", path, nil, nil)
		want := "/ui/login?" + url.Values{"next": {path}}.Encode()
		if r.status != http.StatusSeeOther || r.location() != want {
			t.Errorf("GET %s: %d to %q", path, r.status, r.location())
		}
	}
	r := e.req("POST", "/ui/deadletters:delete", url.Values{"code": {"RCS904"}, "confirm": {"yes"}}, nil, e.origin()...)
	if r.status != http.StatusSeeOther || r.location() != "/ui/login" || e.state("dl-1") != store.StateDeadLettered {
		t.Errorf("bulk delete without a session: %d to %q", r.status, r.location())
	}
}

func TestUIJobsOfAgent(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t)
	id := e.smallBatch(time.Now().Add(-time.Hour)) // agents 700 (ok-1) and 701 (dl-1), …
	if r := e.req("GET", "/ui/jobs?agent=701", nil, nil); r.status != http.StatusSeeOther {
		t.Fatalf("agent search without a session: %d, want a redirect to the login", r.status)
	}
	sess := e.login()
	page := e.get("/ui/jobs?agent=701", sess)
	if got := rowsOf(page.body); !sameIDs(got, []string{"dl-1"}) {
		t.Errorf("jobs of agent 701: %v, want dl-1", got)
	}
	for _, want := range []string{`href="/ui/deadletters/dl-1"`, `href="/ui/batches/` + id + `"`, "dead-lettered, code RCS904", "1 job of agent 701"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("agent search lacks %q:\n%.2000s", want, page.body)
		}
	}
	if page = e.get("/ui/jobs?agent=700", sess); strings.Contains(page.body, `href="/ui/deadletters/ok-1"`) || !sameIDs(rowsOf(page.body), []string{"ok-1"}) {
		t.Errorf("jobs of agent 700: %v, a success must not link to a dead-letter page", rowsOf(page.body))
	}
	if page = e.get("/ui/jobs?agent=nobody", sess); !strings.Contains(page.body, "0 jobs of agent nobody") {
		t.Errorf("an unknown agent:\n%.1500s", page.body)
	}
	if page = e.get("/ui/jobs", sess); !strings.Contains(page.body, `name="agent"`) || len(rowsOf(page.body)) != 0 {
		t.Error("the search page without an agent should show the form only")
	}
}
