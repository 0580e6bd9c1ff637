package rdb

import (
	"context"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/testredis"
)

func TestVersionLess(t *testing.T) {
	for _, c := range []struct {
		a, b string
		less bool
	}{{"6.0.9", "6.2.0", true}, {"6.2.0", "6.2.0", false}, {"7.0.15", "6.2.0", false}, {"5", "6.2", true}, {"6.2.1", "6.2", false}} {
		if got := versionLess(c.a, c.b); got != c.less {
			t.Errorf("versionLess(%s, %s) = %v", c.a, c.b, got)
		}
	}
}

// TestNewClientAndCheck: a client from an asynq option passes the check on
// the Redis the tests run (7.x).
func TestNewClientAndCheck(t *testing.T) {
	r := testredis.Start(t)
	c := NewClient(asynq.RedisClientOpt{Addr: r.Addr()})
	defer c.Close()
	if err := Check(context.Background(), c); err != nil {
		t.Fatalf("Check on a running Redis: %v", err)
	}
}
