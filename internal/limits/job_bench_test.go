package limits

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testredis"
)

// BenchmarkJobRedisWork is the Redis side of one successful job's life as a
// worker with one account lives it: the producer's Create, the grant and
// start in one script (Limiter.AcquireStart), then the outcome and the
// slot's release on one pipeline, as worker.finish sends them. Each is a
// script; it reports redis-µs/job, the time Redis spent running them (INFO
// commandstats: no network I/O), for comparing the scripts' cost.
//
// With BENCH_REDIS_ADDR set it runs against that server instead of a
// private one, so that Redis can run under valgrind --tool=callgrind: two
// runs at -benchtime Nx and 2Nx, whose instruction counts differ by N jobs'
// worth, give a figure that does not depend on the machine's load
// (BENCHMARKS.md, "Redis instructions per job").
func BenchmarkJobRedisWork(b *testing.B) {
	ctx := context.Background()
	var c *redis.Client
	if addr := os.Getenv("BENCH_REDIS_ADDR"); addr != "" {
		c = redis.NewClient(&redis.Options{Addr: addr})
		if err := c.FlushDB(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	} else {
		c = testredis.Start(b).Client()
	}
	s := store.New(c)
	s.Retention = time.Hour
	l, err := New(c, Config{Rate: 1e6, Burst: 1000, MaxInFlight: 1000, Lease: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	// The bench command's payload and the simulator's answer, which echoes it.
	payload := `{"launch":{"agent_access_instructions":"Demo agent; no login needed","agent_no":"10000000",` +
		`"interactions_description":"Order and delivery updates","launch_name":"launch_10000000","launch_type":"1",` +
		`"optin_description":"Customers opt in on the checkout page","optout_description":"Reply STOP at any time",` +
		`"screenshot_uris":["https://www.example.com/screens/10000000.png"],"trigger_description":"The customer sends START"},` +
		`"regions":[{"region":"4f4bf2b0-5110-44e1-9aa1-43392c7d3b17","region_id":"8346a250-d7a9-47dc-8202-a8b1c2d3e4e8"}]}`
	const launchID = "d8a6a551-af7f-4efb-aa69-0a4180c63aef"
	msg := "Agent launch request created successfully"
	o := store.Outcome{Kind: store.FinishSucceeded, AgentLaunchID: launchID,
		Attempt:  store.Attempt{N: 1, Code: "RCS902", Message: msg, HTTPStatus: 200, Outcome: store.AttemptSucceeded},
		Response: []byte(`{"code":"RCS902","message":"` + msg + `","data":{"agent_launch_id":"` + launchID + `","launch":` + payload + `}}`)}
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		j := store.NewJob{ID: "0123456789abcdef0123456789abcdef" + strconv.Itoa(i), SID: "BENCH000SID",
			AgentNo: strconv.Itoa(10000000 + i), Payload: []byte(payload), Queue: "launch:BENCH000SID"}
		if _, err := s.Create(ctx, j, time.Now()); err != nil {
			b.Fatal(err)
		}
		slot, started, err := l.AcquireStart(ctx, j.SID, j.StartArgs(9, time.Now()))
		if err != nil || started.State != string(store.StateRunning) {
			b.Fatal(started, err)
		}
		pipe := c.Pipeline()
		fin, err := s.QueueFinish(ctx, pipe, j.ID, o, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		rel := slot.QueueRelease(ctx, pipe, Answered)
		_, _ = pipe.Exec(ctx)
		if _, err := fin.State(); err != nil {
			b.Fatal(err)
		}
		if _, err := rel.Events(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(scriptStat(b, c, "usec"))/float64(b.N), "redis-µs/job")
}
