package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
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

// A call that fails part way (a key of the wrong type: no code of ours
// writes one) keeps, with the writes it made before failing, the events and
// file entries of those writes: Redis undoes nothing, so neither may the
// gathering (a scheduled send's call). A send to go now fails alone: the
// call's other messages are accepted whole, events and file entries with
// them, and the failed one leaves none.
func TestAFailedCallKeepsTheEventsOfWhatItWrote(t *testing.T) {
	for _, scheduled := range []bool{true, false} {
		t.Run(fmt.Sprintf("scheduled=%v", scheduled), func(t *testing.T) {
			s, rdb := newTestStore(t)
			ctx := context.Background()
			shard := message.ShardFor(testSender, 4)
			rdb.Set(ctx, s.keys.Guest(shard, testSender, "+14155550199"), "not a guest", 0)
			var jobs []mergedJob
			for _, to := range []string{"+14155550100", "+14155550199"} {
				j := &enqueueJob{done: make(chan struct{}, 1)}
				a := textArgs(to, "hello")
				if scheduled {
					a.DueMS = time.Now().Add(time.Hour).UnixMilli()
				}
				s.prepareEnqueue(j, a)
				jobs = append(jobs, j)
			}
			runOneCall(rdb, jobs)
			first, second := jobs[0].(*enqueueJob), jobs[1].(*enqueueJob)
			id := string(first.id.b)
			want := message.StatusScheduled
			if scheduled {
				if first.err == nil || second.err == nil || !strings.Contains(second.err.Error(), "WRONGTYPE") {
					t.Fatalf("the call answered %v, %v; want its error", first.err, second.err)
				}
			} else {
				want = message.StatusQueued
				if first.err != nil || second.err != nil || first.vals[0] != "ok" || second.vals[0] != "error" ||
					!strings.Contains(second.vals[1].(string), "WRONGTYPE") {
					t.Fatalf("the call answered %v %v, %v %v; want the first accepted, the second's error",
						first.vals, first.err, second.vals, second.err)
				}
				if n := rdb.HLen(ctx, s.keys.Pending(shard)).Val(); n != 1 {
					t.Fatalf("%d send records, want the first message's", n)
				}
			}
			if st, err := s.State(ctx, id); err != nil || st.Status != want {
				t.Fatalf("the first message's state %+v %v: the call wrote it before failing", st, err)
			}
			evs := events(t, s, shard)
			if len(evs) != 1 || evs[0].MessageID != id || evs[0].Status != want {
				t.Fatalf("events %+v, want the first message's %s one", evs, want)
			}
			if n := rdb.XLen(ctx, s.keys.File(shard)).Val(); n != 1 {
				t.Fatalf("%d file entries, want the first message's", n)
			}
		})
	}
}

// A reader learns how many events an entry holds lately and asks for fewer
// entries, so that a read brings about the events it was asked for, not
// that many entries of a call's worth each.
func TestAReadBringsAboutTheEventsAskedFor(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	shard, l, es := queuedSix(t, s)
	r := s.EventReader("loader-1")
	r.Poll = 0
	// The six queued events, one entry each: read and acknowledged.
	if evs, err := r.Read(ctx, nil, 100, 0); err != nil || len(evs) != 6 {
		t.Fatalf("read %d queued events: %v", len(evs), err)
	} else if err := r.Ack(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// Four calls of begins, of six messages each, after retries: four
	// entries of six events.
	for range 4 {
		begins := make([]mergedJob, len(es))
		for i := range es {
			begins[i] = &beginJob{s: s, job: NewJob(l, shard, testSender, &es[i]), now: s.nowMS(), done: make(chan struct{}, 1)}
		}
		runOneCall(rdb, begins)
	}
	var sizes []int
	total := 0
	for total < 24 {
		evs, err := r.Read(ctx, nil, 8, 0)
		if err != nil || len(evs) == 0 {
			t.Fatalf("read %d events (%v) after %d of 24", len(evs), err, total)
		}
		sizes = append(sizes, len(evs))
		total += len(evs)
	}
	// Asked for 8 over 4 shards: two entries at first (12 events), then
	// one at a time.
	if fmt.Sprint(sizes) != "[12 6 6]" {
		t.Fatalf("reads of %v events, want [12 6 6]", sizes)
	}
}
