package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/store/redis/redistest"
)

// An idle reader waits in Redis for the next event instead of reading
// every shard each Poll, and still gets an event at once when it comes.
func TestIdleEventReaderWaitsInRedis(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	s, err := New(ctx, rdb, Config{Prefix: "idle"}) // 16 shards
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	for _, r := range []*EventReader{s.EventReader("loader-1"), s.HookEventReader("hooks-1")} {
		if _, err := r.Read(ctx, nil, 100, 0); err != nil { // whatever waits already
			t.Fatal(err)
		}
		if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			if got, err := r.Read(ctx, nil, 100, 250*time.Millisecond); err != nil || len(got) != 0 {
				t.Fatalf("read %d events of none: %v", len(got), err)
			}
		}
		stats, err := redistest.CommandStats(ctx, rdb)
		if err != nil {
			t.Fatal(err)
		}
		// A read a second's worth of waits, and a heartbeat or two.
		if n := stats["xreadgroup"].Calls; n > 5 {
			t.Fatalf("%s: 4 idle reads of 250 ms sent %d XREADGROUPs (%v)", r.group, n, stats)
		}
		// An event comes while a read waits: it returns with it, not at
		// the end of its wait.
		go func() {
			time.Sleep(100 * time.Millisecond)
			s.Enqueue(ctx, textArgs("+15550007000", "x"))
		}()
		began := time.Now()
		got, err := r.Read(ctx, nil, 100, 5*time.Second)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: read %d events: %v", r.group, len(got), err)
		}
		if took := time.Since(began); took > 2*time.Second {
			t.Fatalf("%s: the event came after %v of a 5 s wait", r.group, took)
		}
	}
}
