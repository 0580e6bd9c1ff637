package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/cli"
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

func runDLQ(ctx context.Context, args []string, io cli.Stdio) int {
	return cli.Group{Name: "dlq", Usage: dlqUsage, Subs: map[string]cli.Func{
		"list": dlqList, "show": dlqShow, "retry": dlqRetry, "delete": dlqDelete, "export": dlqExport,
	}}.Run(ctx, args, io)
}

// filterFlags adds --code and, when withSince, --since to f.
func filterFlags(f *cli.Flags, withSince bool) func() (ops.Filter, error) {
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

func dlqList(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "dlq list", "[--code CODE] [--since DUR] [--json]", "Lists dead-lettered launches, newest first.")
	filter := filterFlags(f, true)
	asJSON := f.Bool("json", false, "print a JSON array of dead-letter records")
	if code, ok := f.ParseNone(args); !ok {
		return code
	}
	flt, err := filter()
	if err != nil {
		return f.UsageError("%v", err)
	}
	return withApp(ctx, io, 0, func(a *app) int {
		l := cli.NewListing(io.Out, *asJSON, "DEAD-LETTERED AT\tJOB ID\tAGENT\tCODE\tATTEMPTS\tMESSAGE")
		err := a.Ops.EachDeadLetter(ctx, flt, func(r ops.Record) error {
			return l.Add(r, func() string {
				msg := r.Message
				if r.Uncertain {
					msg = "[uncertain] " + msg
				}
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s", display.Stamp(r.FinishedAt), r.ID, r.AgentNo, r.Code, r.Attempts, display.OneLine(msg, 100))
			})
		})
		l.End()
		if err != nil {
			return cli.Fail(io, err)
		}
		return cli.ExitOK
	})
}

func dlqShow(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "dlq show", "JOB_ID [--json]", "Shows one dead letter: payload, code, message, attempts, timestamps and every attempt's outcome.")
	asJSON := f.Bool("json", false, "print the record as JSON")
	id, code, ok := f.ParseOne(args, "JOB_ID")
	if !ok {
		return code
	}
	return withApp(ctx, io, 0, func(a *app) int {
		r, err := a.Ops.DeadLetter(ctx, id)
		if errors.Is(err, ops.ErrNotDeadLettered) {
			return cli.Fail(io, fmt.Errorf("job %s is not dead-lettered (state: %s); see `rcslaunch status %s`", r.ID, r.State, r.ID))
		}
		if err != nil {
			return cli.Fail(io, err)
		}
		if *asJSON {
			cli.PrintJSON(io.Out, r)
			return cli.ExitOK
		}
		fmt.Fprintf(io.Out, "job:            %s\nagent_no:       %s\ncode:           %s\nmessage:        %s\n", r.ID, r.AgentNo, r.Code, r.Message)
		fmt.Fprintf(io.Out, "uncertain:      %v\nattempts:       %d\nenqueued at:    %s\ndead-lettered:  %s\n", r.Uncertain, r.Attempts, display.Stamp(r.EnqueuedAt), display.Stamp(r.FinishedAt))
		if r.Batch != "" {
			fmt.Fprintf(io.Out, "batch:          %s\n", r.Batch)
		}
		fmt.Fprintf(io.Out, "payload:        %s\nattempts:\n", r.Payload)
		for _, at := range r.History {
			fmt.Fprintf(io.Out, "  %s\n", display.Attempt(at))
		}
		return cli.ExitOK
	})
}

// selectionFlags adds --all and --code; selection reads them with the
// positional IDs, exactly one of the three.
func selectionFlags(f *cli.Flags) func(pos []string) (ops.Selection, bool) {
	all := f.Bool("all", false, "every dead letter")
	code := f.String("code", "", "every dead letter whose last code is `CODE`")
	return func(pos []string) (ops.Selection, bool) {
		sel := ops.Selection{IDs: pos, All: *all, Code: *code}
		return sel, sel.Check() == nil
	}
}

func dlqRetry(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "dlq retry", "(JOB_ID... | --all | --code CODE) [--include-uncertain]",
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

func dlqDelete(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "dlq delete", "(JOB_ID... | --all | --code CODE)",
		"Drops dead letters and their records; a job dropped this way can be enqueued anew.")
	selection := selectionFlags(f)
	return dlqBulk(ctx, f, args, "deleting", func(a *app, sel ops.Selection, o *ops.BulkOpts) (ops.Tally, error) {
		return a.Ops.DeleteDeadLetters(ctx, sel, o)
	}, selection)
}

// dlqBulk runs a bulk retry or delete with a progress bar, reports each
// named job that was not acted on, prints the tally, and fails when any job
// was not acted on (or the run stopped).
func dlqBulk(ctx context.Context, f *cli.Flags, args []string, verb string,
	run func(*app, ops.Selection, *ops.BulkOpts) (ops.Tally, error), selection func([]string) (ops.Selection, bool)) int {
	pos, code, ok := f.ParseArgs(args)
	if !ok {
		return code
	}
	sel, ok := selection(pos)
	if !ok {
		return f.UsageError("name dead letters by JOB_ID..., --all or --code CODE (exactly one of them)")
	}
	io := f.Stdio()
	return withApp(ctx, io, 0, func(a *app) int {
		total, err := a.Ops.CountSelected(ctx, sel)
		if err != nil {
			total = -1
		}
		bar := cli.ProgressBar(io, total, verb)
		allOK := true
		t, err := run(a, sel, &ops.BulkOpts{OnEach: func(r ops.DeadLetterResult) {
			if !r.OK() {
				allOK = false
				if len(sel.IDs) > 0 {
					cli.Errorf(io, "%s: %s", r.JobID, r.Describe())
				}
			}
			_ = bar.Add(1)
		}})
		_ = bar.Finish()
		fmt.Fprintf(io.Out, "%s\n", t.String())
		if err != nil {
			return cli.Fail(io, err)
		}
		if !allOK {
			return cli.ExitFailed
		}
		return cli.ExitOK
	})
}

func dlqExport(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "dlq export", "[--code CODE]", "Writes dead letters as JSONL jobs (with their IDs) that `enqueue --file` accepts.")
	filter := filterFlags(f, false)
	if code, ok := f.ParseNone(args); !ok {
		return code
	}
	flt, _ := filter()
	return withApp(ctx, io, 0, func(a *app) int {
		if err := a.Ops.ExportDeadLetters(ctx, flt, io.Out); err != nil {
			return cli.Fail(io, err)
		}
		return cli.ExitOK
	})
}
