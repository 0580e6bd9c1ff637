package demo

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/display"
	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/ops"
)

// demoCase is one launch of the demo batch and what the simulator answers it.
type demoCase struct {
	agentNo string
	about   string
	steps   []sim.Step // scripted answers before normal behaviour (success)
	want    ops.State  // expected outcome: succeeded or dead_lettered
	code    string     // expected final code
	// status scripts the simulator's answers to the follow-up's status
	// polls of a success, one step per poll; launch is the final launch
	// state expected (empty for a dead letter, which is not followed).
	status []sim.StatusStep
	launch store.LaunchState
}

// cases lists the batch. The successes' status sequences are spelled out
// rather than left to the simulator's built-in ones, so that the story the
// demo tells is readable here: two pending polls then launched (the growing
// poll interval shows), launched and rejected after one, launched at once.
func cases() []demoCase {
	return []demoCase{
		{agentNo: "48900", about: "launches at once; Kaleyra's review keeps it pending twice, then launches it",
			want: ops.StateSucceeded, code: "RCS902",
			status: []sim.StatusStep{sim.StatusPending, sim.StatusPending, sim.StatusLaunched}, launch: store.LaunchLaunched},
		{agentNo: "48901", about: "launches at once; Kaleyra's review rejects it",
			want: ops.StateSucceeded, code: "RCS902",
			status: []sim.StatusStep{sim.StatusPending, sim.StatusRejected}, launch: store.LaunchRejected},
		{agentNo: "48902", about: "launches at once; Kaleyra's review launches it",
			want: ops.StateSucceeded, code: "RCS902",
			status: []sim.StatusStep{sim.StatusPending, sim.StatusLaunched}, launch: store.LaunchLaunched},
		{agentNo: "48903", about: "gateway error twice (RCS502), retried with backoff, then launches; launched at the first poll",
			steps: []sim.Step{sim.StepGateway, sim.StepGateway}, want: ops.StateSucceeded, code: "RCS902",
			status: []sim.StatusStep{sim.StatusLaunched}, launch: store.LaunchLaunched},
		{agentNo: "48904", about: "gateway error every time: retried RETRY_MAX times, then dead-lettered",
			steps: []sim.Step{sim.StepGateway, sim.StepGateway, sim.StepGateway}, want: ops.StateDeadLettered, code: "RCS502"},
		{agentNo: "48905", about: "refused by the carrier side (RCS904): terminal, dead-lettered at once",
			steps: []sim.Step{sim.StepMissingFields}, want: ops.StateDeadLettered, code: "RCS904"},
		{agentNo: "48906", about: "RCS channel not enabled (RCS601): terminal, dead-lettered at once",
			steps: []sim.Step{sim.StepDisabled}, want: ops.StateDeadLettered, code: "RCS601"},
	}
}

// launchStates is the simulator's launch status script for the cases.
func launchStates(cs []demoCase) map[string][]sim.StatusStep {
	states := map[string][]sim.StatusStep{}
	for _, c := range cs {
		if c.status != nil {
			states[c.agentNo] = c.status
		}
	}
	return states
}

// Job is the demo's sample launch for agentNo: complete and valid, with
// every description filled in and one region.
func Job(agentNo string) launch.Job {
	return launch.Job{
		Launch: launch.Launch{
			AgentNo:                 agentNo,
			OptinDescription:        "Customers opt in on the checkout page",
			TriggerDescription:      "The customer sends START",
			InteractionsDescription: "Order and delivery updates",
			OptoutDescription:       "Reply STOP at any time",
			AgentAccessInstructions: "Demo agent; no login needed",
			LaunchName:              "launch_" + agentNo,
			ScreenshotURIs:          []string{"https://www.example.com/screens/" + agentNo + ".png"},
		},
		Regions: []launch.Region{{RegionID: "8346a250-d7a9-47dc-8202-a8b1c2d3e4e8", Region: "4f4bf2b0-5110-44e1-9aa1-43392c7d3b17"}},
	}
}

// enqueue enqueues the sample batch, printing each job's status, and returns
// the batch's ID and the expected outcome by job ID. IDs are unique per run
// so that a demo on a kept Redis never finds its jobs already launched.
func (s session) enqueue(ctx context.Context, out io.Writer) (string, map[string]demoCase, error) {
	run := time.Now().UTC().Format("20060102T150405.000")
	want := map[string]demoCase{}
	cs := cases()
	jobs := make([]launch.Job, len(cs))
	for i, c := range cs {
		jobs[i] = Job(c.agentNo)
		jobs[i].ID = fmt.Sprintf("demo-%s-%d", run, i+1)
		want[jobs[i].ID] = c
	}
	statuses := make([]ops.Status, len(jobs))
	sum, err := s.Ops.EnqueueJobs(ctx, jobs, &ops.BatchOpts{Name: "demo",
		OnResult: func(line int, r ops.EnqueueResult) { statuses[line-1] = r.Status }})
	if err != nil {
		return "", nil, fmt.Errorf("enqueue the demo batch: %w", err)
	}
	for i, c := range cs {
		fmt.Fprintln(out, display.Wrap(fmt.Sprintf("%-9s agent %s: ", statuses[i], c.agentNo), c.about, display.BriefWidth))
	}
	batch := *sum.BatchID
	return batch, want, nil
}

// stream reads the results stream on from where it stopped.
type stream struct {
	s     session
	after string
	// changes are the launch_state entries read while waiting for the
	// outcomes, kept for the follow-up's section.
	changes []store.Result
}

// read returns the next entries, waiting up to half a second for some.
func (st *stream) read(ctx context.Context) ([]store.Result, error) {
	rs, err := st.s.Ops.ReadResults(ctx, st.after, 100, 500*time.Millisecond)
	if err != nil {
		return nil, err
	}
	if n := len(rs); n > 0 {
		st.after = rs[n-1].StreamID
	}
	return rs, nil
}

// await prints the batch's outcomes as they land on the results stream, and
// reports on o.Err each one that is not the expected one; it returns how
// many were not. The launch state changes it reads on the way are kept in
// st for followUp.
func (s session) await(ctx context.Context, o Options, st *stream, want map[string]demoCase) (surprises int, err error) {
	fmt.Fprintf(o.Out, "\nOutcomes, as they land on the results stream (%s):\n", store.ResultsStream)
	seen := 0
	for seen < len(want) {
		rs, err := st.read(ctx)
		if err != nil {
			return 0, fmt.Errorf("waiting for outcomes: %w", err)
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("gave up after %v with %d of %d outcomes", o.Timeout, seen, len(want))
		}
		for _, r := range rs {
			cs, ok := want[r.JobID]
			switch {
			case !ok:
				continue
			case r.Outcome == store.OutcomeLaunchState:
				st.changes = append(st.changes, r)
				continue
			}
			seen++
			fmt.Fprintln(o.Out, display.Brief(r))
			if r.Outcome != string(cs.want) || r.Code != cs.code {
				surprises++
				fmt.Fprintf(o.Err, "rcslaunch: job %s: expected %s %s, got %s %s\n", r.JobID, cs.want, cs.code, r.Outcome, r.Code)
			}
		}
	}
	return surprises, nil
}

// summarize prints what the simulator saw, the batch's counts and where to
// look next.
func (s session) summarize(ctx context.Context, out io.Writer, stats sim.Stats, batch string) {
	fmt.Fprintf(out, "\nThe simulator received %d launch calls: %s\n", stats.Calls, display.Tally(stats.ByCode))
	fmt.Fprintf(out, "and %d launch status calls: %s\n", stats.StatusCalls, display.Tally(stats.StatusByAnswer))
	if b, err := s.Ops.BatchStatus(ctx, batch); err == nil {
		fmt.Fprintf(out, "The batch: %d succeeded, %d dead-lettered%s\n%s", b.Succeeded, b.DeadLettered,
			display.ByCode(b.Batch), launchCounts(b.Batch))
	}
	n, _ := s.Ops.CountDeadLetters(ctx, ops.Filter{})
	fmt.Fprintf(out, `
Where to look (with REDIS_URL set, these work after the demo too):
  rcslaunch results                 every finished job, from the results stream; "--json"
                                    shows the launch state changes too
  rcslaunch batch status %s
                                    the batch's counts ("--json": launch_states too);
                                    "batch report" for one row per job
  rcslaunch dlq list                the %d dead letters; "dlq show JOB_ID" for every attempt
  rcslaunch dlq retry --code RCS502 replay dead letters with a fresh attempt budget; they
                                    stay queued until a worker for the demo account runs:
                                    rcslaunch sim &
                                    KALEYRA_SID=%s KALEYRA_API_KEY=any \
                                      KALEYRA_BASE_URL=http://127.0.0.1:8089 rcslaunch worker
  rcslaunch status JOB_ID           one job's state ("--json": its launch follow-up too);
                                    "status --agent 48900" an agent's jobs
`, batch, n, SID)
}
