// Package display renders records, batches and summaries as the human-readable lines
// that more than one command prints (results, batch status, the demo), so
// that each looks the same wherever it appears.
//
// Every text that comes from outside (agent numbers, job and batch IDs,
// batch names, Kaleyra's codes, messages and IDs, whatever a record in
// Redis holds) goes through Escape before it is printed: a control
// character in it would otherwise be acted on by the operator's terminal.
package display

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/ops"
)

// OneLine shortens s to n characters on one line, for tables, escaped
// (Escape) after line breaks and tabs became spaces.
func OneLine(s string, n int) string {
	r := []rune(s)
	for i, c := range r {
		if c == '\n' || c == '\r' || c == '\t' {
			r[i] = ' '
		}
	}
	if len(r) > n {
		return Escape(string(r[:n-1]) + "…")
	}
	return Escape(string(r))
}

// Escape is s as it may be printed on a terminal: every character that a
// terminal acts on instead of showing is written as a Go escape (\n, \x1b,
// \u202e). Those are the C0 controls (ESC starts colour and cursor
// sequences, CR goes back over the line), DEL, the C1 controls (U+009B is
// a one-character ESC [ on some terminals), the bidirectional marks,
// embeddings, overrides and isolates (they reorder the text after them, so
// that what is shown is not what is there), the line and paragraph
// separators, and bytes that are not UTF-8. Printable text, backslashes
// included, is left as it is, so that a message reads as it was written;
// a message that holds a backslash escape as text looks the same as the
// escaped character, which is enough to see that something is odd.
func Escape(s string) string {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if mustEscape(r, n) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case !mustEscape(r, n):
			b.WriteString(s[i : i+n])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError || r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += n
	}
	return b.String()
}

// mustEscape reports whether the rune r, n bytes of a string, is one that
// Escape writes as an escape.
func mustEscape(r rune, n int) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f: // C0, DEL, C1
		return true
	case r == utf8.RuneError && n == 1: // not UTF-8
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	}
	return false
}

// Result is one entry of the results stream as a line (without the
// newline): a finished job, or a followed launch's change of state.
func Result(r store.Result) string {
	at, job, agent := Escape(r.FinishedAt), Escape(r.JobID), Escape(r.AgentNo)
	switch r.Outcome {
	case string(store.StateSucceeded):
		s := fmt.Sprintf("%s  succeeded      job %s  agent %s  %s  agent_launch_id %s  attempts %d",
			at, job, agent, Escape(r.Code), Escape(r.AgentLaunchID), r.Attempts)
		if r.LaunchState != "" {
			s += "  launch " + Escape(r.LaunchState)
		}
		return s
	case store.OutcomeLaunchState:
		s := fmt.Sprintf("%s  launch         job %s  agent %s  %s -> %s  agent_launch_id %s",
			at, job, agent, orDash(Escape(r.PreviousLaunchState)), Escape(r.LaunchState), Escape(r.AgentLaunchID))
		if r.LaunchState == string(store.LaunchUnknown) && r.Message != "" {
			// Unknown says only that the answer was not understood: the
			// message says what it held.
			s += "  " + OneLine(r.Message, 120)
		}
		return s
	}
	extra := ""
	if r.Uncertain {
		extra = "  [uncertain]"
	}
	return fmt.Sprintf("%s  dead-lettered  job %s  agent %s  %s: %s  attempts %d%s",
		at, job, agent, Escape(r.Code), OneLine(r.Message, 120), r.Attempts, extra)
}

// BriefWidth is the width Brief fits its lines in, under the 100 columns
// of a terminal.
const BriefWidth = 99

// Brief is one entry of the results stream as a short story line, for the
// demo: the clock time, the agent and what happened, in BriefWidth columns
// (the message is cut to fit; escapes and an agent number or code of
// unusual length can take more). The job ID, Kaleyra's launch ID and the
// full time are left to Result (`rcslaunch results`).
//
//	04:52:50  agent 48901  succeeded (RCS902, 1 attempt), launch pending
//	04:52:50  agent 48905  dead-lettered (RCS904, 1 attempt): Failed to create…
//	04:52:54  agent 48903  launch pending -> launched
func Brief(r store.Result) string {
	s := resultClock(r.FinishedAt) + "  agent " + OneLine(r.AgentNo, 24) + "  "
	var msg string
	switch r.Outcome {
	case string(store.StateSucceeded):
		s += fmt.Sprintf("succeeded (%s, %s)", Escape(r.Code), attempts(r.Attempts))
		if r.LaunchState != "" {
			s += ", launch " + Escape(r.LaunchState)
		}
	case store.OutcomeLaunchState:
		s += "launch " + orDash(Escape(r.PreviousLaunchState)) + " -> " + Escape(r.LaunchState)
		if r.LaunchState == string(store.LaunchUnknown) {
			msg = r.Message
		}
	default:
		s += fmt.Sprintf("dead-lettered (%s, %s", Escape(r.Code), attempts(r.Attempts))
		if r.Uncertain {
			s += ", uncertain"
		}
		s += ")"
		msg = r.Message
	}
	if msg == "" {
		return s
	}
	// At least a few characters of the message, even past the width: a
	// line with none would hide that there is one.
	room := max(BriefWidth-utf8.RuneCountInString(s)-2, 10)
	return s + ": " + OneLine(msg, room)
}

// resultClock is the clock time of a results stream entry's finished_at
// (RFC 3339), "15:04:05" in UTC, or the text as it is when it is not a
// time.
func resultClock(at string) string {
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return OneLine(at, 30)
	}
	return Clock(t)
}

func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

// ByCode is a batch's dead letters by code, " (RCS502 3, RCS904 1)", most
// frequent first, or "" when it has none.
func ByCode(b store.Batch) string {
	if len(b.DeadLetteredByCode) == 0 {
		return ""
	}
	return " (" + Tally(b.DeadLetteredByCode) + ")"
}

// Tally is counts by name in one line, "RCS502 5, RCS902 4, RCS601 1", most
// frequent first (names in order among equals, so that the line is the
// same from one run to the next), or "" when there are none.
func Tally[N int | int64](counts map[string]N) string {
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		ci, cj := counts[names[i]], counts[names[j]]
		return ci > cj || (ci == cj && names[i] < names[j])
	})
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s %d", Escape(name), counts[name])
	}
	return strings.Join(parts, ", ")
}

// Counts is a batch's counts by state in one line, the dead letters by code.
func Counts(b store.Batch) string {
	return fmt.Sprintf("queued %d, running %d, retrying %d, succeeded %d, dead-lettered %d%s",
		b.Queued, b.Running, b.Retrying, b.Succeeded, b.DeadLettered, ByCode(b))
}

// Batch writes a batch's status to w, as `batch status` prints it.
func Batch(w io.Writer, b ops.BatchStatus) {
	fmt.Fprintf(w, "batch %s (%s)\n", Escape(b.ID), Escape(b.Name))
	fmt.Fprintf(w, "  created        %s\n", Stamp(b.CreatedAt))
	fmt.Fprintf(w, "  started        %s\n", Stamp(b.StartedAt))
	switch {
	case b.FinishedAt != nil && !b.StartedAt.IsZero():
		fmt.Fprintf(w, "  finished       %s (took %v)\n", Stamp(*b.FinishedAt), b.FinishedAt.Sub(b.StartedAt).Round(time.Second))
	case b.FinishedAt != nil:
		fmt.Fprintf(w, "  finished       %s\n", Stamp(*b.FinishedAt))
	case !b.Closed:
		fmt.Fprintf(w, "  finished       - (still being enqueued: the total may grow)\n")
	default:
		fmt.Fprintf(w, "  finished       -\n")
	}
	fmt.Fprintf(w, "  total          %d\n", b.Total)
	fmt.Fprintf(w, "  queued         %d\n  running        %d\n  retrying       %d\n  succeeded      %d\n", b.Queued, b.Running, b.Retrying, b.Succeeded)
	fmt.Fprintf(w, "  dead-lettered  %d%s\n", b.DeadLettered, ByCode(b.Batch))
	var gone []string
	if b.Deleted > 0 {
		gone = append(gone, fmt.Sprintf("%d deleted from the dead-letter store", b.Deleted))
	}
	if b.Relaunched > 0 {
		gone = append(gone, fmt.Sprintf("%d relaunched with --force in a later run", b.Relaunched))
	}
	if len(gone) > 0 {
		fmt.Fprintf(w, "  left           %s (not in the total)\n", strings.Join(gone, ", "))
	}
	if n := b.Followed(); n > 0 {
		fmt.Fprintf(w, "  launch states  %s (%d followed)\n", LaunchCounts(b.Batch), n)
	}
	fmt.Fprintf(w, "  progress       %s\n", Progress(b))
}

// BatchClosed is what `batch close` prints of the batch it closed.
func BatchClosed(b store.Batch) string {
	return fmt.Sprintf("batch %s closed: %d jobs, %d with an outcome", Escape(b.ID), b.Total, b.Done())
}

// WatchLine is a line of `batch status --watch` without a terminal: the
// time, the batch, its counts and its progress.
func WatchLine(now time.Time, b ops.BatchStatus) string {
	return fmt.Sprintf("%s %s: %s; %s", Stamp(now), Escape(b.ID), Counts(b.Batch), Progress(b))
}

// LaunchCounts is a batch's followed successes by launch state in one line,
// "pending 15, launched 180, rejected 5, suspended 0, unknown 0".
func LaunchCounts(b store.Batch) string {
	parts := make([]string, len(store.LaunchStates))
	for i, st := range store.LaunchStates {
		parts[i] = fmt.Sprintf("%s %d", st, b.LaunchStates[st])
	}
	return strings.Join(parts, ", ")
}

// BatchListHeader is the header of `batch list`, whose rows are
// BatchListRow's.
const BatchListHeader = "BATCH ID\tNAME\tCREATED\tTOTAL\tQUEUED\tRUNNING\tRETRYING\tSUCCEEDED\tDEAD-LETTERED\tLAUNCHED\tFINISHED"

// BatchListRow is a batch as a tab-separated table row. LAUNCHED is
// "launched/followed" ("180/200"), "-" when no job of the batch is followed.
func BatchListRow(b store.Batch) string {
	finished := "-"
	switch {
	case b.FinishedAt != nil:
		finished = Stamp(*b.FinishedAt)
	case !b.Closed:
		finished = "(enqueueing)"
	}
	launched := "-"
	if n := b.Followed(); n > 0 {
		launched = fmt.Sprintf("%d/%d", b.LaunchStates[store.LaunchLaunched], n)
	}
	return fmt.Sprintf("%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s", Escape(b.ID), OneLine(b.Name, 40), Stamp(b.CreatedAt),
		b.Total, b.Queued, b.Running, b.Retrying, b.Succeeded, b.DeadLettered, launched, finished)
}

// Progress is "275 of 300 done (91.7%), 4.2 jobs/s, about 6s left".
func Progress(b ops.BatchStatus) string {
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

// JobState is a record's state in one line, as `status` prints it.
func JobState(r ops.Record) string {
	switch r.State {
	case ops.StateSucceeded:
		return fmt.Sprintf("succeeded, agent_launch_id %s (attempts: %d, finished %s)", Escape(r.AgentLaunchID), r.Attempts, Stamp(r.FinishedAt))
	case ops.StateDeadLettered:
		s := fmt.Sprintf("dead-lettered, code %s: %s (attempts: %d, at %s)", Escape(r.Code), Escape(r.Message), r.Attempts, Stamp(r.FinishedAt))
		if r.Uncertain {
			s += " [uncertain: the agent may have been launched]"
		}
		return s
	case ops.StateRetrying:
		return fmt.Sprintf("retrying (attempt %d of %d, next run at %s), last code %s: %s",
			r.Attempts, r.MaxAttempts, Stamp(r.NextRunAt), Escape(r.Code), Escape(r.Message))
	case ops.StateRunning:
		return fmt.Sprintf("running (attempt %d of %d)", r.Attempts, r.MaxAttempts)
	case ops.StateQueued:
		if !r.NextRunAt.IsZero() {
			return fmt.Sprintf("queued (deferred until %s)", Stamp(r.NextRunAt))
		}
		return fmt.Sprintf("queued (since %s)", Stamp(r.EnqueuedAt))
	}
	return Escape(string(r.State))
}

// Job writes a job's record as `status JOB_ID` prints it: its state, then,
// indented, its launch follow-up and every attempt.
func Job(w io.Writer, r ops.Record) {
	fmt.Fprintf(w, "job %s (agent %s, sid %s): %s\n", Escape(r.ID), Escape(r.AgentNo), Escape(r.SID), JobState(r))
	for _, line := range Launch(r.Launch) {
		fmt.Fprintf(w, "  %s\n", line)
	}
	for _, at := range r.History {
		fmt.Fprintf(w, "  %s\n", Attempt(at))
	}
}

// DeadLetter writes a dead letter as `dlq show` prints it: its fields, its
// payload and every attempt.
func DeadLetter(w io.Writer, r ops.Record) {
	fmt.Fprintf(w, "job:            %s\nsid:            %s\nagent_no:       %s\ncode:           %s\nmessage:        %s\n",
		Escape(r.ID), Escape(r.SID), Escape(r.AgentNo), Escape(r.Code), Escape(r.Message))
	fmt.Fprintf(w, "uncertain:      %v\nattempts:       %d\nenqueued at:    %s\ndead-lettered:  %s\n",
		r.Uncertain, r.Attempts, Stamp(r.EnqueuedAt), Stamp(r.FinishedAt))
	if r.Batch != "" {
		fmt.Fprintf(w, "batch:          %s\n", Escape(r.Batch))
	}
	// JSON escapes C0 controls but leaves DEL, C1 and bidi characters as
	// they are.
	fmt.Fprintf(w, "payload:        %s\nattempts:\n", Escape(string(r.Payload)))
	for _, at := range r.History {
		fmt.Fprintf(w, "  %s\n", Attempt(at))
	}
}

// Launch is a followed success's follow-up as the lines `status` prints
// under the job's state: the launch state, the polls and what comes next,
// and the last poll's answer; none when the job is not followed.
func Launch(f *ops.LaunchFollow) []string {
	if f == nil {
		return nil
	}
	var next string
	switch {
	case f.Ended == ops.FollowFinal:
		next = "final, following ended"
	case f.Ended == ops.FollowExpired:
		next = "following ended: FOLLOW_MAX_AGE passed without a final state"
	case f.Ended != "":
		next = "following ended (" + Escape(f.Ended) + ")"
	case f.Polls == 0:
		next = "first poll at " + Stamp(f.NextPollAt)
	default:
		next = "next poll at " + Stamp(f.NextPollAt)
	}
	lines := []string{fmt.Sprintf("launch state %s since %s (followed since %s, %s): %s",
		Escape(string(f.State)), Stamp(f.StateAt), Stamp(f.FollowedAt), polls(f.Polls), next)}
	if f.Code != "" || f.Message != "" {
		what := "last poll"
		if f.LastPollFailed {
			what = "last poll failed"
		}
		lines = append(lines, fmt.Sprintf("%s at %s: %s", what, Stamp(f.PolledAt), codeMessage(f.Code, f.Message)))
	}
	return lines
}

// LaunchBrief is a record's launch state in a word or two, for tables:
// "-" when the job is not followed, "pending, expired" when following gave
// up.
func LaunchBrief(r ops.Record) string {
	switch {
	case r.Launch == nil:
		return "-"
	case r.Launch.Ended == ops.FollowExpired:
		return Escape(string(r.Launch.State)) + ", expired"
	}
	return Escape(string(r.Launch.State))
}

// AgentJobHeader is the header of `status --agent`, whose rows are
// AgentJobRow's.
const AgentJobHeader = "JOB ID\tSID\tSTATE\tLAUNCH"

// AgentJobRow is one of an agent's jobs as a tab-separated table row.
func AgentJobRow(r ops.Record) string {
	return Escape(r.ID) + "\t" + Escape(r.SID) + "\t" + JobState(r) + "\t" + LaunchBrief(r)
}

func polls(n int) string {
	if n == 1 {
		return "1 poll"
	}
	return fmt.Sprintf("%d polls", n)
}

// codeMessage is "CODE: message", or either alone.
func codeMessage(code, msg string) string {
	code, msg = Escape(code), OneLine(msg, 200)
	switch {
	case code == "":
		return msg
	case msg == "":
		return code
	}
	return code + ": " + msg
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// DeadLetterHeader is the header of a table of dead letters, whose rows are
// DeadLetterRow's (`dlq list`, and what a `dlq` dry run would act on).
const DeadLetterHeader = "DEAD-LETTERED AT\tJOB ID\tSID\tAGENT\tCODE\tATTEMPTS\tMESSAGE"

// DeadLetterRow is a dead letter as a tab-separated table row.
func DeadLetterRow(r ops.Record) string {
	msg := r.Message
	if r.Uncertain {
		msg = "[uncertain] " + msg
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%d\t%s", Stamp(r.FinishedAt), Escape(r.ID), Escape(r.SID), Escape(r.AgentNo), Escape(r.Code),
		r.Attempts, OneLine(msg, 100))
}

// Attempt is one attempt of a job's history in one line.
func Attempt(a ops.Attempt) string {
	n := "-"
	if a.N > 0 {
		n = fmt.Sprint(a.N)
	}
	s := fmt.Sprintf("attempt %s at %s: %s", n, Stamp(a.FinishedAt), Escape(a.Outcome))
	if a.Code != "" {
		s += " " + Escape(a.Code)
	}
	if a.HTTPStatus != 0 {
		s += fmt.Sprintf(" (HTTP %d)", a.HTTPStatus)
	}
	if a.Message != "" {
		s += ": " + Escape(a.Message)
	}
	if a.Uncertain {
		s += " [uncertain]"
	}
	return s
}

// Wrap is prefix then text, broken at spaces into lines of at most width
// columns (a word longer than that has a line of its own), each line after
// the first indented as far as the prefix is long, without a final
// newline. text is printed as it is: escape what comes from outside first.
func Wrap(prefix, text string, width int) string {
	indent := strings.Repeat(" ", utf8.RuneCountInString(prefix))
	var b strings.Builder
	b.WriteString(prefix)
	col, start := len(indent), true
	for _, w := range strings.Fields(text) {
		n := utf8.RuneCountInString(w)
		switch {
		case start:
		case col+1+n > width:
			b.WriteString("\n" + indent)
			col = len(indent)
		default:
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += n
		start = false
	}
	return b.String()
}

// Clock is t's time of day, "15:04:05" in UTC, or "-" when it is zero: for
// lines that tell a story of a few minutes, where the date and the
// fractions of a second are noise (Stamp gives the full time).
func Clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.TimeOnly)
}

// Stamp is t in RFC 3339, UTC, or "-" when it is zero.
func Stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// Summary writes what an enqueue did, as `enqueue` prints it: the summary
// line to out, each row's problems to errw.
func Summary(out, errw io.Writer, s *ops.BatchSummary) {
	for _, e := range s.Errors {
		field, reason := Escape(e.Field), Escape(e.Reason)
		switch {
		case e.Line > 0 && e.Field != "":
			fmt.Fprintf(errw, "line %d: %s: %s\n", e.Line, field, reason)
		case e.Line > 0:
			fmt.Fprintf(errw, "line %d: %s\n", e.Line, reason)
		default:
			fmt.Fprintf(errw, "%s: %s\n", field, reason)
		}
	}
	if s.ErrorsOmitted > 0 {
		fmt.Fprintf(errw, "(%d more errors not shown)\n", s.ErrorsOmitted)
	}
	if s.DryRun {
		fmt.Fprintf(out, "dry run: %d valid, %d invalid; nothing enqueued\n", s.Valid, s.Invalid)
		return
	}
	fmt.Fprintf(out, "enqueued %d, duplicate %d, already launched %d, dead-lettered %d, invalid %d%s%s\n",
		s.Enqueued, s.Duplicate, s.AlreadyLaunched, s.DeadLettered, s.Invalid, lost(s), which(s))
	if s.BatchID != nil && s.Enqueued > 0 {
		fmt.Fprintf(out, "follow it with `rcslaunch batch status %s --watch`\n", Escape(*s.BatchID))
	}
	if s.DeadLettered > 0 {
		fmt.Fprintf(out, "dead-lettered jobs wait for `rcslaunch dlq retry`\n")
	}
}

// lost is ", failed n, in doubt n, not tried n", each only when not zero.
func lost(s *ops.BatchSummary) string {
	out := ""
	for _, c := range []struct {
		what string
		n    int
	}{{"failed", s.Failed}, {"in doubt", s.InDoubt}, {"not tried", s.NotTried}} {
		if c.n > 0 {
			out += fmt.Sprintf(", %s %d", c.what, c.n)
		}
	}
	return out
}

// which is " (batch ID)" or " (job ID)".
func which(s *ops.BatchSummary) string {
	switch {
	case s.BatchID != nil:
		return fmt.Sprintf(" (batch %s)", Escape(*s.BatchID))
	case s.JobID != "":
		return fmt.Sprintf(" (job %s)", Escape(s.JobID))
	}
	return ""
}
