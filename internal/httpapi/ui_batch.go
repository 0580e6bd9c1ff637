package httpapi

// The web UI's batch pages (the list of batches, one batch with its jobs)
// and the confirmation pages that every deletion goes through.

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/rcslaunch/rcslaunch/internal/display"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/ops"
)

const uiBatchesPath = "/ui/batches"

// mountBatches registers the batch pages and the delete confirmations.
func (u *ui) mountBatches(m *router) {
	m.Handle("GET /ui/batches", u.page(u.batches))
	m.Handle("GET /ui/batches/{id}", u.page(u.withID(u.batch)))
	m.Handle("GET /ui/deadletters/{id}/delete", u.page(u.withID(u.confirmDelete)))
	m.Handle("GET /ui/deadletters:delete", u.page(u.confirmDeleteSelected))
	m.Handle("POST /ui/deadletters:delete", u.action(u.deleteSelected))
}

// uiPaging is a page of a paginated listing and its neighbours' URLs.
type uiPaging struct {
	Page, Pages      int
	Total            int64
	From, To         int
	PrevURL, NextURL string
}

// paging clamps page to the listing's pages; at names a page's URL.
func paging(page int, total int64, at func(page int) string) (uiPaging, int) {
	pages := max(1, int((total+uiPageSize-1)/uiPageSize))
	p := uiPaging{Page: min(page, pages), Pages: pages, Total: total}
	if p.Page > 1 {
		p.PrevURL = at(p.Page - 1)
	}
	if p.Page < pages {
		p.NextURL = at(p.Page + 1)
	}
	offset := (p.Page - 1) * uiPageSize
	p.From = offset + 1
	return p, offset
}

// withQuery is path with the non-empty values of q (pairs of name, value)
// and page when past the first.
func withQuery(path string, page int, q ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(q); i += 2 {
		if q[i+1] != "" {
			v.Set(q[i], q[i+1])
		}
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// uiBatchRow is a batch as the pages show it: its bar's widths in percent
// of its total, its progress line, its time left and, when its launches are
// followed, their launch states.
type uiBatchRow struct {
	ops.BatchStatus
	OKPct, DeadPct, DeadAt, DonePct string
	Progress, Left                  string
	Launch                          []uiLaunchCount
}

func batchRow(b ops.BatchStatus) uiBatchRow {
	pct := func(n int64) float64 {
		if b.Total <= 0 {
			return 0
		}
		return float64(n) * 100 / float64(b.Total)
	}
	ok, dead := pct(b.Succeeded), pct(b.DeadLettered)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	r := uiBatchRow{BatchStatus: b, OKPct: f(ok), DeadPct: f(dead), DeadAt: f(ok), DonePct: strconv.FormatFloat(ok+dead, 'f', 1, 64),
		Progress: display.Progress(b), Left: "–", Launch: launchCounts(b.Batch, "")}
	if left, known := b.TimeLeft(); known && !b.Finished() {
		r.Left = "about " + left.String()
	}
	return r
}

type uiBatchesData struct {
	uiBase
	uiPaging
	Batches []uiBatchRow
	// Followed is set when a batch on the page has followed launches: the
	// list then has a launch-state column.
	Followed bool
}

func (u *ui) batches(w http.ResponseWriter, r *http.Request, sess uiSession) {
	_, total, err := u.s.ops.ListBatchStatuses(r.Context(), 0, 0)
	if err != nil {
		u.internal(w, r, sess, err)
		return
	}
	p, offset := paging(uiPage(r.URL.Query().Get("page")), total, func(n int) string { return withQuery(uiBatchesPath, n) })
	bs, _, err := u.s.ops.ListBatchStatuses(r.Context(), offset, uiPageSize)
	if err != nil {
		u.internal(w, r, sess, err)
		return
	}
	p.To = offset + len(bs)
	d := uiBatchesData{uiBase: u.base(w, r, &sess, "Batches"), uiPaging: p}
	for _, b := range bs {
		d.Batches = append(d.Batches, batchRow(b))
		d.Followed = d.Followed || b.Followed() > 0
	}
	u.render(w, r, http.StatusOK, "batches", d)
}

// uiStates are the outcomes a batch's jobs can be filtered by, in order.
var uiStates = []ops.State{ops.StateSucceeded, ops.StateDeadLettered, ops.StateQueued, ops.StateRunning, ops.StateRetrying}

// uiStateTab is one outcome filter on a batch page.
type uiStateTab struct {
	Label, URL string
	N          int64
	On         bool
}

// uiCodeCount is a batch's dead letters with one code.
type uiCodeCount struct {
	Code string
	N    int64
	URL  string // the dead-letter list of this batch and code
}

type uiBatchData struct {
	uiBase
	uiPaging
	B     uiBatchRow
	State ops.State
	Tabs  []uiStateTab
	// Launch filters the jobs by launch state (successes only), with
	// LaunchTabs, when the batch has followed launches.
	Launch     store.LaunchState
	LaunchTabs []uiLaunchCount
	Codes      []uiCodeCount
	Jobs       []ops.BatchJob
	// LaunchColumn is set when a job on the page has a launch state.
	LaunchColumn bool
	// LettersURL lists the batch's dead letters.
	LettersURL string
}

// uiState reads an outcome filter; anything else is every state.
func uiState(v string) ops.State {
	for _, s := range uiStates {
		if string(s) == v {
			return s
		}
	}
	return ""
}

func (u *ui) batch(w http.ResponseWriter, r *http.Request, sess uiSession) {
	id, q := r.PathValue("id"), r.URL.Query()
	st, err := u.s.ops.BatchStatus(r.Context(), id)
	if errors.Is(err, ops.ErrNotFound) {
		u.fail(w, r, sess, http.StatusNotFound, "Not found", fmt.Sprintf("There is no batch with ID %q.", id))
		return
	} else if err != nil {
		u.internal(w, r, sess, err)
		return
	}
	state, path := uiState(q.Get("state")), uiBatchesPath+"/"+url.PathEscape(id)
	followed := st.Followed() > 0
	launch := uiLaunchState(q.Get("launch_state"))
	if !followed {
		launch = ""
	}
	filter := ops.BatchJobFilter{State: state, LaunchState: launch}
	if launch != "" {
		state = "" // launch states are of successes: the outcome tabs are off
	}
	_, total, err := u.s.ops.ListBatchJobs(r.Context(), id, filter, 0, 0)
	if err != nil {
		u.internal(w, r, sess, err)
		return
	}
	p, offset := paging(uiPage(q.Get("page")), total, func(n int) string {
		return withQuery(path, n, "state", string(state), "launch_state", string(launch))
	})
	rows, _, err := u.s.ops.ListBatchJobs(r.Context(), id, filter, offset, uiPageSize)
	if err != nil {
		u.internal(w, r, sess, err)
		return
	}
	p.To = offset + len(rows)
	d := uiBatchData{
		uiBase: u.base(w, r, &sess, "Batch "+id), uiPaging: p, B: batchRow(st), State: state,
		Tabs: batchTabs(st.Batch, path, state, launch == ""), Launch: launch, LaunchTabs: launchCounts(st.Batch, launch),
		Codes: batchCodes(st.Batch), Jobs: rows, LettersURL: withQuery(uiListPath, 0, "batch", id),
	}
	for _, j := range rows {
		d.LaunchColumn = d.LaunchColumn || j.LaunchState != ""
	}
	u.render(w, r, http.StatusOK, "batch", d)
}

// batchTabs are the outcome filters of a batch page, with their counts;
// none is on while the page is filtered by launch state (byOutcome false).
func batchTabs(b ops.Batch, path string, on ops.State, byOutcome bool) []uiStateTab {
	n := map[ops.State]int64{ops.StateSucceeded: b.Succeeded, ops.StateDeadLettered: b.DeadLettered,
		ops.StateQueued: b.Queued, ops.StateRunning: b.Running, ops.StateRetrying: b.Retrying}
	tabs := []uiStateTab{{Label: "all", URL: path, N: b.Total, On: byOutcome && on == ""}}
	for _, s := range uiStates {
		tabs = append(tabs, uiStateTab{Label: string(s), URL: withQuery(path, 0, "state", string(s)), N: n[s], On: byOutcome && on == s})
	}
	return tabs
}

// batchCodes are a batch's dead letters by code, most frequent first.
func batchCodes(b ops.Batch) []uiCodeCount {
	var out []uiCodeCount
	for c, n := range b.DeadLetteredByCode {
		out = append(out, uiCodeCount{Code: c, N: n, URL: withQuery(uiListPath, 0, "code", c, "batch", b.ID)})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].N > out[j].N || (out[i].N == out[j].N && out[i].Code < out[j].Code)
	})
	return out
}

// ---- delete confirmations ----

type uiConfirmData struct {
	uiBase
	// Action is where the confirmed form posts; ID, the filter and Page
	// go with it (the letter, the selection, the list to come back to).
	Action, ID string
	uiFilter
	Page    int
	N       int64
	BackURL string
}

// confirmDelete asks before one dead letter is deleted.
func (u *ui) confirmDelete(w http.ResponseWriter, r *http.Request, sess uiSession) {
	id, q := r.PathValue("id"), r.URL.Query()
	if _, err := u.s.ops.DeadLetter(r.Context(), id); errors.Is(err, ops.ErrNotFound) || errors.Is(err, ops.ErrNotDeadLettered) {
		u.fail(w, r, sess, http.StatusNotFound, "Not found", fmt.Sprintf("There is no dead letter with ID %q.", id))
		return
	} else if err != nil {
		u.internal(w, r, sess, err)
		return
	}
	f, page := uiFilterOf(q), uiPage(q.Get("page"))
	u.render(w, r, http.StatusOK, "confirm", uiConfirmData{
		uiBase: u.base(w, r, &sess, "Delete dead letter "+id), Action: "/ui/deadletters/" + url.PathEscape(id) + "/delete",
		ID: id, uiFilter: f, Page: page, N: 1, BackURL: listURL(f, page),
	})
}

// confirmDeleteSelected asks before every dead letter with a code, of a
// batch, of an account, or of any of them together, is deleted, saying how
// many there are now.
func (u *ui) confirmDeleteSelected(w http.ResponseWriter, r *http.Request, sess uiSession) {
	f := uiFilterOf(r.URL.Query())
	if f == (uiFilter{}) {
		u.fail(w, r, sess, http.StatusBadRequest, "Bad request", "Choose a code, a batch or an account whose dead letters to delete.")
		return
	}
	n, err := u.s.ops.CountSelected(r.Context(), f.selection())
	if err != nil {
		u.internal(w, r, sess, err)
		return
	}
	u.render(w, r, http.StatusOK, "confirm", uiConfirmData{
		uiBase: u.base(w, r, &sess, "Delete dead letters"), Action: "/ui/deadletters:delete",
		uiFilter: f, N: n, BackURL: listURL(f, 1),
	})
}

// confirmed reports whether a delete form was confirmed; when it was not,
// it sends the browser to the confirmation page and nothing is deleted.
func confirmed(w http.ResponseWriter, r *http.Request, confirmPage string) bool {
	if r.PostFormValue("confirm") == "yes" {
		return true
	}
	http.Redirect(w, r, withQuery(confirmPage, uiPage(r.PostFormValue("page")), uiFilterOf(r.PostForm).query()...), http.StatusSeeOther)
	return false
}

// deleteSelected deletes every dead letter of a code, a batch, an account
// or any of them together, once confirmed.
func (u *ui) deleteSelected(w http.ResponseWriter, r *http.Request, sess uiSession) {
	if !confirmed(w, r, "/ui/deadletters:delete") {
		return
	}
	f := uiFilterOf(r.PostForm)
	if f == (uiFilter{}) {
		u.flash(w, r, false, "Choose a code, a batch or an account whose dead letters to delete.")
		back(w, r)
		return
	}
	liftDeadlines(w) // every letter of a code or batch: it may take long
	t, err := u.s.ops.DeleteDeadLetters(r.Context(), f.selection(), nil)
	u.s.opts.Logger.Info().Str("code", f.Code).Str("batch", f.Batch).Str("sid", f.SID).Interface("results", t.Counts()).Err(err).
		Str("remote", r.RemoteAddr).Msg("UI: delete dead letters")
	msg := fmt.Sprintf("Deleted %d dead letter%s%s", t.Count(string(ops.Deleted)), plural(t.Count(string(ops.Deleted))), f.selection().Describe())
	if err != nil {
		u.flash(w, r, false, "%s, then stopped; the server logged why as error ID %s.", msg, u.s.logFailure(r, err, "UI: delete dead letters failed"))
	} else {
		u.flash(w, r, true, "%s.", msg)
	}
	http.Redirect(w, r, listURL(f, 1), http.StatusSeeOther)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
