package testredis

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name the sentinel of StartSentinel monitors its primary
// under, as in REDIS_URL's ?master=.
const MasterName = "mymaster"

// setupTimeout bounds each wait while a topology comes up.
const setupTimeout = 30 * time.Second

// Sentinel is a primary, a replica of it and one sentinel watching both, each
// a redis-server process of the test's own on a loopback port.
type Sentinel struct {
	t        testing.TB
	primary  *Server
	replica  *Server
	sentinel *Server
}

// StartSentinel starts a primary, a replica (--replicaof the primary) and a
// sentinel (redis-server <conf> --sentinel) monitoring the primary as
// MasterName with quorum 1, down-after-milliseconds 1000 and failover-timeout
// 5000. opts apply to the primary and the replica; with WithPassword, the
// sentinel (itself unprotected, as is usual) is given the password as
// auth-pass. It returns once the replica is in sync and the sentinel knows the
// master and the replica, so that a failover can happen. Every process is
// killed in t.Cleanup.
func StartSentinel(t testing.TB, opts ...Option) *Sentinel {
	t.Helper()
	// Redis 7 waits 5 s by default before a diskless full sync, in case
	// more replicas come: there is only one.
	primary := Start(t, append([]Option{WithArgs("--repl-diskless-sync-delay", "0")}, opts...)...)
	replica := Start(t, append([]Option{WithArgs("--replicaof", "127.0.0.1", strconv.Itoa(primary.port))}, opts...)...)
	rc := replica.Client()
	waitFor(t, "the replica to sync with the primary", func(ctx context.Context) error {
		info, err := rc.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if infoField(info, "master_link_status") != "up" || infoField(info, "master_sync_in_progress") != "0" {
			return fmt.Errorf("replica: master_link_status %q, master_sync_in_progress %q",
				infoField(info, "master_link_status"), infoField(info, "master_sync_in_progress"))
		}
		return nil
	})

	sentinel := Start(t, withSentinelConf(primary.port, primary.password))
	s := &Sentinel{t: t, primary: primary, replica: replica, sentinel: sentinel}
	sc := s.client()
	waitFor(t, "the sentinel to know the master and its replica", func(ctx context.Context) error {
		m, err := sc.Master(ctx, MasterName).Result()
		if err != nil {
			return err
		}
		if m["flags"] != "master" || m["num-slaves"] != "1" {
			return fmt.Errorf("master flags %q, num-slaves %q", m["flags"], m["num-slaves"])
		}
		rs, err := sc.Replicas(ctx, MasterName).Result()
		if err != nil {
			return err
		}
		if len(rs) != 1 || rs[0]["flags"] != "slave" || rs[0]["master-link-status"] != "ok" ||
			rs[0]["port"] != strconv.Itoa(replica.port) {
			return fmt.Errorf("replicas as the sentinel sees them: %v", rs)
		}
		return nil
	})
	return s
}

// withSentinelConf makes the server a sentinel monitoring 127.0.0.1:port,
// authenticating to it with password unless empty. The sentinel needs a
// config file it can rewrite; it goes in the server's directory.
func withSentinelConf(port int, password string) Option {
	return func(s *Server) {
		conf := filepath.Join(s.dir, "sentinel.conf")
		body := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 1\n"+
			"sentinel down-after-milliseconds %[1]s 1000\n"+
			"sentinel failover-timeout %[1]s 5000\n"+
			"sentinel parallel-syncs %[1]s 1\n", MasterName, port)
		if password != "" {
			body += fmt.Sprintf("sentinel auth-pass %s %s\n", MasterName, password)
		}
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			s.t.Fatalf("write sentinel config: %v", err)
		}
		s.conf = conf
		s.args = append(s.args, "--sentinel")
	}
}

// URL is the set-up as a REDIS_URL:
// redis-sentinel://[:<password>@]127.0.0.1:<sentinel port>?master=mymaster,
// the password being the primary's and the replica's (WithPassword).
func (s *Sentinel) URL() string {
	u := url.URL{Scheme: "redis-sentinel", Host: s.sentinel.Addr(), RawQuery: "master=" + MasterName}
	if s.primary.password != "" {
		u.User = url.UserPassword("", s.primary.password)
	}
	return u.String()
}

// Primary is the server that was the primary at start; Kill it to force a
// failover.
func (s *Sentinel) Primary() *Server { return s.primary }

// Replica is the server that was the replica at start, and the primary after
// a failover.
func (s *Sentinel) Replica() *Server { return s.replica }

// SentinelServer is the sentinel process.
func (s *Sentinel) SentinelServer() *Server { return s.sentinel }

func (s *Sentinel) client() *redis.SentinelClient {
	c := redis.NewSentinelClient(&redis.Options{Addr: s.sentinel.Addr()})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// MasterAddr is the primary's address as the sentinel names it now.
func (s *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	c := redis.NewSentinelClient(&redis.Options{Addr: s.sentinel.Addr()})
	defer c.Close()
	hp, err := c.GetMasterAddrByName(ctx, MasterName).Result()
	if err != nil {
		return "", err
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("sentinel answered %q for the master's address", hp)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

// WaitFailover waits up to timeout until the sentinel names the replica as
// the master and the replica has taken the role, and returns it (the new
// primary). It then makes the sentinel forget the old primary (SENTINEL
// RESET), so that it never reconfigures another test's server that happens
// to get the dead primary's port.
func (s *Sentinel) WaitFailover(timeout time.Duration) *Server {
	s.t.Helper()
	rc := s.replica.Client()
	sc := s.client()
	waitForWithin(s.t, timeout, "the sentinel to fail over to the replica", func(ctx context.Context) error {
		addr, err := s.MasterAddr(ctx)
		if err != nil {
			return err
		}
		if addr != s.replica.Addr() {
			return fmt.Errorf("the sentinel still names %s", addr)
		}
		// GET-MASTER-ADDR-BY-NAME names the promoted replica while the
		// failover is still reconfiguring replicas; the switch is done only
		// once the master's own address has changed and its flags are
		// plain "master". A SENTINEL RESET before that would abort the
		// failover and leave the sentinel on the dead primary.
		m, err := sc.Master(ctx, MasterName).Result()
		if err != nil {
			return err
		}
		if net.JoinHostPort(m["ip"], m["port"]) != s.replica.Addr() || m["flags"] != "master" {
			return fmt.Errorf("the sentinel's master is %s:%s with flags %q", m["ip"], m["port"], m["flags"])
		}
		info, err := rc.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if role := infoField(info, "role"); role != "master" {
			return fmt.Errorf("the replica's role is %q", role)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sc.Reset(ctx, MasterName).Err(); err != nil {
		s.t.Fatalf("SENTINEL RESET %s: %v", MasterName, err)
	}
	return s.replica
}

// Cluster is a Redis Cluster of three primaries (no replicas), each a
// redis-server process of the test's own on a loopback port.
type Cluster struct {
	nodes []*Server
}

// StartCluster starts three redis-server processes with cluster-enabled yes
// (each with its nodes.conf in its own directory and its own bus port),
// joins them with `redis-cli --cluster create … --cluster-replicas 0`, and
// returns once every node reports cluster_state:ok. Every process is killed
// in t.Cleanup. redis-cli must be installed (Debian: redis-tools, which
// redis-server depends on).
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not found on PATH; install redis-tools (apt-get install redis-tools; Debian's redis-server package brings it): %v", err)
	}
	c := &Cluster{}
	for i := 0; i < 3; i++ {
		c.nodes = append(c.nodes, Start(t, clusterNode()))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 2*setupTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, tail(out, 2000))
	}
	for _, n := range c.nodes {
		nc := n.Client()
		waitFor(t, "cluster_state:ok on "+n.Addr(), func(ctx context.Context) error {
			info, err := nc.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if infoField(info, "cluster_state") != "ok" || infoField(info, "cluster_known_nodes") != "3" {
				return fmt.Errorf("cluster_state %q, cluster_known_nodes %q",
					infoField(info, "cluster_state"), infoField(info, "cluster_known_nodes"))
			}
			return nil
		})
	}
	return c
}

// clusterNode makes the server a cluster node with its nodes.conf in its
// directory and a bus port of its own.
func clusterNode() Option {
	return func(s *Server) {
		s.clusterBus = true
		s.args = append(s.args, "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(s.dir, "nodes.conf"),
			"--cluster-node-timeout", "5000")
	}
}

// Addrs are the nodes' host:port, as REDIS_CLUSTER_ADDRS takes them.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.Addr()
	}
	return out
}

// Nodes are the cluster's servers.
func (c *Cluster) Nodes() []*Server { return c.nodes }

// infoField is one field of an INFO or CLUSTER INFO answer.
func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

func waitFor(t testing.TB, what string, cond func(context.Context) error) {
	t.Helper()
	waitForWithin(t, setupTimeout, what, cond)
}

// waitForWithin polls cond until it returns nil, failing the test with
// cond's last error after timeout.
func waitForWithin(t testing.TB, timeout time.Duration, what string, cond func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
