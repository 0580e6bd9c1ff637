package main

import (
	"context"
	"fmt"

	"github.com/rcslaunch/rcslaunch/internal/cli"
	"github.com/rcslaunch/rcslaunch/internal/display"
)

func runStatus(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "status", "JOB_ID [--json]", `Shows a job's state: queued, running, retrying (attempt n of m, next run at),
succeeded (agent_launch_id) or dead-lettered (code, message).`)
	asJSON := f.Bool("json", false, "print the job's record as JSON")
	id, code, ok := f.ParseOne(args, "JOB_ID")
	if !ok {
		return code
	}
	return withApp(ctx, io, 0, func(a *app) int {
		rec, err := a.Ops.Job(ctx, id)
		if err != nil {
			return cli.Fail(io, err)
		}
		if *asJSON {
			cli.PrintJSON(io.Out, rec)
			return cli.ExitOK
		}
		fmt.Fprintf(io.Out, "job %s (agent %s): %s\n", rec.ID, rec.AgentNo, display.JobState(rec))
		for _, at := range rec.History {
			fmt.Fprintf(io.Out, "  %s\n", display.Attempt(at))
		}
		return cli.ExitOK
	})
}
