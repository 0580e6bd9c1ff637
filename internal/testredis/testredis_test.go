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

// TestStartRefusesAnotherServersPort: a server whose port another
// redis-server took (another test process, between freePort and the start)
// is not mistaken for that one, which answers PING on the port.
func TestStartRefusesAnotherServersPort(t *testing.T) {
	other := Start(t)
	s := &Server{t: t, dir: t.TempDir(), args: []string{"--save", "", "--appendonly", "no"}, port: other.port}
	if err := s.start(); err == nil {
		t.Fatalf("start on port %d, taken by another server: no error", other.port)
	}
	if err := other.Client().Ping(context.Background()).Err(); err != nil {
		t.Fatalf("the other server after the refused start: %v", err)
	}
}
