// Package store keeps rcslaunch's own state in Redis: one record per job (its
// state, payload and attempt log), the dead-letter store, and the results
// stream. Every write that changes a job's outcome is one Lua script, so the
// record, the stream and the dead-letter index never disagree after a crash.
//
// The store never sees the Kaleyra API key: nothing here has a field for it.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/jsontext"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
)

// State is where a job is in its life, as stored and as shown by
// `rcslaunch status`.
type State string

// Job states. Succeeded and dead-lettered are final.
const (
	StateQueued       State = "queued"
	StateRunning      State = rdb.JobRunning // as start_job.lua writes it
	StateRetrying     State = "retrying"
	StateSucceeded    State = "succeeded"
	StateDeadLettered State = "dead_lettered"
)

// Finished reports whether s is a final state.
func (s State) Finished() bool { return s == StateSucceeded || s == StateDeadLettered }

// Outcomes of one attempt, as kept in a job's attempt log.
const (
	AttemptSucceeded = "succeeded"
	AttemptRetryable = "retryable"
	AttemptTerminal  = "terminal"
	AttemptThrottled = "throttled"
	AttemptLost      = "lost"
)

// ResultsStream is the stream with one entry per finished job (the
// contract's name; rdb.ResultsStream).
const ResultsStream = rdb.ResultsStream

// ErrNotFound means no record exists for the job ID.
var ErrNotFound = errors.New("job not found")

// Store reads and writes rcslaunch's records through one Redis client
// (single node, Sentinel or Cluster).
type Store struct {
	rdb redis.UniversalClient
	// Retention is how long a succeeded job's record is kept; 0 keeps it forever.
	Retention time.Duration
	// ResultsMaxLen caps the results stream approximately; 0 never trims.
	ResultsMaxLen int64
}

// New returns a Store on rdb.
func New(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb} }

// Redis returns the client the store uses.
func (s *Store) Redis() redis.UniversalClient { return s.rdb }

// Attempt is one call to Kaleyra (or one that was lost with its worker).
type Attempt struct {
	// N is the attempt number counted against the retry budget; 0 for a
	// call that did not count (throttled by Kaleyra).
	N          int       `json:"attempt"`
	Outcome    string    `json:"outcome"`
	Code       string    `json:"code,omitempty"`
	Message    string    `json:"message,omitempty"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Uncertain  bool      `json:"uncertain,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at"`
}

// entry returns a as its attempt log entry: json.Marshal(a), byte for byte
// and error for error, written without its reflection, which was most of
// the cost of recording an outcome. Strings are quoted with HTML escaping,
// the fields left out that the struct tags leave out, and the times written
// by AppendText, which writes what their MarshalJSON writes, but for the
// quotes, and fails when it does: a time RFC 3339 cannot express (a year
// outside [0,9999], a zone offset of a day or more) is left to json.Marshal,
// for its error.
func (a Attempt) entry() ([]byte, error) {
	// Room for every key, the numbers and the times: one allocation but for
	// text to escape.
	b := make([]byte, 0, 224+len(a.Outcome)+len(a.Code)+len(a.Message))
	b = append(b, `{"attempt":`...)
	b = strconv.AppendInt(b, int64(a.N), 10)
	b = append(b, `,"outcome":`...)
	b = jsontext.AppendStringEscapeHTML(b, a.Outcome)
	if a.Code != "" {
		b = append(b, `,"code":`...)
		b = jsontext.AppendStringEscapeHTML(b, a.Code)
	}
	if a.Message != "" {
		b = append(b, `,"message":`...)
		b = jsontext.AppendStringEscapeHTML(b, a.Message)
	}
	if a.HTTPStatus != 0 {
		b = append(b, `,"http_status":`...)
		b = strconv.AppendInt(b, int64(a.HTTPStatus), 10)
	}
	if a.Uncertain {
		b = append(b, `,"uncertain":true`...)
	}
	var err error
	if !a.StartedAt.IsZero() {
		b = append(b, `,"started_at":"`...)
		if b, err = a.StartedAt.AppendText(b); err != nil {
			return json.Marshal(a)
		}
		b = append(b, '"')
	}
	b = append(b, `,"finished_at":"`...)
	if b, err = a.FinishedAt.AppendText(b); err != nil {
		return json.Marshal(a)
	}
	return append(b, `"}`...), nil
}

// Record is everything known about one job.
type Record struct {
	ID            string          `json:"job_id"`
	SID           string          `json:"sid"`
	AgentNo       string          `json:"agent_no"`
	State         State           `json:"state"`
	Payload       json.RawMessage `json:"payload"`
	Batch         string          `json:"batch_id,omitempty"`
	Attempts      int             `json:"attempts"`
	MaxAttempts   int             `json:"max_attempts,omitempty"`
	Code          string          `json:"code,omitempty"`
	Message       string          `json:"message,omitempty"`
	HTTPStatus    int             `json:"http_status,omitempty"`
	AgentLaunchID string          `json:"agent_launch_id,omitempty"`
	Uncertain     bool            `json:"uncertain,omitempty"`
	// Response is Kaleyra's answer to a job that did not succeed; a
	// success's is on its results stream entry only (finish_job.lua).
	Response   json.RawMessage `json:"response,omitempty"`
	EnqueuedAt time.Time       `json:"enqueued_at,omitzero"`
	UpdatedAt  time.Time       `json:"updated_at,omitzero"`
	NextRunAt  time.Time       `json:"next_run_at,omitzero"`
	FinishedAt time.Time       `json:"finished_at,omitzero"`
	// LaunchState and Launch are set for a success whose launch is
	// followed (FOLLOW_LAUNCH): its state, and the follow-up's details.
	LaunchState LaunchState   `json:"launch_state,omitempty"`
	Launch      *LaunchFollow `json:"launch_follow,omitempty"`
	History     []Attempt     `json:"history"`
	// Queue is the asynq queue of the job's task (see NewJob.Queue), which
	// names the priority it runs at; "" in records written before it was
	// kept.
	Queue string `json:"-"`
}

// Finished reports whether the job has its final outcome.
func (r Record) Finished() bool { return r.State.Finished() }

// Get returns the job's record with its attempt log, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Record, error) {
	pipe := s.rdb.Pipeline()
	h := pipe.HGetAll(ctx, rdb.JobKey(id))
	l := pipe.LRange(ctx, rdb.AttemptsKey(id), 0, -1)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Record{}, fmt.Errorf("read job %s: %w", id, err)
	}
	if len(h.Val()) == 0 {
		return Record{}, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	return recordWithHistory(id, h.Val(), l.Val()), nil
}

// recordWithHistory is the record of job id, hash h, with its attempt log
// raw. A job that succeeded at its first attempt keeps no log
// (finish_job.lua): its one attempt is read from the record, which has every
// field of it.
func recordWithHistory(id string, h map[string]string, raw []string) Record {
	r := recordFrom(id, h)
	if len(raw) > 0 || r.State != StateSucceeded {
		r.History = decodeAttempts(raw)
		return r
	}
	r.History = []Attempt{{N: r.Attempts, Outcome: AttemptSucceeded, Code: r.Code, Message: r.Message,
		HTTPStatus: r.HTTPStatus, Uncertain: r.Uncertain, StartedAt: msTime(h["started_at"]), FinishedAt: r.FinishedAt}}
	return r
}

// recordFrom is the record of job id, hash h. The hash leaves out what it
// can to save memory (finish_job.lua): the ID, which its key names; a
// finished job's updated_at, which is its finished_at; and an uncertain of 0.
func recordFrom(id string, h map[string]string) Record {
	atoi := func(k string) int { n, _ := strconv.Atoi(h[k]); return n }
	r := Record{
		ID:            id,
		SID:           h["sid"],
		AgentNo:       h["agent_no"],
		State:         State(h["state"]),
		Payload:       rawOrNil(h["payload"]),
		Batch:         h["batch"],
		Attempts:      atoi("attempts"),
		MaxAttempts:   atoi("max_attempts"),
		Code:          h["code"],
		Message:       h["message"],
		HTTPStatus:    atoi("http_status"),
		AgentLaunchID: h["agent_launch_id"],
		Uncertain:     h["uncertain"] == "1",
		Response:      rawOrNil(h["response"]),
		EnqueuedAt:    msTime(h["enqueued_at"]),
		UpdatedAt:     msTime(h["updated_at"]),
		NextRunAt:     msTime(h["next_run_at"]),
		FinishedAt:    msTime(h["finished_at"]),
		Launch:        launchFollowFrom(h),
		Queue:         h["queue"],
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = r.FinishedAt
	}
	if r.Launch != nil {
		r.LaunchState = r.Launch.State
	}
	return r
}

func rawOrNil(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

func msTime(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func decodeAttempts(raw []string) []Attempt {
	out := make([]Attempt, 0, len(raw))
	for _, s := range raw {
		var a Attempt
		if json.Unmarshal([]byte(s), &a) == nil {
			out = append(out, a)
		}
	}
	return out
}
