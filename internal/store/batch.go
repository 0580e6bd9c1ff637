package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/rdb"
)

// Batches
//
// A batch is one bulk run: every `rcslaunch enqueue --file` and every
// POST /v1/launches:batch. Its record (a hash) holds its name, creation time
// and counters: total, and how many of its jobs are queued, running,
// retrying, succeeded and dead-lettered (and the dead letters by code). The
// counters are changed by the same Lua script that changes a job's state
// (Create, Start, Finish, Requeue, Restore, DeleteDeadLetter, Uncreate), so
// that no crash can make them disagree with the job records and the results
// stream; a batch's status is read from them alone, whatever its size.
//
// The rule the scripts keep: for every batch B, each counter equals the
// number of job records whose batch field is B and whose state is that
// counter's, and total is their sum. In particular:
//
//   - Create counts a job in its batch only when it creates the record (or
//     relaunches a success with force): a row whose job ID is already known
//     (duplicate, already launched, dead-lettered) stays in the batch it
//     belongs to. A job belongs to at most one batch.
//   - A forced relaunch moves the job to its new batch: the old batch's
//     succeeded and total go down by one and its "relaunched" count up.
//   - `dlq retry` keeps the job in its batch: dead_lettered -> queued, and
//     a finished batch is open again until the job has its new outcome.
//   - `dlq delete` drops the job from its batch with its record:
//     dead_lettered and total go down by one, "deleted" up.
//
// A batch is finished (finished_at set) once it is closed (its producer has
// offered every job: total is final) and succeeded + dead_lettered = total.
// A closed batch takes no more jobs. A finished batch's keys expire with
// the store's Retention (JOB_RETENTION), like its succeeded jobs' records.

// ErrBatchNotFound means no batch has the ID.
var ErrBatchNotFound = errors.New("batch not found")

// Batch is a batch's status, read from its counters. Its JSON form is the
// contract's (`rcslaunch batch status --json`); the fields without a JSON
// name are shown by the human output only.
type Batch struct {
	ID                 string           `json:"batch_id"`
	Name               string           `json:"name"`
	Total              int64            `json:"total"`
	Queued             int64            `json:"queued"`
	Running            int64            `json:"running"`
	Retrying           int64            `json:"retrying"`
	Succeeded          int64            `json:"succeeded"`
	DeadLettered       int64            `json:"dead_lettered"`
	DeadLetteredByCode map[string]int64 `json:"dead_lettered_by_code"`
	CreatedAt          time.Time        `json:"created_at"`
	FinishedAt         *time.Time       `json:"finished_at"`
	// LaunchStates counts the batch's followed successes (FOLLOW_LAUNCH) by
	// launch state; every state of LaunchStates is present.
	LaunchStates map[LaunchState]int64 `json:"launch_states"`

	// StartedAt is when the first of its jobs started; zero before.
	StartedAt time.Time `json:"-"`
	// Closed is set once every job has been offered: Total is final.
	Closed bool `json:"-"`
	// Deleted counts dead letters dropped by `dlq delete`, Relaunched jobs
	// moved to a later batch by a forced relaunch; neither is in Total.
	Deleted    int64 `json:"-"`
	Relaunched int64 `json:"-"`
}

// Done is how many of the batch's jobs have their outcome.
func (b Batch) Done() int64 { return b.Succeeded + b.DeadLettered }

// Followed is how many of the batch's successes are followed
// (FOLLOW_LAUNCH): the sum of its launch state counts.
func (b Batch) Followed() int64 {
	var n int64
	for _, c := range b.LaunchStates {
		n += c
	}
	return n
}

// Finished reports whether the batch is closed and every job has its outcome.
func (b Batch) Finished() bool { return b.FinishedAt != nil }

func batchFrom(id string, h map[string]string) Batch {
	n := func(k string) int64 { v, _ := strconv.ParseInt(h[k], 10, 64); return v }
	b := Batch{
		ID: id, Name: h["name"], Total: n("total"), Queued: n("queued"), Running: n("running"),
		Retrying: n("retrying"), Succeeded: n("succeeded"), DeadLettered: n("dead_lettered"),
		DeadLetteredByCode: map[string]int64{},
		CreatedAt:          msTime(h["created_at"]), StartedAt: msTime(h["started_at"]),
		Closed: h["closed"] == "1", Deleted: n("deleted"), Relaunched: n("relaunched"),
	}
	if t := msTime(h["finished_at"]); !t.IsZero() {
		b.FinishedAt = &t
	}
	b.LaunchStates = make(map[LaunchState]int64, len(LaunchStates))
	for _, s := range LaunchStates {
		b.LaunchStates[s] = max(n("launch:"+string(s)), 0)
	}
	for k, v := range h {
		if code, ok := strings.CutPrefix(k, "code:"); ok {
			if c, _ := strconv.ParseInt(v, 10, 64); c > 0 {
				b.DeadLetteredByCode[code] = c
			}
		}
	}
	return b
}

// NewBatchID names a batch: sortable by time, unique without coordination
// ("b_20261127T080101_1a2b3c4d").
func NewBatchID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "b_" + now.UTC().Format("20060102T150405") + "_" + hex.EncodeToString(b[:])
}

// CreateBatch makes an empty, open batch. Jobs join it through Create (with
// NewJob.Batch = id); CloseBatch ends it. The ID must be new.
func (s *Store) CreateBatch(ctx context.Context, id, name string, now time.Time) error {
	if id == "" {
		return errors.New("create batch: empty ID")
	}
	ok, err := rdb.CreateBatch(ctx, s.rdb, id, name, now)
	if err != nil {
		return fmt.Errorf("create batch %s: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("create batch %s: the ID is taken", id)
	}
	return nil
}

// CloseBatch says that every job of the batch has been offered: its total
// is final, and it is finished as soon as (or once) every job has its
// outcome. Closing twice is harmless.
func (s *Store) CloseBatch(ctx context.Context, id string, now time.Time) error {
	ok, err := rdb.CloseBatch(ctx, s.rdb, id, now, s.Retention)
	if err != nil {
		return fmt.Errorf("close batch %s: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("batch %s: %w", id, ErrBatchNotFound)
	}
	return nil
}

// GetBatch returns the batch's status from its counters, or ErrBatchNotFound.
func (s *Store) GetBatch(ctx context.Context, id string) (Batch, error) {
	h, err := s.rdb.HGetAll(ctx, rdb.BatchKey(id)).Result()
	if err != nil {
		return Batch{}, fmt.Errorf("read batch %s: %w", id, err)
	}
	if len(h) == 0 {
		return Batch{}, fmt.Errorf("batch %s: %w", id, ErrBatchNotFound)
	}
	return batchFrom(id, h), nil
}

// ListBatches returns up to limit batches, newest first, after skipping
// offset. Index entries of batches that have expired are dropped.
func (s *Store) ListBatches(ctx context.Context, offset, limit int) ([]Batch, error) {
	out := []Batch{}
	for len(out) < limit {
		want := limit - len(out)
		ids, err := s.rdb.ZRevRange(ctx, rdb.BatchIndex, int64(offset), int64(offset+want-1)).Result()
		if err != nil {
			return nil, fmt.Errorf("list batches: %w", err)
		}
		if len(ids) == 0 {
			return out, nil
		}
		pipe := s.rdb.Pipeline()
		hs := make([]*redis.MapStringStringCmd, len(ids))
		for i, id := range ids {
			hs[i] = pipe.HGetAll(ctx, rdb.BatchKey(id))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("list batches: %w", err)
		}
		var gone []any
		for i, id := range ids {
			if len(hs[i].Val()) == 0 {
				gone = append(gone, id)
				continue
			}
			out = append(out, batchFrom(id, hs[i].Val()))
		}
		if len(gone) > 0 {
			// Expired with JOB_RETENTION: forget them, and read on from the
			// same offset, which the removal has moved on.
			if err := s.rdb.ZRem(ctx, rdb.BatchIndex, gone...).Err(); err != nil {
				return nil, fmt.Errorf("list batches: %w", err)
			}
			offset += len(ids) - len(gone)
		} else {
			offset += len(ids)
		}
		if len(ids) < want {
			return out, nil
		}
	}
	return out, nil
}

// CountBatches is the number of batches in the index (expired ones
// included until a listing drops them).
func (s *Store) CountBatches(ctx context.Context) (int64, error) {
	n, err := s.rdb.ZCard(ctx, rdb.BatchIndex).Result()
	if err != nil {
		return 0, fmt.Errorf("count batches: %w", err)
	}
	return n, nil
}

// BatchJob is one job of a batch, as `rcslaunch batch report` lists it.
type BatchJob struct {
	ID            string
	SID           string
	AgentNo       string
	State         State
	Code          string
	Message       string
	AgentLaunchID string
	Attempts      int
	// LaunchState is a followed success's launch state (FOLLOW_LAUNCH);
	// "" for a job not followed.
	LaunchState LaunchState
	Payload     []byte
	// Queue is the asynq queue of the job's task (Record.Queue).
	Queue string
}

// EachBatchJob calls fn for every job of the batch, in the order they
// joined it, reading a page at a time so that memory holds one page (and
// the IDs seen, to list each job once). Jobs that have left the batch (a
// dead letter deleted, a success relaunched with force in a later batch)
// and those whose record has expired are left out.
func (s *Store) EachBatchJob(ctx context.Context, id string, fn func(BatchJob) error) error {
	if n, err := s.rdb.Exists(ctx, rdb.BatchKey(id)).Result(); err != nil {
		return fmt.Errorf("read batch %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("batch %s: %w", id, ErrBatchNotFound)
	}
	fields := []string{"batch", "state", "agent_no", "code", "message", "agent_launch_id", "attempts", "payload",
		"launch_state", "sid", "queue"}
	seen := map[string]bool{}
	for start := int64(0); ; start += pageSize {
		ids, err := s.rdb.LRange(ctx, rdb.BatchJobsKey(id), start, start+pageSize-1).Result()
		if err != nil {
			return fmt.Errorf("read batch %s: %w", id, err)
		}
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.SliceCmd, len(ids))
		for i, jid := range ids {
			cmds[i] = pipe.HMGet(ctx, rdb.JobKey(jid), fields...)
		}
		if len(ids) > 0 {
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("read batch %s: %w", id, err)
			}
		}
		for i, jid := range ids {
			v := cmds[i].Val()
			str := func(k int) string { s, _ := v[k].(string); return s }
			if str(0) != id || seen[jid] {
				continue
			}
			seen[jid] = true
			n, _ := strconv.Atoi(str(6))
			j := BatchJob{ID: jid, State: State(str(1)), AgentNo: str(2), Code: str(3), Message: str(4),
				AgentLaunchID: str(5), Attempts: n, Payload: []byte(str(7)), LaunchState: LaunchState(str(8)), SID: str(9),
				Queue: str(10)}
			if j.State != StateSucceeded {
				// A success relaunched with force keeps its last launch ID
				// on the record until the relaunch has its outcome; the
				// report shows one only for a job that succeeded.
				j.AgentLaunchID, j.LaunchState = "", ""
			}
			if err := fn(j); err != nil {
				return err
			}
		}
		if int64(len(ids)) < pageSize {
			return nil
		}
	}
}
