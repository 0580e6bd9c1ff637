package queue_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch"
)

// BenchmarkEnqueue is one new job through Producer.Enqueue: the record's
// script, then asynq's enqueue script. Jobs (and their IDs) are made outside
// the timer.
func BenchmarkEnqueue(b *testing.B) {
	p := testenv.New(b).Producer
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		j := testJob(strconv.Itoa(100000 + i))
		i++
		b.StartTimer()
		st, err := p.Enqueue(ctx, j, "", false)
		if err != nil || st != queue.Enqueued {
			b.Fatal(st, err)
		}
	}
}

// BenchmarkEnqueueMany is a chunk of 64 new jobs through
// Producer.EnqueueMany, as `enqueue --file` sends them (records in one
// script, tasks pushed concurrently through an AutoPipeliner); allocs/op
// are for the 64 jobs.
func BenchmarkEnqueueMany(b *testing.B) {
	const chunk = 64
	e := testenv.New(b)
	ap, err := e.Store.Redis().AutoPipeline()
	if err != nil {
		b.Fatal(err)
	}
	p := &queue.Producer{Store: e.Store, Client: asynq.NewClientFromRedisClient(ap), SID: testenv.SID}
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		b.StopTimer()
		jobs := make([]launch.Job, chunk)
		for k := range jobs {
			jobs[k] = testJob(strconv.Itoa(100000 + n))
			n++
		}
		b.StartTimer()
		for _, res := range p.EnqueueMany(ctx, jobs, "", false) {
			if res.Err != nil || res.Status != queue.Enqueued {
				b.Fatal(res.Status, res.Err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/job")
}
