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
  list [--code CODE] [--sid SID] [--since DUR] [--json]
                                                  dead letters, newest first
  show JOB_ID [--json]                            one dead letter with every attempt
  retry (JOB_ID... | --all | [--code CODE] [--sid SID]) [--include-uncertain] [--rate N] [--dry-run]
                                                  put dead letters back on the queue
  delete (JOB_ID... | --all | [--code CODE] [--sid SID]) [--yes] [--rate N] [--dry-run]
                                                  drop dead letters
  export [--code CODE] [--sid SID]                write dead letters as JSONL jobs

--code and --sid each select on their own, or together.
`

func runDLQ(ctx context.Context, args []string, io cli.Stdio) int {
	return cli.Group{Name: "dlq", Usage: dlqUsage, Subs: map[string]cli.Func{
		"list": dlqList, "show": dlqShow, "retry": dlqRetry, "delete": dlqDelete, "export": dlqExport,
	}}.Run(ctx, args, io)
}

// filterFlags adds --code, --sid and, when withSince, --since to f.
func filterFlags(f *cli.Flags, withSince bool) func() (ops.Filter, error) {
	code := f.String("code", "", "only dead letters whose last code is `CODE` (e.g. RCS904, TIMEOUT; in any case)")
	sid := f.String("sid", "", "only dead letters of the account `SID`")
	var since *time.Duration
	if withSince {
		since = f.Duration("since", 0, "only dead letters from the last `DUR` (e.g. 24h)")
	}
	return func() (ops.Filter, error) {
		flt := ops.Filter{Code: *code, SID: *sid}
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
	f := cli.NewFlags(io, "dlq list", "[--code CODE] [--sid SID] [--since DUR] [--json]", "Lists dead-lettered launches, newest first.")
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
		l := cli.NewListing(io.Out, *asJSON, display.DeadLetterHeader)
		err := a.Ops.EachDeadLetter(ctx, flt, func(r ops.Record) error {
			return l.Add(r, func() string { return display.DeadLetterRow(r) })
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
		display.DeadLetter(io.Out, r)
		return cli.ExitOK
	})
}

func dlqRetry(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "dlq retry", "(JOB_ID... | --all | [--code CODE] [--sid SID]) [--include-uncertain] [--rate N] [--dry-run]",
		`Puts dead letters back on the launch queue with a fresh attempt budget; each is
removed from the dead-letter store only once it is safely enqueued. Dead letters
marked uncertain (the agent may have been launched) are left alone unless
--include-uncertain. --rate paces a large redrive. --code and --sid select on
their own or together (an account's UNKNOWN_ACCOUNT letters, once it is added).`)
	b := cli.NewBulkFlags(f, "retry", "retrying", false)
	uncertain := f.Bool("include-uncertain", false, "retry uncertain dead letters too")
	if code, ok := b.Parse(args); !ok {
		return code
	}
	b.Opts.IncludeUncertain = *uncertain
	return withApp(ctx, io, 0, func(a *app) int { return b.Run(ctx, a.Ops, a.Ops.RetryDeadLetters) })
}

func dlqDelete(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "dlq delete", "(JOB_ID... | --all | [--code CODE] [--sid SID]) [--yes] [--rate N] [--dry-run]",
		`Drops dead letters and their records; a job dropped this way can be enqueued anew.
With --all, --code or --sid it asks you to type how many would go, unless --yes.`)
	b := cli.NewBulkFlags(f, "delete", "deleting", true)
	if code, ok := b.Parse(args); !ok {
		return code
	}
	return withApp(ctx, io, 0, func(a *app) int { return b.Run(ctx, a.Ops, a.Ops.DeleteDeadLetters) })
}

func dlqExport(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "dlq export", "[--code CODE] [--sid SID]",
		"Writes dead letters as JSONL jobs (with their IDs and SIDs) that `enqueue --file` accepts, each for its own account.")
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
