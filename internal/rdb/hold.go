package rdb

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

var holdQueueScript = load("hold_queue.lua")

// AsynqPausedKey is asynq's key that pauses the queue qname while it
// exists: asynq's dequeue skips such a queue (asynq's base.PausedKey).
func AsynqPausedKey(qname string) string { return "asynq:{" + qname + "}:paused" }

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
