package main

import (
	"context"
	"os"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/demo"
)

func runDemo(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "demo", "", `Runs the whole pipeline on this machine with no credentials: the Kaleyra
simulator, a worker, and a sample batch that shows a success, a retried RCS502 and
terminal failures, printing each outcome. With REDIS_URL unset it uses an
in-process Redis (for the demo only); set REDIS_URL to keep the results and dead
letters and look at them afterwards with "rcslaunch results" and "rcslaunch dlq list".`)
	timeout := f.Duration("timeout", 2*time.Minute, "give up after this long")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return f.usageError("unexpected argument %q", pos[0])
	}
	cfg, err := config.Load(0)
	if err != nil {
		return fail(io, err)
	}
	err = demo.Run(ctx, demo.Options{Config: cfg, InProcessRedis: !redisGiven(cfg),
		Out: io.out, Err: io.err, Color: isTerminal(io.err), Timeout: *timeout})
	if err != nil {
		return fail(io, err)
	}
	return exitOK
}

// redisGiven says whether the environment names a Redis (REDIS_URL, or
// REDIS_CLUSTER_ADDRS), rather than leaving REDIS_URL's default.
func redisGiven(cfg config.Config) bool {
	_, set := os.LookupEnv("REDIS_URL")
	return set || len(cfg.RedisClusterAddrs) > 0
}
