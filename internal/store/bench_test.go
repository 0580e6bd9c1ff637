package store

import (
	"strconv"
	"testing"

	"github.com/rcslaunch/rcslaunch/internal/testredis"
)

// BenchmarkStartFinish is the store's share of one successful job on the
// worker's hot path: Start (one script) then Finish (one script: record,
// attempt log, results stream, outcome counters). The record is created
// outside the timer, as the producer would have.
func BenchmarkStartFinish(b *testing.B) {
	s := New(testredis.Start(b).Client())
	o := Outcome{Kind: FinishSucceeded, AgentLaunchID: "L1",
		Attempt:  Attempt{N: 1, Code: "RCS902", Message: "ok", HTTPStatus: 200, Outcome: AttemptSucceeded},
		Response: []byte(`{"code":"RCS902","data":{"agent_launch_id":"L1"}}`)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		j := newJob("job-" + strconv.Itoa(i))
		j.Batch = ""
		i++
		if _, err := s.Create(ctx, j, t0); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		state, _, err := s.Start(ctx, j, 9, t0)
		if err != nil || state != StateRunning {
			b.Fatal(state, err)
		}
		if res, err := s.Finish(ctx, j.ID, o, t0); err != nil || res != StateSucceeded {
			b.Fatal(res, err)
		}
	}
}
