package rdb

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

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

// TestCheckSaysWhatIsWrong: a refused password is an authentication
// failure, not "cannot reach"; a closed port is; and no message names the
// password.
func TestCheckSaysWhatIsWrong(t *testing.T) {
	ctx := context.Background()
	r := testredis.Start(t, testredis.WithPassword("right-password-1"))
	for _, pw := range []string{"", "wrong-password-2"} {
		c := NewClient(asynq.RedisClientOpt{Addr: r.Addr(), Password: pw})
		err := Check(ctx, c)
		c.Close()
		if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "authentication failed") || strings.Contains(err.Error(), "cannot reach") {
			t.Errorf("password %q: %v, want an authentication failure", pw, err)
		}
		if pw != "" && strings.Contains(err.Error(), pw) {
			t.Errorf("the error names the password: %v", err)
		}
	}
	down := testredis.Start(t)
	down.Kill()
	c := redis.NewClient(&redis.Options{Addr: down.Addr(), MaxRetries: -1, DialerRetries: 1})
	defer c.Close()
	if err := Check(ctx, c); !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrAuth) {
		t.Errorf("Redis down: %v, want ErrUnreachable", err)
	}
}

// TestCheckWritable: a Redis that answers PING but refuses writes (here:
// min-replicas-to-write with no replica; out of memory with noeviction is
// the same kind of refusal) fails CheckWritable, and passes it again once
// it takes writes.
func TestCheckWritable(t *testing.T) {
	ctx := context.Background()
	r := testredis.Start(t)
	c := NewClient(asynq.RedisClientOpt{Addr: r.Addr()})
	defer c.Close()
	if err := CheckWritable(ctx, c); err != nil {
		t.Fatalf("a writable Redis: %v", err)
	}
	admin := r.Client()
	defer admin.Close()
	for _, set := range [][2]string{{"min-replicas-to-write", "1"}, {"maxmemory", "1"}} {
		if err := admin.ConfigSet(ctx, set[0], set[1]).Err(); err != nil {
			t.Fatal(err)
		}
		if err := Check(ctx, c); err != nil {
			t.Errorf("%s %s: Check (PING) fails too: %v", set[0], set[1], err)
		}
		if err := CheckWritable(ctx, c); !errors.Is(err, ErrNotWritable) {
			t.Errorf("%s %s: CheckWritable = %v, want ErrNotWritable", set[0], set[1], err)
		}
		undo := map[string]string{"min-replicas-to-write": "0", "maxmemory": "0"}[set[0]]
		if err := admin.ConfigSet(ctx, set[0], undo).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := CheckWritable(ctx, c); err != nil {
		t.Fatalf("writable again: %v", err)
	}
}
