package worker

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/limits"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testredis"
)

const finishSID = "FINISHSID01"

// newFinishWorker builds a worker on a private Redis, with the limits out of
// the way, for the tests and benchmark of finish; it is never run.
func newFinishWorker(tb testing.TB) *Worker {
	tb.Helper()
	r := testredis.Start(tb)
	w, err := New(Options{
		Redis: asynq.RedisClientOpt{Addr: r.Addr()}, SID: finishSID, APIKey: "test-key",
		BaseURL: "http://127.0.0.1:1", RateLimit: 1e6, RateBurst: 1000, MaxInFlight: 1_000_000,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { w.store.Redis().Close() })
	return w
}

// startJob creates job id, takes a launch slot and starts the job, as
// process does before its call to Kaleyra.
func startJob(tb testing.TB, w *Worker, id string) *limits.Slot {
	tb.Helper()
	ctx := context.Background()
	rec := store.NewJob{ID: id, SID: finishSID, AgentNo: "+15550001", Payload: []byte(`{"launch":{}}`)}
	if _, err := w.store.Create(ctx, rec, time.Now()); err != nil {
		tb.Fatal(err)
	}
	slot, err := w.limiter.Acquire(ctx, finishSID)
	if err != nil {
		tb.Fatal(err)
	}
	if state, _, err := w.store.Start(ctx, rec, 9, time.Now()); err != nil || state != store.StateRunning {
		tb.Fatalf("start %s: %s, %v", id, state, err)
	}
	return slot
}

func succeeded() store.Outcome {
	now := time.Now()
	return store.Outcome{
		Kind: store.FinishSucceeded, AgentLaunchID: "L1",
		Attempt: store.Attempt{N: 1, Outcome: store.AttemptSucceeded, Code: "RCS902", HTTPStatus: 200,
			StartedAt: now, FinishedAt: now},
		Response: []byte(`{"code":"RCS902","data":{"launch":{"agent_launch_id":"L1"}}}`),
	}
}

// TestFinishAfterScriptFlush: after a Redis restart (or SCRIPT FLUSH) the
// pipelined scripts answer NOSCRIPT without running; finish must still
// record the outcome once and free the slot.
func TestFinishAfterScriptFlush(t *testing.T) {
	w := newFinishWorker(t)
	ctx := context.Background()
	for i, flush := range []bool{false, true} {
		id := "job-" + strconv.Itoa(i)
		slot := startJob(t, w, id)
		if flush {
			if err := w.store.Redis().ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		state, err := w.finish(w.log, slot, limits.Answered, id, succeeded())
		if err != nil || state != store.StateSucceeded {
			t.Fatalf("flush %v: finish = %q, %v", flush, state, err)
		}
		rec, err := w.store.Get(ctx, id)
		if err != nil || rec.State != store.StateSucceeded || len(rec.History) != 1 {
			t.Fatalf("flush %v: record %+v, %v", flush, rec, err)
		}
		if st, err := w.limiter.State(ctx, finishSID); err != nil || st.InFlight != 0 {
			t.Fatalf("flush %v: %d slots still held (%v)", flush, st.InFlight, err)
		}
	}
	if n, err := w.store.ResultsLen(ctx); err != nil || n != 2 {
		t.Fatalf("results stream holds %d entries (%v), want 2", n, err)
	}
}

// BenchmarkFinish is the end of a successful job on the worker's hot path:
// the slot's release and the outcome's record, pipelined in one round trip
// to a loopback Redis ("pipelined", what finish does), against the two
// round trips of releasing and then recording ("separate"). Creating,
// acquiring and starting are untimed.
func BenchmarkFinish(b *testing.B) {
	w := newFinishWorker(b)
	o := succeeded()
	i := 0
	for _, bm := range []struct {
		name string
		end  func(slot *limits.Slot, id string) (store.State, error)
	}{
		{"pipelined", func(slot *limits.Slot, id string) (store.State, error) {
			return w.finish(w.log, slot, limits.Answered, id, o)
		}},
		{"separate", func(slot *limits.Slot, id string) (store.State, error) {
			w.release(w.log, slot, limits.Answered)
			return w.store.Finish(context.Background(), id, o, time.Now())
		}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				id := "job-" + strconv.Itoa(i)
				i++
				slot := startJob(b, w, id)
				b.StartTimer()
				if state, err := bm.end(slot, id); err != nil || state != store.StateSucceeded {
					b.Fatal(state, err)
				}
			}
		})
	}
}
