package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/rcslaunch/rcslaunch/internal/cli"
	"github.com/rcslaunch/rcslaunch/internal/display"
	"github.com/rcslaunch/rcslaunch/ops"
)

const batchUsage = `Usage: rcslaunch batch SUBCOMMAND

Every "enqueue --file" run (and every POST /v1/launches:batch) is a batch.

Subcommands:
  list [--json]                                    batches, newest first
  status BATCH_ID [--watch] [--json]               counts by state, times, time left;
                                                   --watch: until finished, exit 1 if
                                                   anything was dead-lettered
  report BATCH_ID [--format csv|jsonl] [--failed] [--sid SID]
                                                   one row per job; --failed: the dead
                                                   letters, as jobs "enqueue --file" takes
  close BATCH_ID                                   make the total final, for a batch whose
                                                   enqueue run stopped before it could
`

func runBatch(ctx context.Context, args []string, io cli.Stdio) int {
	return cli.Group{Name: "batch", Usage: batchUsage, Subs: map[string]cli.Func{
		"list": batchList, "status": batchStatus, "report": batchReport, "close": batchClose,
	}}.Run(ctx, args, io)
}

func batchList(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "batch list", "[--json]", `Lists batches, newest first, with their counts. LAUNCHED is, for a batch whose
launches are followed (FOLLOW_LAUNCH), how many of the followed are launched.`)
	asJSON := f.Bool("json", false, "print a JSON array of batch statuses (the shape of `batch status --json`)")
	if code, ok := f.ParseNone(args); !ok {
		return code
	}
	return withApp(ctx, io, 0, func(a *app) int {
		l := cli.NewListing(io.Out, *asJSON, display.BatchListHeader)
		err := a.Ops.EachBatch(ctx, func(b ops.Batch) error {
			return l.Add(b, func() string { return display.BatchListRow(b) })
		})
		l.End()
		if err != nil {
			return cli.Fail(io, err)
		}
		return cli.ExitOK
	})
}

// watchInterval is how often `batch status --watch` reads the counters;
// without a terminal it prints a line at most every plainEvery (when the
// counts changed; every minute when not), and one at the end.
const (
	watchInterval = time.Second
	plainEvery    = 5 * time.Second
)

func batchClose(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "batch close", "BATCH_ID",
		`Closes a batch whose "enqueue --file" run stopped before it could (Redis
failed, the process was killed): its total becomes final, and it is finished
once every job it holds has an outcome. An open batch never finishes. Closing
a closed batch changes nothing; a later run of the same file is a new batch.`)
	id, code, ok := f.ParseOne(args, "BATCH_ID")
	if !ok {
		return code
	}
	return withApp(ctx, io, 0, func(a *app) int {
		b, err := a.Ops.CloseBatch(ctx, id)
		if err != nil {
			return cli.Fail(io, err)
		}
		fmt.Fprintf(io.Out, "%s\n", display.BatchClosed(b))
		return cli.ExitOK
	})
}

func batchStatus(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "batch status", "BATCH_ID [--watch] [--json]",
		`Shows a batch's counts: total, queued, running, retrying, succeeded and
dead-lettered (by code), when it was created, started and finished, and an
estimate of the time left from the rate observed so far. When launches are
followed (FOLLOW_LAUNCH), the successes by launch state: pending, launched,
rejected, suspended, unknown ("launch_states" in JSON). The counts are kept
with every job's state, so this costs the same for any size of batch.

--watch shows a progress bar (on stderr, when it is a terminal; otherwise a line
whenever the counts change) until the batch is finished, then prints its status
and exits 0 if nothing was dead-lettered, 1 otherwise.`)
	watch := f.Bool("watch", false, "follow the batch until it is finished; exit 1 if any job was dead-lettered")
	asJSON := f.Bool("json", false, "print the status as JSON")
	id, code, ok := f.ParseOne(args, "BATCH_ID")
	if !ok {
		return code
	}
	return withApp(ctx, io, 0, func(a *app) int {
		b, err := a.Ops.BatchStatus(ctx, id)
		if err != nil {
			return cli.Fail(io, err)
		}
		if *watch {
			if b, err = watchBatch(ctx, io, a.Ops, b); err != nil {
				return cli.Fail(io, err)
			}
		}
		if *asJSON {
			cli.PrintJSON(io.Out, b.Batch)
		} else {
			display.Batch(io.Out, b)
		}
		if *watch && b.DeadLettered > 0 {
			return cli.ExitFailed
		}
		return cli.ExitOK
	})
}

// watchBatch follows b until it is finished and returns its last status:
// a progress bar on a terminal, else a line when the counts change.
func watchBatch(ctx context.Context, io cli.Stdio, c *ops.Client, b ops.BatchStatus) (ops.BatchStatus, error) {
	var bar *progressbar.ProgressBar
	if cli.IsTerminal(io.Err) {
		bar = progressbar.NewOptions64(max(b.Total, 1),
			progressbar.OptionSetWriter(io.Err),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionFullWidth(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintf(io.Err, "\n") }),
		)
		defer func() { _ = bar.Exit() }()
	}
	last, lastAt := "", time.Time{}
	return c.WatchBatch(ctx, b.ID, watchInterval, func(b ops.BatchStatus) {
		if bar != nil {
			showBar(bar, b)
			return
		}
		now := time.Now()
		line := display.Counts(b.Batch)
		if (line != last && now.Sub(lastAt) >= plainEvery) || now.Sub(lastAt) >= time.Minute || b.Finished() {
			fmt.Fprintf(io.Err, "%s\n", display.WatchLine(now, b))
			last, lastAt = line, now
		}
	})
}

// showBar moves the bar to b. Its text is short, so that the bar keeps some
// width on a narrow terminal; the full counts are printed at the end.
func showBar(bar *progressbar.ProgressBar, b ops.BatchStatus) {
	if bar.GetMax64() != max(b.Total, 1) {
		bar.ChangeMax64(max(b.Total, 1))
	}
	desc := fmt.Sprintf("succeeded %d · dead-lettered %d", b.Succeeded, b.DeadLettered)
	if left, ok := b.TimeLeft(); ok && !b.Finished() && (b.Queued > 0 || b.Running > 0) {
		desc += fmt.Sprintf(" · ~%v left", left)
	}
	bar.Describe(desc)
	_ = bar.Set64(b.Done())
	if b.Finished() {
		_ = bar.Finish()
	}
}

func batchReport(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "batch report", "BATCH_ID [--format csv|jsonl] [--failed] [--sid SID]",
		`Writes one row per job of the batch, in the order they were enqueued: job_id,
agent_no, outcome (succeeded, dead_lettered, or queued, running, retrying while
the batch runs), code and message (the last answer), agent_launch_id,
attempts, launch_state (for a success whose launch is followed,
FOLLOW_LAUNCH; empty, or left out in JSONL, otherwise) and sid (the job's
account). CSV has a header row; JSONL is one object per line. --sid keeps
the jobs of one account.

--failed writes only the dead letters, as JSONL jobs (with their IDs and
SIDs) that "rcslaunch enqueue --file" accepts: enqueued again, they are
reported as dead-lettered until "rcslaunch dlq delete" drops them (or use
"dlq retry").`)
	format := f.String("format", "csv", "csv or jsonl")
	failed := f.Bool("failed", false, "only the dead letters, as jobs to enqueue again (JSONL)")
	sid := f.String("sid", "", "only the jobs of the account `SID`")
	id, code, ok := f.ParseOne(args, "BATCH_ID")
	if !ok {
		return code
	}
	formatSet := false
	f.Visit(func(fl *flag.Flag) { formatSet = formatSet || fl.Name == "format" })
	switch {
	case *format != "csv" && *format != "jsonl":
		return f.UsageError("--format must be csv or jsonl, got %q", *format)
	case *failed && formatSet && *format != "jsonl":
		return f.UsageError("--failed writes jobs as JSONL, the form enqueue --file reads; leave out --format csv")
	}
	form := ops.ReportCSV
	switch {
	case *failed:
		form = ops.ReportFailedJobs
	case *format == "jsonl":
		form = ops.ReportJSONL
	}
	return withApp(ctx, io, 0, func(a *app) int {
		if err := a.Ops.WriteBatchReport(ctx, id, ops.BatchJobFilter{SID: *sid}, form, io.Out); err != nil {
			return cli.Fail(io, err)
		}
		return cli.ExitOK
	})
}
