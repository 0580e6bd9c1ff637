package config

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// RedisConnOpt returns the Redis connection asynq and our store share:
// REDIS_CLUSTER_ADDRS selects Redis Cluster, otherwise REDIS_URL in one of
// asynq's forms (redis://, rediss://, redis-socket://, redis-sentinel://).
// Errors never repeat the URL, which may hold a password.
func (c Config) RedisConnOpt() (asynq.RedisConnOpt, error) {
	if len(c.RedisClusterAddrs) > 0 {
		opt := asynq.RedisClusterClientOpt{Addrs: c.RedisClusterAddrs}
		if u, err := url.Parse(c.RedisURL); err == nil && u.User != nil {
			opt.Username = u.User.Username()
			opt.Password, _ = u.User.Password()
		}
		return opt, nil
	}
	opt, err := asynq.ParseRedisURI(c.RedisURL)
	if err != nil {
		// Only a parsed scheme is shown: the text before "://" of a URL
		// without one (":password@host:6379") may be the password itself.
		scheme := "no scheme"
		if u, err := url.Parse(c.RedisURL); err == nil && u.Scheme != "" {
			scheme = fmt.Sprintf("scheme %q", u.Scheme)
		}
		return nil, fmt.Errorf("REDIS_URL: cannot use it (%s): expected redis://[:password@]host[:port][/db], rediss://…, redis-socket://path or redis-sentinel://host:port[,…]?master=name", scheme)
	}
	// asynq gives a redis-sentinel:// URL's password to the sentinels only,
	// so a password-protected primary answers NOAUTH. The URL's credentials
	// are Redis's, as in every other form: the primary and its replicas get
	// them, and the sentinels keep them (for set-ups that protect both alike;
	// an unprotected sentinel accepts the connection all the same).
	if fo, ok := opt.(asynq.RedisFailoverClientOpt); ok {
		if u, err := url.Parse(c.RedisURL); err == nil && u.User != nil {
			fo.Username = u.User.Username()
			fo.Password, _ = u.User.Password()
			fo.SentinelUsername, fo.SentinelPassword = fo.Username, fo.Password
			opt = fo
		}
	}
	return opt, nil
}

// RedisClient opens a go-redis client on opt, the same connection asynq uses.
func RedisClient(opt asynq.RedisConnOpt) redis.UniversalClient {
	return opt.MakeRedisClient().(redis.UniversalClient)
}

// MinRedisVersion is the oldest Redis asynq works with: its scripts use
// ZRANGE … BYSCORE, which arrived in 6.2.
const MinRedisVersion = "6.2.0"

// CheckRedis pings Redis and fails with a clear message when it cannot be
// reached or is older than MinRedisVersion.
func CheckRedis(ctx context.Context, rdb redis.UniversalClient) error {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: cannot reach it (check REDIS_URL / REDIS_CLUSTER_ADDRS): %w", err)
	}
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return nil // INFO disabled (renamed away, or an in-process Redis): the version cannot be told
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			if versionLess(v, MinRedisVersion) {
				return fmt.Errorf("redis: version %s is too old; rcslaunch needs %s or newer", v, MinRedisVersion)
			}
			return nil
		}
	}
	return nil
}

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
