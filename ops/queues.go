package ops

import (
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/queue"
)

// QueueCounts is asynq's view of one or more launch queues, summed.
type QueueCounts struct {
	Pending        int  `json:"pending"`
	Active         int  `json:"active"`
	Scheduled      int  `json:"scheduled"`
	Retry          int  `json:"retry"`
	Archived       int  `json:"archived"`
	ProcessedToday int  `json:"processed_today"`
	FailedToday    int  `json:"failed_today"`
	Paused         bool `json:"paused"` // any of the queues is paused
	// LatencySeconds is how long the oldest pending task of the queues
	// has waited.
	LatencySeconds float64 `json:"latency_seconds"`
}

func (q *QueueCounts) add(info *asynq.QueueInfo) {
	q.Pending += info.Pending
	q.Active += info.Active
	q.Scheduled += info.Scheduled
	q.Retry += info.Retry
	q.Archived += info.Archived
	q.ProcessedToday += info.Processed
	q.FailedToday += info.Failed
	q.Paused = q.Paused || info.Paused
	q.LatencySeconds = max(q.LatencySeconds, info.Latency.Seconds())
}

// AccountQueues is one account's launch queues (one per priority), summed,
// with the pending tasks of each priority.
type AccountQueues struct {
	QueueCounts
	PendingByPriority map[Priority]int `json:"pending_by_priority"`
}

// LaunchQueues is asynq's view of every launch queue: the shared one, where
// a job waits while no live worker serves its account, and those of each
// account.
type LaunchQueues struct {
	// Total sums every launch queue; nil before any task was enqueued.
	Total *QueueCounts
	// Shared is the shared launch queue; nil before any task went on it.
	Shared *QueueCounts
	// Accounts are the queues of each account that ever had a task, by
	// SID.
	Accounts map[string]*AccountQueues
}

// LaunchQueues reads asynq's statistics of every launch queue. asynq keeps
// a queue once it had a task, so an account no longer served shows (with
// what it still holds) until its queue is removed.
func (c *Client) LaunchQueues() (LaunchQueues, error) {
	out := LaunchQueues{Accounts: map[string]*AccountQueues{}}
	names, err := c.inspector.Queues()
	if err != nil {
		return out, fmt.Errorf("list asynq queues: %w", err)
	}
	for _, name := range names {
		sid, prio, ok := queue.ParseQueue(name)
		if !ok {
			continue
		}
		info, err := c.inspector.GetQueueInfo(name)
		if err != nil {
			return out, fmt.Errorf("read asynq queue %s: %w", name, err)
		}
		if out.Total == nil {
			out.Total = &QueueCounts{}
		}
		out.Total.add(info)
		if sid == "" {
			out.Shared = &QueueCounts{}
			out.Shared.add(info)
			continue
		}
		a := out.Accounts[sid]
		if a == nil {
			a = &AccountQueues{PendingByPriority: map[Priority]int{}}
			out.Accounts[sid] = a
		}
		a.add(info)
		a.PendingByPriority[prio] += info.Pending
	}
	return out, nil
}
