package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func streams() (Stdio, *bytes.Buffer, *bytes.Buffer) {
	var out, errw bytes.Buffer
	return Stdio{In: strings.NewReader(""), Out: &out, Err: &errw}, &out, &errw
}

func TestParseArgsTakesFlagsAfterPositionals(t *testing.T) {
	io, _, _ := streams()
	f := NewFlags(io, "status", "JOB_ID [--json]", "Shows a job.")
	asJSON := f.Bool("json", false, "")
	pos, _, ok := f.ParseArgs([]string{"job-1", "--json", "--", "--not-a-flag"})
	if !ok || !*asJSON || len(pos) != 2 || pos[0] != "job-1" || pos[1] != "--not-a-flag" {
		t.Fatalf("ParseArgs: %v %v json=%v", pos, ok, *asJSON)
	}
}

func TestParseOneAndNone(t *testing.T) {
	io, out, errw := streams()
	f := NewFlags(io, "status", "JOB_ID", "Shows a job.")
	if id, _, ok := f.ParseOne([]string{"job-1"}, "JOB_ID"); !ok || id != "job-1" {
		t.Errorf("ParseOne of one: %q %v", id, ok)
	}
	f = NewFlags(io, "status", "JOB_ID", "Shows a job.")
	if _, code, ok := f.ParseOne(nil, "JOB_ID"); ok || code != ExitUsage || !strings.Contains(errw.String(), "need exactly one JOB_ID") {
		t.Errorf("ParseOne of none: %d %v %q", code, ok, errw.String())
	}
	errw.Reset()
	f = NewFlags(io, "results", "", "Reads results.")
	if code, ok := f.ParseNone([]string{"extra"}); ok || code != ExitUsage || !strings.Contains(errw.String(), `unexpected argument "extra"`) {
		t.Errorf("ParseNone with an argument: %d %v %q", code, ok, errw.String())
	}
	f = NewFlags(io, "results", "", "Reads results.")
	if code, ok := f.ParseNone([]string{"--help"}); ok || code != ExitOK || !strings.Contains(out.String(), "Usage: rcslaunch results") {
		t.Errorf("--help: %d %v %q", code, ok, out.String())
	}
}

func TestGroup(t *testing.T) {
	g := Group{Name: "dlq", Usage: "Usage: rcslaunch dlq SUBCOMMAND\n", Subs: map[string]Func{
		"list": func(_ context.Context, args []string, io Stdio) int {
			io.Out.Write([]byte(strings.Join(args, ",")))
			return ExitOK
		},
	}}
	io, out, errw := streams()
	if code := g.Run(context.Background(), []string{"list", "a", "b"}, io); code != ExitOK || out.String() != "a,b" {
		t.Errorf("list: %d %q", code, out.String())
	}
	if code := g.Run(context.Background(), []string{"nope"}, io); code != ExitUsage || !strings.Contains(errw.String(), `unknown dlq subcommand "nope"`) {
		t.Errorf("unknown: %d %q", code, errw.String())
	}
	if code := g.Run(context.Background(), nil, io); code != ExitUsage {
		t.Errorf("none: %d", code)
	}
}

func TestListing(t *testing.T) {
	var b bytes.Buffer
	l := NewListing(&b, true, "")
	_ = l.Add(map[string]int{"a": 1}, nil)
	_ = l.Add(map[string]int{"a": 2}, nil)
	l.End()
	if got := b.String(); got != "[\n  {\"a\":1},\n  {\"a\":2}\n]\n" {
		t.Errorf("JSON listing: %q", got)
	}
	b.Reset()
	l = NewListing(&b, false, "A\tBB")
	_ = l.Add(nil, func() string { return "xyz\t1" })
	l.End()
	if got := b.String(); got != "A    BB\nxyz  1\n" {
		t.Errorf("table listing: %q", got)
	}
	b.Reset()
	NewListing(&b, true, "").End()
	if b.String() != "[]\n" {
		t.Errorf("empty JSON listing: %q", b.String())
	}
}

// tty is a stream that says it is a terminal.
type tty struct{ *strings.Reader }

func (tty) IsTerminal() bool { return true }

func TestIsTerminalSeam(t *testing.T) {
	if IsTerminal(strings.NewReader("")) || !IsTerminal(tty{strings.NewReader("")}) {
		t.Error("IsTerminal: a plain reader is no terminal; a Terminal that says so is one")
	}
}

func TestRateFlag(t *testing.T) {
	for _, c := range []struct {
		arg string
		ok  bool
	}{{"2.5", true}, {"1000", true}, {"0", false}, {"-1", false}, {"NaN", false}, {"+Inf", false}, {"fast", false}} {
		var p positiveFloat
		if err := p.Set(c.arg); (err == nil) != c.ok {
			t.Errorf("--rate %s: %v, want ok %v", c.arg, err, c.ok)
		}
	}
}

func TestBulkFlagsRefuseWithoutTerminal(t *testing.T) {
	io, _, errw := streams()
	f := NewFlags(io, "dlq delete", "", "")
	b := NewBulkFlags(f, "delete", "deleting", true)
	if code, ok := b.Parse([]string{"--code", "rcs904"}); ok || code != ExitUsage || !strings.Contains(errw.String(), "pass --yes") {
		t.Errorf("--code off a terminal: %d %v %q", code, ok, errw.String())
	}
	for _, args := range [][]string{{"--all", "--yes"}, {"--all", "--dry-run"}, {"job-1"}} {
		f := NewFlags(io, "dlq delete", "", "")
		b := NewBulkFlags(f, "delete", "deleting", true)
		if _, ok := b.Parse(args); !ok {
			t.Errorf("%v off a terminal: refused", args)
		}
	}
	f = NewFlags(Stdio{In: tty{strings.NewReader("")}, Out: io.Out, Err: io.Err}, "dlq delete", "", "")
	b = NewBulkFlags(f, "delete", "deleting", true)
	if _, ok := b.Parse([]string{"--all", "--rate", "5"}); !ok || !b.mustAsk() || b.Opts.Rate != 5 {
		t.Errorf("--all at a terminal: ok %v, asks %v, rate %v", ok, b.mustAsk(), b.Opts.Rate)
	}
}
