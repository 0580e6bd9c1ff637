package main

import (
	"context"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/worker"
)

func runWorker(ctx context.Context, args []string, io stdio) int {
	f := newFlags(io, "worker", "", `Runs the launch worker until SIGINT or SIGTERM, then shuts down gracefully:
calls in flight finish and are recorded, jobs not yet started go back to the queue.
Configured by the environment (KALEYRA_SID and KALEYRA_API_KEY are required).`)
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return f.usageError("unexpected argument %q", pos[0])
	}
	cfg, err := config.Load(config.NeedSID | config.NeedAPIKey)
	if err != nil {
		return fail(io, err)
	}
	opt, err := cfg.RedisConnOpt()
	if err != nil {
		return fail(io, err)
	}
	log := newLogger(cfg, io.err)
	w, err := worker.New(worker.OptionsFromConfig(cfg, opt, &log))
	if err != nil {
		return fail(io, err)
	}
	if err := w.Run(ctx); err != nil {
		return fail(io, err)
	}
	return exitOK
}
