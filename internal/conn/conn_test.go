package conn

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/rcslaunch/rcslaunch/internal/config"
)

func TestOpen(t *testing.T) {
	mr := miniredis.RunT(t)
	cfg := config.Config{RedisURL: "redis://" + mr.Addr() + "/0", SID: "S1", JobRetention: time.Hour}
	c, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if c.Redis == nil || c.Ops == nil {
		t.Errorf("Open set up %+v", c)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	mr := miniredis.RunT(t)
	addr := mr.Addr()
	mr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Open(ctx, config.Config{RedisURL: "redis://" + addr + "/0"}); err == nil {
		t.Fatal("Open of a Redis that is gone did not fail")
	}
	if _, err := Open(ctx, config.Config{RedisURL: "http://nowhere"}); err == nil {
		t.Fatal("Open of a bad REDIS_URL did not fail")
	}
}
