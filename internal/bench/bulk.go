package bench

import (
	"bufio"
	"context"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/jobfile"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/ops"
)

// ---- 2: bulk enqueue ----

func (b *bench) bulk(ctx context.Context, rep *Report) error {
	var pipe, one, four []float64
	for r := 0; r < b.o.Runs; r++ {
		b.progress("bulk enqueue run %d/%d", r+1, b.o.Runs)
		rate, err := b.fileRunRate(ctx)
		if err != nil {
			return fmt.Errorf("enqueue --file run: %w", err)
		}
		pipe = append(pipe, rate)
		for _, g := range []int{1, 4} {
			rate, err := b.bareEnqueueRate(ctx, g)
			if err != nil {
				return fmt.Errorf("bare enqueue run: %w", err)
			}
			if g == 1 {
				one = append(one, rate)
			} else {
				four = append(four, rate)
			}
		}
	}
	rep.Figures = append(rep.Figures,
		fig("bulk enqueue (enqueue --file path)", "rows/s", pipe, "bare asynq.Client.Enqueue loop, 1 goroutine", one),
		fig("bulk enqueue (enqueue --file path)", "rows/s", pipe, "bare asynq.Client.Enqueue loop, 4 goroutines", four),
	)
	return nil
}

// writeJobFile writes jobs as JSONL, without IDs (the CLI derives them).
func (b *bench) writeJobFile(name string, jobs iter.Seq[launch.Job]) (string, error) {
	path := filepath.Join(b.dir, name)
	fh, err := os.Create(path)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(fh, 1<<20)
	for j := range jobs {
		j.ID = ""
		if err := jobfile.Write(w, j); err != nil {
			fh.Close()
			return "", err
		}
	}
	if err := w.Flush(); err != nil {
		fh.Close()
		return "", err
	}
	return path, fh.Close()
}

// fileRunRate times the CLI's bulk enqueue of a fresh file, in rows/s.
func (b *bench) fileRunRate(ctx context.Context) (float64, error) {
	if err := b.flush(ctx); err != nil {
		return 0, err
	}
	jobs := b.nextJobs(b.o.Rows)
	path, err := b.writeJobFile("bulk.jsonl", slices.Values(jobs))
	if err != nil {
		return 0, err
	}
	start := time.Now()
	s, err := b.Ops.EnqueueFile(ctx, path, ops.FormatJSONL, &ops.BatchOpts{Name: "bench"})
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if s.Enqueued != len(jobs) {
		return 0, fmt.Errorf("enqueued %d of %d rows (invalid %d)", s.Enqueued, len(jobs), s.Invalid)
	}
	return float64(len(jobs)) / elapsed.Seconds(), nil
}

// bareEnqueueRate times plain asynq enqueues of the same payloads as the
// pipeline's tasks, with IDs (tasks built beforehand, untimed).
func (b *bench) bareEnqueueRate(ctx context.Context, goroutines int) (float64, error) {
	if err := b.flush(ctx); err != nil {
		return 0, err
	}
	jobs := b.nextJobs(b.o.Rows)
	tasks := make([]*asynq.Task, len(jobs))
	for i, j := range jobs {
		t, err := queue.NewTask(queue.Name, queue.Payload{SID: SID, Job: j})
		if err != nil {
			return 0, err
		}
		tasks[i] = t
	}
	cl := asynq.NewClient(b.Redis)
	defer cl.Close()
	var next atomic.Int64
	errs := make(chan error, goroutines)
	start := time.Now()
	for g := 0; g < goroutines; g++ {
		go func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(tasks)) {
					errs <- nil
					return
				}
				if _, err := cl.EnqueueContext(ctx, tasks[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var first error
	for g := 0; g < goroutines; g++ {
		first = cmp(first, <-errs)
	}
	elapsed := time.Since(start)
	if first != nil {
		return 0, first
	}
	return float64(len(tasks)) / elapsed.Seconds(), nil
}
