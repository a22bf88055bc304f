package redis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/store/redis/redistest"
)

// TestSentinelFailover: a store opened with redis+sentinel:// works on the
// primary Sentinel names, and, once the primary is killed and Sentinel has
// promoted its replica, on the new primary through the same client.
func TestSentinelFailover(t *testing.T) {
	primary := redistest.StartServer(t)
	host, port, _ := strings.Cut(primary.Addr, ":")
	replica := redistest.StartServer(t, "--replicaof", host, port, "--replica-announce-ip", "127.0.0.1")
	ctx := context.Background()
	waitInfo := func(addr, want string) {
		t.Helper()
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		defer c.Close()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if info, _ := c.Info(ctx, "replication").Result(); strings.Contains(info, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no %q", addr, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitInfo(replica.Addr, "master_link_status:up")

	// Sentinel, watching the primary as "wagate" (quorum 1: it alone
	// decides), quick to act.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sport := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
sentinel monitor wagate %s %s 1
sentinel down-after-milliseconds wagate 1000
sentinel failover-timeout wagate 5000
`, sport, dir, host, port)), 0o600)
	sentinel := exec.Command("redis-server", conf, "--sentinel")
	if err := sentinel.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sentinel.Process.Kill(); sentinel.Wait() })
	sc := goredis.NewSentinelClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", sport)})
	defer sc.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if replicas, err := sc.Replicas(ctx, "wagate").Result(); err == nil && len(replicas) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Sentinel did not learn of the replica")
		}
		time.Sleep(100 * time.Millisecond)
	}

	rdb, err := Open(ctx, fmt.Sprintf("redis+sentinel://127.0.0.1:%d/wagate", sport))
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	s, err := New(ctx, rdb, Config{Shards: 4, InboundParts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	send := func(i int) error {
		_, err := s.Enqueue(ctx, textArgs(fmt.Sprintf("+141555%05d", i), "hello"))
		return err
	}
	if err := send(0); err != nil {
		t.Fatalf("enqueue on the primary: %v", err)
	}
	waitInfo(replica.Addr, "master_link_status:up")
	time.Sleep(200 * time.Millisecond) // the replica has it
	primary.Stop()                     // kill -9
	deadline = time.Now().Add(30 * time.Second)
	for i := 1; ; i++ {
		if err := send(i); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no enqueue through Sentinel after the failover: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if addr, err := sc.GetMasterAddrByName(ctx, "wagate").Result(); err != nil || net.JoinHostPort(addr[0], addr[1]) != replica.Addr {
		t.Fatalf("Sentinel's primary is %v (%v), want the promoted replica %s", addr, err, replica.Addr)
	}
}
