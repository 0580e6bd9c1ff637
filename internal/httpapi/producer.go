package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/ops"
)

// launchAnswer is the answer to an enqueue: the job's ID, what happened to
// it, and its state.
type launchAnswer struct {
	JobID  string      `json:"job_id"`
	Status ops.Status  `json:"status"`
	Job    *ops.Record `json:"job,omitempty"`
}

// postLaunch enqueues one job (?priority=): 201 when new, 200 with the
// existing state for an idempotent repeat, 400 when invalid (a job without
// a sid, when the server has no KALEYRA_SID, too), 409 when its ID exists
// with another payload.
func (s *Server) postLaunch(w http.ResponseWriter, r *http.Request) {
	prio, ok := priorityQuery(w, r)
	if !ok {
		return
	}
	data, ok := readBody(w, r, maxJobBody)
	if !ok {
		return
	}
	job, err := launch.Parse(data)
	if err != nil {
		writeInvalid(w, "", err)
		return
	}
	res, err := s.ops.Enqueue(r.Context(), job, &ops.EnqueueOpts{Priority: prio})
	var ve *launch.ValidationError
	switch {
	case errors.As(err, &ve):
		writeInvalid(w, "", err)
		return
	case errors.Is(err, ops.ErrConflict):
		writeError(w, http.StatusConflict, "conflict", fmt.Sprintf("job ID %q exists with a different payload or account", res.JobID),
			[]launch.FieldError{{Field: "id", Reason: "exists with a different payload or account"}})
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	ans := launchAnswer{JobID: res.JobID, Status: res.Status}
	if !res.SkippedAsDuplicate {
		w.Header().Set("Location", "/v1/launches/"+res.JobID)
		writeJSON(w, http.StatusCreated, ans)
		return
	}
	if rec, err := s.ops.Job(r.Context(), res.JobID); err == nil {
		ans.Job = &rec
	}
	writeJSON(w, http.StatusOK, ans)
}

// priorityQuery reads the priority query parameter of the enqueue routes,
// answering 400 (and returning false) when it is not a priority.
func priorityQuery(w http.ResponseWriter, r *http.Request) (ops.Priority, bool) {
	prio, err := ops.ParsePriority(r.URL.Query().Get("priority"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "invalid query",
			[]launch.FieldError{{Field: "priority", Reason: "must be high, default or low"}})
		return "", false
	}
	return prio, true
}

// writeInvalid answers 400 with every field problem, paths prefixed.
func writeInvalid(w http.ResponseWriter, prefix string, err error) {
	var ve *launch.ValidationError
	if !errors.As(err, &ve) {
		writeError(w, http.StatusBadRequest, "invalid_job", err.Error(), nil)
		return
	}
	fields := make([]launch.FieldError, len(ve.Errors))
	for i, fe := range ve.Errors {
		fields[i] = launch.FieldError{Field: joinPath(prefix, fe.Field), Reason: fe.Reason}
	}
	writeError(w, http.StatusBadRequest, "invalid_job", "the job is invalid; see errors", fields)
}

func joinPath(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	}
	return prefix + "." + field
}

// batchRequest is POST /v1/launches:batch's body.
type batchRequest struct {
	Jobs []json.RawMessage `json:"jobs"`
	// Name names the batch (default DefaultBatchName).
	Name string `json:"name,omitempty"`
}

// DefaultBatchName names a batch made by POST /v1/launches:batch without a
// name; MaxBatchName bounds a name's length in characters.
const (
	DefaultBatchName = "api"
	MaxBatchName     = 200
)

type batchAnswer struct {
	BatchID         string         `json:"batch_id"`
	Enqueued        int            `json:"enqueued"`
	Duplicate       int            `json:"duplicate"`
	AlreadyLaunched int            `json:"already_launched"`
	DeadLettered    int            `json:"dead_lettered"`
	Conflict        int            `json:"conflict"`
	Jobs            []launchAnswer `json:"jobs"`
}

// postBatch validates up to MaxBatchJobs jobs together and enqueues them all
// (?priority=), or none when any is invalid (400, every problem with its
// jobs[i] path).
func (s *Server) postBatch(w http.ResponseWriter, r *http.Request) {
	prio, ok := priorityQuery(w, r)
	if !ok || !jsonBody(w, r) {
		return
	}
	if r.ContentLength > maxBatchBody {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body is larger than %d bytes", maxBatchBody), nil)
		return
	}
	size := r.ContentLength
	if size < 0 { // chunked: it may be as large as allowed
		size = maxBatchBody
	}
	release, ok := s.batches.take(size)
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(batchRetryAfter))
		writeError(w, http.StatusTooManyRequests, "busy",
			fmt.Sprintf("too many batches are being received at once; send it again in %d s", batchRetryAfter), nil)
		return
	}
	defer release()
	extendDeadlines(w, batchDeadline)
	req, ok := s.readBatch(w, r)
	if !ok {
		return
	}
	jobs := make([]launch.Job, len(req.Jobs))
	var invalid []launch.FieldError
	for i, raw := range req.Jobs {
		job, err := launch.Parse(raw)
		var ve *launch.ValidationError
		if errors.As(err, &ve) {
			for _, fe := range ve.Errors {
				invalid = append(invalid, launch.FieldError{Field: joinPath(fmt.Sprintf("jobs[%d]", i), fe.Field), Reason: fe.Reason})
			}
		}
		jobs[i] = job
	}
	if len(invalid) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_job", "some jobs are invalid; none was enqueued", invalid)
		return
	}
	ans := batchAnswer{Jobs: make([]launchAnswer, len(jobs))}
	sum, err := s.ops.EnqueueJobs(r.Context(), jobs, &ops.BatchOpts{Name: req.Name, Priority: prio,
		OnResult: func(line int, res ops.EnqueueResult) {
			ans.Jobs[line-1] = launchAnswer{JobID: res.JobID, Status: res.Status}
		}})
	if err == nil && sum.BatchID == nil { // invalid: nothing was enqueued
		writeError(w, http.StatusBadRequest, "invalid_job", "some jobs are invalid; none was enqueued", rowErrors(sum.Errors))
		return
	}
	if err != nil {
		// The answer says how far it got (the cause, a Redis error, is
		// logged); the same request again is safe.
		msg := "the batch failed"
		if sum != nil {
			msg = fmt.Sprintf("batch %s: %d jobs enqueued (or known), %d in doubt, %d not tried; sending the same request again is safe",
				*sum.BatchID, sum.Enqueued+sum.Duplicate+sum.AlreadyLaunched+sum.DeadLettered+sum.Conflict, sum.InDoubt, sum.NotTried)
		}
		s.internalMsg(w, r, err, msg)
		return
	}
	ans.BatchID, ans.Conflict = *sum.BatchID, sum.Conflict
	ans.Enqueued, ans.Duplicate, ans.AlreadyLaunched, ans.DeadLettered = sum.Enqueued, sum.Duplicate, sum.AlreadyLaunched, sum.DeadLettered
	writeJSON(w, http.StatusOK, ans)
}

// budget admits at most n holders of at most bytes bytes together; take
// does not wait.
type budget struct {
	mu              sync.Mutex
	n, maxN         int
	bytes, maxBytes int64
	// peak is the most bytes held at once, for tests.
	peak int64
}

func newBudget(n int, bytes int64) *budget { return &budget{maxN: n, maxBytes: bytes} }

// take reserves size bytes and a place, or reports false when either is
// short; release gives them back.
func (b *budget) take(size int64) (release func(), ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n >= b.maxN || b.bytes+size > b.maxBytes {
		return nil, false
	}
	b.n++
	b.bytes += size
	b.peak = max(b.peak, b.bytes)
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			b.n--
			b.bytes -= size
			b.mu.Unlock()
		})
	}, true
}

// rowErrors names each row's problems by its jobs[i] path.
func rowErrors(rows []ops.RowError) []launch.FieldError {
	out := make([]launch.FieldError, len(rows))
	for i, e := range rows {
		out[i] = launch.FieldError{Field: joinPath(fmt.Sprintf("jobs[%d]", e.Line-1), e.Field), Reason: e.Reason}
	}
	return out
}

// readBatch reads and checks a batch request's body and name.
func (s *Server) readBatch(w http.ResponseWriter, r *http.Request) (batchRequest, bool) {
	var req batchRequest
	data, ok := readBody(w, r, maxBatchBody)
	if !ok {
		return req, false
	}
	if err := decodeStrict(data, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", `body must be {"jobs": [job, …]}: `+err.Error(), nil)
		return req, false
	}
	switch {
	case len(req.Jobs) == 0:
		writeError(w, http.StatusBadRequest, "bad_request", "jobs is empty", []launch.FieldError{{Field: "jobs", Reason: "must hold at least one job"}})
		return req, false
	case len(req.Jobs) > MaxBatchJobs:
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("at most %d jobs per batch, got %d", MaxBatchJobs, len(req.Jobs)),
			[]launch.FieldError{{Field: "jobs", Reason: fmt.Sprintf("must hold at most %d jobs", MaxBatchJobs)}})
		return req, false
	}
	switch {
	case req.Name == "":
		req.Name = DefaultBatchName
	case utf8.RuneCountInString(req.Name) > MaxBatchName || strings.ContainsFunc(req.Name, unicode.IsControl) || !utf8.ValidString(req.Name):
		writeError(w, http.StatusBadRequest, "bad_request", "the batch name is too long or holds control characters",
			[]launch.FieldError{{Field: "name", Reason: fmt.Sprintf("must be at most %d characters, without control characters", MaxBatchName)}})
		return req, false
	}
	return req, true
}

// batchPage is one page of GET /v1/batches; NextCursor is empty on the last.
type batchPage struct {
	Batches    []ops.Batch `json:"batches"`
	NextCursor string      `json:"next_cursor,omitempty"`
	Total      int64       `json:"total"`
}

// listBatches answers GET /v1/batches?limit=&cursor=, newest first.
func (s *Server) listBatches(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, offset, bad := pageQuery(q)
	if len(bad) > 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "invalid query", bad)
		return
	}
	// One more than the page tells whether another page follows.
	bs, total, err := s.ops.ListBatches(r.Context(), offset, limit+1)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	page := batchPage{Total: total}
	page.Batches, page.NextCursor = cut(bs, offset, limit)
	writeJSON(w, http.StatusOK, page)
}

// getBatch answers GET /v1/batches/{id}: the batch's status, from its
// counters.
func (s *Server) getBatch(w http.ResponseWriter, r *http.Request) {
	b, err := s.ops.BatchStatus(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, ops.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no batch with ID %q", r.PathValue("id")), nil)
	case err != nil:
		s.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, b.Batch)
	}
}

// listLaunches answers GET /v1/launches?agent_no=&sid=&limit=: the agent's
// jobs (of one account, with sid), newest first.
func (s *Server) listLaunches(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _, bad := pageQuery(q)
	if q.Get("agent_no") == "" {
		bad = append(bad, launch.FieldError{Field: "agent_no", Reason: "is required: the agent number whose jobs to list"})
	}
	if len(bad) > 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "invalid query", bad)
		return
	}
	recs, err := s.ops.JobsByAgent(r.Context(), q.Get("agent_no"), ops.Filter{SID: q.Get("sid")}, limit)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if recs == nil {
		recs = []ops.Record{}
	}
	writeJSON(w, http.StatusOK, map[string][]ops.Record{"jobs": recs})
}

func (s *Server) getLaunch(w http.ResponseWriter, r *http.Request) {
	rec, err := s.ops.Job(r.Context(), r.PathValue("id"))
	s.writeRecord(w, r, "job", rec, err)
}

// writeRecord answers with a job's record, 404 when there is no such job
// (what: "job") or dead letter (what: "dead letter").
func (s *Server) writeRecord(w http.ResponseWriter, r *http.Request, what string, rec ops.Record, err error) {
	switch {
	case errors.Is(err, ops.ErrNotFound) || errors.Is(err, ops.ErrNotDeadLettered):
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no %s with ID %q", what, r.PathValue("id")), nil)
	case err != nil:
		s.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, rec)
	}
}

// internal answers 500 with an error ID and logs the cause under it: the
// cause (a Redis address, a script's error) is for the operator, not the
// client.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.internalMsg(w, r, err, "internal error")
}

// internalMsg is internal with a message of what the client may know.
func (s *Server) internalMsg(w http.ResponseWriter, r *http.Request, err error, msg string) {
	id := s.logFailure(r, err, "request failed")
	writeErrorID(w, http.StatusInternalServerError, "internal", msg+" (error ID "+id+" in the server's log)", id)
}
