package main

import (
	"context"
	"fmt"

	"github.com/rcslaunch/rcslaunch/internal/cli"
	"github.com/rcslaunch/rcslaunch/internal/display"
	"github.com/rcslaunch/rcslaunch/ops"
)

func runStatus(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "status", "(JOB_ID | --agent AGENT_NO [--sid SID]) [--json]", `Shows a job's state: queued, running, retrying (attempt n of m, next run at),
succeeded (agent_launch_id) or dead-lettered (code, message), and, for a success
whose launch is followed (FOLLOW_LAUNCH), its launch state and polls. With --agent,
lists that agent's jobs instead, newest first (with --sid, those of one account).`)
	asJSON := f.Bool("json", false, "print the job's record (with --agent: an array of records) as JSON")
	agent := f.String("agent", "", "list the jobs of agent number `AGENT_NO`")
	sid := f.String("sid", "", "with --agent, only the jobs of the account `SID`")
	limit := f.Int("limit", 100, "with --agent, list at most `N` jobs")
	pos, code, ok := f.ParseArgs(args)
	switch {
	case !ok:
		return code
	case *agent != "" && len(pos) == 0 && *limit > 0:
		return agentJobs(ctx, io, *agent, ops.Filter{SID: *sid}, *limit, *asJSON)
	case *agent != "" || len(pos) != 1 || *sid != "":
		return f.UsageError("need exactly one JOB_ID, or --agent AGENT_NO (with a positive --limit, and --sid SID if you like)")
	}
	id := pos[0]
	return withApp(ctx, io, 0, func(a *app) int {
		rec, err := a.Ops.Job(ctx, id)
		if err != nil {
			return cli.Fail(io, err)
		}
		if *asJSON {
			cli.PrintJSON(io.Out, rec)
			return cli.ExitOK
		}
		display.Job(io.Out, rec)
		return cli.ExitOK
	})
}

// agentJobs is `status --agent`: the agent's jobs that f selects, one line
// each.
func agentJobs(ctx context.Context, io cli.Stdio, agent string, f ops.Filter, limit int, asJSON bool) int {
	return withApp(ctx, io, 0, func(a *app) int {
		recs, err := a.Ops.JobsByAgent(ctx, agent, f, limit)
		if err != nil {
			return cli.Fail(io, err)
		}
		l := cli.NewListing(io.Out, asJSON, display.AgentJobHeader)
		for _, r := range recs {
			_ = l.Add(r, func() string { return display.AgentJobRow(r) })
		}
		l.End()
		if len(recs) == 0 {
			which := fmt.Sprintf("agent %q", agent)
			if f.SID != "" {
				which += fmt.Sprintf(" in account %q", f.SID)
			}
			return cli.Fail(io, fmt.Errorf("no jobs of %s", which))
		}
		return cli.ExitOK
	})
}
