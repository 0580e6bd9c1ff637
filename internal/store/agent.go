package store

import (
	"context"
	"fmt"

	"github.com/rcslaunch/rcslaunch/internal/rdb"
)

// JobsByAgent returns up to limit of the agent number's jobs that f matches
// (Filter.Match), newest first, from the agent index the create script
// keeps. Index entries whose record is gone (expired after JOB_RETENTION,
// deleted) are dropped as they are met.
func (s *Store) JobsByAgent(ctx context.Context, agentNo string, f Filter, limit int) ([]Record, error) {
	key := rdb.AgentKey(agentNo)
	var out []Record
	for start := int64(0); len(out) < limit; {
		ids, err := s.rdb.ZRevRange(ctx, key, start, start+pageSize-1).Result()
		if err != nil {
			return nil, fmt.Errorf("list jobs of agent %s: %w", agentNo, err)
		}
		recs, err := s.getMany(ctx, ids)
		if err != nil {
			return nil, err
		}
		found := make(map[string]bool, len(recs))
		for _, r := range recs {
			found[r.ID] = true
		}
		var gone []any
		for _, id := range ids {
			if !found[id] {
				gone = append(gone, id)
			}
		}
		if len(gone) > 0 {
			if err := s.rdb.ZRem(ctx, key, gone...).Err(); err != nil {
				return nil, fmt.Errorf("prune jobs of agent %s: %w", agentNo, err)
			}
		}
		for _, r := range recs {
			if f.Match(r) {
				out = append(out, r)
			}
		}
		if len(ids) < pageSize {
			break
		}
		start += int64(len(ids) - len(gone))
	}
	return out[:min(len(out), limit)], nil
}
