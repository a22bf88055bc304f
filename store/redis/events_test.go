package redis

import (
	"context"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
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

// The events of one call that records many messages are one stream entry
// (gathered), which readers take as as many events, in order, each named by
// the entry and its place, and acknowledge as one.
func TestACallsEventsAreOneEntryReadAsMany(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	shard, l, es := queuedSix(t, s)
	key := s.keys.Events(shard)
	before := rdb.XLen(ctx, key).Val()
	begins := make([]mergedJob, len(es))
	for i := range es {
		begins[i] = &beginJob{s: s, job: NewJob(l, shard, testSender, &es[i]), now: s.nowMS(), done: make(chan struct{}, 1)}
	}
	runOneCall(rdb, begins)
	for _, b := range begins {
		if got, err := b.(*beginJob).result(); err != nil || got != BeginGo {
			t.Fatalf("begin: %v %v", got, err)
		}
	}
	if n := rdb.XLen(ctx, key).Val() - before; n != 1 {
		t.Fatalf("six begins in one call wrote %d entries, want one", n)
	}

	r := s.EventReader("loader-1")
	evs, err := r.Read(ctx, nil, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	var sending []message.Event
	names := map[string]bool{}
	for _, ev := range evs {
		name := ev.StreamID + "." + strconv.Itoa(ev.Index)
		if names[name] {
			t.Fatalf("two events named %s", name)
		}
		names[name] = true
		if ev.Status == message.StatusSending {
			sending = append(sending, ev)
		}
	}
	if len(evs) != 12 || len(sending) != 6 {
		t.Fatalf("read %d events (%d sending), want 6 queued and 6 sending", len(evs), len(sending))
	}
	for i, ev := range sending {
		if ev.StreamID != sending[0].StreamID || ev.Index != i || ev.MessageID != es[i].MessageID || ev.Recipient != "+1234567890" {
			t.Fatalf("sending event %d: %+v, want message %s at place %d of one entry", i, ev, es[i].MessageID, i)
		}
	}
	if err := r.Ack(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if p, err := rdb.XPending(ctx, key, GroupLoader).Result(); err != nil || p.Count != 0 {
		t.Fatalf("pending after the ack: %+v %v", p, err)
	}
}
