package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/conn"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/ops"
)

// enqueueArgs is what `enqueue` was asked to do.
type enqueueArgs struct {
	file, format, batchName    string
	skipInvalid, dryRun, force bool
	asJSON                     bool
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
	var a enqueueArgs
	f.StringVar(&a.file, "file", "", "read jobs from `PATH` (\"-\" for stdin), JSONL or CSV")
	f.StringVar(&a.format, "format", "", "file format, jsonl or csv (default: from the file name, else jsonl)")
	f.BoolVar(&a.skipInvalid, "skip-invalid", false, "enqueue the valid rows even if some are invalid")
	f.BoolVar(&a.dryRun, "dry-run", false, "validate only; enqueue nothing")
	f.BoolVar(&a.force, "force", false, "launch again jobs that already succeeded")
	f.BoolVar(&a.asJSON, "json", false, "print the summary as JSON")
	f.StringVar(&a.batchName, "batch-name", "", "name of the batch (default: the file name)")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return f.usageError("unexpected argument %q (use --file PATH)", pos[0])
	}
	if a.file == "" && a.format == "csv" {
		return f.usageError("--format csv needs --file")
	}
	format, err := a.fileFormat()
	if err != nil {
		return f.usageError("%v", err)
	}
	cfg, err := config.Load(config.NeedSID)
	if err != nil {
		return fail(io, err)
	}
	var s *ops.BatchSummary
	if a.file == "" {
		s, err = enqueueOne(ctx, io, cfg, a)
	} else {
		s, err = enqueueFile(ctx, io, cfg, a, format)
	}
	if s != nil {
		// Also when the run stopped early: it says exactly how far it got.
		report(io, s, a.asJSON)
	}
	if err != nil {
		return fail(io, err)
	}
	if !s.OK() {
		return exitFailed
	}
	return exitOK
}

// fileFormat is --format, or the file's by its name.
func (a enqueueArgs) fileFormat() (ops.Format, error) {
	name := a.format
	if name == "" {
		name = "jsonl"
		if strings.EqualFold(filepath.Ext(a.file), ".csv") {
			name = "csv"
		}
	}
	return ops.ParseFormat(name)
}

// enqueueOne reads one JSON job from stdin.
func enqueueOne(ctx context.Context, io stdio, cfg config.Config, a enqueueArgs) (*ops.BatchSummary, error) {
	data, err := readAllLimited(io.in, launch.MaxJobBytes)
	if err != nil {
		return nil, fmt.Errorf("read job from stdin: %w", err)
	}
	s := &ops.BatchSummary{Errors: []ops.RowError{}}
	job, err := launch.Parse(data)
	if err != nil {
		s.AddInvalid(0, err)
		return s, nil
	}
	s.Valid = 1
	s.JobID = launch.IDFor(cfg.SID, job)
	if a.dryRun {
		s.DryRun = true
		return s, nil
	}
	app, err := openWith(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer app.Close()
	res, err := app.Ops.Enqueue(ctx, job, &ops.EnqueueOpts{Force: a.force})
	switch {
	case err == nil || errors.Is(err, ops.ErrConflict):
		s.Add(0, res)
	default:
		s.AddFailed(0, err)
	}
	return s, nil
}

// enqueueFile enqueues a file (or stdin, spooled) as a batch.
func enqueueFile(ctx context.Context, io stdio, cfg config.Config, a enqueueArgs, format ops.Format) (*ops.BatchSummary, error) {
	path, name := a.file, a.batchName
	if name == "" {
		name = filepath.Base(path)
	}
	if path == "-" {
		if a.batchName == "" {
			name = "stdin"
		}
		tmp, err := spool(io.in)
		if err != nil {
			return nil, err
		}
		defer os.Remove(tmp)
		path = tmp
	} else if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("--file: %w", err)
	}
	app, err := conn.New(cfg)
	if err != nil {
		return nil, err
	}
	defer app.Close()
	bar := newPhaseBar(io)
	defer bar.finish()
	return app.Ops.EnqueueFile(ctx, path, format, &ops.BatchOpts{Name: name, Force: a.force,
		SkipInvalid: a.skipInvalid, DryRun: a.dryRun, OnProgress: bar.update})
}

// spool copies stdin to a temporary file, which a batch reads twice
// (validation first) without holding stdin in memory.
func spool(in io.Reader) (string, error) {
	tmp, err := os.CreateTemp("", "rcslaunch-stdin-*")
	if err != nil {
		return "", fmt.Errorf("spool stdin: %w", err)
	}
	defer tmp.Close()
	if _, err := io.Copy(tmp, in); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("spool stdin: %w", err)
	}
	return tmp.Name(), nil
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

func report(io stdio, s *ops.BatchSummary, asJSON bool) {
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
	fprintf(io.out, "enqueued %d, duplicate %d, already launched %d, dead-lettered %d, invalid %d%s%s\n",
		s.Enqueued, s.Duplicate, s.AlreadyLaunched, s.DeadLettered, s.Invalid, lost(s), which(s))
	if s.BatchID != nil && s.Enqueued > 0 {
		fprintf(io.out, "follow it with `rcslaunch batch status %s --watch`\n", *s.BatchID)
	}
	if s.DeadLettered > 0 {
		fprintf(io.out, "dead-lettered jobs wait for `rcslaunch dlq retry`\n")
	}
}

// lost is ", failed n, in doubt n, not tried n", each only when not zero.
func lost(s *ops.BatchSummary) string {
	out := ""
	for _, c := range []struct {
		what string
		n    int
	}{{"failed", s.Failed}, {"in doubt", s.InDoubt}, {"not tried", s.NotTried}} {
		if c.n > 0 {
			out += fmt.Sprintf(", %s %d", c.what, c.n)
		}
	}
	return out
}

// which is " (batch ID)" or " (job ID)".
func which(s *ops.BatchSummary) string {
	switch {
	case s.BatchID != nil:
		return fmt.Sprintf(" (batch %s)", *s.BatchID)
	case s.JobID != "":
		return fmt.Sprintf(" (job %s)", s.JobID)
	}
	return ""
}

// phaseBar shows a batch enqueue's progress on a terminal: one bar for the
// validation pass, one for the enqueue pass.
type phaseBar struct {
	io         stdio
	bar        *progressbar.ProgressBar
	validating bool
}

func newPhaseBar(io stdio) *phaseBar { return &phaseBar{io: io} }

func (p *phaseBar) update(pr ops.BatchProgress) {
	if p.bar == nil || p.validating != pr.Validating {
		p.finish()
		desc := "enqueueing"
		if pr.Validating || pr.Total < 0 {
			desc = "validating"
		}
		p.bar, p.validating = progressBar(p.io, pr.Total, desc), pr.Validating
	}
	_ = p.bar.Set64(pr.Done)
}

func (p *phaseBar) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
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
