//go:build unix

package httpapi

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
	"github.com/rcslaunch/rcslaunch/worker"
)

// pendingAgents is the agent-number prefix whose launches the simulator
// keeps pending in the browser test.
const pendingAgents = "4877"

// followedRun runs a batch "followed launches" through an in-process worker
// with the launch follow-up on (polls after 1 s, 2 s, 2 s, ...) and the
// simulator: two agents launched (after three polls), one rejected (agent
// number ending in 9, after two), one kept pending, and two dead letters
// (RCS904, RCS601). It waits until the launch states are there and returns
// the batch ID.
func (e *uiEnv) followedRun() string {
	e.t.Helper()
	ctx := context.Background()
	id := store.NewBatchID(time.Now())
	if err := e.Store.CreateBatch(ctx, id, "followed launches", time.Now()); err != nil {
		e.t.Fatal(err)
	}
	e.Sim.Script("48903", sim.StepMissingFields)
	e.Sim.Script("48904", sim.StepDisabled)
	for _, j := range []struct{ id, agent string }{
		{"fa-1", "48901"}, {"fr-1", "48909"}, {"fd-1", "48903"}, {"fp-1", pendingAgents + "0"}, {"fa-2", "48902"}, {"fd-2", "48904"},
	} {
		job := launchtest.Job(j.agent)
		job.ID = j.id
		if st, err := e.Producer.Enqueue(ctx, job, id, false); err != nil || st != queue.Enqueued {
			e.t.Fatalf("enqueue %s: %s %v", j.id, st, err)
		}
	}
	if err := e.Store.CloseBatch(ctx, id, time.Now()); err != nil {
		e.t.Fatal(err)
	}
	e.StartWorker(func(o *worker.Options) {
		o.FollowLaunch = true
		o.FollowInterval = time.Second
		o.FollowMaxInterval = 2 * time.Second
	})
	want := map[store.LaunchState]int64{store.LaunchPending: 1, store.LaunchLaunched: 2, store.LaunchRejected: 1, store.LaunchSuspended: 0, store.LaunchUnknown: 0}
	deadline := time.Now().Add(45 * time.Second)
	for {
		b, err := e.Store.GetBatch(ctx, id)
		if err != nil {
			e.t.Fatal(err)
		}
		if b.Finished() && fmt.Sprint(b.LaunchStates) == fmt.Sprint(want) {
			if b.Succeeded != 4 || b.DeadLettered != 2 {
				e.t.Fatalf("batch: %d succeeded, %d dead-lettered, want 4 and 2", b.Succeeded, b.DeadLettered)
			}
			return id
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("launch states %v (finished %v), want %v; worker log:\n%s", b.LaunchStates, b.Finished(), want, lastLog(e.Logs.String(), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lastLog is the last n lines of a log.
func lastLog(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestBrowserBatchPages visits the batch list and the pages of two batches:
// one whose launches a worker followed (launch states, the filter by launch
// state, a job's follow-up), and a small open one with successes and dead
// letters, whose dead letter it follows to its page and back to its batch,
// and deletes through the confirmation page. Screenshots go to a temporary
// directory (and to RCSLAUNCH_SCREENSHOT_DIR when set).
func TestBrowserBatchPages(t *testing.T) {
	bin := chromiumBin(t)
	e := newUIEnvWith(t, httptest.NewServer, testenv.WithSim(sim.Config{
		LaunchStates: map[string][]sim.StatusStep{pendingAgents: {sim.StatusPending}},
	}))
	id := e.smallBatch(time.Now().Add(-time.Hour))
	followed := e.followedRun()
	shots := t.TempDir()
	p := signedIn(t, bin, e.srv.URL+"/ui/batches")

	p.waitFor(t, "the batch list", `location.pathname === '/ui/batches' && document.readyState === 'complete' && document.querySelectorAll('tr[data-batch]').length === 2`)
	row := p.eval(t, `document.querySelector('tr[data-batch="`+id+`"]').innerText`)
	for _, want := range []string{"onboarding", id, "7", "6 of 7 done (85.7%)", "3", "still enqueuing"} {
		if !strings.Contains(fmt.Sprint(row), want) {
			t.Errorf("batch row %q lacks %q", row, want)
		}
	}
	frow := fmt.Sprint(p.eval(t, `document.querySelector('tr[data-batch="`+followed+`"] td.launch-states').innerText`))
	for _, want := range []string{"1 pending", "2 launched", "1 rejected"} {
		if !strings.Contains(frow, want) {
			t.Errorf("launch states of the followed batch %q lack %q", frow, want)
		}
	}
	// The bar is drawn: its two parts have their widths.
	if got := p.eval(t, `[...document.querySelectorAll('tr[data-batch="`+id+`"] svg.bar rect')].map(r => Math.round(r.getBoundingClientRect().width)).join(' ')`); got == "0 0" || got == "" {
		t.Errorf("progress bar parts: %v", got)
	}
	p.screenshot(t, filepath.Join(shots, "batches.png"))

	// The followed batch: its launch states, its jobs' launch states, and
	// its jobs filtered by one.
	p.click(t, `tr[data-batch="`+followed+`"] a`)
	p.waitFor(t, "the followed batch's page", `location.pathname === '/ui/batches/`+followed+`' && document.readyState === 'complete' && document.querySelectorAll('tr[data-job]').length === 6`)
	text := fmt.Sprint(p.eval(t, `document.querySelector('main').innerText`))
	for _, want := range []string{"Batch followed launches", "6 of 6 done (100.0%)", "Launch states", "1 pending", "2 launched", "1 rejected", "launch state:", "RCS904", "RCS601"} {
		if !strings.Contains(text, want) {
			t.Errorf("the followed batch's page lacks %q:\n%s", want, text)
		}
	}
	if got := p.eval(t, `[...document.querySelectorAll('tr[data-job] td.launch')].map(td => td.innerText).join(' ')`); got != "launched rejected – pending launched –" {
		t.Errorf("the jobs' launch states: %q", got)
	}
	p.screenshot(t, filepath.Join(shots, "batch.png"))
	p.click(t, `nav.tabs.launch a[data-launch-state="launched"]`)
	p.waitFor(t, "the launched jobs", `location.search === '?launch_state=launched' && document.readyState === 'complete' && document.querySelectorAll('tr[data-job]').length === 2`)
	if got := p.eval(t, `[...document.querySelectorAll('tr[data-job]')].map(r => r.dataset.job).join(' ')`); got != "fa-1 fa-2" {
		t.Errorf("launched jobs: %v", got)
	}
	p.screenshot(t, filepath.Join(shots, "batch-launched.png"))
	p.click(t, `tr[data-job="fa-1"] a`)
	p.waitFor(t, "the job page", `location.pathname === '/ui/jobs/fa-1' && document.readyState === 'complete' && !!document.querySelector('#follow')`)
	follow := fmt.Sprint(p.eval(t, `document.querySelector('#follow').innerText`))
	for _, want := range []string{"launched", "no more polls: launched is final", "RCS200"} {
		if !strings.Contains(follow, want) {
			t.Errorf("the job's follow-up %q lacks %q", follow, want)
		}
	}
	if got := p.eval(t, `document.querySelector('#follow-polls').innerText`); !strings.HasPrefix(fmt.Sprint(got), "3, the last at") {
		t.Errorf("polls of fa-1: %q", got)
	}
	p.screenshot(t, filepath.Join(shots, "job.png"))

	// The small batch: its dead letters only, then one of them, which
	// links back.
	p.navigate(t, e.srv.URL+"/ui/batches/"+id)
	p.waitFor(t, "the batch page", `location.pathname === '/ui/batches/`+id+`' && document.readyState === 'complete' && document.querySelectorAll('tr[data-job]').length === 7`)
	text = fmt.Sprint(p.eval(t, `document.querySelector('main').innerText`))
	for _, want := range []string{"Batch onboarding", "6 of 7 done (85.7%)", "Dead letters by code", "Retry 2 with code RCS904", "RCS601", "All 3 dead letters of this batch"} {
		if !strings.Contains(text, want) {
			t.Errorf("batch page lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Launch state") {
		t.Error("a batch with nothing followed shows launch states")
	}
	p.click(t, `nav.tabs a[href$="state=dead_lettered"]`)
	p.waitFor(t, "the dead-lettered jobs", `location.search === '?state=dead_lettered' && document.readyState === 'complete' && document.querySelectorAll('tr[data-job]').length === 3`)
	p.click(t, `tr[data-job="dl-1"] a`)
	p.waitFor(t, "the dead letter", `location.pathname === '/ui/deadletters/dl-1' && document.readyState === 'complete' && !!document.querySelector('#batch-link')`)
	if got := p.eval(t, `document.querySelector('#batch-link').getAttribute('href')`); got != "/ui/batches/"+id {
		t.Errorf("the dead letter's batch link: %v", got)
	}

	// Delete asks first; cancelling deletes nothing.
	p.click(t, `a.button.delete`)
	p.waitFor(t, "the confirmation", `location.pathname === '/ui/deadletters/dl-1/delete' && document.readyState === 'complete' && !!document.querySelector('#confirm-delete')`)
	if got := p.eval(t, `document.querySelector('#confirm-count').innerText`); !strings.HasPrefix(fmt.Sprint(got), "1 dead letter will be deleted") {
		t.Errorf("confirmation text: %q", got)
	}
	p.screenshot(t, filepath.Join(shots, "confirm.png"))
	p.click(t, "#cancel")
	p.waitFor(t, "the list after cancelling", `location.pathname === '/ui/deadletters' && document.readyState === 'complete'`)
	if st := e.state("dl-1"); st != store.StateDeadLettered {
		t.Fatalf("dl-1 after cancelling: %s", st)
	}
	p.click(t, `tr[data-job="dl-1"] a.button.delete`)
	p.waitFor(t, "the confirmation", `document.readyState === 'complete' && !!document.querySelector('#confirm-delete')`)
	p.click(t, "#confirm-delete")
	p.waitFor(t, "the list after deleting", `location.pathname === '/ui/deadletters' && document.readyState === 'complete' && !!document.querySelector('#flash')`)
	if got := p.eval(t, `document.querySelector('#flash').textContent`); got != "Deleted dead letter dl-1." || e.state("dl-1") != "gone" {
		t.Errorf("after confirming: %q, dl-1 %s", got, e.state("dl-1"))
	}
	if got := p.eval(t, `window.__csp.join('; ')`); got != "" {
		t.Errorf("CSP violations on our pages: %v", got)
	}
	t.Logf("screenshots in %s", shots)
}
