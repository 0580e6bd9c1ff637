package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

const (
	// FollowName is the asynq queue of launch follow-up tasks. It is a queue
	// of its own so that the launch queue's depth counts launches only, and
	// so that a worker without FOLLOW_LAUNCH leaves these tasks alone.
	FollowName = "follow"
	// FollowTaskType is the asynq task type of a launch follow-up: it polls
	// one launch's status until the state is final.
	FollowTaskType = "rcs:follow"
)

// FollowPayload is a follow-up task's payload: which launch of which job.
type FollowPayload struct {
	JobID         string `json:"job_id"`
	SID           string `json:"sid"`
	AgentNo       string `json:"agent_no"`
	AgentLaunchID string `json:"agent_launch_id"`
}

// FollowTaskID is the asynq task ID of a launch's follow-up. It names the
// launch, not only the job, so that a relaunch gets a follow-up of its own
// while its predecessor's task sees the new launch ID and ends.
func FollowTaskID(jobID, agentLaunchID string) string {
	return "follow:" + jobID + ":" + agentLaunchID
}

// PushFollow schedules the follow-up of a launch to run at at. It reports
// false, without error, when the launch's follow-up task already exists:
// there is one task per launch, whoever pushes it.
func PushFollow(ctx context.Context, c *asynq.Client, p FollowPayload, at time.Time) (bool, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return false, fmt.Errorf("encode follow-up of job %s: %w", p.JobID, err)
	}
	task := asynq.NewTask(FollowTaskType, b, asynq.TaskID(FollowTaskID(p.JobID, p.AgentLaunchID)),
		asynq.Queue(FollowName), asynq.MaxRetry(maxRetry), asynq.ProcessAt(at))
	pushed, err := enqueue(ctx, c, task)
	if err != nil {
		return false, fmt.Errorf("push follow-up of job %s: %w", p.JobID, err)
	}
	return pushed, nil
}
