package ops

import (
	"github.com/rcslaunch/rcslaunch/internal/jobfile"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/store"
)

// The records a Client returns. They are defined where they are stored and
// named here, so that code outside this module can use them.
type (
	// Record is everything known about one job.
	Record = store.Record
	// Attempt is one call to Kaleyra (or one lost with its worker).
	Attempt = store.Attempt
	// State is where a job is in its life.
	State = store.State
	// Batch is a batch's status, read from its counters.
	Batch = store.Batch
	// BatchJob is one job of a batch, as its report lists it.
	BatchJob = store.BatchJob
	// Result is one entry of the results stream.
	Result = store.Result
	// ResultsFilter selects entries of the results stream (ReadResultsPage)
	// by the job's account; its zero value selects every entry.
	ResultsFilter = store.ResultsFilter
	// LaunchState is where a followed launch stands (FOLLOW_LAUNCH): one
	// of LaunchStates.
	LaunchState = store.LaunchState
	// LaunchFollow is what the follow-up knows of a followed success
	// (Record.Launch).
	LaunchFollow = store.LaunchFollow
	// Filter selects dead letters by last code (in any case: see
	// NormalizeCode), time and batch.
	Filter = store.Filter
	// Status is what happened to one job offered to Enqueue.
	Status = queue.Status
	// Format is a job file's format.
	Format = jobfile.Format
	// Priority orders the jobs of one account (EnqueueOpts.Priority): an
	// account's high-priority jobs go first, by weight, never those of
	// another account.
	Priority = queue.Priority
)

// Priorities, within one account.
const (
	PriorityHigh    = queue.PriorityHigh
	PriorityDefault = queue.PriorityDefault
	PriorityLow     = queue.PriorityLow
)

// ParsePriority reads a priority by name ("high", "default", "low"); ""
// is PriorityDefault.
func ParsePriority(s string) (Priority, error) { return queue.ParsePriority(s) }

// Job states. Succeeded and dead-lettered are final.
const (
	StateQueued       = store.StateQueued
	StateRunning      = store.StateRunning
	StateRetrying     = store.StateRetrying
	StateSucceeded    = store.StateSucceeded
	StateDeadLettered = store.StateDeadLettered
)

// Launch states, in the terms of Google RBM's. Launched, rejected and
// suspended are final; pending and unknown are polled on.
const (
	LaunchPending   = store.LaunchPending
	LaunchLaunched  = store.LaunchLaunched
	LaunchRejected  = store.LaunchRejected
	LaunchSuspended = store.LaunchSuspended
	LaunchUnknown   = store.LaunchUnknown
)

// LaunchStates lists the launch states in the order they are shown.
var LaunchStates = store.LaunchStates

// Why following a launch ended (LaunchFollow.Ended).
const (
	FollowFinal   = store.FollowFinal   // the launch reached a final state
	FollowExpired = store.FollowExpired // FOLLOW_MAX_AGE passed with the launch still pending
)

// OutcomeLaunchState is the outcome of a results stream entry that reports
// a followed launch's change of state, not a finished job.
const OutcomeLaunchState = store.OutcomeLaunchState

// Enqueue statuses.
const (
	StatusEnqueued        = queue.Enqueued        // now on the queue
	StatusDuplicate       = queue.Duplicate       // already queued, running or retrying
	StatusAlreadyLaunched = queue.AlreadyLaunched // succeeded before; not launched again without Force
	StatusDeadLettered    = queue.DeadLettered    // in the dead-letter store; retry it there
	StatusConflict        = queue.Conflict        // the ID exists with a different payload or account
)

// Job file formats.
const (
	FormatJSONL = jobfile.JSONL
	FormatCSV   = jobfile.CSV
)

// ParseFormat reads a format's name: "jsonl" or "csv".
func ParseFormat(s string) (Format, error) { return jobfile.ParseFormat(s) }
