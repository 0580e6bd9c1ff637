package testredis

import (
	"context"
	"testing"
)

func TestRestartKeepsDataWithAOF(t *testing.T) {
	s := Start(t, WithAOF())
	c := s.Client()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	got, err := c.Get(ctx, "k").Result()
	if err != nil || got != "v" {
		t.Fatalf("after restart: got %q, %v; want \"v\"", got, err)
	}
}

func TestKillMakesServerUnreachable(t *testing.T) {
	s := Start(t)
	c := s.Client()
	s.Kill()
	if err := c.Ping(context.Background()).Err(); err == nil {
		t.Fatal("ping succeeded after Kill")
	}
}
