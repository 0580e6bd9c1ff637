package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/rdb"
)

// Result is one entry of the results stream: a finished job.
type Result struct {
	StreamID      string `json:"stream_id"`
	JobID         string `json:"job_id"`
	SID           string `json:"sid,omitempty"` // the job's account; empty in entries written before it was kept
	AgentNo       string `json:"agent_no"`
	Outcome       string `json:"outcome"` // succeeded, dead_lettered or launch_state
	Code          string `json:"code"`
	Message       string `json:"message"`
	AgentLaunchID string `json:"agent_launch_id"`
	Attempts      int    `json:"attempts"`
	FinishedAt    string `json:"finished_at"`
	Uncertain     bool   `json:"uncertain"`
	BatchID       string `json:"batch_id,omitempty"`
	// LaunchState is, for a launch_state entry, the launch's new state
	// (PreviousLaunchState its state before); for a followed success,
	// "pending".
	LaunchState         string          `json:"launch_state,omitempty"`
	PreviousLaunchState string          `json:"previous_launch_state,omitempty"`
	Response            json.RawMessage `json:"response,omitempty"`
}

// OutcomeLaunchState is the outcome of a results stream entry that reports
// a followed launch's change of state, not a finished job.
const OutcomeLaunchState = "launch_state"

func resultFrom(m redis.XMessage) Result {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	n, _ := strconv.Atoi(str("attempts"))
	return Result{
		StreamID:            m.ID,
		JobID:               str("job_id"),
		SID:                 str("sid"),
		AgentNo:             str("agent_no"),
		Outcome:             str("outcome"),
		Code:                str("code"),
		Message:             str("message"),
		AgentLaunchID:       str("agent_launch_id"),
		Attempts:            n,
		FinishedAt:          str("finished_at"),
		Uncertain:           str("uncertain") == "1",
		BatchID:             str("batch_id"),
		LaunchState:         str("launch_state"),
		PreviousLaunchState: str("previous_launch_state"),
		Response:            rawOrNil(str("response")),
	}
}

// ResultsFilter selects entries of the results stream; its zero value
// selects every entry.
type ResultsFilter struct {
	// SID keeps the entries of the jobs of one account. Entries written
	// before they carried the job's SID have none and are never kept.
	SID string
}

func (f ResultsFilter) keeps(r Result) bool { return f.SID == "" || r.SID == f.SID }

// resultsScan is how many entries a filtered read takes from Redis at a
// time, at least: a rare account's entries can be far apart.
const resultsScan = 1000

// ReadResults returns up to count results after the stream ID after ("0" for
// the start). With block > 0 it waits that long for new entries when there are
// none, and returns none (no error) on time-out.
func (s *Store) ReadResults(ctx context.Context, after string, count int64, block time.Duration) ([]Result, error) {
	rs, _, err := s.ReadResultsPage(ctx, after, count, block, ResultsFilter{})
	return rs, err
}

// ReadResultsPage returns up to count results after the stream ID after
// ("0" for the start) that f keeps, and next, the stream ID to read on from:
// that of the last entry it looked at, kept or not, so that the entries f
// skipped are not read again. It reads on past skipped entries until it has
// a result or reaches the end of the stream, so an empty page means that no
// entry after next is kept yet. With block > 0 it then waits up to block
// for new entries that f keeps.
func (s *Store) ReadResultsPage(ctx context.Context, after string, count int64, block time.Duration, f ResultsFilter) (rs []Result, next string, err error) {
	if count <= 0 {
		return nil, after, nil
	}
	next, scan := after, count
	if f != (ResultsFilter{}) {
		scan = max(count, resultsScan)
	}
	deadline := time.Now().Add(block)
	for {
		wait := time.Duration(0)
		if block > 0 {
			wait = max(time.Until(deadline), time.Millisecond)
		}
		msgs, err := s.readStream(ctx, next, scan, wait)
		if err != nil {
			return nil, after, err
		}
		for _, m := range msgs {
			if r := resultFrom(m); f.keeps(r) {
				rs = append(rs, r)
			}
			next = m.ID
			if int64(len(rs)) == count {
				return rs, next, nil
			}
		}
		atEnd := int64(len(msgs)) < scan
		if len(rs) > 0 || atEnd && (block <= 0 || !time.Now().Before(deadline)) {
			return rs, next, nil
		}
	}
}

// readStream returns up to count entries of the results stream after the
// ID after, waiting up to block (when > 0) for new ones when there are none.
func (s *Store) readStream(ctx context.Context, after string, count int64, block time.Duration) ([]redis.XMessage, error) {
	if block <= 0 {
		start := "(" + after
		if after == "0" || after == "" {
			start = "-"
		}
		msgs, err := s.rdb.XRangeN(ctx, ResultsStream, start, "+", count).Result()
		if err != nil {
			return nil, fmt.Errorf("read results: %w", err)
		}
		return msgs, nil
	}
	if after == "" {
		after = "0"
	}
	streams, err := s.rdb.XRead(ctx, &redis.XReadArgs{
		Streams: []string{ResultsStream, after}, Count: count, Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	var msgs []redis.XMessage
	for _, st := range streams {
		msgs = append(msgs, st.Messages...)
	}
	return msgs, nil
}

// ResultsLen is the number of entries in the results stream.
func (s *Store) ResultsLen(ctx context.Context) (int64, error) {
	n, err := s.rdb.XLen(ctx, ResultsStream).Result()
	if err != nil {
		return 0, fmt.Errorf("results stream length: %w", err)
	}
	return n, nil
}

// OutcomeKey is one counter of Outcomes.
type OutcomeKey struct {
	Outcome string // succeeded or dead_lettered
	Code    string
}

// Outcomes returns how many jobs finished with each outcome and code, over
// the whole fleet since the store began.
func (s *Store) Outcomes(ctx context.Context) (map[OutcomeKey]int64, error) {
	h, err := s.rdb.HGetAll(ctx, rdb.Outcomes).Result()
	if err != nil {
		return nil, fmt.Errorf("read outcome counts: %w", err)
	}
	out := make(map[OutcomeKey]int64, len(h))
	for k, v := range h {
		outcome, code, _ := strings.Cut(k, "|")
		n, _ := strconv.ParseInt(v, 10, 64)
		out[OutcomeKey{Outcome: outcome, Code: code}] = n
	}
	return out, nil
}
