package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/ops"
)

// Pagination of GET /v1/deadletters.
const (
	defaultPageSize = 50
	maxPageSize     = 500
)

// deadLetterPage is one page of dead letters; NextCursor is empty on the last.
type deadLetterPage struct {
	DeadLetters []ops.Record `json:"dead_letters"`
	NextCursor  string       `json:"next_cursor,omitempty"`
	Total       int64        `json:"total"`
}

// listDeadLetters answers GET
// /v1/deadletters?code=&sid=&since=&limit=&cursor=, newest first.
func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var bad []launch.FieldError
	f, err := filterFrom(q.Get("code"), q.Get("sid"), q.Get("since"))
	if err != nil {
		bad = append(bad, launch.FieldError{Field: "since", Reason: err.Error()})
	}
	limit, offset, pageBad := pageQuery(q)
	bad = append(bad, pageBad...)
	if len(bad) > 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "invalid query", bad)
		return
	}
	// One more than the page tells whether another page follows.
	recs, total, err := s.ops.ListDeadLetters(r.Context(), f, offset, limit+1)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	page := deadLetterPage{Total: total}
	page.DeadLetters, page.NextCursor = cut(recs, offset, limit)
	writeJSON(w, http.StatusOK, page)
}

// cut trims a read of limit+1 items from offset to one page, and gives the
// next page's cursor, empty on the last.
func cut[T any](items []T, offset, limit int) ([]T, string) {
	if items == nil {
		items = []T{}
	}
	if len(items) > limit {
		return items[:limit], strconv.Itoa(offset + limit)
	}
	return items, ""
}

// pageQuery reads a page's limit and cursor (an offset) from a query, with a
// field error for each bad one.
func pageQuery(q url.Values) (limit, offset int, bad []launch.FieldError) {
	limit = defaultPageSize
	if v := q.Get("limit"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > maxPageSize {
			bad = append(bad, launch.FieldError{Field: "limit", Reason: fmt.Sprintf("must be a whole number from 1 to %d", maxPageSize)})
		} else {
			limit = n
		}
	}
	if v := q.Get("cursor"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 0 {
			bad = append(bad, launch.FieldError{Field: "cursor", Reason: "must be a next_cursor from an earlier page"})
		} else {
			offset = n
		}
	}
	return limit, offset, bad
}

// filterFrom builds a dead-letter filter from a code, a SID and a "since"
// duration.
func filterFrom(code, sid, since string) (ops.Filter, error) {
	f := ops.Filter{Code: code, SID: sid}
	if since == "" {
		return f, nil
	}
	d, err := time.ParseDuration(since)
	if err != nil || d <= 0 {
		return f, fmt.Errorf("must be a positive duration such as 24h, got %q", since)
	}
	f.Since = time.Now().Add(-d)
	return f, nil
}

func (s *Server) getDeadLetter(w http.ResponseWriter, r *http.Request) {
	rec, err := s.ops.DeadLetter(r.Context(), r.PathValue("id"))
	s.writeRecord(w, r, "dead letter", rec, err)
}

// outcome is what a retry or delete did to one dead letter.
type outcome struct {
	JobID  string     `json:"job_id"`
	Result ops.Action `json:"result"`
}

func (s *Server) retryDeadLetter(w http.ResponseWriter, r *http.Request) {
	res, err := s.ops.RetryDeadLetter(r.Context(), r.PathValue("id"), r.URL.Query().Get("include_uncertain") == "true")
	s.writeOutcome(w, r, res, err)
}

func (s *Server) deleteDeadLetter(w http.ResponseWriter, r *http.Request) {
	res, err := s.ops.DeleteDeadLetter(r.Context(), r.PathValue("id"))
	s.writeOutcome(w, r, res, err)
}

// writeOutcome answers a retry or delete of one dead letter.
func (s *Server) writeOutcome(w http.ResponseWriter, r *http.Request, res ops.DeadLetterResult, err error) {
	switch {
	case err != nil:
		s.internal(w, r, err)
	case res.Action == ops.NotFound:
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no dead letter with ID %q", res.JobID), nil)
	case res.Action == ops.SkippedUncertain:
		writeError(w, http.StatusConflict, "uncertain", "the agent may have been launched; retry with include_uncertain=true to launch it anyway", nil)
	case res.Action == ops.NotDeadLettered:
		writeError(w, http.StatusConflict, "not_dead_lettered", fmt.Sprintf("job %s is %s, not dead-lettered", res.JobID, res.State), nil)
	default:
		writeJSON(w, http.StatusOK, outcome{JobID: res.JobID, Result: res.Action})
	}
}

// selection is the body of the bulk dead-letter routes: all, or code
// and/or sid, and how to go about it.
type selection struct {
	All              bool     `json:"all"`
	Code             string   `json:"code"`
	SID              string   `json:"sid"`
	IncludeUncertain bool     `json:"include_uncertain"`
	Rate             *float64 `json:"rate"` // letters a second; absent: unpaced
}

// readSelection reads a bulk route's body as the selection and options it
// asks for, answering 400 (and returning false) when it is not valid.
func (s *Server) readSelection(w http.ResponseWriter, r *http.Request) (ops.Selection, *ops.BulkOpts, bool) {
	var body selection
	data, ok := readBody(w, r, maxAdminBody)
	if !ok {
		return ops.Selection{}, nil, false
	}
	if err := decodeStrict(data, &body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", `body must be {"all": true}, {"code": "RCS502"} or {"sid": "SID"}: `+err.Error(), nil)
		return ops.Selection{}, nil, false
	}
	sel := ops.Selection{All: body.All, Code: body.Code, SID: body.SID}
	var bad []launch.FieldError
	if sel.Check() != nil {
		bad = append(bad, launch.FieldError{Field: "all", Reason: "either all, or code and/or sid, is required"})
	}
	opts := &ops.BulkOpts{IncludeUncertain: body.IncludeUncertain}
	if body.Rate != nil {
		if opts.Rate = *body.Rate; opts.Rate <= 0 {
			bad = append(bad, launch.FieldError{Field: "rate", Reason: "must be a positive number of dead letters a second (leave it out for no pacing)"})
		}
	}
	if len(bad) > 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "invalid selection", bad)
		return sel, nil, false
	}
	return sel, opts, true
}

// retryDeadLetters answers POST /v1/deadletters:retry. A paced redrive
// may take hours: the server's deadlines are lifted once the body is read.
func (s *Server) retryDeadLetters(w http.ResponseWriter, r *http.Request) {
	if sel, opts, ok := s.readSelection(w, r); ok {
		liftDeadlines(w)
		t, err := s.ops.RetryDeadLetters(r.Context(), sel, opts)
		s.writeTally(w, r, t, err)
	}
}

// deleteDeadLetters answers POST /v1/deadletters:delete; include_uncertain
// has no effect on it. Like a retry, it may be paced, and take long.
func (s *Server) deleteDeadLetters(w http.ResponseWriter, r *http.Request) {
	if sel, opts, ok := s.readSelection(w, r); ok {
		liftDeadlines(w)
		t, err := s.ops.DeleteDeadLetters(r.Context(), sel, opts)
		s.writeTally(w, r, t, err)
	}
}

func (s *Server) writeTally(w http.ResponseWriter, r *http.Request, t ops.Tally, err error) {
	if err != nil {
		s.internalMsg(w, r, err, "stopped after "+t.String())
		return
	}
	writeJSON(w, http.StatusOK, map[string]map[string]int{"results": t.Counts()})
}

// stats answers GET /v1/stats: asynq's view of the launch queues (all of
// them summed, the shared one, each account's) and ours.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	lq, err := s.ops.LaunchQueues()
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := map[string]any{"queue": lq.Total, "shared_queue": lq.Shared, "accounts": lq.Accounts}
	dl, err := s.ops.CountDeadLetters(r.Context(), ops.Filter{})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	n, err := s.ops.ResultsLen(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out["dead_letters"], out["results"] = dl, n
	writeJSON(w, http.StatusOK, out)
}
