package cli

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/rcslaunch/rcslaunch/internal/display"
	"github.com/rcslaunch/rcslaunch/ops"
)

// BulkOp is a bulk dead-letter operation of an ops.Client
// (RetryDeadLetters, DeleteDeadLetters).
type BulkOp func(context.Context, ops.Selection, *ops.BulkOpts) (ops.Tally, error)

// BulkFlags are the flags of a bulk dead-letter command (dlq retry, dlq
// delete): which letters (JOB_ID..., --all, or --code and --sid), --dry-run,
// --rate, and for a command that destroys, --yes. Parse them, adjust Opts,
// then Run.
type BulkFlags struct {
	f           *Flags
	verb, doing string // "delete", "deleting"
	destroys    bool
	all, dryRun *bool
	yes         *bool // nil unless destroys
	code, sid   *string
	rate        positiveFloat
	sel         ops.Selection
	// Opts are the options Run passes on; the command may add its own.
	Opts ops.BulkOpts
}

// NewBulkFlags adds the bulk flags to f, for a command that does verb
// ("retry"), doing being its progress bar's label ("retrying"). When it
// destroys, --all, --code and --sid need --yes or the operator's
// confirmation.
func NewBulkFlags(f *Flags, verb, doing string, destroys bool) *BulkFlags {
	b := &BulkFlags{f: f, verb: verb, doing: doing, destroys: destroys}
	b.all = f.Bool("all", false, "every dead letter")
	b.code = f.String("code", "", "every dead letter whose last code is `CODE` (in any case)")
	b.sid = f.String("sid", "", "every dead letter of the account `SID` (with --code, of that code)")
	b.dryRun = f.Bool("dry-run", false, "list what would be "+verb+"d, and change nothing")
	f.Var(&b.rate, "rate", "at most `N` dead letters a second (default: as fast as Redis allows)")
	if destroys {
		b.yes = f.Bool("yes", false, "with --all or --code: do not ask for confirmation")
	}
	return b
}

// Parse parses args. ok is false when the command should exit with code:
// help, a usage error, or --all/--code/--sid of a destroying command
// without --yes when stdin is no terminal to ask on.
func (b *BulkFlags) Parse(args []string) (code int, ok bool) {
	pos, code, ok := b.f.ParseArgs(args)
	if !ok {
		return code, false
	}
	b.sel = ops.Selection{IDs: pos, All: *b.all, Code: *b.code, SID: *b.sid}
	if b.sel.Check() != nil {
		return b.f.UsageError("name dead letters by JOB_ID..., --all, or --code CODE and/or --sid SID (exactly one of these ways)"), false
	}
	b.Opts.Rate, b.Opts.DryRun = float64(b.rate), *b.dryRun
	if b.mustAsk() && !IsTerminal(b.f.io.In) {
		return b.f.UsageError("%s --all, --code or --sid asks for confirmation, and stdin is not a terminal: pass --yes to %s without asking (or --dry-run to list what would go)",
			b.f.Name(), b.verb), false
	}
	return 0, true
}

// mustAsk reports whether the operator must confirm before the run.
func (b *BulkFlags) mustAsk() bool {
	return b.destroys && !*b.yes && !*b.dryRun && len(b.sel.IDs) == 0
}

// Run runs op on the selection of c's dead letters, first asking the
// operator to confirm when needed. It shows progress (in a dry run, a table
// of the letters it would act on), reports each named job not acted on,
// prints the tally, and returns ExitFailed when any job was not acted on or
// the run stopped.
func (b *BulkFlags) Run(ctx context.Context, c *ops.Client, op BulkOp) int {
	io := b.f.io
	total, err := c.CountSelected(ctx, b.sel)
	if b.mustAsk() {
		if err != nil {
			return Fail(io, err)
		}
		if err := b.confirm(ctx, total); err != nil {
			return Fail(io, err)
		}
	}
	if err != nil || b.Opts.DryRun {
		total = -1
	}
	var list *Listing
	if b.Opts.DryRun {
		list = NewListing(io.Out, false, display.DeadLetterHeader)
	}
	bar := ProgressBar(io, total, b.doing)
	allOK, opts := true, b.Opts
	opts.OnEach = func(r ops.DeadLetterResult) {
		if !r.OK() {
			allOK = false
			if len(b.sel.IDs) > 0 {
				Errorf(io, "%s: %s", r.JobID, r.Describe())
			}
		}
		if r.Letter != nil {
			_ = list.Add(r.Letter, func() string { return display.DeadLetterRow(*r.Letter) })
		}
		_ = bar.Add(1)
	}
	t, err := op(ctx, b.sel, &opts)
	_ = bar.Finish()
	if list != nil {
		list.End()
		fmt.Fprintf(io.Out, "dry run (nothing changed): ")
	}
	fmt.Fprintf(io.Out, "%s\n", t.String())
	if err != nil {
		return Fail(io, err)
	}
	if !allOK {
		return ExitFailed
	}
	return ExitOK
}

// confirm asks the operator to type n, the number of dead letters that
// would go; anything else, or ctx ending (Ctrl-C), is an error that aborts.
func (b *BulkFlags) confirm(ctx context.Context, n int64) error {
	if n == 0 {
		return nil // nothing would go: nothing to confirm
	}
	which := fmt.Sprintf("all %d dead letters", n)
	if !b.sel.All {
		which = fmt.Sprintf("the %d dead letters%s", n, display.Escape(b.sel.Describe()))
	}
	io := b.f.io
	fmt.Fprintf(io.Err, "This will %s %s, and their records; it cannot be undone.\nType %d to go ahead: ", b.verb, which, n)
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(io.In).ReadString('\n')
		answer <- strings.TrimSpace(line)
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(io.Err)
		return fmt.Errorf("aborted (%v); nothing was %sd", ctx.Err(), b.verb)
	case got := <-answer:
		if got != strconv.FormatInt(n, 10) {
			return fmt.Errorf("aborted: typed %q, not %d; nothing was %sd", got, n, b.verb)
		}
	}
	return nil
}

// positiveFloat is a flag that takes a positive, finite number.
type positiveFloat float64

func (p *positiveFloat) String() string {
	if p == nil || *p == 0 {
		return ""
	}
	return strconv.FormatFloat(float64(*p), 'g', -1, 64)
}

func (p *positiveFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0) || math.IsInf(v, 1) {
		return fmt.Errorf("must be a positive number of dead letters a second, got %q", s)
	}
	*p = positiveFloat(v)
	return nil
}
