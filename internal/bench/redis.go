package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedis runs a private redis-server on a free loopback port, without
// persistence, and returns its URL and what stops it.
func startRedis(ctx context.Context) (url string, stop func(), err error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return "", nil, fmt.Errorf("redis-server not found on PATH; install it or set REDIS_URL: %w", err)
	}
	dir, err := os.MkdirTemp("", "rcslaunch-bench-*")
	if err != nil {
		return "", nil, err
	}
	for try := 0; try < 5; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir)
		if err := cmd.Start(); err != nil {
			return "", nil, fmt.Errorf("start redis-server: %w", err)
		}
		stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); os.RemoveAll(dir) }
		if err := awaitPing(ctx, fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			return fmt.Sprintf("redis://127.0.0.1:%d/0", port), stop, nil
		}
		stop()
	}
	return "", nil, errors.New("could not start redis-server on a free port")
}

// awaitPing waits up to about two seconds for a Redis at addr to answer PING.
func awaitPing(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	var err error
	for i := 0; i < 100; i++ {
		if err = c.Ping(ctx).Err(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// commandStats is INFO commandstats: calls by command name.
func commandStats(ctx context.Context, rdb redis.UniversalClient) (map[string]int64, error) {
	s, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO commandstats: %w", err)
	}
	return parseCommandStats(s), nil
}

// parseCommandStats reads INFO commandstats's "cmdstat_NAME:calls=N,…" lines.
func parseCommandStats(info string) map[string]int64 {
	out := map[string]int64{}
	for k, v := range parseInfo(info) {
		name, isCmd := strings.CutPrefix(k, "cmdstat_")
		calls, hasCalls := strings.CutPrefix(v, "calls=")
		if !isCmd || !hasCalls {
			continue
		}
		calls, _, _ = strings.Cut(calls, ",")
		if n, err := strconv.ParseInt(calls, 10, 64); err == nil {
			out[name] = n
		}
	}
	return out
}

// commandsSince is the calls of each command between two commandStats,
// leaving out the commands named in skip, and their total.
func commandsSince(before, after map[string]int64, skip ...string) (byCmd map[string]float64, total float64) {
	byCmd = map[string]float64{}
	for k, v := range after {
		if slices.Contains(skip, k) {
			continue
		}
		if d := float64(v - before[k]); d > 0 {
			byCmd[k] = d
			total += d
		}
	}
	return byCmd, total
}
