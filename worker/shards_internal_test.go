package worker

import "testing"

// TestShards: two asynq servers from shardQueues queues on, never more
// servers than the concurrency allows.
func TestShards(t *testing.T) {
	for _, c := range []struct{ concurrency, queues, want int }{
		{10, 1, 1}, {10, shardQueues - 1, 1}, {10, shardQueues, 2}, {400, 601, 2}, {1, 601, 1},
	} {
		if got := shards(c.concurrency, c.queues); got != c.want {
			t.Errorf("shards(%d, %d) = %d, want %d", c.concurrency, c.queues, got, c.want)
		}
	}
}
