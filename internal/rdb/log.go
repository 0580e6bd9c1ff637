package rdb

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// redisLogger gives go-redis's own messages (a connection pool that cannot
// dial while Redis is down, a Sentinel switching primaries) to the process's
// logger. go-redis otherwise prints them with the standard library's log
// package, as plain text lines that break LOG_FORMAT=json on stderr for a
// log pipeline. Its messages carry addresses, never the URL's password.
type redisLogger struct{ log zerolog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn().Str("component", "redis").Msg(fmt.Sprintf(format, v...))
}

// LogTo sends go-redis's messages to log, for the rest of the process.
func LogTo(log zerolog.Logger) { redis.SetLogger(redisLogger{log}) }
