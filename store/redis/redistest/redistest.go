// Package redistest connects tests to the real Redis that scripts/test
// starts, and gives each test its own key prefix instead of flushing shared
// state.
package redistest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/internal/redisinfo"
)

// URL is where tests find Redis: $WAGATE_TEST_REDIS_URL, else
// $WAGATE_REDIS_URL, else redis://127.0.0.1:6379/0.
func URL() string {
	for _, k := range []string{"WAGATE_TEST_REDIS_URL", "WAGATE_REDIS_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "redis://127.0.0.1:6379/0"
}

// Client returns a client of the test Redis, closed when t ends. It fails t
// when Redis does not answer: these tests need the real thing.
func Client(t testing.TB) *goredis.Client {
	t.Helper()
	opt, err := goredis.ParseURL(URL())
	if err != nil {
		t.Fatalf("redis url %q: %v", URL(), err)
	}
	opt.PoolSize = 128
	rdb := goredis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		t.Fatalf("no Redis at %s (%v): run the tests with scripts/test, which starts it", URL(), err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Prefix returns a key prefix unique to this test, and deletes its keys
// when the test ends.
func Prefix(t testing.TB, rdb *goredis.Client) string {
	t.Helper()
	name := strings.NewReplacer("/", "_", " ", "_", ":", "_", "{", "", "}", "").Replace(t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	prefix := fmt.Sprintf("t%x_%s", rand.Uint32(), name)
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
			if len(keys) == 1000 {
				rdb.Unlink(ctx, keys...)
				keys = keys[:0]
			}
		}
		if len(keys) > 0 {
			rdb.Unlink(ctx, keys...)
		}
	})
	return prefix
}

// CommandStats returns the time Redis has spent in each command (µs) and
// the calls, from INFO commandstats: deltas of two readings tell what a
// piece of work cost Redis (redisinfo.Usec adds them up).
func CommandStats(ctx context.Context, rdb goredis.UniversalClient) (map[string]redisinfo.CommandStat, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	return redisinfo.CommandStats(info), nil
}

// ClusterURL is where tests find a Redis Cluster: $WAGATE_TEST_REDIS_CLUSTER_URL,
// else the six nodes `scripts/services cluster-up` starts on 7100-7105.
func ClusterURL() string {
	if v := os.Getenv("WAGATE_TEST_REDIS_CLUSTER_URL"); v != "" {
		return v
	}
	return "redis+cluster://127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102"
}

// ClusterClient returns a client of the test Redis Cluster, closed when t
// ends; it fails t when the cluster does not answer.
func ClusterClient(t testing.TB) *goredis.ClusterClient {
	t.Helper()
	hosts := strings.TrimPrefix(ClusterURL(), "redis+cluster://")
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: strings.Split(hosts, ","), PoolSize: 64})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return c.Ping(ctx).Err() }); err != nil {
		cc.Close()
		t.Fatalf("no Redis Cluster at %s (%v): run the tests with scripts/test, which starts it (scripts/services cluster-up)", ClusterURL(), err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// ClusterPrefix is Prefix on a Redis Cluster: the keys are looked for on
// every master and deleted one by one (they lie in many slots).
func ClusterPrefix(t testing.TB, cc *goredis.ClusterClient) string {
	t.Helper()
	prefix := fmt.Sprintf("c%x", rand.Uint32())
	t.Cleanup(func() {
		ctx := context.Background()
		_ = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
			p := c.Pipeline()
			for iter.Next(ctx) {
				p.Unlink(ctx, iter.Val())
			}
			_, err := p.Exec(ctx)
			return err
		})
	})
	return prefix
}

// IdleCommands counts the commands a test's own Redis (StartServer: INFO
// commandstats counts every client's) serves in 6 s of idling: how many a
// second, and each command's calls.
func IdleCommands(t testing.TB, rdb *goredis.Client) (float64, string) {
	t.Helper()
	ctx := context.Background()
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	const window = 6 * time.Second
	time.Sleep(window) // the measurement itself: nothing to wait for
	stats, err := CommandStats(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	var lines []string
	for name, st := range stats {
		if name == "info" || name == "config|resetstat" {
			continue
		}
		total += st.Calls
		lines = append(lines, fmt.Sprintf("%s %d", name, st.Calls))
	}
	slices.Sort(lines)
	return float64(total) / window.Seconds(), strings.Join(lines, ", ")
}
