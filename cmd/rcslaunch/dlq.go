package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/display"
	"github.com/rcslaunch/rcslaunch/internal/jobfile"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/launch"
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
func filterFlags(f *flags, withSince bool) func() (store.Filter, error) {
	code := f.String("code", "", "only dead letters whose last code is `CODE` (e.g. RCS904, TIMEOUT)")
	var since *time.Duration
	if withSince {
		since = f.Duration("since", 0, "only dead letters from the last `DUR` (e.g. 24h)")
	}
	return func() (store.Filter, error) {
		flt := store.Filter{Code: *code}
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
		var tw *tabwriter.Writer
		first := true
		if *asJSON {
			fprintf(io.out, "[")
		} else {
			tw = tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
			fprintf(tw, "DEAD-LETTERED AT\tJOB ID\tAGENT\tCODE\tATTEMPTS\tMESSAGE\n")
		}
		err := a.store.EachDeadLetter(ctx, flt, func(r store.Record) error {
			if *asJSON {
				if !first {
					fprintf(io.out, ",")
				}
				b, err := json.Marshal(r)
				if err != nil {
					return err
				}
				fprintf(io.out, "\n  %s", b)
			} else {
				msg := r.Message
				if r.Uncertain {
					msg = "[uncertain] " + msg
				}
				fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", stamp(r.FinishedAt), r.ID, r.AgentNo, r.Code, r.Attempts, display.OneLine(msg, 100))
			}
			first = false
			return nil
		})
		if *asJSON {
			if !first {
				fprintf(io.out, "\n")
			}
			fprintf(io.out, "]\n")
		} else {
			tw.Flush()
		}
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
		r, err := a.store.Get(ctx, pos[0])
		if errors.Is(err, store.ErrNotFound) {
			return fail(io, fmt.Errorf("no dead letter with ID %q", pos[0]))
		}
		if err != nil {
			return fail(io, err)
		}
		if r.State != store.StateDeadLettered {
			return fail(io, fmt.Errorf("job %s is not dead-lettered (state: %s); see `rcslaunch status %s`", r.ID, r.State, r.ID))
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

// selection is the dead letters an operator names: IDs, --all or --code.
type selection struct {
	ids  []string
	all  bool
	code string
}

func selectionFlags(f *flags) (all *bool, code *string) {
	return f.Bool("all", false, "every dead letter"), f.String("code", "", "every dead letter whose last code is `CODE`")
}

func (f *flags) selection(pos []string, all bool, code string) (selection, bool) {
	n := 0
	for _, given := range []bool{len(pos) > 0, all, code != ""} {
		if given {
			n++
		}
	}
	if n != 1 {
		return selection{}, false
	}
	return selection{ids: pos, all: all, code: code}, true
}

// each calls fn for every selected job ID; named IDs are passed as given.
func (s selection) each(ctx context.Context, st *store.Store, fn func(id string) error) error {
	if len(s.ids) > 0 {
		for _, id := range s.ids {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(id); err != nil {
				return err
			}
		}
		return nil
	}
	return st.EachDeadLetter(ctx, store.Filter{Code: s.code}, func(r store.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(r.ID)
	})
}

func (s selection) total(ctx context.Context, st *store.Store) int64 {
	if len(s.ids) > 0 {
		return int64(len(s.ids))
	}
	n, err := st.CountDeadLetters(ctx, store.Filter{Code: s.code})
	if err != nil {
		return -1
	}
	return n
}

// tally counts what happened to each selected dead letter.
type tally struct {
	counts map[string]int
	order  []string
}

func (t *tally) add(what string) {
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	if t.counts[what] == 0 {
		t.order = append(t.order, what)
	}
	t.counts[what]++
}

func (t *tally) String() string {
	if len(t.order) == 0 {
		return "nothing selected"
	}
	s := ""
	for i, k := range t.order {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", k, t.counts[k])
	}
	return s
}

func dlqRetry(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "dlq retry", "(JOB_ID... | --all | --code CODE) [--include-uncertain]",
		`Puts dead letters back on the launch queue with a fresh attempt budget; each is
removed from the dead-letter store only once it is safely enqueued. Dead letters
marked uncertain (the agent may have been launched) are left alone unless
--include-uncertain.`)
	all, codeFlag := selectionFlags(f)
	uncertain := f.Bool("include-uncertain", false, "retry uncertain dead letters too")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	sel, ok := f.selection(pos, *all, *codeFlag)
	if !ok {
		return f.usageError("name dead letters by JOB_ID..., --all or --code CODE (exactly one of them)")
	}
	return withApp(ctx, io, 0, func(a *app) int {
		return a.walk(ctx, io, sel, "retrying", func(id string) (string, error) {
			res, err := a.producer.RetryDeadLetter(ctx, id, *uncertain)
			switch {
			case errors.Is(err, store.ErrNotFound):
				return "not found", nil
			case err != nil:
				return "", err
			case res == queue.Retried:
				return "retried", nil
			case res == store.Uncertain:
				return "skipped as uncertain", nil
			}
			return "not dead-lettered (" + res + ")", nil
		}, func(what string) bool { return what == "retried" || what == "skipped as uncertain" })
	})
}

func dlqDelete(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "dlq delete", "(JOB_ID... | --all | --code CODE)",
		"Drops dead letters and their records; a job dropped this way can be enqueued anew.")
	all, codeFlag := selectionFlags(f)
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	sel, ok := f.selection(pos, *all, *codeFlag)
	if !ok {
		return f.usageError("name dead letters by JOB_ID..., --all or --code CODE (exactly one of them)")
	}
	return withApp(ctx, io, 0, func(a *app) int {
		return a.walk(ctx, io, sel, "deleting", func(id string) (string, error) {
			res, err := a.store.DeleteDeadLetter(ctx, id)
			switch {
			case errors.Is(err, store.ErrNotFound):
				return "not found", nil
			case err != nil:
				return "", err
			case res == store.Deleted:
				return "deleted", nil
			}
			return "not dead-lettered (" + res + ")", nil
		}, func(what string) bool { return what == "deleted" })
	})
}

// walk applies op to every selected dead letter with a progress bar, prints
// the tally, and fails when any outcome is not good (or op errs).
func (a *app) walk(ctx context.Context, io stdio, sel selection, verb string, op func(id string) (string, error), good func(string) bool) int {
	bar := progressBar(io, sel.total(ctx, a.store), verb)
	var t tally
	err := sel.each(ctx, a.store, func(id string) error {
		what, err := op(id)
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		if len(sel.ids) > 0 && !good(what) {
			errorf(io, "%s: %s", id, what)
		}
		t.add(what)
		_ = bar.Add(1)
		return nil
	})
	_ = bar.Finish()
	fprintf(io.out, "%s\n", t.String())
	if err != nil {
		return fail(io, fmt.Errorf("stopped: %w", err))
	}
	for what := range t.counts {
		if !good(what) {
			return exitFailed
		}
	}
	return exitOK
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
		err := a.store.EachDeadLetter(ctx, flt, func(r store.Record) error {
			var j launch.Job
			if err := json.Unmarshal(r.Payload, &j); err != nil {
				return fmt.Errorf("dead letter %s: stored payload: %w", r.ID, err)
			}
			j.ID = r.ID
			return jobfile.Write(io.out, j)
		})
		if err != nil {
			return fail(io, err)
		}
		return exitOK
	})
}
