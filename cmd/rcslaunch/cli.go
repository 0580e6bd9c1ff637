package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/conn"
)

// flags is a subcommand's flag set, with its usage line.
type flags struct {
	*flag.FlagSet
	io stdio
}

func newFlags(io stdio, name, synopsis, about string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.err)
	fs.Usage = func() {
		fprintf(fs.Output(), "Usage: rcslaunch %s %s\n\n%s\n", name, synopsis, about)
		if hasFlags(fs) {
			fprintf(fs.Output(), "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return &flags{FlagSet: fs, io: io}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parse parses args, allowing flags after positional arguments
// ("status JOB_ID --json"), and returns the positional ones. ok is false
// when the command should exit with code (help or a usage error).
func (f *flags) parse(args []string) (pos []string, code int, ok bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if isHelp(a) { // asked for: help goes to stdout
			f.SetOutput(f.io.out)
			f.Usage()
			return nil, exitOK, false
		}
	}
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
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

// usageError reports a usage problem and returns exitUsage.
func (f *flags) usageError(format string, args ...any) int {
	errorf(f.io, format, args...)
	f.Usage()
	return exitUsage
}

func fprintf(w io.Writer, format string, args ...any) { fmt.Fprintf(w, format, args...) }

// errorf prints "rcslaunch: message" on stderr.
func errorf(io stdio, format string, args ...any) {
	fprintf(io.err, "rcslaunch: "+format+"\n", args...)
}

// fail reports err and returns exitFailed.
func fail(io stdio, err error) int {
	errorf(io, "%v", err)
	return exitFailed
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// newLogger builds the process logger from LOG_LEVEL and LOG_FORMAT.
func newLogger(c config.Config, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(strings.ToLower(c.LogLevel))
	if err != nil {
		level = zerolog.InfoLevel
	}
	if c.LogFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, NoColor: !isTerminal(w)}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// app is what most commands need: configuration and the operations layer
// on the shared Redis.
type app struct {
	cfg config.Config
	*conn.Conn
}

// open loads the configuration (with need) and connects to Redis.
func open(ctx context.Context, need config.Need) (*app, error) {
	cfg, err := config.Load(need)
	if err != nil {
		return nil, err
	}
	return openWith(ctx, cfg)
}

func openWith(ctx context.Context, cfg config.Config) (*app, error) {
	c, err := conn.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &app{cfg: cfg, Conn: c}, nil
}

// withApp runs fn with an open app, reporting a failure to open as exitFailed.
func withApp(ctx context.Context, io stdio, need config.Need, fn func(*app) int) int {
	a, err := open(ctx, need)
	if err != nil {
		return fail(io, err)
	}
	defer a.Close()
	return fn(a)
}

// listing writes a list as it is read: a JSON array with one element a line,
// or a table with a header row.
type listing struct {
	w      io.Writer
	asJSON bool
	tw     *tabwriter.Writer
	n      int
}

// newListing starts a list; header is the table's tab-separated header.
func newListing(w io.Writer, asJSON bool, header string) *listing {
	l := &listing{w: w, asJSON: asJSON}
	if asJSON {
		fprintf(w, "[")
	} else {
		l.tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fprintf(l.tw, "%s\n", header)
	}
	return l
}

// add writes one item: v as JSON, or row() as a tab-separated table row.
func (l *listing) add(v any, row func() string) error {
	if !l.asJSON {
		fprintf(l.tw, "%s\n", row())
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if l.n > 0 {
		fprintf(l.w, ",")
	}
	fprintf(l.w, "\n  %s", b)
	l.n++
	return nil
}

// end closes the array or flushes the table.
func (l *listing) end() {
	if !l.asJSON {
		l.tw.Flush()
		return
	}
	if l.n > 0 {
		fprintf(l.w, "\n")
	}
	fprintf(l.w, "]\n")
}
