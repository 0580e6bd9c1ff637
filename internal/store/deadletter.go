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

func (f Filter) index() string {
	if f.Code != "" {
		return deadLettersByCode(f.Code)
	}
	return deadLetters
}

func (f Filter) min() string {
	if f.Since.IsZero() {
		return "-inf"
	}
	return strconv.FormatInt(ms(f.Since), 10)
}

// CountDeadLetters returns how many dead letters match f.
func (s *Store) CountDeadLetters(ctx context.Context, f Filter) (int64, error) {
	n, err := s.rdb.ZCount(ctx, f.index(), f.min(), "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("count dead letters: %w", err)
	}
	return n, nil
}

// pageSize bounds one read of the dead-letter index and the records it names.
const pageSize = 500

// EachDeadLetter calls fn for every dead letter matching f, newest first,
// reading the store a page at a time so that memory does not grow with it.
// fn may retry or delete the letter it is given: the walk continues from a
// cursor on the dead-lettering time, not from an offset that removals shift.
func (s *Store) EachDeadLetter(ctx context.Context, f Filter, fn func(Record) error) error {
	max := "+inf"
	seenAtMax := map[string]bool{}
	for {
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, f.index(), &redis.ZRangeBy{
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

// ListDeadLetters returns up to limit dead letters matching f, newest first,
// skipping the first offset.
func (s *Store) ListDeadLetters(ctx context.Context, f Filter, offset, limit int) ([]Record, error) {
	ids, err := s.rdb.ZRevRangeByScore(ctx, f.index(), &redis.ZRangeBy{
		Max: "+inf", Min: f.min(), Offset: int64(offset), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return s.getMany(ctx, ids)
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

// Requeue results.
const (
	Requeued  = "requeued"  // the record is queued again with a fresh budget: push its task, then call Unindex
	Resume    = "resume"    // an earlier requeue stopped half-way: push its task (again), then call Unindex
	Uncertain = "uncertain" // left alone: the agent may have been launched
)

var requeueScript = redis.NewScript(`
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
local h = redis.call('HMGET', KEYS[1], 'payload', 'sid', 'agent_no', 'code', 'uncertain')
if state == 'dead_lettered' then
  if h[5] == '1' and ARGV[1] ~= '1' then return {'uncertain'} end
  redis.call('HSET', KEYS[1], 'state', 'queued', 'attempts', 0, 'enqueued_at', ARGV[2], 'updated_at', ARGV[2])
  redis.call('HDEL', KEYS[1], 'finished_at', 'next_run_at', 'max_attempts', 'uncertain', 'agent_launch_id', 'response')
  redis.call('HINCRBY', KEYS[1], 'generation', 1)
  return {'requeued', h[1], h[2], h[3], h[4]}
end
if state == 'queued' and redis.call('ZSCORE', KEYS[2], ARGV[3]) then
  return {'resume', h[1], h[2], h[3], h[4]}
end
return {state}
`)

// Requeued is a dead letter made ready to run again.
type RequeuedJob struct {
	NewJob
	Code string // the code it was dead-lettered with (its index entry)
}

// Requeue gives a dead letter a fresh attempt budget and marks it queued,
// keeping it in the dead-letter index until Unindex: the caller pushes its
// task first, so that a crash in between leaves it findable, never lost. The
// result is Requeued, Resume, Uncertain (left alone unless includeUncertain),
// or the job's current state when it is not a dead letter.
func (s *Store) Requeue(ctx context.Context, id string, includeUncertain bool, now time.Time) (string, RequeuedJob, error) {
	vals, err := requeueScript.Run(ctx, s.rdb, []string{jobKey(id), deadLetters},
		boolArg(includeUncertain), ms(now), id).Slice()
	if err != nil {
		return "", RequeuedJob{}, fmt.Errorf("requeue dead letter %s: %w", id, err)
	}
	res, _ := vals[0].(string)
	if res == "missing" {
		return "", RequeuedJob{}, fmt.Errorf("dead letter %s: %w", id, ErrNotFound)
	}
	if len(vals) < 5 {
		return res, RequeuedJob{}, nil
	}
	str := func(i int) string { v, _ := vals[i].(string); return v }
	return res, RequeuedJob{
		NewJob: NewJob{ID: id, Payload: []byte(str(1)), SID: str(2), AgentNo: str(3)},
		Code:   str(4),
	}, nil
}

var unindexScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'state', 'code')
if h[1] == 'dead_lettered' then
  -- dead-lettered again meanwhile, and indexed under its new code
  if h[2] ~= ARGV[2] then redis.call('ZREM', KEYS[3], ARGV[1]) end
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`)

// Unindex removes a requeued job from the dead-letter index once its task is
// safely on the queue. A job that was dead-lettered again in the meantime
// stays indexed (under its new code only, if that changed).
func (s *Store) Unindex(ctx context.Context, j RequeuedJob) error {
	err := unindexScript.Run(ctx, s.rdb, []string{jobKey(j.ID), deadLetters, deadLettersByCode(j.Code)}, j.ID, j.Code).Err()
	if err != nil {
		return fmt.Errorf("remove %s from the dead-letter index: %w", j.ID, err)
	}
	return nil
}

var restoreScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'state') == 'queued' and redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('HSET', KEYS[1], 'state', 'dead_lettered')
  return 1
end
return 0
`)

// Restore puts a requeued job back to dead-lettered when its task could not
// be pushed, so it stays where the operator left it.
func (s *Store) Restore(ctx context.Context, id string) error {
	if err := restoreScript.Run(ctx, s.rdb, []string{jobKey(id), deadLetters}, id).Err(); err != nil {
		return fmt.Errorf("restore dead letter %s: %w", id, err)
	}
	return nil
}

var deleteScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'state', 'code')
if not h[1] then return 'missing' end
if h[1] ~= 'dead_lettered' then return h[1] end
if h[2] ~= ARGV[2] then return 'moved' end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 'deleted'
`)

// Deleted is DeleteDeadLetter's result when the letter is gone.
const Deleted = "deleted"

// DeleteDeadLetter drops a dead letter and its record. It returns Deleted, or
// the job's state when it is not a dead letter (then nothing is touched).
func (s *Store) DeleteDeadLetter(ctx context.Context, id string) (string, error) {
	for try := 0; try < 3; try++ {
		code, err := s.rdb.HGet(ctx, jobKey(id), "code").Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return "", fmt.Errorf("delete dead letter %s: %w", id, err)
		}
		keys := []string{jobKey(id), attemptsKey(id), deadLetters, deadLettersByCode(code)}
		res, err := deleteScript.Run(ctx, s.rdb, keys, id, code).Text()
		if err != nil {
			return "", fmt.Errorf("delete dead letter %s: %w", id, err)
		}
		switch res {
		case "missing":
			return "", fmt.Errorf("dead letter %s: %w", id, ErrNotFound)
		case "moved": // its code changed between the read and the script
			continue
		}
		return res, nil
	}
	return "", fmt.Errorf("delete dead letter %s: its record kept changing", id)
}
