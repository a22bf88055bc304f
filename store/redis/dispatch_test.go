package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
)

func TestDeadLettersListAndRequeue(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	j := claimOne(t, s, "w1")
	if err := s.Finish(ctx, j, &Result{Status: message.StatusFailed, AtMS: time.Now().UnixMilli(), ErrorCode: 131000, ErrorTitle: "Something went wrong"}, FinishOptions{DeadLetter: true}); err != nil {
		t.Fatal(err)
	}
	dl, _, err := s.DeadLetters(ctx, "hotel", 10, "")
	if err != nil || len(dl) != 1 || dl[0].MessageID != j.Msg.ID || dl[0].ErrorCode != 131000 || dl[0].Attempts != 1 || dl[0].Recipient != "+1234567890" {
		t.Fatalf("dead letters %+v %v", dl, err)
	}
	if other, _, _ := s.DeadLetters(ctx, "resort", 10, ""); len(other) != 0 {
		t.Fatalf("another tenant sees %d dead letters", len(other))
	}
	if err := s.Requeue(ctx, "resort", j.Msg.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another tenant's requeue: %v", err)
	}
	if err := s.Requeue(ctx, "hotel", j.Msg.ID); err != nil {
		t.Fatal(err)
	}
	st, _ := s.State(ctx, j.Msg.ID)
	if st.Status != message.StatusQueued || st.FailedMS != 0 || st.ErrorCode != 0 {
		t.Fatalf("after requeue: %+v", st)
	}
	if dl, _, _ := s.DeadLetters(ctx, "hotel", 10, ""); len(dl) != 0 {
		t.Fatalf("still dead-lettered: %v", dl)
	}
	if err := s.Requeue(ctx, "hotel", j.Msg.ID); !errors.Is(err, ErrNotFailed) {
		t.Fatalf("second requeue: %v, want ErrNotFailed", err)
	}
	e := readOne(t, s, j.Shard, "w1")
	j2 := NewJob(j.Lease, j.Shard, testSender, &e)
	if b, _ := s.Begin(ctx, j2); b != BeginGo || j2.Msg.Attempt != 2 || j2.Counted() != 1 {
		t.Fatalf("requeued: attempt %d counted %d, want a fresh budget", j2.Msg.Attempt, j2.Counted())
	}
	// A new failure is recorded again.
	s.Finish(ctx, j2, &Result{Status: message.StatusFailed, AtMS: time.Now().UnixMilli(), ErrorCode: 131026}, FinishOptions{DeadLetter: true})
	if st, _ := s.State(ctx, j.Msg.ID); st.Status != message.StatusFailed || st.ErrorCode != 131026 || st.FailedMS == 0 {
		t.Fatalf("second failure: %+v", st)
	}
	n := 0
	for _, ev := range events(t, s, j.Shard) {
		if ev.Status == "failed" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d failed events, want one per failure", n)
	}
}

func TestCollectQueueDropsOnlyDrainedStreams(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	j := claimOne(t, s, "w1")
	if dropped, _ := s.CollectQueue(ctx, j.Shard, testSender, j.Stream); dropped {
		t.Fatal("dropped a stream with a pending entry")
	}
	s.Finish(ctx, j, &Result{Status: message.StatusSent, AtMS: time.Now().UnixMilli()}, FinishOptions{})
	if dropped, err := s.CollectQueue(ctx, j.Shard, testSender, j.Stream); !dropped || err != nil {
		t.Fatalf("drained stream kept: %v", err)
	}
	if rdb.Exists(ctx, j.Stream).Val() != 0 {
		t.Fatal("stream still there")
	}
	if senders, _ := s.ShardSenders(ctx, j.Shard); len(senders) != 0 {
		t.Fatalf("senders %v", senders)
	}
	// The next message makes it again.
	res, _ := s.Enqueue(ctx, textArgs("+1234567890", "again"))
	if e := readOne(t, s, j.Shard, "w1"); e.MessageID != res.ID {
		t.Fatalf("after collection: %+v", e)
	}
}

func TestLeasesAreExclusiveAndFenced(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	a, ok, err := s.TakeLease(ctx, "dispatch", 1, "a", time.Second)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, ok, _ := s.TakeLease(ctx, "dispatch", 1, "b", time.Second); ok {
		t.Fatal("b took a held lease")
	}
	if _, ok, _ := s.TakeLease(ctx, "loader", 1, "b", time.Second); !ok {
		t.Fatal("another role's lease of the same shard is not separate")
	}
	if ok, _ := s.RenewLease(ctx, a, time.Second); !ok {
		t.Fatal("renew failed")
	}
	if err := s.ReleaseLease(ctx, a); err != nil {
		t.Fatal(err)
	}
	b, ok, _ := s.TakeLease(ctx, "dispatch", 1, "b", 100*time.Millisecond)
	if !ok || b.Value <= a.Value && len(b.Value) <= len(a.Value) {
		t.Fatalf("b: %v %+v after %+v", ok, b, a)
	}
	// a's stale renewal fails; at most it sets b's lease to expire after
	// the role's TTL, as b's own renewal would.
	if ok, _ := s.RenewLease(ctx, a, 100*time.Millisecond); ok {
		t.Fatal("a renewed b's lease")
	}
	if v, _ := s.rdb.Get(ctx, s.keys.Lease(1, "dispatch")).Result(); v != b.Value {
		t.Fatalf("after a's stale renewal the lease is %q, want b's %q", v, b.Value)
	}
	time.Sleep(150 * time.Millisecond)
	if _, ok, _ := s.TakeLease(ctx, "dispatch", 1, "c", time.Second); !ok {
		t.Fatal("an expired lease was not free")
	}
}

// fakeOwner records what a Leaser tells it.
type fakeOwner struct {
	mu    sync.Mutex
	owned map[int]bool
	lost  int
}

func (o *fakeOwner) Acquired(l *Lease) { o.mu.Lock(); o.owned[l.Shard] = true; o.mu.Unlock() }
func (o *fakeOwner) Release(shard int, done func()) {
	o.mu.Lock()
	delete(o.owned, shard)
	o.mu.Unlock()
	go done()
}
func (o *fakeOwner) Lost(shard int) { o.mu.Lock(); delete(o.owned, shard); o.lost++; o.mu.Unlock() }
func (o *fakeOwner) count() int     { o.mu.Lock(); defer o.mu.Unlock(); return len(o.owned) }

func TestLeasersSpreadShardsAndTakeOverFromTheDead(t *testing.T) {
	rdb := redistestClient(t)
	s, err := New(context.Background(), rdb, Config{Prefix: redistestPrefix(t, rdb), Shards: 16, InboundParts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := func(name string) (*Leaser, *fakeOwner) {
		o := &fakeOwner{owned: map[int]bool{}}
		l, err := s.NewLeaser(LeaserConfig{Role: "dispatch", Instance: name, TTL: 600 * time.Millisecond}, o, discard())
		if err != nil {
			t.Fatal(err)
		}
		l.Start()
		return l, o
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	la, oa := start("a")
	waitFor("a owns all 16", func() bool { return oa.count() == 16 })
	lb, ob := start("b")
	waitFor("an even split", func() bool { return oa.count() == 8 && ob.count() == 8 })
	for _, sh := range la.Owned() {
		for _, other := range lb.Owned() {
			if sh == other {
				t.Fatalf("shard %d owned twice", sh)
			}
		}
	}
	// b dies without a word: a takes its shards once their leases expire.
	lb.stopOnce.Do(func() { close(lb.stop) })
	<-lb.done
	died := time.Now()
	waitFor("a owns all 16 again", func() bool { return oa.count() == 16 })
	// Its leases and its membership run out a tick short of a TTL after its
	// last renewal; a tick later a survivor holds them.
	took := time.Since(died)
	t.Logf("shards of a dead instance moved in %v (lease TTL 600ms)", took)
	if took > 600*time.Millisecond+50*time.Millisecond { // a little for the scheduler
		t.Fatalf("takeover took %v with a 600ms lease TTL", took)
	}
	// A graceful stop gives shards back at once.
	lc, oc := start("c")
	waitFor("a and c split", func() bool { return oa.count() == 8 && oc.count() == 8 })
	if err := lc.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	waitFor("a owns all 16 after c stopped", func() bool { return oa.count() == 16 })
	if took := time.Since(stopped); took > 400*time.Millisecond {
		t.Fatalf("after a graceful stop the shards moved in %v; they should not wait for the TTL", took)
	}
	la.Shutdown(context.Background())
}

func TestDeadLetterPagesNeitherRepeatNorSkip(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	// Many in one pipeline: several share a millisecond.
	var want []string
	for i := 0; i < 9; i++ {
		a := textArgs(fmt.Sprintf("+1555000%04d", i), "x")
		a.Sender = fmt.Sprintf("+1444000%04d", i%3)
		res, _ := s.Enqueue(ctx, a)
		want = append(want, res.ID)
	}
	var jobs []*Job
	for _, id := range want {
		st, _ := s.State(ctx, id)
		shard, _ := message.ShardOf(id)
		l := testLease(t, s, shard, "w1")
		es, _ := s.ReadEntries(ctx, "w1", []string{s.keys.SenderQueue(shard, st.Sender, message.LaneTx, "")}, 100, nil)
		for i := range es {
			j := NewJob(l, shard, st.Sender, &es[i])
			s.Begin(ctx, j)
			jobs = append(jobs, j)
		}
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func(j *Job) {
			defer wg.Done()
			s.Finish(ctx, j, &Result{Status: message.StatusFailed, AtMS: time.Now().UnixMilli(), ErrorCode: 131000}, FinishOptions{DeadLetter: true})
		}(j)
	}
	wg.Wait()
	seen := map[string]bool{}
	cursor := ""
	for page := 0; page < 10; page++ {
		dls, next, err := s.DeadLetters(ctx, "hotel", 2, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dls {
			if seen[d.MessageID] {
				t.Fatalf("page %d repeats %s", page, d.MessageID)
			}
			seen[d.MessageID] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 9 {
		t.Fatalf("paged through %d of 9 dead letters", len(seen))
	}
	if _, _, err := s.DeadLetters(ctx, "hotel", 2, "garbage"); err != ErrBadCursor {
		t.Fatalf("bad cursor: %v", err)
	}
}

// Scheduling a send tells the shard's owner when it is due (its
// housekeeping sleeps until then), once per call and shard: the earliest.
func TestScheduledSendsTellTheirDue(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	shard := message.ShardFor(testSender, 4)
	now := time.Now()
	for _, in := range []time.Duration{time.Hour, time.Minute} {
		a := textArgs("+15550008000", "later")
		a.DueMS = now.Add(in).UnixMilli()
		if _, err := s.Enqueue(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	wu, err := s.ReadWakeUps(ctx, shard, "0-0", -1, nil)
	if err != nil || len(wu.Senders) != 0 || wu.Due.UnixMilli() != now.Add(time.Minute).UnixMilli() {
		t.Fatalf("wake-ups %+v (%v), want only the due in a minute", wu, err)
	}
	if next, ok, _ := s.NextDue(ctx, shard); !ok || !next.Equal(wu.Due) {
		t.Fatalf("next due %v, told %v", next, wu.Due)
	}
}
