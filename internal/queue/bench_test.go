package queue

import (
	"context"
	"strconv"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testredis"
)

// BenchmarkEnqueue is one new job through Producer.Enqueue: the record's
// script, then asynq's enqueue script. Jobs (and their IDs) are made outside
// the timer.
func BenchmarkEnqueue(b *testing.B) {
	r := testredis.Start(b)
	ac := asynq.NewClient(asynq.RedisClientOpt{Addr: r.Addr()})
	b.Cleanup(func() { ac.Close() })
	p := &Producer{Store: store.New(r.Client()), Client: ac, SID: testSID}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		j := testJob(strconv.Itoa(100000 + i))
		i++
		b.StartTimer()
		st, err := p.Enqueue(ctx, j, "", false)
		if err != nil || st != Enqueued {
			b.Fatal(st, err)
		}
	}
}
