package rdb

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// NewClient opens a go-redis client on opt, the same connection asynq uses
// (single node, Sentinel or Cluster).
func NewClient(opt asynq.RedisConnOpt) redis.UniversalClient {
	return opt.MakeRedisClient().(redis.UniversalClient)
}

// MinVersion is the oldest Redis asynq works with: its scripts use
// ZRANGE … BYSCORE, which arrived in 6.2.
const MinVersion = "6.2.0"

// Check pings Redis and fails with a clear message when it cannot be
// reached or is older than MinVersion.
func Check(ctx context.Context, c redis.UniversalClient) error {
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: cannot reach it (check REDIS_URL / REDIS_CLUSTER_ADDRS): %w", err)
	}
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return nil // INFO disabled (renamed away, or an in-process Redis): the version cannot be told
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			if versionLess(v, MinVersion) {
				return fmt.Errorf("redis: version %s is too old; rcslaunch needs %s or newer", v, MinVersion)
			}
			return nil
		}
	}
	return nil
}

// versionLess reports whether dotted version a is older than b, comparing
// major, minor and patch as numbers.
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < 3; i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}
