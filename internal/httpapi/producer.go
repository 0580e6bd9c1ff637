package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/launch"
)

// launchAnswer is the answer to an enqueue: the job's ID, what happened to
// it, and its state.
type launchAnswer struct {
	JobID  string        `json:"job_id"`
	Status queue.Status  `json:"status"`
	Job    *store.Record `json:"job,omitempty"`
}

// postLaunch enqueues one job: 201 when new, 200 with the existing state for
// an idempotent repeat, 400 when invalid, 409 when its ID exists with
// another payload.
func (s *Server) postLaunch(w http.ResponseWriter, r *http.Request) {
	data, ok := readBody(w, r, maxJobBody)
	if !ok {
		return
	}
	job, err := launch.Parse(data)
	if err != nil {
		writeInvalid(w, "", err)
		return
	}
	job.ID = launch.IDFor(s.opts.Producer.SID, job)
	st, err := s.opts.Producer.Enqueue(r.Context(), job, "", false)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	ans := launchAnswer{JobID: job.ID, Status: st}
	switch st {
	case queue.Conflict:
		writeError(w, http.StatusConflict, "conflict", fmt.Sprintf("job ID %q exists with a different payload", job.ID),
			[]launch.FieldError{{Field: "id", Reason: "exists with a different payload"}})
		return
	case queue.Enqueued:
		w.Header().Set("Location", "/v1/launches/"+job.ID)
		writeJSON(w, http.StatusCreated, ans)
		return
	}
	if rec, err := s.store.Get(r.Context(), job.ID); err == nil {
		ans.Job = &rec
	}
	writeJSON(w, http.StatusOK, ans)
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

// batchChunk is how many jobs of a batch request are enqueued together.
const batchChunk = 64

// postBatch validates up to MaxBatchJobs jobs together and enqueues them all,
// or none when any is invalid (400, every problem with its jobs[i] path).
func (s *Server) postBatch(w http.ResponseWriter, r *http.Request) {
	data, ok := readBody(w, r, maxBatchBody)
	if !ok {
		return
	}
	var req batchRequest
	if err := decodeStrict(data, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", `body must be {"jobs": [job, …]}: `+err.Error(), nil)
		return
	}
	switch {
	case len(req.Jobs) == 0:
		writeError(w, http.StatusBadRequest, "bad_request", "jobs is empty", []launch.FieldError{{Field: "jobs", Reason: "must hold at least one job"}})
		return
	case len(req.Jobs) > MaxBatchJobs:
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("at most %d jobs per batch, got %d", MaxBatchJobs, len(req.Jobs)),
			[]launch.FieldError{{Field: "jobs", Reason: fmt.Sprintf("must hold at most %d jobs", MaxBatchJobs)}})
		return
	}
	name := req.Name
	switch {
	case name == "":
		name = DefaultBatchName
	case utf8.RuneCountInString(name) > MaxBatchName || strings.ContainsFunc(name, unicode.IsControl) || !utf8.ValidString(name):
		writeError(w, http.StatusBadRequest, "bad_request", "the batch name is too long or holds control characters",
			[]launch.FieldError{{Field: "name", Reason: fmt.Sprintf("must be at most %d characters, without control characters", MaxBatchName)}})
		return
	}
	jobs := make([]launch.Job, len(req.Jobs))
	var invalid []launch.FieldError
	for i, raw := range req.Jobs {
		job, err := launch.Parse(raw)
		if err != nil {
			var ve *launch.ValidationError
			if errors.As(err, &ve) {
				for _, fe := range ve.Errors {
					invalid = append(invalid, launch.FieldError{Field: joinPath(fmt.Sprintf("jobs[%d]", i), fe.Field), Reason: fe.Reason})
				}
			}
			continue
		}
		job.ID = launch.IDFor(s.opts.Producer.SID, job)
		jobs[i] = job
	}
	if len(invalid) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_job", "some jobs are invalid; none was enqueued", invalid)
		return
	}
	// The batch: the jobs this request enqueues are counted there; it is
	// closed (its total final) once every job has been offered, even when
	// the request fails half-way.
	batch := store.NewBatchID(time.Now())
	if err := s.store.CreateBatch(r.Context(), batch, name, time.Now()); err != nil {
		s.internal(w, r, err)
		return
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		defer cancel()
		if err := s.store.CloseBatch(ctx, batch, time.Now()); err != nil {
			s.opts.Logger.Error().Err(err).Str("batch_id", batch).Msg("cannot close batch")
		}
	}()
	ans := batchAnswer{BatchID: batch, Jobs: make([]launchAnswer, len(jobs))}
	// In chunks, one after the other, as `enqueue --file` does: a chunk's
	// records take one round trip and its tasks are pushed together.
	for start := 0; start < len(jobs); start += batchChunk {
		end := min(start+batchChunk, len(jobs))
		for k, res := range s.opts.Producer.EnqueueMany(r.Context(), jobs[start:end], batch, false) {
			if res.Err != nil {
				// Say exactly how far it got; the same request again is safe.
				done := "no job was"
				if start > 0 {
					done = fmt.Sprintf("jobs[0] to jobs[%d] were", start-1)
				}
				s.internal(w, r, fmt.Errorf("batch %s: %s enqueued (or known), jobs[%d] to jobs[%d] may or may not be, "+
					"the rest were not tried; sending the same jobs again enqueues each once: %w", batch, done, start, end-1, res.Err))
				return
			}
			ans.Jobs[start+k] = launchAnswer{JobID: jobs[start+k].ID, Status: res.Status}
		}
	}
	for _, a := range ans.Jobs {
		switch a.Status {
		case queue.Enqueued:
			ans.Enqueued++
		case queue.Duplicate:
			ans.Duplicate++
		case queue.AlreadyLaunched:
			ans.AlreadyLaunched++
		case queue.DeadLettered:
			ans.DeadLettered++
		case queue.Conflict:
			ans.Conflict++
		}
	}
	writeJSON(w, http.StatusOK, ans)
}

// batchPage is one page of GET /v1/batches; NextCursor is empty on the last.
type batchPage struct {
	Batches    []store.Batch `json:"batches"`
	NextCursor string        `json:"next_cursor,omitempty"`
	Total      int64         `json:"total"`
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
	bs, err := s.store.ListBatches(r.Context(), offset, limit+1)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	total, err := s.store.CountBatches(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	page := batchPage{Batches: bs, Total: total}
	if len(bs) > limit {
		page.Batches = bs[:limit]
		page.NextCursor = strconv.Itoa(offset + limit)
	}
	writeJSON(w, http.StatusOK, page)
}

// getBatch answers GET /v1/batches/{id}: the batch's status, from its
// counters.
func (s *Server) getBatch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b, err := s.store.GetBatch(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrBatchNotFound):
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no batch with ID %q", id), nil)
	case err != nil:
		s.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, b)
	}
}

func (s *Server) getLaunch(w http.ResponseWriter, r *http.Request) {
	s.writeRecord(w, r, r.PathValue("id"), "")
}

// writeRecord answers with a job's record, 404 when unknown or (with
// wantState) not in that state.
func (s *Server) writeRecord(w http.ResponseWriter, r *http.Request, id, wantState string) {
	rec, err := s.store.Get(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && wantState != "" && rec.State != wantState):
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no %s with ID %q", describe(wantState), id), nil)
	case err != nil:
		s.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, rec)
	}
}

func describe(state string) string {
	if state == store.StateDeadLettered {
		return "dead letter"
	}
	return "job"
}

// internal answers 500 and logs the cause (which never holds a secret: the
// API key is not known to this process).
func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.opts.Logger.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("request failed")
	writeError(w, http.StatusInternalServerError, "internal", err.Error(), nil)
}
