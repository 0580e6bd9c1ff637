package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// CreateMany is Create for many jobs in one round trip (a pipeline of the
// same script), for bulk enqueue: it returns each job's Create result, in
// order. An error means the round trip failed as a whole: any of the jobs
// may or may not have been created (a Create that ran leaves a queued
// record, which the next Create of the job reports as Pending).
func (s *Store) CreateMany(ctx context.Context, jobs []NewJob, now time.Time) ([]string, error) {
	res := make([]string, len(jobs))
	todo := make([]int, len(jobs))
	for i := range todo {
		todo[i] = i
	}
	// A script cache emptied by a restart answers NOSCRIPT, and such a
	// command did not run: load the script and send those again, once.
	for try := 0; ; try++ {
		cmds := make([]*redis.Cmd, len(todo))
		// Every command carries the round trip's error too, so the
		// pipeline's own error adds nothing.
		_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for k, i := range todo {
				j := jobs[i]
				cmds[k] = createScript.EvalSha(ctx, p, []string{jobKey(j.ID), attemptsKey(j.ID)},
					j.ID, j.SID, j.AgentNo, j.Payload, ms(now), j.Batch, boolArg(j.Force))
			}
			return nil
		})
		var again []int
		for k, i := range todo {
			v, cerr := cmds[k].Text()
			switch {
			case cerr == nil:
				res[i] = v
			case isNoScript(cerr) && try == 0:
				again = append(again, i)
			default:
				return nil, fmt.Errorf("create %d jobs: %w", len(jobs), cerr)
			}
		}
		if len(again) == 0 {
			return res, nil
		}
		if err := createScript.Load(ctx, s.rdb).Err(); err != nil {
			return nil, fmt.Errorf("create %d jobs: load script: %w", len(jobs), err)
		}
		todo = again
	}
}

func isNoScript(err error) bool { return redis.HasErrorPrefix(err, "NOSCRIPT") }
