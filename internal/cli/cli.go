// Package cli is the plumbing of rcslaunch's command line, apart from what
// any command does: standard streams and exit statuses, flag sets that take
// flags after positional arguments, groups of subcommands, listings that
// print as a table or as JSON, and progress bars. cmd/rcslaunch wires its
// commands with it.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Exit statuses, as the README documents them.
const (
	ExitOK     = 0 // success
	ExitFailed = 1 // the command ran but something failed (invalid rows, unknown job, …)
	ExitUsage  = 2 // usage error
)

// Stdio is a command's standard streams, so tests can run commands in-process.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// Func runs a command with its arguments and returns its exit status.
type Func func(ctx context.Context, args []string, io Stdio) int

// Group is a command made of subcommands ("dlq list", "batch status").
type Group struct {
	// Name is the command's ("dlq"), for errors.
	Name string
	// Usage is printed for "--help", a missing or an unknown subcommand.
	Usage string
	Subs  map[string]Func
}

// Run runs the subcommand args[0] names.
func (g Group) Run(ctx context.Context, args []string, io Stdio) int {
	if len(args) == 0 {
		fmt.Fprint(io.Err, g.Usage)
		return ExitUsage
	}
	if IsHelp(args[0]) {
		fmt.Fprint(io.Out, g.Usage)
		return ExitOK
	}
	sub := g.Subs[args[0]]
	if sub == nil {
		Errorf(io, "unknown %s subcommand %q", g.Name, args[0])
		fmt.Fprint(io.Err, g.Usage)
		return ExitUsage
	}
	return sub(ctx, args[1:], io)
}

// IsHelp reports whether a is a request for help.
func IsHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" }

// Errorf prints "rcslaunch: message" on stderr.
func Errorf(io Stdio, format string, args ...any) {
	fmt.Fprintf(io.Err, "rcslaunch: "+format+"\n", args...)
}

// Fail reports err and returns ExitFailed.
func Fail(io Stdio, err error) int {
	Errorf(io, "%v", err)
	return ExitFailed
}

// PrintJSON writes v as indented JSON.
func PrintJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Terminal is a stream that says whether it is a terminal. It is the one
// seam for "is a terminal": tests hand a command a Stdio.In that is one to
// stand for an operator at the keyboard.
type Terminal interface{ IsTerminal() bool }

// IsTerminal reports whether the stream s is a terminal (for progress bars,
// colour, and asking the operator).
func IsTerminal(s any) bool {
	if t, ok := s.(Terminal); ok {
		return t.IsTerminal()
	}
	f, ok := s.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Flags is a subcommand's flag set, with its usage line.
type Flags struct {
	*flag.FlagSet
	io Stdio
}

// NewFlags returns the flag set of "rcslaunch NAME SYNOPSIS", whose help
// says about.
func NewFlags(io Stdio, name, synopsis, about string) *Flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Err)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: rcslaunch %s %s\n\n%s\n", name, synopsis, about)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(fs.Output(), "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return &Flags{FlagSet: fs, io: io}
}

// Stdio is the streams the flag set reports to.
func (f *Flags) Stdio() Stdio { return f.io }

// ParseArgs parses args, allowing flags after positional arguments
// ("status JOB_ID --json"), and returns the positional ones. ok is false
// when the command should exit with code (help or a usage error).
func (f *Flags) ParseArgs(args []string) (pos []string, code int, ok bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if IsHelp(a) { // asked for: help goes to stdout
			f.SetOutput(f.io.Out)
			f.Usage()
			return nil, ExitOK, false
		}
	}
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, ExitOK, false
			}
			return nil, ExitUsage, false
		}
		args = f.Args()
		if len(args) == 0 {
			return pos, 0, true
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), 0, true
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// ParseNone is ParseArgs for a command that takes no positional argument.
func (f *Flags) ParseNone(args []string) (code int, ok bool) {
	pos, code, ok := f.ParseArgs(args)
	if ok && len(pos) > 0 {
		return f.UsageError("unexpected argument %q", pos[0]), false
	}
	return code, ok
}

// ParseOne is ParseArgs for a command that takes exactly one positional
// argument, named what ("JOB_ID") in the usage error.
func (f *Flags) ParseOne(args []string, what string) (arg string, code int, ok bool) {
	pos, code, ok := f.ParseArgs(args)
	if ok && len(pos) != 1 {
		return "", f.UsageError("need exactly one %s", what), false
	}
	if !ok {
		return "", code, false
	}
	return pos[0], code, true
}

// UsageError reports a usage problem and returns ExitUsage.
func (f *Flags) UsageError(format string, args ...any) int {
	Errorf(f.io, format, args...)
	f.Usage()
	return ExitUsage
}

// Listing writes a list as it is read: a JSON array with one element a line,
// or a table with a header row.
type Listing struct {
	w      io.Writer
	asJSON bool
	tw     *tabwriter.Writer
	n      int
}

// NewListing starts a list; header is the table's tab-separated header.
func NewListing(w io.Writer, asJSON bool, header string) *Listing {
	l := &Listing{w: w, asJSON: asJSON}
	if asJSON {
		fmt.Fprint(w, "[")
	} else {
		l.tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(l.tw, "%s\n", header)
	}
	return l
}

// Add writes one item: v as JSON, or row() as a tab-separated table row.
func (l *Listing) Add(v any, row func() string) error {
	if !l.asJSON {
		fmt.Fprintf(l.tw, "%s\n", row())
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if l.n > 0 {
		fmt.Fprint(l.w, ",")
	}
	fmt.Fprintf(l.w, "\n  %s", b)
	l.n++
	return nil
}

// End closes the array or flushes the table.
func (l *Listing) End() {
	if !l.asJSON {
		l.tw.Flush()
		return
	}
	if l.n > 0 {
		fmt.Fprint(l.w, "\n")
	}
	fmt.Fprint(l.w, "]\n")
}

// ProgressBar shows progress on stderr when it is a terminal, and nothing
// otherwise; total -1 means unknown.
func ProgressBar(io Stdio, total int64, desc string) *progressbar.ProgressBar {
	if !IsTerminal(io.Err) {
		return progressbar.DefaultSilent(total)
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(io.Err),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprint(io.Err, "\n") }),
	)
}

// PhaseBar shows a long operation that runs in phases (validating, then
// enqueueing) as one progress bar per phase, on a terminal.
type PhaseBar struct {
	io    Stdio
	bar   *progressbar.ProgressBar
	phase string
}

// NewPhaseBar returns a PhaseBar on io's stderr; Finish it when done.
func NewPhaseBar(io Stdio) *PhaseBar { return &PhaseBar{io: io} }

// Set moves the bar of phase to done of total (-1: unknown), starting a new
// bar when the phase changes.
func (p *PhaseBar) Set(phase string, done, total int64) {
	if p.bar == nil || p.phase != phase {
		p.Finish()
		p.bar, p.phase = ProgressBar(p.io, total, phase), phase
	}
	_ = p.bar.Set64(done)
}

// Finish ends the current bar.
func (p *PhaseBar) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
