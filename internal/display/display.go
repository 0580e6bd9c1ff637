// Package display renders the store's records as the human-readable lines
// that more than one command prints (results, batch status, the demo), so
// that each looks the same wherever it appears.
package display

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rcslaunch/rcslaunch/internal/store"
)

// OneLine shortens s to n characters on one line, for tables.
func OneLine(s string, n int) string {
	r := []rune(s)
	for i, c := range r {
		if c == '\n' || c == '\r' || c == '\t' {
			r[i] = ' '
		}
	}
	if len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return string(r)
}

// Result is one finished job as a line (without the newline).
func Result(r store.Result) string {
	if r.Outcome == string(store.StateSucceeded) {
		return fmt.Sprintf("%s  succeeded      job %s  agent %s  %s  agent_launch_id %s  attempts %d",
			r.FinishedAt, r.JobID, r.AgentNo, r.Code, r.AgentLaunchID, r.Attempts)
	}
	extra := ""
	if r.Uncertain {
		extra = "  [uncertain]"
	}
	return fmt.Sprintf("%s  dead-lettered  job %s  agent %s  %s: %s  attempts %d%s",
		r.FinishedAt, r.JobID, r.AgentNo, r.Code, OneLine(r.Message, 120), r.Attempts, extra)
}

// ByCode is a batch's dead letters by code, " (RCS502 3, RCS904 1)", most
// frequent first, or "" when it has none.
func ByCode(b store.Batch) string {
	if len(b.DeadLetteredByCode) == 0 {
		return ""
	}
	codes := make([]string, 0, len(b.DeadLetteredByCode))
	for c := range b.DeadLetteredByCode {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool {
		ci, cj := b.DeadLetteredByCode[codes[i]], b.DeadLetteredByCode[codes[j]]
		return ci > cj || (ci == cj && codes[i] < codes[j])
	})
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s %d", c, b.DeadLetteredByCode[c])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
