//go:build unix

package httpapi

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/store"
)

// TestBrowserBatchPages visits the batch list and a batch page after a small
// batch with successes and dead letters, follows a dead letter to its page
// and back to its batch, and deletes it through the confirmation page.
// Screenshots go to a temporary directory (and to RCSLAUNCH_SCREENSHOT_DIR
// when set).
func TestBrowserBatchPages(t *testing.T) {
	bin := chromiumBin(t)
	e := newUIEnv(t)
	id := e.smallBatch(time.Now().Add(-time.Hour))
	shots := t.TempDir()
	p := signedIn(t, bin, e.srv.URL+"/ui/batches")

	p.waitFor(t, "the batch list", `location.pathname === '/ui/batches' && document.readyState === 'complete' && document.querySelectorAll('tr[data-batch]').length === 1`)
	row := p.eval(t, `document.querySelector('tr[data-batch]').innerText`)
	for _, want := range []string{"onboarding", id, "7", "6 of 7 done (85.7%)", "3", "still enqueuing"} {
		if !strings.Contains(fmt.Sprint(row), want) {
			t.Errorf("batch row %q lacks %q", row, want)
		}
	}
	// The bar is drawn: its two parts have their widths.
	if got := p.eval(t, `[...document.querySelectorAll('svg.bar rect')].map(r => Math.round(r.getBoundingClientRect().width)).join(' ')`); got == "0 0" || got == "" {
		t.Errorf("progress bar parts: %v", got)
	}
	p.screenshot(t, filepath.Join(shots, "batches.png"))

	p.click(t, `tr[data-batch] a`)
	p.waitFor(t, "the batch page", `location.pathname.startsWith('/ui/batches/') && document.readyState === 'complete' && document.querySelectorAll('tr[data-job]').length === 7`)
	text := fmt.Sprint(p.eval(t, `document.querySelector('main').innerText`))
	for _, want := range []string{"Batch onboarding", "6 of 7 done (85.7%)", "Dead letters by code", "Retry 2 with code RCS904", "RCS601", "All 3 dead letters of this batch"} {
		if !strings.Contains(text, want) {
			t.Errorf("batch page lacks %q:\n%s", want, text)
		}
	}
	p.screenshot(t, filepath.Join(shots, "batch.png"))

	// Its dead letters only, then one of them, which links back.
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
