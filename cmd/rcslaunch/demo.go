package main

import (
	"context"
	"os"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/cli"
	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/demo"
)

func runDemo(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "demo", "", `Runs the whole pipeline on this machine with no credentials: the Kaleyra
simulator, a worker, and a sample batch that shows a success, a retried RCS502 and
terminal failures, printing each outcome; then the launch follow-up
(FOLLOW_LAUNCH), printing each launch going from pending to launched or
rejected as the worker polls its status. With REDIS_URL unset it uses an
in-process Redis (for the demo only); set REDIS_URL to keep the results and dead
letters and look at them afterwards with "rcslaunch results" and "rcslaunch dlq list".`)
	timeout := f.Duration("timeout", 2*time.Minute, "give up after this long")
	if code, ok := f.ParseNone(args); !ok {
		return code
	}
	cfg, err := config.Load(0)
	if err != nil {
		return cli.Fail(io, err)
	}
	err = demo.Run(ctx, demo.Options{Config: cfg, InProcessRedis: !redisGiven(cfg),
		Out: io.Out, Err: io.Err, Color: cli.IsTerminal(io.Err), Timeout: *timeout})
	if err != nil {
		return cli.Fail(io, err)
	}
	return cli.ExitOK
}

// redisGiven says whether the environment names a Redis (REDIS_URL, or
// REDIS_CLUSTER_ADDRS), rather than leaving REDIS_URL's default.
func redisGiven(cfg config.Config) bool {
	_, set := os.LookupEnv("REDIS_URL")
	return set || len(cfg.RedisClusterAddrs) > 0
}
