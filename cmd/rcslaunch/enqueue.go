package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/schollz/progressbar/v3"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/jobfile"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/launch"
)

// summary is what `enqueue` reports; its JSON form is part of the contract.
type summary struct {
	BatchID         *string    `json:"batch_id"`
	JobID           string     `json:"job_id,omitempty"`
	DryRun          bool       `json:"dry_run,omitempty"`
	Valid           int        `json:"valid"`
	Enqueued        int        `json:"enqueued"`
	Duplicate       int        `json:"duplicate"`
	AlreadyLaunched int        `json:"already_launched"`
	DeadLettered    int        `json:"dead_lettered"`
	Invalid         int        `json:"invalid"`
	Failed          int        `json:"failed"`
	InDoubt         int        `json:"in_doubt"`
	NotTried        int        `json:"not_tried"`
	Errors          []rowError `json:"errors"`
	ErrorsOmitted   int        `json:"errors_omitted,omitempty"`
}

type rowError struct {
	Line   int    `json:"line"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// maxReportedErrors bounds the error list, so that memory does not grow with
// a file of bad rows; the counts stay exact.
const maxReportedErrors = 1000

func (s *summary) addError(line int, field, reason string) {
	if len(s.Errors) >= maxReportedErrors {
		s.ErrorsOmitted++
		return
	}
	s.Errors = append(s.Errors, rowError{Line: line, Field: field, Reason: reason})
}

func (s *summary) addInvalid(line int, err error) {
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

func (s *summary) count(st queue.Status, line int, id string) {
	switch st {
	case queue.Enqueued:
		s.Enqueued++
	case queue.Duplicate:
		s.Duplicate++
	case queue.AlreadyLaunched:
		s.AlreadyLaunched++
	case queue.DeadLettered:
		s.DeadLettered++
	case queue.Conflict:
		s.Invalid++
		s.addError(line, "id", fmt.Sprintf("job ID %q exists with a different payload", id))
	}
}

// ok reports whether every row was enqueued, a duplicate or already launched.
func (s *summary) ok() bool {
	return s.Invalid == 0 && s.Failed == 0 && s.InDoubt == 0 && s.NotTried == 0 && s.DeadLettered == 0
}

func runEnqueue(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "enqueue", "[--file PATH | -] [--format jsonl|csv] [--skip-invalid] [--dry-run] [--force] [--batch-name NAME] [--json]",
		`Validates launch jobs and puts them on the launch queue. Without --file, one job
(a JSON object) is read from stdin. With --file, every row is validated first and
nothing is enqueued if any row is invalid, unless --skip-invalid. Jobs whose ID is
already known are reported (duplicate, already launched, dead-lettered), not
enqueued again. Every file run is a batch (see "rcslaunch batch"): the jobs it
enqueues are counted there; its ID is in the summary. Exit status 0 when every
row is enqueued, a duplicate or already launched; 1 otherwise.`)
	file := f.String("file", "", "read jobs from `PATH` (\"-\" for stdin), JSONL or CSV")
	format := f.String("format", "", "file format, jsonl or csv (default: from the file name, else jsonl)")
	skipInvalid := f.Bool("skip-invalid", false, "enqueue the valid rows even if some are invalid")
	dryRun := f.Bool("dry-run", false, "validate only; enqueue nothing")
	force := f.Bool("force", false, "launch again jobs that already succeeded")
	asJSON := f.Bool("json", false, "print the summary as JSON")
	batchName := f.String("batch-name", "", "name of the batch (default: the file name)")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return f.usageError("unexpected argument %q (use --file PATH)", pos[0])
	}
	cfg, err := config.Load(config.NeedSID)
	if err != nil {
		return fail(io, err)
	}
	if *file == "" {
		if *format == "csv" {
			return f.usageError("--format csv needs --file")
		}
		return enqueueOne(ctx, io, cfg, *dryRun, *force, *asJSON)
	}
	fmtName := *format
	if fmtName == "" {
		fmtName = "jsonl"
		if strings.EqualFold(filepath.Ext(*file), ".csv") {
			fmtName = "csv"
		}
	}
	ff, err := jobfile.ParseFormat(fmtName)
	if err != nil {
		return f.usageError("%v", err)
	}
	name := *batchName
	if name == "" {
		name = filepath.Base(*file)
		if *file == "-" {
			name = "stdin"
		}
	}
	r := &fileRun{io: io, cfg: cfg, path: *file, format: ff, skipInvalid: *skipInvalid,
		dryRun: *dryRun, force: *force, batchName: name}
	s, err := r.run(ctx)
	if s != nil {
		// Also when the run stopped early: it says exactly how far it got.
		report(io, s, *asJSON)
	}
	if err != nil {
		return fail(io, err)
	}
	if !s.ok() {
		return exitFailed
	}
	return exitOK
}

func report(io stdio, s *summary, asJSON bool) {
	if s.Errors == nil {
		s.Errors = []rowError{}
	}
	if asJSON {
		printJSON(io.out, s)
		return
	}
	for _, e := range s.Errors {
		switch {
		case e.Line > 0 && e.Field != "":
			fprintf(io.err, "line %d: %s: %s\n", e.Line, e.Field, e.Reason)
		case e.Line > 0:
			fprintf(io.err, "line %d: %s\n", e.Line, e.Reason)
		default:
			fprintf(io.err, "%s: %s\n", e.Field, e.Reason)
		}
	}
	if s.ErrorsOmitted > 0 {
		fprintf(io.err, "(%d more errors not shown)\n", s.ErrorsOmitted)
	}
	if s.DryRun {
		fprintf(io.out, "dry run: %d valid, %d invalid; nothing enqueued\n", s.Valid, s.Invalid)
		return
	}
	fprintf(io.out, "enqueued %d, duplicate %d, already launched %d, dead-lettered %d, invalid %d",
		s.Enqueued, s.Duplicate, s.AlreadyLaunched, s.DeadLettered, s.Invalid)
	if s.Failed > 0 {
		fprintf(io.out, ", failed %d", s.Failed)
	}
	if s.InDoubt > 0 {
		fprintf(io.out, ", in doubt %d", s.InDoubt)
	}
	if s.NotTried > 0 {
		fprintf(io.out, ", not tried %d", s.NotTried)
	}
	if s.BatchID != nil {
		fprintf(io.out, " (batch %s)", *s.BatchID)
	}
	if s.JobID != "" {
		fprintf(io.out, " (job %s)", s.JobID)
	}
	fprintf(io.out, "\n")
	if s.BatchID != nil && s.Enqueued > 0 {
		fprintf(io.out, "follow it with `rcslaunch batch status %s --watch`\n", *s.BatchID)
	}
	if s.DeadLettered > 0 {
		fprintf(io.out, "dead-lettered jobs wait for `rcslaunch dlq retry`\n")
	}
}

// enqueueOne reads one JSON job from stdin.
func enqueueOne(ctx context.Context, io stdio, cfg config.Config, dryRun, force, asJSON bool) int {
	data, err := readAllLimited(io.in, launch.MaxJobBytes)
	if err != nil {
		return fail(io, fmt.Errorf("read job from stdin: %w", err))
	}
	s := &summary{}
	job, err := launch.Parse(data)
	if err != nil {
		s.addInvalid(0, err)
		report(io, s, asJSON)
		return exitFailed
	}
	s.Valid = 1
	job.ID = launch.IDFor(cfg.SID, job)
	s.JobID = job.ID
	if dryRun {
		s.DryRun = true
		report(io, s, asJSON)
		return exitOK
	}
	a, err := openWith(ctx, cfg)
	if err != nil {
		return fail(io, err)
	}
	defer a.Close()
	st, err := a.producer.Enqueue(ctx, job, "", force)
	if err != nil {
		s.Failed++
		s.addError(0, "", err.Error())
	} else {
		s.count(st, 0, job.ID)
	}
	report(io, s, asJSON)
	if !s.ok() {
		return exitFailed
	}
	return exitOK
}

func readAllLimited(r io.Reader, limit int) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > limit {
		return nil, fmt.Errorf("more than %d bytes; a single job must be smaller", limit)
	}
	return data, nil
}

// fileRun is one `enqueue --file` run.
type fileRun struct {
	io          stdio
	cfg         config.Config
	path        string
	format      jobfile.Format
	skipInvalid bool
	dryRun      bool
	force       bool
	batchName   string
}

// Bulk enqueue reads the file in chunks of chunkRows rows, decoded in
// parallel, and hands each chunk to one of enqueueWorkers goroutines, which
// creates its records in one round trip and pushes its tasks concurrently.
// The figures come from `rcslaunch bench` (BENCHMARKS.md). They also bound
// what a Redis failure can leave in doubt: the rows of the chunks in flight.
const (
	chunkRows      = 64
	enqueueWorkers = 8
)

func (r *fileRun) run(ctx context.Context) (*summary, error) {
	path, cleanup, err := r.source()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	s := &summary{}
	rows, validTotal := -1, -1 // known after a first pass
	if !r.skipInvalid || r.dryRun {
		// First pass: validate everything, so that a bad row stops the
		// whole file before anything is enqueued.
		rows = 0
		err := r.each(path, -1, func(chunk []jobfile.Row) error {
			rows += len(chunk)
			for _, row := range chunk {
				if row.Err != nil {
					s.addInvalid(row.Line, row.Err)
				} else {
					s.Valid++
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if r.dryRun {
			s.DryRun = true
			return s, nil
		}
		if s.Invalid > 0 {
			return s, nil
		}
		validTotal, s.Valid = s.Valid, 0
	}
	a, err := openWith(ctx, r.cfg)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	batch := store.NewBatchID(time.Now())
	if err := a.store.CreateBatch(ctx, batch, r.batchName, time.Now()); err != nil {
		return nil, err
	}
	s.BatchID = &batch

	ap, err := a.store.Redis().AutoPipeline()
	if err != nil {
		return nil, err
	}
	prod := *a.producer
	prod.Client = asynq.NewClientFromRedisClient(ap)
	e := &bulkEnqueue{s: s, producer: &prod, batch: batch, force: r.force, work: make(chan bulkChunk)}
	e.start(ctx)
	err = r.each(path, rows, func(chunk []jobfile.Row) error {
		c := bulkChunk{jobs: make([]launch.Job, 0, len(chunk))}
		e.mu.Lock()
		for _, row := range chunk {
			if row.Err != nil {
				s.addInvalid(row.Line, row.Err)
				continue
			}
			row.Job.ID = launch.IDFor(r.cfg.SID, row.Job)
			s.Valid++
			c.lines = append(c.lines, row.Line)
			c.jobs = append(c.jobs, row.Job)
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
	})
	close(e.work)
	e.wg.Wait()
	if errors.Is(err, errStopped) {
		err = nil
		s.NotTried += validTotal - s.Valid
		s.Valid = validTotal
	}
	if e.firstUnsent > 0 {
		// Outside the cap on listed errors: it is the one line that names
		// the rows the run left out.
		s.Errors = append(s.Errors, rowError{Line: e.firstUnsent,
			Reason: "not tried: the run stopped before this row; it and every later valid row were not enqueued"})
	}
	sort.SliceStable(s.Errors, func(i, j int) bool { return s.Errors[i].Line < s.Errors[j].Line })
	const again = "rows in doubt or not tried are safe to enqueue again: run the same file again"
	switch {
	case err != nil:
		err = fmt.Errorf("enqueue stopped early (%s): %w", again, err)
	case ctx.Err() != nil:
		err = fmt.Errorf("enqueue interrupted (%s): %w", again, ctx.Err())
	case e.stopped != nil:
		err = fmt.Errorf("enqueue stopped at the first Redis error (%s): %w", again, e.stopped)
	}
	// Every row has been offered: the batch's total is final, and it is
	// finished once its last job has an outcome. A run that stopped early
	// closes it too, with the jobs enqueued so far.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if cerr := a.store.CloseBatch(cctx, batch, time.Now()); cerr != nil {
		err = errors.Join(err, fmt.Errorf("batch %s is left open (its total may grow): close it with `rcslaunch batch close %s` once Redis answers: %w", batch, batch, cerr))
	}
	cancel()
	return s, err
}

// errStopped ends the reading of a file once the enqueue pass has stopped.
var errStopped = errors.New("enqueue stopped")

// bulkChunk is a run of valid rows to enqueue together.
type bulkChunk struct {
	lines []int
	jobs  []launch.Job
}

// bulkEnqueue is the enqueue pass of a file: enqueueWorkers goroutines
// enqueue chunks and count their rows in the summary. The first Redis error
// stops it: the rows of chunks not yet sent are counted as not tried, so the
// summary says exactly which rows made it (enqueued or known before), which
// may have (in doubt) and which did not.
type bulkEnqueue struct {
	producer *queue.Producer
	batch    string
	force    bool
	work     chan bulkChunk
	wg       sync.WaitGroup

	mu          sync.Mutex // guards what follows and s
	s           *summary
	stopped     error // the error that stopped the run
	firstUnsent int   // the first line of the rows counted but never handed out
}

func (e *bulkEnqueue) start(ctx context.Context) {
	workers := enqueueWorkers
	if e.force {
		// A forced relaunch whose row is repeated in a chunk being enqueued
		// at the same time would see its task pushed by the repeat, wait
		// for it as for the previous run's task, and undo itself; chunk by
		// chunk, a repeat finds the job queued and is a duplicate.
		workers = 1
	}
	for i := 0; i < workers; i++ {
		e.wg.Go(func() {
			for c := range e.work {
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
					continue
				}
				res := e.producer.EnqueueMany(ctx, c.jobs, e.batch, e.force)
				e.mu.Lock()
				for i, r := range res {
					if r.Err != nil {
						e.stopWith(r.Err)
						e.s.InDoubt++
						e.s.addError(c.lines[i], "", "in doubt: the run failed while it was being enqueued, so it may or may not be on the queue: "+r.Err.Error())
						continue
					}
					e.s.count(r.Status, c.lines[i], c.jobs[i].ID)
				}
				e.mu.Unlock()
			}
		})
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

// source returns a path to read twice: the file itself, or stdin spooled to a
// temporary file (so that validating first does not hold stdin in memory).
func (r *fileRun) source() (string, func(), error) {
	if r.path != "-" {
		if _, err := os.Stat(r.path); err != nil {
			return "", nil, fmt.Errorf("--file: %w", err)
		}
		return r.path, func() {}, nil
	}
	tmp, err := os.CreateTemp("", "rcslaunch-stdin-*")
	if err != nil {
		return "", nil, fmt.Errorf("spool stdin: %w", err)
	}
	cleanup := func() { tmp.Close(); os.Remove(tmp.Name()) }
	if _, err := io.Copy(tmp, r.io.in); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("spool stdin: %w", err)
	}
	return tmp.Name(), cleanup, nil
}

// each streams the file's rows to fn in chunks, in file order, with a
// progress bar on a terminal. total is the number of rows when known, else -1.
func (r *fileRun) each(path string, total int, fn func([]jobfile.Row) error) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--file: %w", err)
	}
	defer fh.Close()
	rd, err := jobfile.NewReader(fh, r.format)
	if err != nil {
		return fmt.Errorf("%s: %w", r.path, err)
	}
	bar := r.progress(total)
	defer bar.Finish()
	// A few decoders keep up with Redis; more would only hold more rows
	// in memory on a machine with many cores.
	decoders := min(runtime.GOMAXPROCS(0), 4)
	err = rd.Chunks(chunkRows, decoders, func(chunk []jobfile.Row) error {
		if err := fn(chunk); err != nil {
			return err
		}
		_ = bar.Add(len(chunk))
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", r.path, err)
	}
	return nil
}

func (r *fileRun) progress(total int) *progressbar.ProgressBar {
	desc := "enqueueing"
	if total < 0 || r.dryRun {
		desc = "validating"
	}
	return progressBar(r.io, int64(total), desc)
}

// progressBar shows progress on stderr when it is a terminal, and nothing
// otherwise; total -1 means unknown.
func progressBar(io stdio, total int64, desc string) *progressbar.ProgressBar {
	if !isTerminal(io.err) {
		return progressbar.DefaultSilent(total)
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(io.err),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fprintf(io.err, "\n") }),
	)
}
