package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

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
  report BATCH_ID [--format csv|jsonl] [--failed]  one row per job; --failed: the dead
                                                   letters, as jobs "enqueue --file" takes
  close BATCH_ID                                   make the total final, for a batch whose
                                                   enqueue run stopped before it could
`

func runBatch(ctx context.Context, args []string, io stdio) int {
	if len(args) == 0 {
		fprintf(io.err, "%s", batchUsage)
		return exitUsage
	}
	if isHelp(args[0]) {
		fprintf(io.out, "%s", batchUsage)
		return exitOK
	}
	sub := map[string]func(context.Context, []string, stdio) int{
		"list": batchList, "status": batchStatus, "report": batchReport, "close": batchClose,
	}[args[0]]
	if sub == nil {
		errorf(io, "unknown batch subcommand %q", args[0])
		fprintf(io.err, "%s", batchUsage)
		return exitUsage
	}
	return sub(ctx, args[1:], io)
}

func batchList(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "batch list", "[--json]", "Lists batches, newest first, with their counts.")
	asJSON := f.Bool("json", false, "print a JSON array of batch statuses (the shape of `batch status --json`)")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return f.usageError("unexpected argument %q", pos[0])
	}
	return withApp(ctx, io, 0, func(a *app) int {
		l := newListing(io.out, *asJSON, "BATCH ID\tNAME\tCREATED\tTOTAL\tQUEUED\tRUNNING\tRETRYING\tSUCCEEDED\tDEAD-LETTERED\tFINISHED")
		err := a.Ops.EachBatch(ctx, func(b ops.Batch) error {
			return l.add(b, func() string {
				finished := "-"
				switch {
				case b.FinishedAt != nil:
					finished = stamp(*b.FinishedAt)
				case !b.Closed:
					finished = "(enqueueing)"
				}
				return fmt.Sprintf("%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s", b.ID, display.OneLine(b.Name, 40), stamp(b.CreatedAt),
					b.Total, b.Queued, b.Running, b.Retrying, b.Succeeded, b.DeadLettered, finished)
			})
		})
		l.end()
		if err != nil {
			return fail(io, err)
		}
		return exitOK
	})
}

// watchInterval is how often `batch status --watch` reads the counters;
// without a terminal it prints a line at most every plainEvery (when the
// counts changed; every minute when not), and one at the end.
const (
	watchInterval = time.Second
	plainEvery    = 5 * time.Second
)

func batchClose(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "batch close", "BATCH_ID",
		`Closes a batch whose "enqueue --file" run stopped before it could (Redis
failed, the process was killed): its total becomes final, and it is finished
once every job it holds has an outcome. An open batch never finishes. Closing
a closed batch changes nothing; a later run of the same file is a new batch.`)
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return f.usageError("need exactly one BATCH_ID")
	}
	return withApp(ctx, io, 0, func(a *app) int {
		b, err := a.Ops.CloseBatch(ctx, pos[0])
		if err != nil {
			return fail(io, err)
		}
		fprintf(io.out, "batch %s closed: %d jobs, %d with an outcome\n", b.ID, b.Total, b.Done())
		return exitOK
	})
}

func batchStatus(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "batch status", "BATCH_ID [--watch] [--json]",
		`Shows a batch's counts: total, queued, running, retrying, succeeded and
dead-lettered (by code), when it was created, started and finished, and an
estimate of the time left from the rate observed so far. The counts are kept
with every job's state, so this costs the same for any size of batch.

--watch shows a progress bar (on stderr, when it is a terminal; otherwise a line
whenever the counts change) until the batch is finished, then prints its status
and exits 0 if nothing was dead-lettered, 1 otherwise.`)
	watch := f.Bool("watch", false, "follow the batch until it is finished; exit 1 if any job was dead-lettered")
	asJSON := f.Bool("json", false, "print the status as JSON")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return f.usageError("need exactly one BATCH_ID")
	}
	return withApp(ctx, io, 0, func(a *app) int {
		b, err := a.Ops.BatchStatus(ctx, pos[0])
		if err != nil {
			return fail(io, err)
		}
		if *watch {
			if b, err = watchBatch(ctx, io, a.Ops, b); err != nil {
				return fail(io, err)
			}
		}
		if *asJSON {
			printJSON(io.out, b.Batch)
		} else {
			printBatch(io, b)
		}
		if *watch && b.DeadLettered > 0 {
			return exitFailed
		}
		return exitOK
	})
}

func printBatch(io stdio, b ops.BatchStatus) {
	fprintf(io.out, "batch %s (%s)\n", b.ID, b.Name)
	fprintf(io.out, "  created        %s\n", stamp(b.CreatedAt))
	fprintf(io.out, "  started        %s\n", stamp(b.StartedAt))
	switch {
	case b.FinishedAt != nil && !b.StartedAt.IsZero():
		fprintf(io.out, "  finished       %s (took %v)\n", stamp(*b.FinishedAt), b.FinishedAt.Sub(b.StartedAt).Round(time.Second))
	case b.FinishedAt != nil:
		fprintf(io.out, "  finished       %s\n", stamp(*b.FinishedAt))
	case !b.Closed:
		fprintf(io.out, "  finished       - (still being enqueued: the total may grow)\n")
	default:
		fprintf(io.out, "  finished       -\n")
	}
	fprintf(io.out, "  total          %d\n", b.Total)
	fprintf(io.out, "  queued         %d\n  running        %d\n  retrying       %d\n  succeeded      %d\n", b.Queued, b.Running, b.Retrying, b.Succeeded)
	fprintf(io.out, "  dead-lettered  %d%s\n", b.DeadLettered, display.ByCode(b.Batch))
	var gone []string
	if b.Deleted > 0 {
		gone = append(gone, fmt.Sprintf("%d deleted from the dead-letter store", b.Deleted))
	}
	if b.Relaunched > 0 {
		gone = append(gone, fmt.Sprintf("%d relaunched with --force in a later run", b.Relaunched))
	}
	if len(gone) > 0 {
		fprintf(io.out, "  left           %s (not in the total)\n", strings.Join(gone, ", "))
	}
	fprintf(io.out, "  progress       %s\n", progressLine(b))
}

// progressLine is "275 of 300 done (91.7%), 4.2 jobs/s, about 6s left".
func progressLine(b ops.BatchStatus) string {
	pct := 100.0
	if b.Total > 0 {
		pct = float64(b.Done()) * 100 / float64(b.Total)
	}
	s := fmt.Sprintf("%d of %d done (%.1f%%)", b.Done(), b.Total, pct)
	if b.Rate > 0 {
		s += fmt.Sprintf(", %.1f jobs/s", b.Rate)
	}
	switch left, ok := b.TimeLeft(); {
	case b.FinishedAt != nil:
		s += ", finished"
	case b.Queued == 0 && b.Running == 0 && b.Retrying > 0:
		// The pace says nothing about jobs waiting out their backoff.
		s += fmt.Sprintf(", %d waiting to retry", b.Retrying)
	case ok:
		s += fmt.Sprintf(", about %v left", left)
	case b.StartedAt.IsZero():
		s += ", not started yet"
	}
	return s
}

// watchBatch follows b until it is finished and returns its last status:
// a progress bar on a terminal, else a line when the counts change.
func watchBatch(ctx context.Context, io stdio, c *ops.Client, b ops.BatchStatus) (ops.BatchStatus, error) {
	var bar *progressbar.ProgressBar
	if isTerminal(io.err) {
		bar = progressbar.NewOptions64(max(b.Total, 1),
			progressbar.OptionSetWriter(io.err),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionFullWidth(),
			progressbar.OptionOnCompletion(func() { fprintf(io.err, "\n") }),
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
		line := fmt.Sprintf("queued %d, running %d, retrying %d, succeeded %d, dead-lettered %d%s",
			b.Queued, b.Running, b.Retrying, b.Succeeded, b.DeadLettered, display.ByCode(b.Batch))
		if (line != last && now.Sub(lastAt) >= plainEvery) || now.Sub(lastAt) >= time.Minute || b.Finished() {
			fprintf(io.err, "%s %s: %s; %s\n", now.UTC().Format(time.RFC3339), b.ID, line, progressLine(b))
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

func batchReport(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "batch report", "BATCH_ID [--format csv|jsonl] [--failed]",
		`Writes one row per job of the batch, in the order they were enqueued: job_id,
agent_no, outcome (succeeded, dead_lettered, or queued, running, retrying while
the batch runs), code and message (the last answer), agent_launch_id and
attempts. CSV has a header row; JSONL is one object per line.

--failed writes only the dead letters, as JSONL jobs (with their IDs) that
"rcslaunch enqueue --file" accepts: enqueued again, they are reported as
dead-lettered until "rcslaunch dlq delete" drops them (or use "dlq retry").`)
	format := f.String("format", "csv", "csv or jsonl")
	failed := f.Bool("failed", false, "only the dead letters, as jobs to enqueue again (JSONL)")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return f.usageError("need exactly one BATCH_ID")
	}
	formatSet := false
	f.Visit(func(fl *flag.Flag) { formatSet = formatSet || fl.Name == "format" })
	switch {
	case *format != "csv" && *format != "jsonl":
		return f.usageError("--format must be csv or jsonl, got %q", *format)
	case *failed && formatSet && *format != "jsonl":
		return f.usageError("--failed writes jobs as JSONL, the form enqueue --file reads; leave out --format csv")
	}
	form := ops.ReportCSV
	switch {
	case *failed:
		form = ops.ReportFailedJobs
	case *format == "jsonl":
		form = ops.ReportJSONL
	}
	return withApp(ctx, io, 0, func(a *app) int {
		if err := a.Ops.WriteBatchReport(ctx, pos[0], form, io.out); err != nil {
			return fail(io, err)
		}
		return exitOK
	})
}
