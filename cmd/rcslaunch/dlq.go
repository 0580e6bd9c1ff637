package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/display"
	"github.com/rcslaunch/rcslaunch/ops"
)

const dlqUsage = `Usage: rcslaunch dlq SUBCOMMAND

Subcommands:
  list [--code CODE] [--since DUR] [--json]       dead letters, newest first
  show JOB_ID [--json]                            one dead letter with every attempt
  retry (JOB_ID... | --all | --code CODE) [--include-uncertain]
                                                  put dead letters back on the queue
  delete (JOB_ID... | --all | --code CODE)        drop dead letters
  export [--code CODE]                            write dead letters as JSONL jobs
`

func runDLQ(ctx context.Context, args []string, io stdio) int {
	if len(args) == 0 {
		fprintf(io.err, "%s", dlqUsage)
		return exitUsage
	}
	if isHelp(args[0]) {
		fprintf(io.out, "%s", dlqUsage)
		return exitOK
	}
	sub := map[string]func(context.Context, []string, stdio) int{
		"list": dlqList, "show": dlqShow, "retry": dlqRetry, "delete": dlqDelete, "export": dlqExport,
	}[args[0]]
	if sub == nil {
		errorf(io, "unknown dlq subcommand %q", args[0])
		fprintf(io.err, "%s", dlqUsage)
		return exitUsage
	}
	return sub(ctx, args[1:], io)
}

// filterFlags adds --code and, when withSince, --since to f.
func filterFlags(f *flags, withSince bool) func() (ops.Filter, error) {
	code := f.String("code", "", "only dead letters whose last code is `CODE` (e.g. RCS904, TIMEOUT)")
	var since *time.Duration
	if withSince {
		since = f.Duration("since", 0, "only dead letters from the last `DUR` (e.g. 24h)")
	}
	return func() (ops.Filter, error) {
		flt := ops.Filter{Code: *code}
		if since != nil && *since != 0 {
			if *since < 0 {
				return flt, fmt.Errorf("--since must be positive, got %v", *since)
			}
			flt.Since = time.Now().Add(-*since)
		}
		return flt, nil
	}
}

func dlqList(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "dlq list", "[--code CODE] [--since DUR] [--json]", "Lists dead-lettered launches, newest first.")
	filter := filterFlags(f, true)
	asJSON := f.Bool("json", false, "print a JSON array of dead-letter records")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return f.usageError("unexpected argument %q", pos[0])
	}
	flt, err := filter()
	if err != nil {
		return f.usageError("%v", err)
	}
	return withApp(ctx, io, 0, func(a *app) int {
		l := newListing(io.out, *asJSON, "DEAD-LETTERED AT\tJOB ID\tAGENT\tCODE\tATTEMPTS\tMESSAGE")
		err := a.Ops.EachDeadLetter(ctx, flt, func(r ops.Record) error {
			return l.add(r, func() string {
				msg := r.Message
				if r.Uncertain {
					msg = "[uncertain] " + msg
				}
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s", stamp(r.FinishedAt), r.ID, r.AgentNo, r.Code, r.Attempts, display.OneLine(msg, 100))
			})
		})
		l.end()
		if err != nil {
			return fail(io, err)
		}
		return exitOK
	})
}

func dlqShow(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "dlq show", "JOB_ID [--json]", "Shows one dead letter: payload, code, message, attempts, timestamps and every attempt's outcome.")
	asJSON := f.Bool("json", false, "print the record as JSON")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return f.usageError("need exactly one JOB_ID")
	}
	return withApp(ctx, io, 0, func(a *app) int {
		r, err := a.Ops.DeadLetter(ctx, pos[0])
		if errors.Is(err, ops.ErrNotDeadLettered) {
			return fail(io, fmt.Errorf("job %s is not dead-lettered (state: %s); see `rcslaunch status %s`", r.ID, r.State, r.ID))
		}
		if err != nil {
			return fail(io, err)
		}
		if *asJSON {
			printJSON(io.out, r)
			return exitOK
		}
		fprintf(io.out, "job:            %s\nagent_no:       %s\ncode:           %s\nmessage:        %s\n", r.ID, r.AgentNo, r.Code, r.Message)
		fprintf(io.out, "uncertain:      %v\nattempts:       %d\nenqueued at:    %s\ndead-lettered:  %s\n", r.Uncertain, r.Attempts, stamp(r.EnqueuedAt), stamp(r.FinishedAt))
		if r.Batch != "" {
			fprintf(io.out, "batch:          %s\n", r.Batch)
		}
		fprintf(io.out, "payload:        %s\nattempts:\n", r.Payload)
		for _, at := range r.History {
			fprintf(io.out, "  %s\n", describeAttempt(at))
		}
		return exitOK
	})
}

// selectionFlags adds --all and --code; selection reads them with the
// positional IDs, exactly one of the three.
func selectionFlags(f *flags) func(pos []string) (ops.Selection, bool) {
	all := f.Bool("all", false, "every dead letter")
	code := f.String("code", "", "every dead letter whose last code is `CODE`")
	return func(pos []string) (ops.Selection, bool) {
		sel := ops.Selection{IDs: pos, All: *all, Code: *code}
		return sel, sel.Check() == nil
	}
}

func dlqRetry(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "dlq retry", "(JOB_ID... | --all | --code CODE) [--include-uncertain]",
		`Puts dead letters back on the launch queue with a fresh attempt budget; each is
removed from the dead-letter store only once it is safely enqueued. Dead letters
marked uncertain (the agent may have been launched) are left alone unless
--include-uncertain.`)
	selection := selectionFlags(f)
	uncertain := f.Bool("include-uncertain", false, "retry uncertain dead letters too")
	return dlqBulk(ctx, f, args, "retrying", func(a *app, sel ops.Selection, o *ops.BulkOpts) (ops.Tally, error) {
		o.IncludeUncertain = *uncertain
		return a.Ops.RetryDeadLetters(ctx, sel, o)
	}, selection)
}

func dlqDelete(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "dlq delete", "(JOB_ID... | --all | --code CODE)",
		"Drops dead letters and their records; a job dropped this way can be enqueued anew.")
	selection := selectionFlags(f)
	return dlqBulk(ctx, f, args, "deleting", func(a *app, sel ops.Selection, o *ops.BulkOpts) (ops.Tally, error) {
		return a.Ops.DeleteDeadLetters(ctx, sel, o)
	}, selection)
}

// dlqBulk runs a bulk retry or delete with a progress bar, reports each
// named job that was not acted on, prints the tally, and fails when any job
// was not acted on (or the run stopped).
func dlqBulk(ctx context.Context, f *flags, args []string, verb string,
	run func(*app, ops.Selection, *ops.BulkOpts) (ops.Tally, error), selection func([]string) (ops.Selection, bool)) int {
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	sel, ok := selection(pos)
	if !ok {
		return f.usageError("name dead letters by JOB_ID..., --all or --code CODE (exactly one of them)")
	}
	io := f.io
	return withApp(ctx, io, 0, func(a *app) int {
		total, err := a.Ops.CountSelected(ctx, sel)
		if err != nil {
			total = -1
		}
		bar := progressBar(io, total, verb)
		allOK := true
		t, err := run(a, sel, &ops.BulkOpts{OnEach: func(r ops.DeadLetterResult) {
			if !r.OK() {
				allOK = false
				if len(sel.IDs) > 0 {
					errorf(io, "%s: %s", r.JobID, r.Describe())
				}
			}
			_ = bar.Add(1)
		}})
		_ = bar.Finish()
		fprintf(io.out, "%s\n", t.String())
		if err != nil {
			return fail(io, err)
		}
		if !allOK {
			return exitFailed
		}
		return exitOK
	})
}

func dlqExport(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "dlq export", "[--code CODE]", "Writes dead letters as JSONL jobs (with their IDs) that `enqueue --file` accepts.")
	filter := filterFlags(f, false)
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return f.usageError("unexpected argument %q", pos[0])
	}
	flt, _ := filter()
	return withApp(ctx, io, 0, func(a *app) int {
		if err := a.Ops.ExportDeadLetters(ctx, flt, io.out); err != nil {
			return fail(io, err)
		}
		return exitOK
	})
}
