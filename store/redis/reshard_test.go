package redis

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/store/redis/redistest"
)

// TestFunctionsFollowAResharding: a master added to the Cluster after the
// store started, and given slots of its shards (redis-cli --cluster
// rebalance), has never had wagate's functions; the first call it gets
// loads them there, and every shard takes sends again.
func TestFunctionsFollowAResharding(t *testing.T) {
	cl := redistest.StartCluster(t)
	ctx := context.Background()
	rdb, err := Open(ctx, cl.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	s, err := New(ctx, rdb, Config{Shards: 16, InboundParts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	send := func(round int) {
		t.Helper()
		for i := range 48 { // senders over every shard
			a := textArgs(fmt.Sprintf("+141555%05d", round*100+i), "hello")
			a.Sender = fmt.Sprintf("+1555000%04d", i)
			var err error
			for range 50 { // a moved slot answers MOVED/ASK until the client refreshes
				if _, err = s.Enqueue(ctx, a); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("round %d, sender %s: %v", round, a.Sender, err)
			}
		}
	}
	send(0)

	fresh := redistest.StartServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000")
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
			t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	seed := strings.TrimPrefix(strings.Split(cl.URL, ",")[0], "redis+cluster://")
	run("--cluster", "add-node", fresh.Addr, seed)
	if err := cl.WaitOK(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the new node's membership spreads
	run("--cluster", "rebalance", seed, "--cluster-use-empty-masters", "--cluster-yes")
	fc := goredis.NewClient(&goredis.Options{Addr: fresh.Addr})
	defer fc.Close()
	// The new master's slot ranges, as it says them.
	var ranges [][2]int
	if nodes, err := fc.ClusterNodes(ctx).Result(); err == nil {
		for _, l := range strings.Split(nodes, "\n") {
			if f := strings.Fields(l); len(f) > 8 && strings.Contains(f[2], "myself") {
				for _, r := range f[8:] {
					var lo, hi int
					if n, _ := fmt.Sscanf(r, "%d-%d", &lo, &hi); n == 2 {
						ranges = append(ranges, [2]int{lo, hi})
					} else if n, _ := fmt.Sscanf(r, "%d", &lo); n == 1 {
						ranges = append(ranges, [2]int{lo, lo})
					}
				}
			}
		}
	}
	owned := 0
	for sh := range 16 {
		slot := keySlot(strings.Split(strings.Split(s.Keys().Events(sh), "{")[1], "}")[0])
		for _, r := range ranges {
			if slot >= r[0] && slot <= r[1] {
				owned++
			}
		}
	}
	if owned == 0 {
		t.Fatalf("the new master has slots %v and none of the 16 shards: the rebalance moved none", ranges)
	}
	send(1)
	libs, err := fc.FunctionList(ctx, goredis.FunctionListQuery{LibraryNamePattern: s.scripts.lib.name}).Result()
	if err != nil || len(libs) != 1 {
		t.Fatalf("the new master's libraries: %v %v, want wagate's", libs, err)
	}
	t.Logf("the new master took %d of the 16 shards", owned)
}
