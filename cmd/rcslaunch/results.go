package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/display"
	"github.com/rcslaunch/rcslaunch/internal/store"
)

func runResults(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "results", "[--follow] [--json]", `Reads the results stream (`+store.ResultsStream+`): one entry per finished job, oldest
first. Programs should read it with consumer groups (XREADGROUP); this command
only reads.`)
	follow := f.Bool("follow", false, "keep waiting for new results until interrupted")
	asJSON := f.Bool("json", false, "print one JSON object per line")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return f.usageError("unexpected argument %q", pos[0])
	}
	return withApp(ctx, io, 0, func(a *app) int {
		after := "0"
		enc := json.NewEncoder(io.out)
		enc.SetEscapeHTML(false)
		for {
			block := time.Duration(0)
			if *follow {
				block = 2 * time.Second
			}
			rs, err := a.Ops.ReadResults(ctx, after, 1000, block)
			if err != nil {
				if ctx.Err() != nil {
					return exitOK
				}
				return fail(io, err)
			}
			for _, r := range rs {
				if *asJSON {
					_ = enc.Encode(r)
				} else {
					fprintf(io.out, "%s\n", display.Result(r))
				}
				after = r.StreamID
			}
			if len(rs) == 0 && (!*follow || ctx.Err() != nil) {
				return exitOK
			}
		}
	})
}
