package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/baseurl"
	"github.com/rcslaunch/rcslaunch/internal/cli"
	"github.com/rcslaunch/rcslaunch/internal/display"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/ops"
)

func runResults(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "results", "[--sid SID] [--follow] [--json]", `Reads the results stream (`+store.ResultsStream+`): one entry per finished job, oldest
first, and, when launches are followed (FOLLOW_LAUNCH), one per change of a
launch's state (outcome "launch_state"). With --sid, only the entries of that
account's jobs. Programs should read it with consumer groups (XREADGROUP); this
command only reads.`)
	follow := f.Bool("follow", false, "keep waiting for new results until interrupted")
	asJSON := f.Bool("json", false, "print one JSON object per line")
	sid := f.String("sid", "", "only the results of the jobs of the account `SID`")
	if code, ok := f.ParseNone(args); !ok {
		return code
	}
	if *sid != "" {
		if err := baseurl.CheckSID(*sid); err != nil {
			return f.UsageError("invalid --sid: %v", err)
		}
	}
	return withApp(ctx, io, 0, func(a *app) int {
		after, block := "0", time.Duration(0)
		if *follow {
			block = 2 * time.Second
		}
		enc := json.NewEncoder(io.Out)
		enc.SetEscapeHTML(false)
		for {
			rs, next, err := a.Ops.ReadResultsPage(ctx, after, 1000, block, ops.ResultsFilter{SID: *sid})
			if err != nil {
				if ctx.Err() != nil {
					return cli.ExitOK
				}
				return cli.Fail(io, err)
			}
			for _, r := range rs {
				if *asJSON {
					_ = enc.Encode(r)
				} else {
					fmt.Fprintf(io.Out, "%s\n", display.Result(r))
				}
			}
			if after = next; len(rs) == 0 && (!*follow || ctx.Err() != nil) {
				return cli.ExitOK
			}
		}
	})
}
