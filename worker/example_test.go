package worker_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/ops"
	"github.com/rcslaunch/rcslaunch/worker"
)

func Example() {
	// An in-process Redis and Kaleyra's simulator keep the example
	// self-contained; use your Redis, and leave BaseURL empty for Kaleyra.
	redis := miniredis.NewMiniRedis()
	if err := redis.Start(); err != nil {
		panic(err)
	}
	defer redis.Close()
	kaleyra, stopKaleyra, err := sim.New(sim.Config{APIKey: "your-api-key"}).Start("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer stopKaleyra()
	conn := asynq.RedisClientOpt{Addr: redis.Addr()}

	// Options' zero values are the defaults; DefaultOptions names them.
	opts := worker.DefaultOptions()
	opts.Redis, opts.SID, opts.APIKey, opts.BaseURL = conn, "HXAP16XXXXXX", "your-api-key", kaleyra
	w, err := worker.New(opts)
	if err != nil {
		panic(err)
	}
	// Run works until ctx ends, then hands back what it has not finished.
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { stop(); <-done }()

	c, err := ops.New(ops.Options{Redis: conn, SID: "HXAP16XXXXXX"})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	res, err := c.Enqueue(ctx, launch.Job{Launch: launch.Launch{
		AgentNo:                 "48900",
		OptinDescription:        "Users opt in on our website",
		TriggerDescription:      "The user sends START",
		InteractionsDescription: "Order updates",
		OptoutDescription:       "Reply STOP",
		AgentAccessInstructions: "Demo account; no login needed",
	}}, nil)
	if err != nil {
		panic(err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if rec, err := c.Job(ctx, res.JobID); err == nil && rec.Finished() {
			fmt.Println(rec.State, rec.Code, rec.Attempts)
			break
		}
	}
	// Output:
	// succeeded RCS902 1
}
