package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rcslaunch/rcslaunch/launch"
)

// ---- 2: peak RSS of an enqueue process ----

func (b *bench) rss(ctx context.Context, rep *Report) error {
	b.progress("peak RSS of rcslaunch enqueue, 1,000 rows")
	small, _, err := b.childEnqueue(ctx, 1000)
	if err != nil {
		return err
	}
	sizes := []int{b.o.RSSRows}
	if b.o.Big && b.o.RSSRows != 1_000_000 {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		b.progress("peak RSS of rcslaunch enqueue, %d rows", n)
		peak, rate, err := b.childEnqueue(ctx, n)
		if err != nil {
			return err
		}
		rep.Figures = append(rep.Figures,
			Figure{Name: fmt.Sprintf("enqueue --file peak RSS, %d rows", n), Unit: "MiB", Value: peak,
				Baseline: "the same at 1,000 rows", Base: small, Ratio: peak / small},
			Figure{Name: fmt.Sprintf("enqueue --file peak RSS, %d rows", n), Unit: "MiB", Value: peak,
				Baseline: "target ceiling", Base: 64, Ratio: peak / 64},
			Figure{Name: fmt.Sprintf("enqueue --file child process, %d rows", n), Unit: "rows/s", Value: rate,
				Baseline: "(absolute; includes process start and the validation pass)", Base: rate, Ratio: 1},
		)
	}
	return nil
}

// childEnqueue runs "rcslaunch enqueue --file" on n fresh rows in a child
// process and returns its peak RSS (MiB, its VmHWM) and its rows per second.
func (b *bench) childEnqueue(ctx context.Context, n int) (peakMiB, rowsPerSec float64, err error) {
	if err := b.flush(ctx); err != nil {
		return 0, 0, err
	}
	b.runID++
	base := b.runID * 10_000_000
	path, err := b.writeJobFile("rss.jsonl", func(yield func(launch.Job) bool) {
		for i := 0; i < n; i++ {
			if !yield(b.jobFor(base + i)) {
				return
			}
		}
	})
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(path)
	cmd := exec.CommandContext(ctx, b.o.Executable, "enqueue", "--file", path, "--json")
	cmd.Env = append(os.Environ(), "REDIS_URL="+b.cfg.RedisURL, "KALEYRA_SID="+SID)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("rcslaunch enqueue child: %w", err)
	}
	peakKiB, exited, err := waitPeak(cmd)
	elapsed := exited.Sub(start)
	if err != nil {
		return 0, 0, fmt.Errorf("rcslaunch enqueue child: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	if peakKiB == 0 {
		return 0, 0, errors.New("could not read the child's VmHWM from /proc")
	}
	return float64(peakKiB) / 1024, float64(n) / elapsed.Seconds(), nil
}

// waitPeak waits for a started child and returns its VmHWM (the peak
// resident set) in KiB, read from its /proc/PID/status until it exits, and
// when it exited.
// (wait4's ru_maxrss is no use here: it carries over the parent's peak from
// before the exec.)
func waitPeak(cmd *exec.Cmd) (peakKiB int64, exitedAt time.Time, err error) {
	var peak atomic.Int64
	exited := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		for {
			if kib, ok := vmHWM(status); ok {
				peak.Store(max(peak.Load(), kib))
			}
			select {
			case <-exited:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	err = cmd.Wait()
	exitedAt = time.Now()
	close(exited)
	<-polled
	return peak.Load(), exitedAt, err
}

// vmHWM reads VmHWM, in KiB, from a /proc/PID/status file.
func vmHWM(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
