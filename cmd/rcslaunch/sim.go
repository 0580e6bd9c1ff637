package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/rcslaunch/rcslaunch/internal/cli"
	"github.com/rcslaunch/rcslaunch/internal/sim"
)

func runSim(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "sim", "[--addr 127.0.0.1:8089] [flags]",
		`Runs a local simulator of Kaleyra's RCS launch API (POST /v1/{sid}/rcs/agent/launch)
until interrupted. Point a worker at it with KALEYRA_BASE_URL=http://ADDR.
Control routes for tests: POST /_sim/script, GET /_sim/calls, GET /_sim/stats,
POST /_sim/config, POST /_sim/reset (see the README).`)
	addr := f.String("addr", "127.0.0.1:8089", "listen `address`; keep it on loopback (the control routes have no auth)")
	apiKey := f.String("api-key", "", "the api-key to accept (default $KALEYRA_API_KEY; empty accepts any non-empty key)")
	latency := f.Duration("latency", 0, "added to every answer")
	jitter := f.Duration("jitter", 0, "plus a random 0..`DUR`")
	faultRate := f.Float64("fault-rate", 0, "share of valid calls answered RCS502 (0..1)")
	disabled := f.String("disabled-sids", "", "comma-separated SIDs answered RCS601")
	seed := f.Int64("seed", 0, "random seed for faults and jitter (0: random)")
	if code, ok := f.ParseNone(args); !ok {
		return code
	}
	if *faultRate < 0 || *faultRate > 1 {
		return f.UsageError("--fault-rate must be between 0 and 1, got %v", *faultRate)
	}
	key := *apiKey
	if key == "" {
		key = os.Getenv("KALEYRA_API_KEY")
	}
	var sids []string
	for _, s := range strings.Split(*disabled, ",") {
		if s = strings.TrimSpace(s); s != "" {
			sids = append(sids, s)
		}
	}
	cfg := sim.Config{APIKey: key, Latency: *latency, Jitter: *jitter, FaultRate: *faultRate, DisabledSIDs: sids, Seed: *seed}
	err := sim.ListenAndServe(ctx, *addr, cfg, func(url string) {
		fmt.Fprintf(io.Err, "rcslaunch sim: Kaleyra simulator listening on %s (KALEYRA_BASE_URL=%s)\n", url, url)
	})
	if err != nil {
		return cli.Fail(io, err)
	}
	return cli.ExitOK
}
