package testredis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/testredis"
)

func TestSentinelFailsOverToTheReplica(t *testing.T) {
	t.Parallel()
	s := testredis.StartSentinel(t)
	ctx := context.Background()
	fc := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: testredis.MasterName, SentinelAddrs: []string{s.SentinelServer().Addr()},
	})
	defer fc.Close()
	if err := fc.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Primary().Client().Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1: %d replicas, %v", n, err)
	}
	if addr, err := s.MasterAddr(ctx); err != nil || addr != s.Primary().Addr() {
		t.Fatalf("sentinel names %q (%v), want the primary %s", addr, err, s.Primary().Addr())
	}

	killed := time.Now()
	s.Primary().Kill()
	p := s.WaitFailover(30 * time.Second)
	t.Logf("failover took %v", time.Since(killed).Round(time.Millisecond))
	if p != s.Replica() {
		t.Fatal("WaitFailover did not return the replica")
	}
	// The failover client finds the new primary by itself.
	var got string
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got, err = fc.Get(ctx, "k").Result(); err == nil {
			break
		}
	}
	if got != "v" {
		t.Fatalf("after failover: GET k = %q, %v", got, err)
	}
	if err := fc.Set(ctx, "k2", "v2", 0).Err(); err != nil {
		t.Fatalf("write after failover: %v", err)
	}
}

func TestClusterSpreadsSlotsOverThreePrimaries(t *testing.T) {
	t.Parallel()
	c := testredis.StartCluster(t)
	if len(c.Addrs()) != 3 {
		t.Fatalf("%d nodes, want 3", len(c.Addrs()))
	}
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer cc.Close()
	for i := 0; i < 100; i++ {
		if err := cc.Set(ctx, fmt.Sprintf("key:%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	for _, n := range c.Nodes() {
		size, err := n.Client().DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if size == 0 {
			t.Errorf("node %s holds no key: slots not spread", n.Addr())
		}
		total += size
	}
	if total != 100 {
		t.Errorf("%d keys over the nodes, want 100", total)
	}
}
