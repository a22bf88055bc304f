package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis/redistest"
)

func newTestStore(t *testing.T) (*Store, *goredis.Client) {
	t.Helper()
	rdb := redistest.Client(t)
	s, err := New(context.Background(), rdb, Config{Prefix: redistest.Prefix(t, rdb), Shards: 4, InboundParts: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, rdb
}

func textArgs(to, text string) *EnqueueArgs {
	return &EnqueueArgs{
		TenantID: "hotel", Sender: "+15550001000", Recipient: to, Type: message.TypeText,
		Content: []byte(`{"body":"` + text + `"}`), Lane: message.LaneTx, Fingerprint: uint64(len(text)),
	}
}

func TestEnqueueMakesMessageDurable(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	a := textArgs("+1234567890", "hello")
	a.ConversationID, a.StaffMemberID = "conv_abc123", "staff_456"
	res, err := s.Enqueue(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != Queued || res.Status != message.StatusQueued {
		t.Fatalf("got %+v, want a queued message", res)
	}
	shard, err := message.ShardOf(res.ID)
	if err != nil || shard != message.ShardFor("+15550001000", 4) {
		t.Fatalf("id %s: shard %d, %v", res.ID, shard, err)
	}
	st, err := s.State(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != message.StatusQueued || st.TenantID != "hotel" || st.Recipient != "+1234567890" ||
		st.ConversationID != "conv_abc123" || st.StaffMemberID != "staff_456" || st.QueuedMS == 0 {
		t.Fatalf("state %+v", st)
	}
	if n := rdb.XLen(ctx, s.keys.Queue(shard, "tx")).Val(); n != 1 {
		t.Fatalf("tx queue holds %d entries, want 1", n)
	}
	evs := rdb.XRange(ctx, s.keys.Events(shard), "-", "+").Val()
	if len(evs) != 1 || evs[0].Values["s"] != "queued" || evs[0].Values["m"] != res.ID {
		t.Fatalf("events %v", evs)
	}
	if ttl := rdb.TTL(ctx, s.keys.Msg(shard, res.ID)).Val(); ttl < 6*24*time.Hour {
		t.Fatalf("state TTL %v, want the 7-day retention", ttl)
	}
}

func TestEnqueueIdempotencyKey(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	a := textArgs("+1234567890", "hello")
	a.IdempotencyKey = "k-1"
	first, err := s.Enqueue(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Enqueue(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if again.Outcome != Duplicate || again.ID != first.ID || again.Status != message.StatusQueued {
		t.Fatalf("repeat: %+v, want duplicate of %s", again, first.ID)
	}
	shard, _ := message.ShardOf(first.ID)
	if n := rdb.XLen(ctx, s.keys.Queue(shard, "tx")).Val(); n != 1 {
		t.Fatalf("queue holds %d entries after a repeat, want 1", n)
	}
	other := textArgs("+1234567890", "something else")
	other.IdempotencyKey = "k-1"
	conflict, err := s.Enqueue(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if conflict.Outcome != Conflict || conflict.ID != first.ID {
		t.Fatalf("reuse for another message: %+v, want conflict", conflict)
	}
	otherTenant := textArgs("+1234567890", "hello")
	otherTenant.TenantID, otherTenant.IdempotencyKey = "resort", "k-1"
	res, err := s.Enqueue(ctx, otherTenant)
	if err != nil || res.Outcome != Queued || res.ID == first.ID {
		t.Fatalf("another tenant's same key: %+v, %v; want a new message", res, err)
	}
}

func TestEnqueueConcurrentCallersShareRoundTrips(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	const n = 500
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res, err := s.Enqueue(ctx, textArgs(fmt.Sprintf("+1555%07d", i), "hi"))
			if err != nil {
				t.Error(err)
			}
			ids[i] = res.ID
		}(i)
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] || id == "" {
			t.Fatalf("id %q twice or empty", id)
		}
		seen[id] = true
	}
	var total int64
	for sh := 0; sh < 4; sh++ {
		total += rdb.XLen(ctx, s.keys.Queue(sh, "tx")).Val()
	}
	if total != n {
		t.Fatalf("queues hold %d entries, want %d", total, n)
	}
}

func TestScheduledEnqueueWaitsInDelaySet(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	a := textArgs("+1234567890", "later")
	a.DueMS = time.Now().Add(150 * time.Millisecond).UnixMilli()
	res, err := s.Enqueue(ctx, a)
	if err != nil || res.Status != message.StatusScheduled {
		t.Fatalf("%+v %v", res, err)
	}
	shard, _ := message.ShardOf(res.ID)
	if n, _ := s.Promote(ctx, shard, 100); n != 0 {
		t.Fatalf("promoted %d before due", n)
	}
	time.Sleep(200 * time.Millisecond)
	if n, _ := s.Promote(ctx, shard, 100); n != 1 {
		t.Fatalf("promoted %d when due, want 1", n)
	}
	if n := rdb.XLen(ctx, s.keys.Queue(shard, "tx")).Val(); n != 1 {
		t.Fatalf("tx queue %d", n)
	}
}

// claimOne enqueues a text and claims it as consumer.
func claimOne(t *testing.T, s *Store, consumer string) *Job {
	t.Helper()
	ctx := context.Background()
	res, err := s.Enqueue(ctx, textArgs("+1234567890", "hello"))
	if err != nil {
		t.Fatal(err)
	}
	shard, _ := message.ShardOf(res.ID)
	jobs, err := s.Claim(ctx, shard, consumer, 10, -1, nil)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %d jobs, %v", len(jobs), err)
	}
	if jobs[0].Msg.ID != res.ID {
		t.Fatalf("claimed %s, want %s", jobs[0].Msg.ID, res.ID)
	}
	return jobs[0]
}

func TestClaimAndFinish(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	j := claimOne(t, s, "w1")
	if string(j.Msg.Content) != `{"body":"hello"}` || j.Msg.Attempt != 1 || j.Redelivered || j.Msg.Lane != message.LaneTx {
		t.Fatalf("job %+v", j)
	}
	if st, _ := s.State(ctx, j.Msg.ID); st.Status != message.StatusSending {
		t.Fatalf("status while sending: %s", st.Status)
	}
	err := s.Finish(ctx, j, &Result{Status: message.StatusSent, AtMS: time.Now().UnixMilli(), Provider: "meta", ProviderMessageID: "wamid.X1"})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.State(ctx, j.Msg.ID)
	if st.Status != message.StatusSent || st.SentMS == 0 || st.ProviderMessageID != "wamid.X1" || st.Provider != "meta" {
		t.Fatalf("state after finish: %+v", st)
	}
	ids, _ := s.LookupProviderIDs(ctx, []string{"wamid.X1", "wamid.nope"})
	if ids[0] != j.Msg.ID || ids[1] != "" {
		t.Fatalf("provider id lookup %v", ids)
	}
	q := s.keys.Queue(j.Shard, "tx")
	if n := rdb.XLen(ctx, q).Val(); n != 0 {
		t.Fatalf("queue still holds %d entries", n)
	}
	if p := rdb.XPending(ctx, q, GroupDispatch).Val(); p.Count != 0 {
		t.Fatalf("%d entries still pending", p.Count)
	}
}

func TestClaimAfterCrashRedelivers(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	j := claimOne(t, s, "w1")
	// w1 "dies" without finishing. Its own restart finds the entry pending,
	// once: paging on does not bring it back.
	var cur PendingCursor
	again, err := s.ClaimPending(ctx, j.Shard, "w1", 10, &cur, nil)
	if err != nil || len(again) != 1 || !again[0].Redelivered || again[0].Msg.Attempt != 2 {
		t.Fatalf("pending re-read: %+v %v", again, err)
	}
	if more, err := s.ClaimPending(ctx, j.Shard, "w1", 10, &cur, nil); err != nil || len(more) != 0 || !cur.Done {
		t.Fatalf("pending re-read twice: %d more, done %v, %v", len(more), cur.Done, err)
	}
	// …and another worker takes it over once it has been idle long enough.
	if got, _ := s.Reclaim(ctx, j.Shard, "w2", time.Hour, 10, nil); len(got) != 0 {
		t.Fatalf("reclaimed %d entries that are not idle yet", len(got))
	}
	time.Sleep(20 * time.Millisecond)
	got, err := s.Reclaim(ctx, j.Shard, "w2", 10*time.Millisecond, 10, nil)
	if err != nil || len(got) != 1 || !got[0].Redelivered || got[0].Msg.Attempt != 3 {
		t.Fatalf("reclaim: %+v %v", got, err)
	}
}

func TestRetryComesBackWhenDue(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	j := claimOne(t, s, "w1")
	due := time.Now().Add(100 * time.Millisecond).UnixMilli()
	if err := s.Retry(ctx, j, due, &Result{ErrorCode: 131000, ErrorTitle: "Something went wrong"}, false); err != nil {
		t.Fatal(err)
	}
	st, _ := s.State(ctx, j.Msg.ID)
	if st.Status != message.StatusQueued || st.ErrorCode != 131000 {
		t.Fatalf("state after retry: %+v", st)
	}
	if n := rdb.ZCard(ctx, s.keys.Delay(j.Shard)).Val(); n != 1 {
		t.Fatalf("delay set holds %d", n)
	}
	time.Sleep(150 * time.Millisecond)
	if n, err := s.Promote(ctx, j.Shard, 10); n != 1 || err != nil {
		t.Fatalf("promote: %d %v", n, err)
	}
	jobs, err := s.Claim(ctx, j.Shard, "w1", 10, -1, nil)
	if err != nil || len(jobs) != 1 || jobs[0].Msg.Attempt != 2 || jobs[0].Redelivered {
		t.Fatalf("after retry: %+v %v", jobs, err)
	}
}

func TestClaimDropsCanceledAndVanishedMessages(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	res, _ := s.Enqueue(ctx, textArgs("+1234567890", "a"))
	gone, _ := s.Enqueue(ctx, textArgs("+1234567890", "b"))
	shard, _ := message.ShardOf(res.ID)
	rdb.HSet(ctx, s.keys.Msg(shard, res.ID), "st", "canceled")
	rdb.Del(ctx, s.keys.Msg(shard, gone.ID))
	jobs, err := s.Claim(ctx, shard, "w1", 10, -1, nil)
	if err != nil || len(jobs) != 0 {
		t.Fatalf("claimed %d jobs (%v), want none", len(jobs), err)
	}
	if n := rdb.XLen(ctx, s.keys.Queue(shard, "tx")).Val(); n != 0 {
		t.Fatalf("dropped entries left in the queue: %d", n)
	}
}

func TestStatusesMoveForwardOnly(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	f := func(name string, seq []message.Status, want message.Status, wantEvents int) {
		t.Run(name, func(t *testing.T) {
			j := claimOne(t, s, "w1")
			if err := s.Finish(ctx, j, &Result{Status: message.StatusSent, AtMS: 1000, Provider: "meta", ProviderMessageID: "wamid." + j.Msg.ID}); err != nil {
				t.Fatal(err)
			}
			for i, st := range seq {
				if _, err := s.ApplyStatuses(ctx, []StatusApply{{MessageID: j.Msg.ID, Result: Result{Status: st, AtMS: int64(2000 + i)}}}); err != nil {
					t.Fatal(err)
				}
			}
			got, _ := s.State(ctx, j.Msg.ID)
			if got.Status != want {
				t.Fatalf("after %v: %s, want %s", seq, got.Status, want)
			}
			n := 0
			for _, e := range rdb.XRange(ctx, s.keys.Events(j.Shard), "-", "+").Val() {
				if e.Values["m"] == j.Msg.ID {
					n++
				}
			}
			if n != wantEvents {
				t.Fatalf("%d events, want %d", n, wantEvents)
			}
		})
	}
	// events: queued, sending, sent (dispatcher) + each first-seen status
	f("in order", []message.Status{"sent", "delivered", "read"}, message.StatusRead, 5)
	f("read before delivered", []message.Status{"read", "delivered", "sent"}, message.StatusRead, 5)
	f("duplicates", []message.Status{"delivered", "delivered", "read", "read", "delivered"}, message.StatusRead, 5)
	f("late sent keeps delivered", []message.Status{"delivered", "sent"}, message.StatusDelivered, 4)
	f("failed after sent", []message.Status{"failed"}, message.StatusFailed, 4)
	f("delivered outranks failed", []message.Status{"failed", "delivered"}, message.StatusDelivered, 5)
	f("failed after read is noise", []message.Status{"read", "failed"}, message.StatusRead, 4)
	f("unknown status ignored", []message.Status{"deleted"}, message.StatusSent, 3)
}

// TestLuaRankMatchesGo keeps transition.lua's rank table equal to message.Rank.
func TestLuaRankMatchesGo(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	all := []message.Status{"queued", "scheduled", "sending", "sent", "fallback", "failed", "expired", "canceled", "delivered", "read"}
	for _, from := range all {
		for _, to := range all {
			res, _ := s.Enqueue(ctx, textArgs("+1234567890", "x"))
			shard, _ := message.ShardOf(res.ID)
			rdb.HSet(ctx, s.keys.Msg(shard, res.ID), "st", string(from))
			if _, err := s.ApplyStatuses(ctx, []StatusApply{{MessageID: res.ID, Result: Result{Status: to, AtMS: 1}}}); err != nil {
				t.Fatal(err)
			}
			st, _ := s.State(ctx, res.ID)
			want := from
			if message.Rank(to) > message.Rank(from) {
				want = to
			}
			if st.Status != want {
				t.Errorf("%s then %s: %s, want %s", from, to, st.Status, want)
			}
		}
	}
}

func TestApplyStatusesUnknownMessage(t *testing.T) {
	s, _ := newTestStore(t)
	got, err := s.ApplyStatuses(context.Background(), []StatusApply{
		{MessageID: message.NewID(1, time.Now().UnixMilli()), Result: Result{Status: "read"}},
		{MessageID: "not-ours", Result: Result{Status: "read"}},
	})
	if err != nil || got[0] != AppliedUnknown || got[1] != AppliedUnknown {
		t.Fatalf("%v %v", got, err)
	}
}

func TestEventReaderRereadsUnackedAndTrims(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := s.Enqueue(ctx, textArgs(fmt.Sprintf("+155500020%02d", i), "x")); err != nil {
			t.Fatal(err)
		}
	}
	r := s.EventReader("loader-1")
	evs, err := r.Read(ctx, nil, 100, 0)
	if err != nil || len(evs) != 5 {
		t.Fatalf("read %d events: %v", len(evs), err)
	}
	if evs[0].Status != message.StatusQueued || evs[0].TenantID != "hotel" || evs[0].AtMS == 0 || evs[0].Type != message.TypeText {
		t.Fatalf("event %+v", evs[0])
	}
	// The same reader does not hand them out twice (its caller holds them)…
	if dup, _ := r.Read(ctx, nil, 100, 0); len(dup) != 0 {
		t.Fatalf("the reader returned %d held events again", len(dup))
	}
	// …and a restart of the same consumer gets them again, once.
	r2 := s.EventReader("loader-1")
	again, err := r2.Read(ctx, nil, 100, 0)
	if err != nil || len(again) != 5 {
		t.Fatalf("re-read %d events after restart: %v", len(again), err)
	}
	if dup, _ := r2.Read(ctx, nil, 100, 0); len(dup) != 0 {
		t.Fatalf("after a restart the reader returned %d held events twice", len(dup))
	}
	if err := r2.Ack(ctx, again[:3]); err != nil {
		t.Fatal(err)
	}
	if n, err := s.TrimEvents(ctx); err != nil || n != 3 {
		t.Fatalf("trimmed %d (%v), want the 3 acknowledged", n, err)
	}
	r3 := s.EventReader("loader-1")
	rest, _ := r3.Read(ctx, nil, 100, 0)
	if len(rest) != 2 {
		t.Fatalf("after ack of 3, %d come back, want 2", len(rest))
	}
	r3.Ack(ctx, rest)
	s.TrimEvents(ctx)
	var left int64
	for sh := 0; sh < 4; sh++ {
		left += rdb.XLen(ctx, s.keys.Events(sh)).Val()
	}
	if left != 0 {
		t.Fatalf("%d events left after everything was acknowledged", left)
	}
	if got, _ := s.EventReader("loader-1").Read(ctx, nil, 100, 30*time.Millisecond); len(got) != 0 {
		t.Fatalf("read %d events from empty streams", len(got))
	}
}

func TestInboundAppendReadAck(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		if err := s.AppendInbound(ctx, "meta", []byte(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	var all []InboundEntry
	for part := 0; part < 2; part++ {
		got, err := s.ReadInbound(ctx, part, "p1", 10, -1, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("partition %d got %d bodies, want 2 (spread evenly)", part, len(got))
		}
		all = append(all, got...)
	}
	if all[0].Provider != "meta" || all[0].Body[0] != '{' || all[0].ReceivedMS == 0 {
		t.Fatalf("entry %+v", all[0])
	}
	if err := s.AckInbound(ctx, all); err != nil {
		t.Fatal(err)
	}
	for part := 0; part < 2; part++ {
		if got, _ := s.ReadInbound(ctx, part, "p1", 10, -1, true, nil); len(got) != 0 {
			t.Fatalf("acknowledged bodies came back: %d", len(got))
		}
	}
}

func TestOrphansParkAndComeDue(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	now := time.Now().UnixMilli()
	if err := s.ParkOrphans(ctx, 1, []Orphan{{"a", now - 1}, {"b", now - 1}}); err != nil {
		t.Fatal(err)
	}
	s.ParkOrphans(ctx, 1, []Orphan{{"c", now + 60_000}, {"a", now + 60_000}})
	due, _ := s.DueOrphans(ctx, 1, 10)
	if len(due) != 2 {
		t.Fatalf("due %v", due)
	}
	s.RescheduleOrphans(ctx, 1, []Orphan{{"a", now + 60_000}})
	s.RemoveOrphans(ctx, 1, []string{"b"})
	due, _ = s.DueOrphans(ctx, 1, 10)
	if n, _ := s.OrphanCount(ctx); len(due) != 0 || n != 2 {
		t.Fatalf("due %v, count %d", due, n)
	}
}

func TestScriptCacheFlushIsSurvived(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	rdb.ScriptFlush(ctx)
	res, err := s.Enqueue(ctx, textArgs("+1234567890", "after flush"))
	if err != nil || res.Outcome != Queued {
		t.Fatalf("enqueue after SCRIPT FLUSH: %+v %v", res, err)
	}
	rdb.ScriptFlush(ctx)
	shard, _ := message.ShardOf(res.ID)
	jobs, err := s.Claim(ctx, shard, "w1", 10, -1, nil)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim after SCRIPT FLUSH: %d %v", len(jobs), err)
	}
}

func TestStatusTimesNeverPrecedeEarlierStatuses(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	j := claimOne(t, s, "w1")
	sentAt := time.Now().UnixMilli()
	if err := s.Finish(ctx, j, &Result{Status: message.StatusSent, AtMS: sentAt, ProviderMessageID: "wamid.T"}); err != nil {
		t.Fatal(err)
	}
	// Meta stamps in whole seconds: this "delivered" claims to precede the send.
	secs := sentAt / 1000 * 1000
	s.ApplyStatuses(ctx, []StatusApply{{MessageID: j.Msg.ID, Result: Result{Status: "delivered", AtMS: secs}}})
	s.ApplyStatuses(ctx, []StatusApply{{MessageID: j.Msg.ID, Result: Result{Status: "read", AtMS: secs}}})
	st, _ := s.State(ctx, j.Msg.ID)
	if st.DeliveredMS <= st.SentMS || st.ReadMS <= st.DeliveredMS {
		t.Fatalf("sent %d, delivered %d, read %d: out of order", st.SentMS, st.DeliveredMS, st.ReadMS)
	}
}

func TestEventReaderTakesOverOnlyOthersIdleEvents(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		s.Enqueue(ctx, textArgs(fmt.Sprintf("+155500030%02d", i), "x"))
	}
	a := s.EventReader("loader-a")
	a.ReclaimIdle = 20 * time.Millisecond
	held, _ := a.Read(ctx, nil, 100, 0)
	if len(held) != 3 {
		t.Fatalf("read %d", len(held))
	}
	time.Sleep(40 * time.Millisecond)
	if dup, _ := a.Read(ctx, nil, 100, 0); len(dup) != 0 {
		t.Fatalf("a took back %d of its own held events", len(dup))
	}
	b := s.EventReader("loader-b")
	b.ReclaimIdle = 20 * time.Millisecond
	b.lastReclaim = time.Time{}
	got, _ := b.Read(ctx, nil, 100, 0)
	if len(got) != 3 {
		t.Fatalf("b took over %d of a's idle events, want 3", len(got))
	}
}

func TestClassifyTellsUnsentFromUnconfirmed(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	read := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, c := range []struct {
		err         error
		unconfirmed bool
	}{
		{dial, false},
		{fmt.Errorf("%w: %w", errNotSent, context.DeadlineExceeded), false},
		{errClosed, false},
		{read, true},
		{context.DeadlineExceeded, true},
		{net.ErrClosed, true},
		{errors.New("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
	} {
		if got := errors.Is(classify(c.err), ErrUnconfirmed); got != c.unconfirmed {
			t.Errorf("classify(%v): unconfirmed %v, want %v", c.err, got, c.unconfirmed)
		}
	}
}
