package ops_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/ops"
	"github.com/rcslaunch/rcslaunch/worker"
)

func ExampleClient_RetryDeadLetters() {
	redis := miniredis.NewMiniRedis()
	if err := redis.Start(); err != nil {
		panic(err)
	}
	defer redis.Close()
	conn := asynq.RedisClientOpt{Addr: redis.Addr()}
	c, err := ops.New(ops.Options{Redis: conn, SID: "HXAP16XXXXXX"})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx := context.Background()

	// A dead letter to retry: Kaleyra (here its simulator) refuses the first
	// call with RCS904, a terminal code.
	stop := runWorker(conn, "48905")
	defer stop()
	res, err := c.Enqueue(ctx, sampleJob("48905"), nil)
	if err != nil {
		panic(err)
	}
	rec := waitFinished(ctx, c, res.JobID)
	fmt.Println(rec.State, rec.Code)

	// Operators retry dead letters by ID, by code or all at once; each goes
	// back on the queue with a fresh attempt budget.
	tally, err := c.RetryDeadLetters(ctx, ops.Selection{Code: "RCS904"}, nil)
	fmt.Println(tally.String(), err)
	rec = waitFinished(ctx, c, res.JobID)
	fmt.Println(rec.State, rec.Code)
	// Output:
	// dead_lettered RCS904
	// retried 1 <nil>
	// succeeded RCS902
}

// runWorker runs a worker against a Kaleyra simulator that refuses agent's
// first launch with RCS904.
func runWorker(conn asynq.RedisConnOpt, agent string) (stop func()) {
	s := sim.New(sim.Config{APIKey: "example-key"})
	s.Script(agent, sim.StepMissingFields)
	base, stopSim, err := s.Start("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	w, err := worker.New(worker.Options{Redis: conn, SID: "HXAP16XXXXXX", APIKey: "example-key", BaseURL: base})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return func() { cancel(); <-done; stopSim() }
}

// waitFinished polls the job until it has its outcome.
func waitFinished(ctx context.Context, c *ops.Client, id string) ops.Record {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if rec, err := c.Job(ctx, id); err == nil && rec.Finished() {
			return rec
		}
	}
	panic("job " + id + " did not finish in 30s")
}
