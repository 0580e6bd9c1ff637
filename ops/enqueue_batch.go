package ops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/jobfile"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/launch"
)

// BatchOpts changes a batch enqueue; nil means the defaults.
type BatchOpts struct {
	// Name names the batch (default "batch").
	Name string
	// Force launches again jobs that already succeeded.
	Force bool
	// Priority is the priority within their accounts of the jobs without
	// one of their own (launch.Job.Priority); "" is PriorityDefault.
	Priority Priority
	// SkipInvalid enqueues the valid jobs even when some are invalid; by
	// default one invalid job stops the whole batch before anything is
	// enqueued.
	SkipInvalid bool
	// DryRun validates only: nothing is enqueued and Redis is not touched.
	DryRun bool
	// OnProgress, when set, is called after each chunk of jobs read.
	OnProgress func(BatchProgress)
	// OnResult, when set, is called with each enqueued job's result and
	// its line (for a list of jobs, its index + 1). Calls may come from
	// several goroutines at once.
	OnResult func(line int, r EnqueueResult)
}

// BatchProgress is how far a batch enqueue got.
type BatchProgress struct {
	// Validating is true in the first pass over a source, which checks
	// every job before any is enqueued.
	Validating bool
	Done       int64
	// Total is the number of jobs when known (after validation), else -1.
	Total int64
}

// BatchSummary is what a batch enqueue did, row by row accounted for. Its
// JSON form is the contract's (`rcslaunch enqueue --json`).
type BatchSummary struct {
	BatchID         *string `json:"batch_id"`
	JobID           string  `json:"job_id,omitempty"`
	DryRun          bool    `json:"dry_run,omitempty"`
	Valid           int     `json:"valid"`
	Enqueued        int     `json:"enqueued"`
	Duplicate       int     `json:"duplicate"`
	AlreadyLaunched int     `json:"already_launched"`
	DeadLettered    int     `json:"dead_lettered"`
	// Invalid counts invalid rows and conflicts (an ID that exists with
	// another payload), each with its errors.
	Invalid int `json:"invalid"`
	// Conflict counts the conflicts among Invalid.
	Conflict int `json:"-"`
	// Failed counts jobs that could not be enqueued (a single job only).
	Failed int `json:"failed"`
	// InDoubt counts rows that were being enqueued when Redis failed: they
	// may or may not be on the queue. NotTried counts rows never sent. Both
	// are safe to enqueue again.
	InDoubt       int        `json:"in_doubt"`
	NotTried      int        `json:"not_tried"`
	Errors        []RowError `json:"errors"`
	ErrorsOmitted int        `json:"errors_omitted,omitempty"`
}

// RowError is one problem with one row; Line is 0 for a single job.
type RowError struct {
	Line   int    `json:"line"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// maxReportedErrors bounds the error list, so that memory does not grow with
// a file of bad rows; the counts stay exact.
const maxReportedErrors = 1000

func (s *BatchSummary) addError(line int, field, reason string) {
	if len(s.Errors) >= maxReportedErrors {
		s.ErrorsOmitted++
		return
	}
	s.Errors = append(s.Errors, RowError{Line: line, Field: field, Reason: reason})
}

// AddInvalid counts an invalid row with each of its problems.
func (s *BatchSummary) AddInvalid(line int, err error) {
	s.Invalid++
	var ve *launch.ValidationError
	if errors.As(err, &ve) {
		for _, fe := range ve.Errors {
			s.addError(line, fe.Field, fe.Reason)
		}
		return
	}
	s.addError(line, "", err.Error())
}

// AddFailed counts a job that could not be enqueued.
func (s *BatchSummary) AddFailed(line int, err error) {
	s.Failed++
	s.addError(line, "", err.Error())
}

// Add counts one job's result.
func (s *BatchSummary) Add(line int, r EnqueueResult) {
	switch r.Status {
	case StatusEnqueued:
		s.Enqueued++
	case StatusDuplicate:
		s.Duplicate++
	case StatusAlreadyLaunched:
		s.AlreadyLaunched++
	case StatusDeadLettered:
		s.DeadLettered++
	case StatusConflict:
		s.Invalid++
		s.Conflict++
		s.addError(line, "id", fmt.Sprintf("job ID %q exists with a different payload or account", r.JobID))
	}
}

// OK reports whether every row was enqueued, a duplicate or already launched.
func (s *BatchSummary) OK() bool {
	return s.Invalid == 0 && s.Failed == 0 && s.InDoubt == 0 && s.NotTried == 0 && s.DeadLettered == 0
}

// EnqueueFile validates the jobs of a JSONL or CSV file and enqueues them as
// one batch (see EnqueueJobs). The file is read twice unless SkipInvalid:
// once to validate every row, once to enqueue, so its size does not matter.
func (c *Client) EnqueueFile(ctx context.Context, path string, format Format, opts *BatchOpts) (*BatchSummary, error) {
	return c.enqueueBatch(ctx, fileRows{path: path, format: format}, opts)
}

// EnqueueJobs validates jobs and enqueues them as one batch: in chunks, each
// chunk's records in one round trip and its tasks pushed together. It stops
// at the first Redis error; the summary then says exactly which rows were
// enqueued, which may have been (in doubt) and which were not tried, and the
// error says how to finish (the same jobs again enqueue each once).
func (c *Client) EnqueueJobs(ctx context.Context, jobs []launch.Job, opts *BatchOpts) (*BatchSummary, error) {
	return c.enqueueBatch(ctx, jobRows(jobs), opts)
}

// Bulk enqueue hands chunks of chunkRows rows to one of enqueueWorkers
// goroutines, which creates its records in one round trip and pushes its
// tasks concurrently. The figures come from `rcslaunch bench`
// (BENCHMARKS.md). They also bound what a Redis failure can leave in doubt:
// the rows of the chunks in flight.
const (
	chunkRows      = 64
	enqueueWorkers = 8
)

// rowSource is what a batch is read from: chunks of rows in order, as often
// as asked.
type rowSource interface {
	chunks(fn func([]jobfile.Row) error) error
}

// needSID is a source whose rows must name their account: the Client has
// no SID for those that do not.
type needSID struct{ rowSource }

func (n needSID) chunks(fn func([]jobfile.Row) error) error {
	return n.rowSource.chunks(func(rows []jobfile.Row) error {
		for i := range rows {
			if rows[i].Err == nil && rows[i].Job.SID == "" {
				rows[i].Err = ErrNoSID
			}
		}
		return fn(rows)
	})
}

type fileRows struct {
	path   string
	format Format
}

func (f fileRows) chunks(fn func([]jobfile.Row) error) error {
	fh, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer fh.Close()
	rd, err := jobfile.NewReader(fh, f.format)
	if err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	// A few decoders keep up with Redis; more would only hold more rows
	// in memory on a machine with many cores.
	if err := rd.Chunks(chunkRows, min(runtime.GOMAXPROCS(0), 4), fn); err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	return nil
}

type jobRows []launch.Job

func (js jobRows) chunks(fn func([]jobfile.Row) error) error {
	for start := 0; start < len(js); start += chunkRows {
		end := min(start+chunkRows, len(js))
		rows := make([]jobfile.Row, 0, end-start)
		for i, j := range js[start:end] {
			j.ApplyDefaults()
			rows = append(rows, jobfile.Row{Line: start + i + 1, Job: j, Err: j.Validate()})
		}
		if err := fn(rows); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) enqueueBatch(ctx context.Context, src rowSource, opts *BatchOpts) (*BatchSummary, error) {
	if opts == nil {
		opts = &BatchOpts{}
	}
	prio, err := ParsePriority(string(opts.Priority))
	if err != nil {
		return nil, fmt.Errorf("ops: BatchOpts.Priority: %w", err)
	}
	if c.producer.SID == "" {
		src = needSID{src}
	}
	s := &BatchSummary{Errors: []RowError{}}
	rows, validTotal := -1, -1 // known after a first pass
	if !opts.SkipInvalid || opts.DryRun {
		var err error
		if rows, err = validate(src, s, opts.OnProgress); err != nil {
			return nil, err
		}
		if opts.DryRun {
			s.DryRun = true
			return s, nil
		}
		if s.Invalid > 0 {
			return s, nil
		}
		validTotal, s.Valid = s.Valid, 0
	}
	if err := c.Check(ctx); err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		name = "batch"
	}
	batch := store.NewBatchID(time.Now())
	if err := c.store.CreateBatch(ctx, batch, name, time.Now()); err != nil {
		return nil, err
	}
	s.BatchID = &batch
	ap, err := c.store.Redis().AutoPipeline()
	if err != nil {
		return nil, err
	}
	prod := *c.producer.At(prio)
	prod.Client = asynq.NewClientFromRedisClient(ap)
	e := &bulkEnqueue{s: s, producer: &prod, batch: batch, opts: opts, rows: int64(rows), work: make(chan bulkChunk)}
	err = e.run(ctx, src, validTotal)
	return s, c.closeBatch(ctx, batch, err, e.stopped)
}

// validate reads every row of src once, counting valid and invalid ones, and
// returns the number of rows.
func validate(src rowSource, s *BatchSummary, progress func(BatchProgress)) (int, error) {
	var done int64
	err := src.chunks(func(chunk []jobfile.Row) error {
		for _, row := range chunk {
			if row.Err != nil {
				s.AddInvalid(row.Line, row.Err)
			} else {
				s.Valid++
			}
		}
		done += int64(len(chunk))
		if progress != nil {
			progress(BatchProgress{Validating: true, Done: done, Total: -1})
		}
		return nil
	})
	return int(done), err
}

// closeBatch makes the batch's total final once every row has been offered,
// also after a run that stopped early, and says how to finish such a run.
func (c *Client) closeBatch(ctx context.Context, batch string, err, stopped error) error {
	const again = "rows in doubt or not tried are safe to enqueue again: run the same file again, or send the same jobs again"
	switch {
	case err != nil:
		err = fmt.Errorf("enqueue stopped early (%s): %w", again, err)
	case ctx.Err() != nil:
		err = fmt.Errorf("enqueue interrupted (%s): %w", again, ctx.Err())
	case stopped != nil:
		err = fmt.Errorf("enqueue stopped at the first Redis error (%s): %w", again, stopped)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if cerr := c.store.CloseBatch(cctx, batch, time.Now()); cerr != nil {
		err = errors.Join(err, fmt.Errorf("batch %s is left open (its total may grow): close it with `rcslaunch batch close %s` once Redis answers: %w", batch, batch, cerr))
	}
	return err
}

// errStopped ends the reading of a source once the enqueue pass has stopped.
var errStopped = errors.New("enqueue stopped")

// bulkChunk is a run of valid rows to enqueue together.
type bulkChunk struct {
	lines []int
	jobs  []launch.Job
}

// bulkEnqueue is the enqueue pass of a batch: enqueueWorkers goroutines
// enqueue chunks and count their rows in the summary. The first Redis error
// stops it: the rows of chunks not yet sent are counted as not tried, so the
// summary says exactly which rows made it (enqueued or known before), which
// may have (in doubt) and which did not.
type bulkEnqueue struct {
	producer *queue.Producer
	batch    string
	opts     *BatchOpts
	rows     int64 // rows in the source when a first pass counted them, else -1
	work     chan bulkChunk
	wg       sync.WaitGroup

	mu          sync.Mutex // guards what follows and s
	s           *BatchSummary
	read        int64
	stopped     error // the error that stopped the run
	firstUnsent int   // the first line of the rows counted but never handed out
}

// run reads src once more and enqueues its valid rows; validTotal is the
// number of valid rows when a first pass counted them, else -1.
func (e *bulkEnqueue) run(ctx context.Context, src rowSource, validTotal int) error {
	e.start(ctx)
	err := src.chunks(func(chunk []jobfile.Row) error { return e.offer(ctx, chunk, validTotal) })
	close(e.work)
	e.wg.Wait()
	s := e.s
	if errors.Is(err, errStopped) {
		err = nil
		s.NotTried += validTotal - s.Valid
		s.Valid = validTotal
	}
	if e.firstUnsent > 0 {
		// Outside the cap on listed errors: it is the one line that names
		// the rows the run left out.
		s.Errors = append(s.Errors, RowError{Line: e.firstUnsent,
			Reason: "not tried: the run stopped before this row; it and every later valid row were not enqueued"})
	}
	sort.SliceStable(s.Errors, func(i, j int) bool { return s.Errors[i].Line < s.Errors[j].Line })
	return err
}

// offer counts a chunk's rows and hands its valid ones to a worker.
func (e *bulkEnqueue) offer(ctx context.Context, chunk []jobfile.Row, validTotal int) error {
	c := bulkChunk{jobs: make([]launch.Job, 0, len(chunk))}
	e.mu.Lock()
	for _, row := range chunk {
		if row.Err != nil {
			e.s.AddInvalid(row.Line, row.Err)
			continue
		}
		row.Job.ID = launch.IDFor(e.producer.SID, row.Job)
		e.s.Valid++
		c.lines = append(c.lines, row.Line)
		c.jobs = append(c.jobs, row.Job)
	}
	e.read += int64(len(chunk))
	if e.opts.OnProgress != nil {
		e.opts.OnProgress(BatchProgress{Done: e.read, Total: e.rows})
	}
	stopped := e.stopped != nil
	if stopped {
		e.notTried(c.lines, false)
	}
	e.mu.Unlock()
	if stopped && validTotal >= 0 {
		return errStopped // the rest is counted from the first pass
	}
	if stopped || len(c.jobs) == 0 {
		return nil // without a first pass, the rest is read to be counted
	}
	select {
	case e.work <- c:
	case <-ctx.Done():
		e.mu.Lock()
		e.stopWith(ctx.Err())
		e.notTried(c.lines, false)
		e.mu.Unlock()
	}
	return nil
}

func (e *bulkEnqueue) start(ctx context.Context) {
	workers := enqueueWorkers
	if e.opts.Force {
		// A forced relaunch whose row is repeated in a chunk being enqueued
		// at the same time would see its task pushed by the repeat, wait
		// for it as for the previous run's task, and undo itself; chunk by
		// chunk, a repeat finds the job queued and is a duplicate.
		workers = 1
	}
	for range workers {
		e.wg.Go(func() {
			for c := range e.work {
				e.enqueue(ctx, c)
			}
		})
	}
}

// enqueue enqueues one chunk, unless the run has stopped, and counts it.
func (e *bulkEnqueue) enqueue(ctx context.Context, c bulkChunk) {
	e.mu.Lock()
	if ctx.Err() != nil {
		e.stopWith(ctx.Err())
	}
	stopped := e.stopped != nil
	if stopped {
		e.notTried(c.lines, true)
	}
	e.mu.Unlock()
	if stopped {
		return
	}
	res := e.producer.EnqueueMany(ctx, c.jobs, e.batch, e.opts.Force)
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, r := range res {
		if r.Err != nil {
			e.stopWith(r.Err)
			e.s.InDoubt++
			e.s.addError(c.lines[i], "", "in doubt: the run failed while it was being enqueued, so it may or may not be on the queue: "+r.Err.Error())
			continue
		}
		er := resultFor(c.jobs[i].ID, r.Status)
		e.s.Add(c.lines[i], er)
		if e.opts.OnResult != nil {
			e.opts.OnResult(c.lines[i], er)
		}
	}
}

// stopWith stops the run with err unless it already stopped. e.mu must be
// held.
func (e *bulkEnqueue) stopWith(err error) {
	if e.stopped == nil {
		e.stopped = err
	}
}

// notTried counts rows never sent to Redis. Rows already handed to a worker
// are listed one by one; the rest are covered by one error from
// firstUnsent on. e.mu must be held.
func (e *bulkEnqueue) notTried(lines []int, handedOut bool) {
	e.s.NotTried += len(lines)
	if len(lines) == 0 {
		return
	}
	if !handedOut {
		if e.firstUnsent == 0 {
			e.firstUnsent = lines[0]
		}
		return
	}
	for _, l := range lines {
		e.s.addError(l, "", "not tried: the run stopped before this row was sent")
	}
}
