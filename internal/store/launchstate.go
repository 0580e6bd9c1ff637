package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/rdb"
)

// Launch follow-up
//
// A launch request answered RCS902 is only submitted: Google and the
// carriers launch or reject the agent later. With the follow-up on, Finish
// starts a success in launch state "pending" and the worker polls Kaleyra's
// launch status until the state is final or the follow-up's age runs out;
// RecordLaunchPoll records each poll. A job's batch counts its followed jobs
// by launch state ("launch:<state>" counters, kept by the same scripts), and
// each change of state appends a results stream entry with outcome
// "launch_state".

// LaunchState is where a followed launch stands: one of LaunchStates.
type LaunchState string

// The launch states, in the terms of Google RBM's launch states.
const (
	LaunchPending   LaunchState = "pending"   // submitted, under review
	LaunchLaunched  LaunchState = "launched"  // approved and live
	LaunchRejected  LaunchState = "rejected"  // refused
	LaunchSuspended LaunchState = "suspended" // taken down after launch
	LaunchUnknown   LaunchState = "unknown"   // answered, but with no state we recognise
)

// LaunchStates lists the launch states in the order they are shown.
var LaunchStates = []LaunchState{LaunchPending, LaunchLaunched, LaunchRejected, LaunchSuspended, LaunchUnknown}

// Final reports whether following a launch in state s stops: launched,
// rejected and suspended are decisions; pending and unknown are polled on.
func (s LaunchState) Final() bool {
	return s == LaunchLaunched || s == LaunchRejected || s == LaunchSuspended
}

// Why following a launch ended.
const (
	FollowFinal   = "final"   // the launch reached a final state
	FollowExpired = "expired" // FOLLOW_MAX_AGE passed with the launch still pending
)

// LaunchFollow is what the follow-up knows of a followed success.
type LaunchFollow struct {
	State LaunchState `json:"launch_state"`
	// StateAt is when the state was first seen (for pending: when the
	// launch was submitted).
	StateAt    time.Time `json:"launch_state_at"`
	FollowedAt time.Time `json:"followed_since"`
	Polls      int       `json:"polls"`
	PolledAt   time.Time `json:"last_poll_at,omitzero"`
	// NextPollAt is zero once following has ended, and Ended says why
	// (FollowFinal or FollowExpired).
	NextPollAt time.Time `json:"next_poll_at,omitzero"`
	Ended      string    `json:"ended,omitempty"`
	// Code, Message and Response are the last poll's: Kaleyra's answer, or,
	// when LastPollFailed, why the poll failed (a bad answer or none).
	LastPollFailed bool            `json:"last_poll_failed,omitempty"`
	Code           string          `json:"last_code,omitempty"`
	Message        string          `json:"last_message,omitempty"`
	Response       json.RawMessage `json:"last_response,omitempty"`
}

// launchFollowFrom reads a record's launch_* fields; nil when the job is not
// followed.
func launchFollowFrom(h map[string]string) *LaunchFollow {
	if h["launch_state"] == "" {
		return nil
	}
	polls, _ := strconv.Atoi(h["launch_polls"])
	return &LaunchFollow{
		State:          LaunchState(h["launch_state"]),
		StateAt:        msTime(h["launch_state_at"]),
		FollowedAt:     msTime(h["launch_followed_at"]),
		Polls:          polls,
		PolledAt:       msTime(h["launch_polled_at"]),
		NextPollAt:     msTime(h["launch_next_poll_at"]),
		Ended:          h["launch_follow_ended"],
		LastPollFailed: h["launch_poll_failed"] == "1",
		Code:           h["launch_status_code"],
		Message:        h["launch_status_message"],
		Response:       rawOrNil(h["launch_status_response"]),
	}
}

// FollowedLaunch is what a follow-up poll needs of a job's record.
type FollowedLaunch struct {
	State         State // the job's state: a relaunch may be queued or running
	SID           string
	AgentNo       string
	AgentLaunchID string
	Batch         string
	// Follow is nil when the job is not followed (or not any more, while a
	// relaunch runs).
	Follow *LaunchFollow
}

// FollowedLaunch reads the fields of job id that a poll needs, or
// ErrNotFound.
func (s *Store) FollowedLaunch(ctx context.Context, id string) (FollowedLaunch, error) {
	h, err := s.rdb.HGetAll(ctx, rdb.JobKey(id)).Result()
	if err != nil {
		return FollowedLaunch{}, fmt.Errorf("read job %s: %w", id, err)
	}
	if len(h) == 0 {
		return FollowedLaunch{}, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	return FollowedLaunch{State: State(h["state"]), SID: h["sid"], AgentNo: h["agent_no"],
		AgentLaunchID: h["agent_launch_id"], Batch: h["batch"], Follow: launchFollowFrom(h)}, nil
}

// Poll is one launch status poll to record.
type Poll struct {
	AgentLaunchID string // the launch polled
	// PollsBefore is LaunchFollow.Polls as read before the poll: the poll
	// is recorded only if no other was since.
	PollsBefore int
	State       LaunchState // the state answered; "" for a failed poll
	Code        string
	Message     string
	Response    json.RawMessage
	// NextPollAt is when to poll next; zero ends following, for the reason
	// Ended.
	NextPollAt time.Time
	Ended      string
}

// PollResult is what RecordLaunchPoll did.
type PollResult string

// Poll results: the script's answers.
const (
	PollChanged    PollResult = "changed"    // recorded; the launch state changed
	PollRecorded   PollResult = "recorded"   // recorded; same state
	PollMissing    PollResult = "missing"    // no record (deleted, or expired with JOB_RETENTION)
	PollSuperseded PollResult = "superseded" // the job was relaunched since: another launch
	PollWaiting    PollResult = "waiting"    // a relaunch of the job is queued or running
	PollEnded      PollResult = "ended"      // following had already ended
	PollStale      PollResult = "stale"      // another poll was recorded first
)

// RecordLaunchPoll records poll p of job id in one atomic step: the answer,
// the next poll's time, and on a change of state the batch counters and a
// results stream entry.
func (s *Store) RecordLaunchPoll(ctx context.Context, id string, p Poll, now time.Time) (PollResult, error) {
	res, err := rdb.RecordLaunchPoll(ctx, s.rdb, rdb.PollArgs{ID: id, AgentLaunchID: p.AgentLaunchID,
		Polls: p.PollsBefore, State: string(p.State), Code: p.Code, Message: p.Message, Response: p.Response,
		Now: now, NextPollAt: p.NextPollAt, Ended: p.Ended, ResultsMaxLen: s.ResultsMaxLen})
	if err != nil {
		return "", fmt.Errorf("record launch poll of job %s: %w", id, err)
	}
	return PollResult(res), nil
}
