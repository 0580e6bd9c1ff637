package config

import (
	"fmt"
	"net/url"

	"github.com/hibiken/asynq"
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
