package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

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

// What Check and CheckWritable found wrong, for errors.Is. Their messages
// hold no address or password: /readyz answers with them, and logs the
// whole error.
var (
	ErrUnreachable = errors.New("redis: cannot reach it")
	ErrAuth        = errors.New("redis: authentication failed")
	ErrTooOld      = errors.New("redis: version too old")
	ErrNotWritable = errors.New("redis: refuses writes")
)

// Check pings Redis and fails with a clear message when it cannot be
// reached, refuses the credentials, or is older than MinVersion.
func Check(ctx context.Context, c redis.UniversalClient) error {
	if err := c.Ping(ctx).Err(); err != nil {
		// A wrong password is not a network problem: saying "cannot reach"
		// sends the operator to the firewall instead of REDIS_URL.
		if redis.IsAuthError(err) {
			return fmt.Errorf("%w (check the user and password in REDIS_URL): %w", ErrAuth, err)
		}
		return fmt.Errorf("%w (check REDIS_URL / REDIS_CLUSTER_ADDRS): %w", ErrUnreachable, err)
	}
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return nil // INFO disabled (renamed away, or an in-process Redis): the version cannot be told
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			if versionLess(v, MinVersion) {
				return fmt.Errorf("%w: %s; rcslaunch needs %s or newer", ErrTooOld, v, MinVersion)
			}
			return nil
		}
	}
	return nil
}

// CheckWritable writes ReadyKey, which expires by itself: a Redis that
// answers PING may still refuse every write (out of memory with
// noeviction, min-replicas-to-write unmet, a read-only replica, a failed
// RDB save), and then nothing can be enqueued or recorded.
func CheckWritable(ctx context.Context, c redis.UniversalClient) error {
	err := c.Set(ctx, ReadyKey, "1", 10*time.Second).Err()
	var reply redis.Error
	switch {
	case err == nil:
		return nil
	case redis.IsAuthError(err):
		return fmt.Errorf("%w: %w", ErrAuth, err)
	case errors.As(err, &reply): // Redis answered, with a refusal
		return fmt.Errorf("%w: %w", ErrNotWritable, err)
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
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
