package hooks

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

// An idle webhook deliverer waits in Redis too: its events and notices
// reads block over every shard at once, retries are looked for every Poll.
// About 5 a second here (4 of them the retries' look); 140 before.
func TestIdleHookDelivererSendsFewCommands(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	store, err := redis.New(ctx, rdb, redis.Config{Prefix: "idlehooks"}) // 16 shards
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	d, err := New(Config{Consumer: "idle-hooks"}, store, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	time.Sleep(time.Second) // its first reclaim looks are not idling
	perSecond, lines := redistest.IdleCommands(t, rdb)
	t.Logf("an idle webhook deliverer sent %.1f commands a second: %s", perSecond, lines)
	if perSecond > 10 {
		t.Fatalf("an idle webhook deliverer sent %.1f commands a second, want at most 10: %s", perSecond, lines)
	}
}
