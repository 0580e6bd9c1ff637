package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rcslaunch/rcslaunch/internal/cli"
	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/conn"
	"github.com/rcslaunch/rcslaunch/internal/display"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/ops"
)

// enqueueArgs is what `enqueue` was asked to do.
type enqueueArgs struct {
	file, format, batchName    string
	skipInvalid, dryRun, force bool
	asJSON                     bool
	priority                   ops.Priority
}

func runEnqueue(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "enqueue", "[--file PATH | -] [--format jsonl|csv] [--priority high|default|low] [--skip-invalid] [--dry-run] [--force] [--batch-name NAME] [--json]",
		`Validates launch jobs and puts them on the launch queue. Without --file, one job
(a JSON object) is read from stdin. With --file, every row is validated first and
nothing is enqueued if any row is invalid, unless --skip-invalid. Jobs whose ID is
already known are reported (duplicate, already launched, dead-lettered), not
enqueued again. Every file run is a batch (see "rcslaunch batch"): the jobs it
enqueues are counted there; its ID is in the summary. Exit status 0 when every
row is enqueued, a duplicate or already launched; 1 otherwise.

Each job goes to its account: its "sid" (a CSV column), else KALEYRA_SID. Within
an account, its "priority", else --priority, orders the jobs: high before default
before low, by weight; it never puts one account's jobs before another's.`)
	var a enqueueArgs
	prio := f.String("priority", "default", "the priority within their account of jobs without their own: high, default or low")
	f.StringVar(&a.file, "file", "", "read jobs from `PATH` (\"-\" for stdin), JSONL or CSV")
	f.StringVar(&a.format, "format", "", "file format, jsonl or csv (default: from the file name, else jsonl)")
	f.BoolVar(&a.skipInvalid, "skip-invalid", false, "enqueue the valid rows even if some are invalid")
	f.BoolVar(&a.dryRun, "dry-run", false, "validate only; enqueue nothing")
	f.BoolVar(&a.force, "force", false, "launch again jobs that already succeeded")
	f.BoolVar(&a.asJSON, "json", false, "print the summary as JSON")
	f.StringVar(&a.batchName, "batch-name", "", "name of the batch (default: the file name)")
	pos, code, ok := f.ParseArgs(args)
	if !ok {
		return code
	}
	format, err := a.check(pos, *prio)
	if err != nil {
		return f.UsageError("%v", err)
	}
	cfg, err := config.Load(0) // jobs may name their accounts: ops refuses one that names none
	if err != nil {
		return cli.Fail(io, err)
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
		return cli.Fail(io, err)
	}
	if !s.OK() {
		return cli.ExitFailed
	}
	return cli.ExitOK
}

// check checks the arguments and the priority prio, which it sets, and
// returns the file's format; an error is a usage error.
func (a *enqueueArgs) check(pos []string, prio string) (ops.Format, error) {
	var err error
	switch {
	case len(pos) > 0:
		return "", fmt.Errorf("unexpected argument %q (use --file PATH)", pos[0])
	case a.file == "" && a.format == "csv":
		return "", errors.New("--format csv needs --file")
	}
	if a.priority, err = ops.ParsePriority(prio); err != nil {
		return "", fmt.Errorf("--priority: %w", err)
	}
	return a.fileFormat()
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
func enqueueOne(ctx context.Context, io cli.Stdio, cfg config.Config, a enqueueArgs) (*ops.BatchSummary, error) {
	data, err := readAllLimited(io.In, launch.MaxJobBytes)
	if err != nil {
		return nil, fmt.Errorf("read job from stdin: %w", err)
	}
	app, err := conn.New(cfg)
	if err != nil {
		return nil, err
	}
	defer app.Close()
	s := &ops.BatchSummary{Errors: []ops.RowError{}}
	job, err := launch.Parse(data)
	if err == nil {
		s.JobID, err = app.Ops.Validate(job)
	}
	if err != nil {
		s.AddInvalid(0, err)
		return s, nil
	}
	s.Valid = 1
	if a.dryRun {
		s.DryRun = true
		return s, nil
	}
	if err := app.Ops.Check(ctx); err != nil {
		return nil, err
	}
	res, err := app.Ops.Enqueue(ctx, job, &ops.EnqueueOpts{Force: a.force, Priority: a.priority})
	switch {
	case err == nil || errors.Is(err, ops.ErrConflict):
		s.Add(0, res)
	default:
		s.AddFailed(0, err)
	}
	return s, nil
}

// enqueueFile enqueues a file (or stdin, spooled) as a batch.
func enqueueFile(ctx context.Context, io cli.Stdio, cfg config.Config, a enqueueArgs, format ops.Format) (*ops.BatchSummary, error) {
	path, name := a.file, a.batchName
	if name == "" {
		name = filepath.Base(path)
	}
	if path == "-" {
		if a.batchName == "" {
			name = "stdin"
		}
		tmp, err := spool(io.In)
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
	bar := cli.NewPhaseBar(io)
	defer bar.Finish()
	return app.Ops.EnqueueFile(ctx, path, format, &ops.BatchOpts{Name: name, Force: a.force, Priority: a.priority,
		SkipInvalid: a.skipInvalid, DryRun: a.dryRun, OnProgress: func(p ops.BatchProgress) {
			phase := "enqueueing"
			if p.Validating || p.Total < 0 {
				phase = "validating"
			}
			bar.Set(phase, p.Done, p.Total)
		}})
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

func report(io cli.Stdio, s *ops.BatchSummary, asJSON bool) {
	if asJSON {
		cli.PrintJSON(io.Out, s)
		return
	}
	display.Summary(io.Out, io.Err, s)
}
