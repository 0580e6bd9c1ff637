package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/rdb"
)

// Filter selects dead letters, and an agent's jobs (JobsByAgent, which
// leaves Since out: it is the time a job was dead-lettered).
type Filter struct {
	Code  string    // only this last code; empty for all
	Since time.Time // only those dead-lettered at or after this time; zero for all
	Batch string    // only the jobs of this batch; empty for all
	SID   string    // only the jobs of this account; empty for all
}

// Match reports whether r passes f's code, batch and SID. Since is not
// looked at: the dead-letter index applies it.
func (f Filter) Match(r Record) bool {
	return (f.Code == "" || r.Code == f.Code) && (f.Batch == "" || r.Batch == f.Batch) && (f.SID == "" || r.SID == f.SID)
}

// byRecord reports whether f has to read each record: the index knows
// times only.
func (f Filter) byRecord() bool { return f.Code != "" || f.Batch != "" || f.SID != "" }

func (f Filter) min() string {
	if f.Since.IsZero() {
		return "-inf"
	}
	return strconv.FormatInt(ms(f.Since), 10)
}

// pageSize bounds one read of the dead-letter index and the records it names.
const pageSize = 500

// errStop ends a walk early without an error.
var errStop = errors.New("stop")

// EachDeadLetter calls fn for every dead letter matching f, newest first,
// reading the store a page at a time so that memory does not grow with it.
// fn may retry or delete the letter it is given: the walk continues from a
// cursor on the dead-lettering time, not from an offset that removals shift.
//
// The index orders letters by time only; a code, batch or SID filter is
// applied to the records read, so that the index is one sorted set that a single script
// keeps right, whatever happens to a job's code.
func (s *Store) EachDeadLetter(ctx context.Context, f Filter, fn func(Record) error) error {
	max := "+inf"
	seenAtMax := map[string]bool{}
	for {
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, rdb.DeadLetters, &redis.ZRangeBy{
			Max: max, Min: f.min(), Count: int64(pageSize + len(seenAtMax)),
		}).Result()
		if err != nil {
			return fmt.Errorf("list dead letters: %w", err)
		}
		var ids []string
		var lastScore float64
		for _, z := range zs {
			id := z.Member.(string)
			if seenAtMax[id] {
				continue
			}
			ids = append(ids, id)
			lastScore = z.Score
		}
		if len(ids) == 0 {
			return nil
		}
		recs, err := s.getMany(ctx, ids)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if !f.Match(r) {
				continue
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		next := strconv.FormatFloat(lastScore, 'f', -1, 64)
		if next != max {
			seenAtMax = map[string]bool{}
		}
		for _, z := range zs {
			if z.Score == lastScore {
				seenAtMax[z.Member.(string)] = true
			}
		}
		max = next
	}
}

// CountDeadLetters returns how many dead letters match f. Without a code,
// batch or SID it is one Redis call; with one, it reads the matching records.
func (s *Store) CountDeadLetters(ctx context.Context, f Filter) (int64, error) {
	if !f.byRecord() {
		n, err := s.rdb.ZCount(ctx, rdb.DeadLetters, f.min(), "+inf").Result()
		if err != nil {
			return 0, fmt.Errorf("count dead letters: %w", err)
		}
		return n, nil
	}
	var n int64
	err := s.EachDeadLetter(ctx, f, func(Record) error { n++; return nil })
	return n, err
}

// ListDeadLetters returns up to limit dead letters matching f, newest first,
// skipping the first offset.
func (s *Store) ListDeadLetters(ctx context.Context, f Filter, offset, limit int) ([]Record, error) {
	var out []Record
	if limit <= 0 {
		return out, nil
	}
	err := s.EachDeadLetter(ctx, f, func(r Record) error {
		if offset > 0 {
			offset--
			return nil
		}
		out = append(out, r)
		if len(out) == limit {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return out, nil
}

// getMany reads records in one pipeline; IDs whose record has gone are skipped.
func (s *Store) getMany(ctx context.Context, ids []string) ([]Record, error) {
	pipe := s.rdb.Pipeline()
	hs := make([]*redis.MapStringStringCmd, len(ids))
	ls := make([]*redis.StringSliceCmd, len(ids))
	for i, id := range ids {
		hs[i] = pipe.HGetAll(ctx, rdb.JobKey(id))
		ls[i] = pipe.LRange(ctx, rdb.AttemptsKey(id), 0, -1)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	out := make([]Record, 0, len(ids))
	for i := range ids {
		if len(hs[i].Val()) == 0 {
			continue
		}
		out = append(out, recordWithHistory(ids[i], hs[i].Val(), ls[i].Val()))
	}
	return out, nil
}

// RequeueResult is what Requeue did with a job ID.
type RequeueResult string

// Requeue results.
const (
	Requeued        RequeueResult = "requeued"          // the record is queued again with a fresh budget: push its task, then call Unindex
	Resume          RequeueResult = "resume"            // an earlier requeue stopped half-way: push its task (again), then call Unindex
	Uncertain       RequeueResult = "uncertain"         // left alone: the agent may have been launched
	NotDeadLettered RequeueResult = "not_dead_lettered" // the job is in another state, returned with it; nothing changed
)

// Requeue gives a dead letter a fresh attempt budget and marks it queued,
// keeping it in the dead-letter index until Unindex: the caller pushes its
// task first, so that a crash in between leaves it findable, never lost (and
// the worker's Start unindexes it once it runs). The result is Requeued,
// Resume, Uncertain (left alone unless includeUncertain), or NotDeadLettered
// with the job's current state; ErrNotFound for an unknown ID.
func (s *Store) Requeue(ctx context.Context, id string, includeUncertain bool, now time.Time) (res RequeueResult, state State, job NewJob, err error) {
	r, err := rdb.RequeueDeadLetter(ctx, s.rdb, id, includeUncertain, now)
	if err != nil {
		return "", "", NewJob{}, fmt.Errorf("requeue dead letter %s: %w", id, err)
	}
	switch r.Result {
	case "missing":
		return "", "", NewJob{}, fmt.Errorf("dead letter %s: %w", id, ErrNotFound)
	case string(Requeued), string(Resume):
		return RequeueResult(r.Result), StateQueued, NewJob{ID: id, Payload: r.Payload, SID: r.SID, AgentNo: r.AgentNo}, nil
	case string(Uncertain):
		return Uncertain, StateDeadLettered, NewJob{}, nil
	}
	return NotDeadLettered, State(r.Result), NewJob{}, nil
}

// Unindex removes a requeued job from the dead-letter index once its task is
// safely on the queue. A job that was dead-lettered again in the meantime
// stays indexed.
func (s *Store) Unindex(ctx context.Context, id string) error {
	if _, err := rdb.UnindexDeadLetter(ctx, s.rdb, id); err != nil {
		return fmt.Errorf("remove %s from the dead-letter index: %w", id, err)
	}
	return nil
}

// Restore puts a requeued job back to dead-lettered when its task could not
// be pushed, so it stays where the operator left it (and its batch counts
// it as before).
func (s *Store) Restore(ctx context.Context, id string) error {
	if _, err := rdb.RestoreDeadLetter(ctx, s.rdb, id, time.Now(), s.Retention); err != nil {
		return fmt.Errorf("restore dead letter %s: %w", id, err)
	}
	return nil
}

// DeleteDeadLetter drops a dead letter and its record; its batch counts it
// as deleted, no longer in its total. It reports whether the letter was
// deleted; a job that is not a dead letter is left untouched and its state
// returned. An unknown ID is ErrNotFound.
func (s *Store) DeleteDeadLetter(ctx context.Context, id string) (deleted bool, state State, err error) {
	res, err := rdb.DeleteDeadLetter(ctx, s.rdb, id)
	switch {
	case err != nil:
		return false, "", fmt.Errorf("delete dead letter %s: %w", id, err)
	case res == "missing":
		return false, "", fmt.Errorf("dead letter %s: %w", id, ErrNotFound)
	case res == "deleted":
		return true, StateDeadLettered, nil
	}
	return false, State(res), nil
}
