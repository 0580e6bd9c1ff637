package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/ops"
)

// ---- 8: Redis memory per retained finished job ----

const (
	// memoryBudget is the Redis memory a retained finished job may take,
	// everything it leaves behind included (issue 14: 1 KiB).
	memoryBudget = 1024
	// memoryWarmup is the jobs finished before the first reading: scripts
	// loaded, the results stream and asynq's own keys created.
	memoryWarmup = 1000
	// memorySampled is how many of the measured jobs' keys are sized one
	// by one (MEMORY USAGE) for the breakdown.
	memorySampled = 200
	// retainedJobs is the retained jobs the extrapolation is for.
	retainedJobs = 10_000_000
)

// memorySample is Redis's memory at one moment.
type memorySample struct {
	// used is used_memory less the normal clients' buffers, which come and
	// go with connections rather than with data.
	used          int64
	keys, expires int64 // over every database
	stream        int64 // MEMORY USAGE of the results stream
}

// memory finishes MemoryJobs jobs as one batch, the way a production worker
// does (default retention, results never trimmed), and divides the growth
// of Redis's memory by their number.
func (b *bench) memory(ctx context.Context, rep *Report) error {
	k := b.o.MemoryJobs
	b.progress("memory: Redis memory over %d finished jobs", k)
	if err := b.flush(ctx); err != nil {
		return err
	}
	if _, err := b.finishBatch(ctx, b.nextJobs(memoryWarmup), memoryWarmup); err != nil {
		return err
	}
	before, err := b.memorySample(ctx)
	if err != nil {
		return err
	}
	jobs := b.nextJobs(k)
	batch, err := b.finishBatch(ctx, jobs, memoryWarmup+k)
	if err != nil {
		return err
	}
	after, err := b.memorySample(ctx)
	if err != nil {
		return err
	}
	parts, err := b.memoryParts(ctx, jobs, batch)
	if err != nil {
		return err
	}
	perJob := float64(after.used-before.used) / float64(k)
	parts["results stream entry"] = float64(after.stream-before.stream) / float64(k)
	rest := perJob
	for _, v := range parts {
		rest -= v
	}
	parts["key tables, expiry entries, allocator rounding"] = rest
	record := parts["job record (hash)"]
	tenM := perJob * retainedJobs / (1 << 30)
	rep.Figures = append(rep.Figures,
		Figure{Name: "Redis memory per retained finished job", Unit: "bytes", Value: perJob, Baseline: "budget", Base: memoryBudget, Ratio: perJob / memoryBudget},
		Figure{Name: "Redis memory per job record (hash) alone", Unit: "bytes", Value: record, Baseline: "budget", Base: memoryBudget, Ratio: record / memoryBudget},
		Figure{Name: "Redis memory for 10,000,000 retained jobs", Unit: "GiB", Value: tenM, Baseline: "budget × 10,000,000", Base: memoryBudget * retainedJobs / (1 << 30), Ratio: perJob / memoryBudget},
		Figure{Name: "Redis keys per retained job", Unit: "keys", Value: float64(after.keys-before.keys) / float64(k), Baseline: "(absolute)", Base: float64(after.keys-before.keys) / float64(k), Ratio: 1},
		Figure{Name: "Redis keys with a TTL per retained job", Unit: "keys", Value: float64(after.expires-before.expires) / float64(k), Baseline: "(absolute)", Base: float64(after.expires-before.expires) / float64(k), Ratio: 1},
	)
	fields, err := b.recordFields(ctx, jobs[0].ID)
	if err != nil {
		return err
	}
	rep.Breakdowns = append(rep.Breakdowns,
		Breakdown{Name: "Redis memory per retained finished job, by key (bytes; " + b.memoryConfig(ctx) + ")", Unit: "bytes", Parts: parts},
		Breakdown{Name: "one job record's fields, name + value (bytes)", Unit: "bytes", Parts: fields})
	return nil
}

// memoryConfig names the Redis settings the memory figures depend on, as
// Redis reports them ("?" where CONFIG GET is refused).
func (b *bench) memoryConfig(ctx context.Context) string {
	var out []string
	for _, name := range []string{"hash-max-listpack-value", "stream-node-max-bytes"} {
		v := "?"
		if m, err := b.rdb.ConfigGet(ctx, name).Result(); err == nil && m[name] != "" {
			v = m[name]
		}
		out = append(out, name+" "+v)
	}
	return strings.Join(out, ", ")
}

// finishBatch enqueues jobs as one batch, runs a worker until the results
// stream holds total entries and stops it (so that its connections and
// tasks are gone), and returns the batch's ID.
func (b *bench) finishBatch(ctx context.Context, jobs []launch.Job, total int) (string, error) {
	if err := b.serve(ctx); err != nil {
		return "", err
	}
	s, err := b.Ops.EnqueueJobs(ctx, jobs, &ops.BatchOpts{Name: "bench-memory"})
	if err != nil {
		return "", err
	}
	if s.Enqueued != len(jobs) || s.BatchID == nil {
		return "", fmt.Errorf("memory: enqueued %d of %d jobs", s.Enqueued, len(jobs))
	}
	w, err := b.newWorker(1e6, 1000, 1_000_000, nil)
	if err != nil {
		return "", err
	}
	rw := startWorker(ctx, w)
	defer rw.stop()
	if err := b.awaitResults(ctx, rw, int64(total)); err != nil {
		return "", err
	}
	rw.stop()
	return *s.BatchID, nil
}

// memorySample reads Redis's memory once the idle clients' buffers have had
// a moment to shrink.
func (b *bench) memorySample(ctx context.Context) (memorySample, error) {
	time.Sleep(500 * time.Millisecond)
	var m memorySample
	mem, err := infoSection(ctx, b.rdb, "memory")
	if err != nil {
		return m, err
	}
	used, err1 := strconv.ParseInt(mem["used_memory"], 10, 64)
	clients, err2 := strconv.ParseInt(mem["mem_clients_normal"], 10, 64)
	if err1 != nil || err2 != nil {
		return m, fmt.Errorf("INFO memory: used_memory %q, mem_clients_normal %q", mem["used_memory"], mem["mem_clients_normal"])
	}
	m.used = used - clients
	ks, err := infoSection(ctx, b.rdb, "keyspace")
	if err != nil {
		return m, err
	}
	m.keys, m.expires = keyspaceTotals(ks)
	if m.stream, err = b.rdb.MemoryUsage(ctx, rdb.ResultsStream, 0).Result(); err != nil {
		return m, fmt.Errorf("MEMORY USAGE %s: %w", rdb.ResultsStream, err)
	}
	return m, nil
}

// keyspaceTotals adds up INFO keyspace's "dbN:keys=K,expires=E,…" lines.
func keyspaceTotals(info map[string]string) (keys, expires int64) {
	for db, v := range info {
		if !strings.HasPrefix(db, "db") {
			continue
		}
		for _, kv := range strings.Split(v, ",") {
			name, n, _ := strings.Cut(kv, "=")
			c, _ := strconv.ParseInt(n, 10, 64)
			switch name {
			case "keys":
				keys += c
			case "expires":
				expires += c
			}
		}
	}
	return keys, expires
}

// memoryParts sizes a finished job's own keys (the mean over a sample of
// jobs) and its share of its batch's job list, in bytes.
func (b *bench) memoryParts(ctx context.Context, jobs []launch.Job, batch string) (map[string]float64, error) {
	parts := map[string]float64{}
	n := min(memorySampled, len(jobs))
	for _, j := range jobs[:n] {
		for name, key := range map[string]string{
			"job record (hash)":        rdb.JobKey(j.ID),
			"attempt log (list)":       rdb.AttemptsKey(j.ID),
			"agent's job index (zset)": rdb.AgentKey(j.Launch.AgentNo),
		} {
			size, err := b.rdb.MemoryUsage(ctx, key, 0).Result()
			if err != nil && !errors.Is(err, redis.Nil) { // a success at its first attempt has no attempt log
				return nil, fmt.Errorf("MEMORY USAGE %s: %w", key, err)
			}
			parts[name] += float64(size) / float64(n)
		}
	}
	size, err := b.rdb.MemoryUsage(ctx, rdb.BatchJobsKey(batch), 0).Result()
	if err != nil {
		return nil, fmt.Errorf("MEMORY USAGE of the batch's job list: %w", err)
	}
	parts["batch's job list entry"] = float64(size) / float64(len(jobs))
	return parts, nil
}

// recordFields are the bytes of each field of a job's record, name and
// value.
func (b *bench) recordFields(ctx context.Context, id string) (map[string]float64, error) {
	h, err := b.rdb.HGetAll(ctx, rdb.JobKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("read job %s: %w", id, err)
	}
	out := make(map[string]float64, len(h))
	for k, v := range h {
		out[k] = float64(len(k) + len(v))
	}
	return out, nil
}
