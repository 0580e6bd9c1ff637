package rdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

var holdQueueScript = load("hold_queue.lua")

// AsynqPausedKey is asynq's key that pauses the queue qname while it
// exists: asynq's dequeue skips such a queue (asynq's base.PausedKey).
func AsynqPausedKey(qname string) string { return "asynq:{" + qname + "}:paused" }

// AsynqHolds tells whether asynq's queue qname holds a task a worker will
// run: pending, active, scheduled or retrying (archived ones never run). One
// round trip: the keys share the queue's slot.
func AsynqHolds(ctx context.Context, c redis.UniversalClient, qname string) (bool, error) {
	p := "asynq:{" + qname + "}:"
	pipe := c.Pipeline()
	counts := []*redis.IntCmd{pipe.LLen(ctx, p+"pending"), pipe.LLen(ctx, p+"active"),
		pipe.ZCard(ctx, p+"scheduled"), pipe.ZCard(ctx, p+"retry")}
	if _, err := pipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("count the tasks of queue %s: %w", qname, err)
	}
	for _, n := range counts {
		if n.Val() > 0 {
			return true, nil
		}
	}
	return false, nil
}

// HoldQueues runs hold_queue.lua for each of qnames in one round trip: no
// worker takes their tasks for d, unless a longer hold or an operator's
// pause is in place.
func HoldQueues(ctx context.Context, c redis.UniversalClient, qnames []string, d time.Duration, now time.Time) error {
	pipe := c.Pipeline()
	pending := make([]*Pending[bool], len(qnames))
	for i, q := range qnames {
		pending[i] = queue(ctx, pipe, holdQueueScript, []string{AsynqPausedKey(q)}, []any{d.Milliseconds(), now.Unix()}, isOne)
	}
	_, _ = pipe.Exec(ctx)
	for _, p := range pending {
		if _, err := p.Result(ctx, c); err != nil {
			return err
		}
	}
	return nil
}
