package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

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
}

type batchAnswer struct {
	Enqueued        int            `json:"enqueued"`
	Duplicate       int            `json:"duplicate"`
	AlreadyLaunched int            `json:"already_launched"`
	DeadLettered    int            `json:"dead_lettered"`
	Conflict        int            `json:"conflict"`
	Jobs            []launchAnswer `json:"jobs"`
}

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
	ans := batchAnswer{Jobs: make([]launchAnswer, len(jobs))}
	for i, job := range jobs {
		st, err := s.opts.Producer.Enqueue(r.Context(), job, "", false)
		if err != nil {
			// Say exactly how far it got: the jobs before this one are enqueued.
			s.internal(w, r, fmt.Errorf("jobs[%d] (%s) and after not enqueued, %d before it were: %w", i, job.ID, i, err))
			return
		}
		ans.Jobs[i] = launchAnswer{JobID: job.ID, Status: st}
		switch st {
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
