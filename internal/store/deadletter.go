package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Filter selects dead letters.
type Filter struct {
	Code  string    // only this last code; empty for all
	Since time.Time // only those dead-lettered at or after this time; zero for all
}

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
// The index orders letters by time only; a code filter is applied to the
// records read, so that the index is one sorted set that a single script
// keeps right, whatever happens to a job's code.
func (s *Store) EachDeadLetter(ctx context.Context, f Filter, fn func(Record) error) error {
	max := "+inf"
	seenAtMax := map[string]bool{}
	for {
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, deadLetters, &redis.ZRangeBy{
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
			if f.Code != "" && r.Code != f.Code {
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

// CountDeadLetters returns how many dead letters match f. Without a code it
// is one Redis call; with one, it reads the matching records' codes.
func (s *Store) CountDeadLetters(ctx context.Context, f Filter) (int64, error) {
	if f.Code == "" {
		n, err := s.rdb.ZCount(ctx, deadLetters, f.min(), "+inf").Result()
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
		hs[i] = pipe.HGetAll(ctx, jobKey(id))
		ls[i] = pipe.LRange(ctx, attemptsKey(id), 0, -1)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	out := make([]Record, 0, len(ids))
	for i := range ids {
		if len(hs[i].Val()) == 0 {
			continue
		}
		r := recordFrom(hs[i].Val())
		r.History = decodeAttempts(ls[i].Val())
		out = append(out, r)
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

var requeueScript = withBatch(`
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
local h = redis.call('HMGET', KEYS[1], 'payload', 'sid', 'agent_no', 'uncertain', 'batch', 'code')
if state == 'dead_lettered' then
  if h[4] == '1' and ARGV[1] ~= '1' then return {'uncertain'} end
  -- The dead letter's fields stay as they are (its uncertain mark above
  -- all) until the new run records its own outcome, so that Restore can put
  -- it back exactly.
  redis.call('HSET', KEYS[1], 'state', 'queued', 'restore_attempts', redis.call('HGET', KEYS[1], 'attempts'),
    'attempts', 0, 'updated_at', ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'generation', 1)
  -- It stays in its batch, which has work again.
  local bk = batch_key(h[5])
  batch_move(bk, 'dead_lettered', 'queued')
  batch_code(bk, h[6], -1)
  batch_reopen(bk)
  return {'requeued', h[1], h[2], h[3]}
end
if state == 'queued' and redis.call('ZSCORE', KEYS[2], ARGV[3]) then
  return {'resume', h[1], h[2], h[3]}
end
return {state}
`)

// Requeue gives a dead letter a fresh attempt budget and marks it queued,
// keeping it in the dead-letter index until Unindex: the caller pushes its
// task first, so that a crash in between leaves it findable, never lost (and
// the worker's Start unindexes it once it runs). The result is Requeued,
// Resume, Uncertain (left alone unless includeUncertain), or NotDeadLettered
// with the job's current state; ErrNotFound for an unknown ID.
func (s *Store) Requeue(ctx context.Context, id string, includeUncertain bool, now time.Time) (res RequeueResult, state State, job NewJob, err error) {
	vals, err := requeueScript.Run(ctx, s.rdb, []string{jobKey(id), deadLetters},
		boolArg(includeUncertain), ms(now), id).Slice()
	if err != nil {
		return "", "", NewJob{}, fmt.Errorf("requeue dead letter %s: %w", id, err)
	}
	str := func(i int) string { v, _ := vals[i].(string); return v }
	switch r := str(0); r {
	case "missing":
		return "", "", NewJob{}, fmt.Errorf("dead letter %s: %w", id, ErrNotFound)
	case string(Requeued), string(Resume):
		return RequeueResult(r), StateQueued, NewJob{ID: id, Payload: []byte(str(1)), SID: str(2), AgentNo: str(3)}, nil
	case string(Uncertain):
		return Uncertain, StateDeadLettered, NewJob{}, nil
	default:
		return NotDeadLettered, State(r), NewJob{}, nil
	}
}

var unindexScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'state') == 'dead_lettered' then return 0 end
return redis.call('ZREM', KEYS[2], ARGV[1])
`)

// Unindex removes a requeued job from the dead-letter index once its task is
// safely on the queue. A job that was dead-lettered again in the meantime
// stays indexed.
func (s *Store) Unindex(ctx context.Context, id string) error {
	if err := unindexScript.Run(ctx, s.rdb, []string{jobKey(id), deadLetters}, id).Err(); err != nil {
		return fmt.Errorf("remove %s from the dead-letter index: %w", id, err)
	}
	return nil
}

var restoreScript = withBatch(`
if redis.call('HGET', KEYS[1], 'state') == 'queued' and redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('HSET', KEYS[1], 'state', 'dead_lettered', 'attempts', redis.call('HGET', KEYS[1], 'restore_attempts') or '0')
  redis.call('HDEL', KEYS[1], 'restore_attempts')
  local h = redis.call('HMGET', KEYS[1], 'batch', 'code')
  local bk = batch_key(h[1])
  if bk then
    batch_move(bk, 'queued', 'dead_lettered')
    batch_code(bk, h[2], 1)
    -- finished again when it was before the requeue, as of then
    batch_settle(bk, redis.call('HGET', bk, 'prev_finished_at') or ARGV[2], ARGV[3])
  end
  return 1
end
return 0
`)

// Restore puts a requeued job back to dead-lettered when its task could not
// be pushed, so it stays where the operator left it (and its batch counts
// it as before).
func (s *Store) Restore(ctx context.Context, id string) error {
	err := restoreScript.Run(ctx, s.rdb, []string{jobKey(id), deadLetters}, id, ms(time.Now()), s.retentionSeconds()).Err()
	if err != nil {
		return fmt.Errorf("restore dead letter %s: %w", id, err)
	}
	return nil
}

var deleteScript = withBatch(`
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'missing' end
if state ~= 'dead_lettered' then return state end
local h = redis.call('HMGET', KEYS[1], 'batch', 'code')
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
-- The job leaves its batch with its record (enqueued again, it joins the
-- new run's batch); the batch keeps count of the deleted.
local bk = batch_key(h[1])
if bk then
  batch_move(bk, 'dead_lettered', nil)
  batch_code(bk, h[2], -1)
  redis.call('HINCRBY', bk, 'total', -1)
  redis.call('HINCRBY', bk, 'deleted', 1)
end
return 'deleted'
`)

// DeleteDeadLetter drops a dead letter and its record; its batch counts it
// as deleted, no longer in its total. It reports whether the letter was
// deleted; a job that is not a dead letter is left untouched and its state
// returned. An unknown ID is ErrNotFound.
func (s *Store) DeleteDeadLetter(ctx context.Context, id string) (deleted bool, state State, err error) {
	res, err := deleteScript.Run(ctx, s.rdb, []string{jobKey(id), attemptsKey(id), deadLetters}, id).Text()
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
