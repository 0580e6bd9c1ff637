package csvsafe

import (
	"encoding/csv"
	"slices"
	"strings"
	"testing"
)

func TestCell(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		"48000":           "48000",
		"+15550001":       "'+15550001",
		"=1+2":            "'=1+2",
		"-2":              "'-2",
		"@SUM(A1)":        "'@SUM(A1)",
		"\tx":             "'\tx",
		"\rx":             "'\rx",
		"'=already":       "'=already",
		" =1":             " =1",
		"RCS904":          "RCS904",
		"ok = fine + -@ ": "ok = fine + -@ ",
	} {
		if got := Cell(in); got != want {
			t.Errorf("Cell(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWriter: every cell of every row goes through Cell, and a CSV reader
// reads the rows back as Cell made them.
func TestWriter(t *testing.T) {
	rows := [][]string{
		{"job_id", "agent_no", "message"},
		{"=j", "+15550001", `=HYPERLINK("http://evil.example","x")`},
		{"j2", "@1", "-1, with a comma"},
		{"\tj3", "48000", "\rcr"},
	}
	var out strings.Builder
	w := NewWriter(&out)
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(strings.NewReader(out.String())).ReadAll()
	if err != nil || len(got) != len(rows) {
		t.Fatalf("read back (%v):\n%s", err, out.String())
	}
	for i, r := range rows {
		want := make([]string, len(r))
		for j, c := range r {
			want[j] = Cell(c)
		}
		if !slices.Equal(got[i], want) {
			t.Errorf("row %d: %q, want %q", i, got[i], want)
		}
	}
}

// FuzzCell: no cell starts with a formula character, and the original is
// the cell less its one added quote.
func FuzzCell(f *testing.F) {
	for _, s := range []string{"", "48000", "+15550001", "=1+2", "-", "@", "\t", "\r", "'", "'=x", "é=", "\x00="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Cell(s)
		if c != "" && strings.ContainsRune(formulaStarts, rune(c[0])) {
			t.Fatalf("Cell(%q) = %q starts with a formula character", s, c)
		}
		switch {
		case c == s:
			if s != "" && strings.IndexByte(formulaStarts, s[0]) >= 0 {
				t.Fatalf("Cell(%q) left it as it is", s)
			}
		case c != "'"+s:
			t.Fatalf("Cell(%q) = %q: not the original with one quote in front", s, c)
		}
	})
}
