package ops_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/ops"
)

// sampleJob is a valid launch for agentNo.
func sampleJob(agentNo string) launch.Job {
	return launch.Job{Launch: launch.Launch{
		AgentNo:                 agentNo,
		OptinDescription:        "Users opt in on our website",
		TriggerDescription:      "The user sends START",
		InteractionsDescription: "Order updates",
		OptoutDescription:       "Reply STOP",
		AgentAccessInstructions: "Demo account; no login needed",
	}}
}

func ExampleClient_Enqueue() {
	// An in-process Redis keeps the example self-contained; use your real one.
	redis := miniredis.NewMiniRedis()
	if err := redis.Start(); err != nil {
		panic(err)
	}
	defer redis.Close()

	c, err := ops.New(ops.Options{Redis: asynq.RedisClientOpt{Addr: redis.Addr()}, SID: "HXAP16XXXXXX"})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx := context.Background()

	res, err := c.Enqueue(ctx, sampleJob("48900"), nil)
	fmt.Println(res.JobID, res.Status, res.SkippedAsDuplicate, err)

	// The same job again is known by its derived ID: reported, not enqueued twice.
	res, err = c.Enqueue(ctx, sampleJob("48900"), nil)
	fmt.Println(res.Status, res.SkippedAsDuplicate, err)

	// An invalid job names every field at fault.
	_, err = c.Enqueue(ctx, launch.Job{Launch: launch.Launch{AgentNo: "48901"}}, nil)
	var invalid *launch.ValidationError
	if errors.As(err, &invalid) {
		fmt.Println(invalid.Errors[0])
	}
	// Output:
	// f22f5a72fa79ec7d1585652b13705bad enqueued false <nil>
	// duplicate true <nil>
	// launch.optin_description: is required and must be a non-empty string
}

func ExampleClient_EnqueueJobs() {
	redis := miniredis.NewMiniRedis()
	if err := redis.Start(); err != nil {
		panic(err)
	}
	defer redis.Close()
	c, err := ops.New(ops.Options{Redis: asynq.RedisClientOpt{Addr: redis.Addr()}, SID: "HXAP16XXXXXX"})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx := context.Background()

	// One batch of three launches, one of them offered twice.
	jobs := []launch.Job{sampleJob("48900"), sampleJob("48901"), sampleJob("48900")}
	sum, err := c.EnqueueJobs(ctx, jobs, &ops.BatchOpts{Name: "onboarding"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("enqueued %d, duplicate %d\n", sum.Enqueued, sum.Duplicate)

	// The batch counts its jobs by state as the workers move them.
	st, err := c.BatchStatus(ctx, *sum.BatchID)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %d jobs, %d queued\n", st.Name, st.Total, st.Queued)
	// Output:
	// enqueued 2, duplicate 1
	// onboarding: 2 jobs, 2 queued
}
