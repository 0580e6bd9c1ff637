package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/csvsafe"
	"github.com/rcslaunch/rcslaunch/internal/store"
)

// BatchStatus is a batch's counters with the pace they show.
type BatchStatus struct {
	Batch
	// Rate is jobs finished per second (over the last minute while
	// watching, else since the first job started); 0 while unknown.
	Rate float64
}

// TimeLeft estimates the time until every job has its outcome, from Rate;
// ok is false while it cannot be told.
func (s BatchStatus) TimeLeft() (left time.Duration, ok bool) {
	n := s.Total - s.Done()
	if s.Rate <= 0 || n < 0 {
		return 0, false
	}
	d := time.Duration(float64(n) / s.Rate * float64(time.Second)).Round(time.Second)
	if n > 0 {
		d = max(d, time.Second)
	}
	return d, true
}

// batchErr turns the store's not-found into ours, with a hint.
func batchErr(id string, err error) error {
	if errors.Is(err, store.ErrBatchNotFound) {
		return fmt.Errorf("no batch with ID %q (see `rcslaunch batch list`): %w", id, ErrNotFound)
	}
	return err
}

// BatchStatus returns a batch's counts and its average pace since its first
// job started. An unknown ID is ErrNotFound.
func (c *Client) BatchStatus(ctx context.Context, id string) (BatchStatus, error) {
	b, err := c.store.GetBatch(ctx, id)
	if err != nil {
		return BatchStatus{}, batchErr(id, err)
	}
	return BatchStatus{Batch: b, Rate: rateSince(b, time.Now())}, nil
}

// rateSince is the batch's average pace since its first job started.
func rateSince(b Batch, now time.Time) float64 {
	if b.StartedAt.IsZero() || b.Done() == 0 {
		return 0
	}
	end := now
	if b.FinishedAt != nil {
		end = *b.FinishedAt
	}
	secs := end.Sub(b.StartedAt).Seconds()
	if secs <= 0 {
		return 0
	}
	return float64(b.Done()) / secs
}

// WatchBatch reads the batch every interval and calls fn with its status
// (its pace over the last minute) until the batch is finished, then returns
// its last status. It stops early when ctx ends.
func (c *Client) WatchBatch(ctx context.Context, id string, interval time.Duration, fn func(BatchStatus)) (BatchStatus, error) {
	type sample struct {
		at   time.Time
		done int64
	}
	var samples []sample
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		b, err := c.store.GetBatch(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return BatchStatus{}, errors.New("interrupted before the batch finished")
			}
			return BatchStatus{}, batchErr(id, err)
		}
		now := time.Now()
		samples = append(samples, sample{now, b.Done()})
		for len(samples) > 2 && now.Sub(samples[0].at) > time.Minute {
			samples = samples[1:]
		}
		st := BatchStatus{Batch: b, Rate: rateSince(b, now)}
		first, last := samples[0], samples[len(samples)-1]
		if d := last.at.Sub(first.at).Seconds(); d >= 5 && last.done > first.done {
			st.Rate = float64(last.done-first.done) / d
		}
		fn(st)
		if b.Finished() {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, errors.New("interrupted before the batch finished")
		case <-tick.C:
		}
	}
}

// ListBatches returns up to limit batches from offset, newest first, and
// how many there are in all.
func (c *Client) ListBatches(ctx context.Context, offset, limit int) ([]Batch, int64, error) {
	bs, err := c.store.ListBatches(ctx, offset, limit)
	if err != nil {
		return nil, 0, err
	}
	total, err := c.store.CountBatches(ctx)
	if err != nil {
		return nil, 0, err
	}
	return bs, total, nil
}

// EachBatch calls fn for every batch, newest first, a page at a time.
func (c *Client) EachBatch(ctx context.Context, fn func(Batch) error) error {
	const page = 100
	for n := 0; ; n += page {
		bs, err := c.store.ListBatches(ctx, n, page)
		if err != nil {
			return err
		}
		for _, b := range bs {
			if err := fn(b); err != nil {
				return err
			}
		}
		if len(bs) < page {
			return nil
		}
	}
}

// CloseBatch makes a batch's total final, for a batch whose enqueue stopped
// before it could (Redis failed, the process was killed): it then finishes
// once every job it holds has an outcome. Closing a closed batch changes
// nothing.
func (c *Client) CloseBatch(ctx context.Context, id string) (Batch, error) {
	if err := c.store.CloseBatch(ctx, id, time.Now()); err != nil {
		return Batch{}, batchErr(id, err)
	}
	b, err := c.store.GetBatch(ctx, id)
	return b, batchErr(id, err)
}

// ReportFormat is the form of a batch report.
type ReportFormat int

// Report formats.
const (
	// ReportCSV: one row per job with a header row, for spreadsheets: a
	// cell that starts with = + - @, tab or CR has a single quote in front
	// (csvsafe.Cell).
	ReportCSV ReportFormat = iota
	// ReportJSONL: one ReportRow object per line.
	ReportJSONL
	// ReportFailedJobs: the dead letters only, as JSONL jobs (with their
	// IDs) that a file enqueue accepts.
	ReportFailedJobs
)

// ReportRow is one job of a batch report; its JSON form is the contract's,
// with launch_state added (after the contract's members, and only for a
// followed success, so that a report without the follow-up is unchanged)
// and the job's account (sid).
type ReportRow struct {
	JobID         string      `json:"job_id"`
	AgentNo       string      `json:"agent_no"`
	Outcome       string      `json:"outcome"`
	Code          string      `json:"code"`
	Message       string      `json:"message"`
	AgentLaunchID string      `json:"agent_launch_id"`
	Attempts      int         `json:"attempts"`
	LaunchState   LaunchState `json:"launch_state,omitempty"`
	SID           string      `json:"sid"`
}

// reportColumns is the CSV header: the contract's columns, then
// launch_state (empty for a job not followed) and sid, last so that readers
// of the contract's columns by position keep working.
var reportColumns = []string{"job_id", "agent_no", "outcome", "code", "message", "agent_launch_id", "attempts", "launch_state", "sid"}

func rowOf(j BatchJob) ReportRow {
	return ReportRow{JobID: j.ID, AgentNo: j.AgentNo, Outcome: string(j.State), Code: j.Code, Message: j.Message,
		AgentLaunchID: j.AgentLaunchID, Attempts: j.Attempts, LaunchState: j.LaunchState, SID: j.SID}
}

// WriteBatchReport writes one row per job of the batch that f selects to w,
// in the order they were enqueued. An unknown ID is ErrNotFound, with
// nothing written.
func (c *Client) WriteBatchReport(ctx context.Context, id string, f BatchJobFilter, format ReportFormat, w io.Writer) error {
	if _, err := c.store.GetBatch(ctx, id); err != nil {
		return batchErr(id, err)
	}
	if format == ReportFailedJobs {
		f.State = StateDeadLettered
	}
	var write func(BatchJob) error
	flush := func() error { return nil }
	switch format {
	case ReportFailedJobs:
		write = func(j BatchJob) error { return writeJob(w, j.ID, j.SID, j.Queue, j.Payload) }
	case ReportJSONL:
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		write = func(j BatchJob) error { return enc.Encode(rowOf(j)) }
	default:
		// Only the CSV goes to spreadsheets: JSONL and --failed are read by
		// programs and keep the text as it is.
		cw := csvsafe.NewWriter(w)
		if err := cw.Write(reportColumns); err != nil {
			return err
		}
		write = func(j BatchJob) error {
			r := rowOf(j)
			return cw.Write([]string{r.JobID, r.AgentNo, r.Outcome, r.Code, r.Message, r.AgentLaunchID,
				strconv.Itoa(r.Attempts), string(r.LaunchState), r.SID})
		}
		flush = cw.Flush
	}
	err := c.store.EachBatchJob(ctx, id, func(j BatchJob) error {
		if !f.keeps(j) {
			return nil
		}
		return write(j)
	})
	return errors.Join(err, flush())
}

// ListBatchStatuses is ListBatches with each batch's average pace, for
// pages that show how long each has left.
func (c *Client) ListBatchStatuses(ctx context.Context, offset, limit int) ([]BatchStatus, int64, error) {
	bs, total, err := c.ListBatches(ctx, offset, limit)
	if err != nil {
		return nil, 0, err
	}
	now := time.Now()
	out := make([]BatchStatus, len(bs))
	for i, b := range bs {
		out[i] = BatchStatus{Batch: b, Rate: rateSince(b, now)}
	}
	return out, total, nil
}

// errPageFull ends a batch walk once a page is read.
var errPageFull = errors.New("page full")

// BatchJobFilter selects the jobs of a batch listing or report; the zero
// filter selects them all.
type BatchJobFilter struct {
	// State keeps the jobs in that state.
	State State
	// LaunchState keeps the followed successes in that launch state
	// (FOLLOW_LAUNCH); it implies State succeeded.
	LaunchState LaunchState
	// SID keeps the jobs of that account. A batch may span accounts, and
	// its counters do not count by account: a listing by SID counts by
	// reading the whole batch.
	SID string
}

// keeps reports whether f selects j.
func (f BatchJobFilter) keeps(j BatchJob) bool {
	return (f.State == "" || j.State == f.State) && (f.LaunchState == "" || j.LaunchState == f.LaunchState) &&
		(f.SID == "" || j.SID == f.SID)
}

// ListBatchJobs returns up to limit of the batch's jobs that f selects, from
// offset, in the order they joined it, and how many f selects: by the
// batch's counters, or, with a SID, by reading every job. It reads the batch
// a page at a time and, without a SID, stops when the page is full. An
// unknown ID is ErrNotFound.
func (c *Client) ListBatchJobs(ctx context.Context, id string, f BatchJobFilter, offset, limit int) ([]BatchJob, int64, error) {
	b, err := c.store.GetBatch(ctx, id)
	if err != nil {
		return nil, 0, batchErr(id, err)
	}
	if f.LaunchState != "" {
		f.State = StateSucceeded
	}
	total := map[State]int64{"": b.Total, StateQueued: b.Queued, StateRunning: b.Running,
		StateRetrying: b.Retrying, StateSucceeded: b.Succeeded, StateDeadLettered: b.DeadLettered}[f.State]
	if f.LaunchState != "" {
		total = b.LaunchStates[f.LaunchState]
	}
	counting := f.SID != ""
	if counting {
		total = 0
	}
	out := []BatchJob{}
	if limit <= 0 && !counting {
		return out, total, nil
	}
	err = c.store.EachBatchJob(ctx, id, func(j BatchJob) error {
		if !f.keeps(j) {
			return nil
		}
		if counting {
			total++
		}
		if offset > 0 {
			offset--
			return nil
		}
		if len(out) < limit {
			j.Payload = nil // not shown in a listing
			out = append(out, j)
		}
		if len(out) == limit && !counting {
			return errPageFull
		}
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		return nil, 0, batchErr(id, err)
	}
	return out, total, nil
}
