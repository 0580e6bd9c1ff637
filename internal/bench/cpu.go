package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// cpuSample is the CPU time used so far by this process (the pipeline, and
// the simulator it runs in-process), by Redis and by the whole machine, at
// one moment.
type cpuSample struct {
	at      time.Time
	process time.Duration // user + system, getrusage(RUSAGE_SELF)
	redis   time.Duration // used_cpu_user + used_cpu_sys of INFO cpu
	// busy and total are the machine's non-idle and all jiffies from
	// /proc/stat; zero where it cannot be read.
	busy, total uint64
}

// cpuUse is the CPU time used between two samples.
type cpuUse struct {
	elapsed        time.Duration
	process, redis time.Duration
	// busy is the share of the machine's CPU time (all cores) that was not
	// idle, whoever used it; -1 when unknown.
	busy float64
}

func (b *bench) cpuNow(ctx context.Context) (cpuSample, error) {
	s := cpuSample{at: time.Now()}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return s, fmt.Errorf("getrusage: %w", err)
	}
	s.process = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	info, err := infoSection(ctx, b.rdb, "cpu")
	if err != nil {
		return s, err
	}
	user, _ := strconv.ParseFloat(info["used_cpu_user"], 64)
	sys, _ := strconv.ParseFloat(info["used_cpu_sys"], 64)
	s.redis = time.Duration((user + sys) * float64(time.Second))
	s.busy, s.total = machineJiffies()
	return s, nil
}

// since is the CPU time used from a to s.
func (s cpuSample) since(a cpuSample) cpuUse {
	u := cpuUse{elapsed: s.at.Sub(a.at), process: s.process - a.process, redis: s.redis - a.redis, busy: -1}
	if s.total > a.total {
		u.busy = float64(s.busy-a.busy) / float64(s.total-a.total)
	}
	return u
}

// perJob is the process's and Redis's CPU time per job, in microseconds.
func (u cpuUse) perJob(n int) (process, redis float64) {
	return float64(u.process.Microseconds()) / float64(n), float64(u.redis.Microseconds()) / float64(n)
}

// machineJiffies reads the first line of /proc/stat: the jiffies every core
// spent busy and in all.
func machineJiffies() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseCPULine(line)
}

// parseCPULine reads /proc/stat's "cpu user nice system idle iowait irq
// softirq steal ..." line; idle and iowait are not busy.
func parseCPULine(line string) (busy, total uint64) {
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0
		}
		total += n
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy, total
}

// infoSection is one section of INFO as "field: value".
func infoSection(ctx context.Context, rdb redis.UniversalClient, section string) (map[string]string, error) {
	s, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return nil, fmt.Errorf("INFO %s: %w", section, err)
	}
	return parseInfo(s), nil
}

// parseInfo reads INFO's "field:value" lines, skipping comments.
func parseInfo(info string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out
}
