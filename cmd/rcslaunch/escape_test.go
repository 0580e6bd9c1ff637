package main

// End-to-end test of what the human output of the commands does with text
// from outside (an agent number, a batch name, Kaleyra's code, message and
// agent_launch_id): control characters reach the terminal escaped.

import (
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
)

// hostileText is a colour change, the bell, a carriage return, a
// right-to-left override, the one-character CSI (U+009B) and DEL, with a
// newline and a tab.
const hostileText = "\x1b[31mred\a\rover\u202egnp.exe\u009b2J\x7f\nnext\tcol"

// TestStatusDLQBatchResultsEscapeTerminalControls: status (a job, --agent),
// results, dlq list and show, batch status and list print no control or
// bidi character of a job's agent number, the batch's name or Kaleyra's
// answers; the CSV report keeps them as data (with formula characters
// neutralised), and --json stays JSON.
func TestStatusDLQBatchResultsEscapeTerminalControls(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sim.Config{})
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	const id = "b_hostile"
	if err := e.Store.CreateBatch(ctx, id, hostileText, at); err != nil {
		t.Fatal(err)
	}
	agent := "+1" + hostileText
	job := func(jobID string) store.NewJob {
		return store.NewJob{ID: jobID, SID: testenv.SID, AgentNo: agent, Payload: launchtest.Job(agent).Body(), Batch: id}
	}
	e.SettleOutcome(job("h1"), store.Outcome{Kind: store.FinishDeadLettered, Attempt: store.Attempt{N: 1,
		Outcome: store.AttemptTerminal, Code: hostileText, Message: hostileText, HTTPStatus: 400, StartedAt: at, FinishedAt: at}}, at)
	e.SettleOutcome(job("h2"), store.Outcome{Kind: store.FinishSucceeded, AgentLaunchID: hostileText, FollowAt: at.Add(time.Second),
		Attempt: store.Attempt{N: 1, Outcome: store.AttemptSucceeded, Code: "RCS902", Message: hostileText, HTTPStatus: 200,
			StartedAt: at, FinishedAt: at}}, at)
	if res, err := e.Store.RecordLaunchPoll(ctx, "h2", store.Poll{AgentLaunchID: hostileText, State: store.LaunchUnknown,
		Code: hostileText, Message: hostileText, NextPollAt: at.Add(time.Hour)}, at.Add(time.Second)); err != nil || res != store.PollChanged {
		t.Fatalf("poll h2: %s %v", res, err)
	}
	e.SettleOutcome(job("h\u202e3"), store.Outcome{Kind: store.FinishDeadLettered, Attempt: store.Attempt{N: 1,
		Outcome: store.AttemptTerminal, Code: "RCS904", Message: "m", HTTPStatus: 400, StartedAt: at, FinishedAt: at}}, at)
	e.mustRun(0, "batch", "close", id)

	for _, args := range [][]string{
		{"status", "h1"}, {"status", "h2"}, {"status", "--agent", agent},
		{"results"}, {"dlq", "list"}, {"dlq", "show", "h1"},
		{"batch", "status", id}, {"batch", "list"}, {"dlq", "retry", "--all", "--dry-run"},
	} {
		r := e.mustRun(0, args...)
		for _, out := range []string{r.stdout, r.err} {
			if i := strings.IndexFunc(out, func(r rune) bool {
				return r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r))
			}); i >= 0 {
				t.Errorf("rcslaunch %q: raw control character at byte %d:\n%q", args, i, out)
			}
		}
		if !strings.Contains(r.stdout, `\x1b[31mred`) {
			t.Errorf("rcslaunch %q: the hostile text is not shown escaped:\n%q", args, r.stdout)
		}
	}

	// The report is data: the text as stored, a quote in front of a cell
	// that a spreadsheet would take for a formula.
	recs, err := csv.NewReader(strings.NewReader(e.mustRun(0, "batch", "report", id).stdout)).ReadAll()
	if err != nil || len(recs) != 4 || recs[1][1] != "'"+agent || recs[1][4] != hostileText {
		t.Errorf("CSV report: %q (%v)", recs, err)
	}
	if st := e.statusJSON("h1"); st.AgentNo != agent {
		t.Errorf("status --json agent_no %q, want %q", st.AgentNo, agent)
	}
}
