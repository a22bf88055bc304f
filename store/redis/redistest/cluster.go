package redistest

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of a test's own: three masters, each with a
// replica, on free loopback ports, with AOF off and a short node timeout
// (1 s) so that a replica takes over a dead master within seconds.
type Cluster struct {
	// URL reaches it (redis+cluster://…).
	URL   string
	Nodes []*Server
}

// StartCluster starts a Cluster and stops it when t ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	c := &Cluster{}
	var addrs []string
	for range 6 {
		s := StartServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
			// A replica takes over however long its master was quiet.
			"--cluster-replica-validity-factor", "0", "--repl-diskless-sync-delay", "0")
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.URL = "redis+cluster://" + strings.Join(addrs[:3], ",")
	if err := c.wait(30*time.Second, true); err != nil {
		t.Fatal(err)
	}
	return c
}

// WaitOK waits until every live node sees every slot served again (after
// a master died, once its replica took over), or timeout.
func (c *Cluster) WaitOK(timeout time.Duration) error { return c.wait(timeout, false) }

// wait is WaitOK; synced also waits for every master's replica to be in
// sync.
func (c *Cluster) wait(timeout time.Duration, synced bool) error {
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		for _, s := range c.Nodes {
			if s.cmd.ProcessState != nil {
				continue
			}
			rdb := goredis.NewClient(&goredis.Options{Addr: s.Addr})
			info, err := rdb.ClusterInfo(ctx).Result()
			repl, err2 := rdb.Info(ctx, "replication").Result()
			rdb.Close()
			// A master whose replica is not in sync yet is not whole.
			if err != nil || err2 != nil || !strings.Contains(info, "cluster_state:ok") ||
				synced && strings.Contains(repl, "role:master") && !strings.Contains(repl, "state=online") {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return context.DeadlineExceeded
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Master is the node serving key's slot now.
func (c *Cluster) Master(ctx context.Context, key string) (*Server, error) {
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{c.liveAddr()}})
	defer cc.Close()
	m, err := cc.MasterForKey(ctx, key)
	if err != nil {
		return nil, err
	}
	addr := m.Options().Addr
	for _, s := range c.Nodes {
		if s.Addr == addr {
			return s, nil
		}
	}
	return nil, errors.New("redistest: the master of " + key + " is none of the cluster's nodes")
}

func (c *Cluster) liveAddr() string {
	for _, s := range c.Nodes {
		if s.cmd.ProcessState == nil {
			return s.Addr
		}
	}
	return c.Nodes[0].Addr
}
