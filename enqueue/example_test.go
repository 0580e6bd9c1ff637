package enqueue_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/enqueue"
	"github.com/rcslaunch/rcslaunch/launch"
)

func Example() {
	// An in-process Redis keeps the example self-contained; use your real one.
	redis := miniredis.NewMiniRedis()
	if err := redis.Start(); err != nil {
		panic(err)
	}
	defer redis.Close()

	c, err := enqueue.New(enqueue.Options{Redis: asynq.RedisClientOpt{Addr: redis.Addr()}, SID: "HXAP16XXXXXX"})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	job := launch.Job{Launch: launch.Launch{
		AgentNo:                 "48900",
		OptinDescription:        "Users opt in on our website",
		TriggerDescription:      "The user sends START",
		InteractionsDescription: "Order updates",
		OptoutDescription:       "Reply STOP",
		AgentAccessInstructions: "Demo account; no login needed",
	}}
	ctx := context.Background()
	id, err := c.Enqueue(ctx, job)
	fmt.Println(id, err)

	// The same job again is recognised by its derived ID and not enqueued twice.
	_, err = c.Enqueue(ctx, job)
	fmt.Println(errors.Is(err, enqueue.ErrDuplicate))

	// Invalid jobs name every field at fault.
	_, err = c.Enqueue(ctx, launch.Job{Launch: launch.Launch{AgentNo: "48901"}})
	var invalid *launch.ValidationError
	if errors.As(err, &invalid) {
		fmt.Println(invalid.Errors[0])
	}
	// Output:
	// f22f5a72fa79ec7d1585652b13705bad <nil>
	// true
	// launch.optin_description: is required and must be a non-empty string
}
