package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
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

const testSender = "+15550001000"

// events are the events of shard's stream, decoded as the loader reads them.
func events(t *testing.T, s *Store, shard int) []message.Event {
	t.Helper()
	ms, err := s.rdb.XRange(context.Background(), s.keys.Events(shard), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []message.Event
	for _, m := range ms {
		out = appendEvents(out, shard, m)
	}
	return out
}

// queuedSix queues six texts from testSender to one guest and reads their
// queue entries as the lease's owner would: the shard, its lease and the
// entries.
func queuedSix(t *testing.T, s *Store) (int, *Lease, []Entry) {
	t.Helper()
	ctx := context.Background()
	shard := message.ShardFor(testSender, 4)
	l := testLease(t, s, shard, "w1")
	for range 6 {
		if _, err := s.Enqueue(ctx, textArgs("+1234567890", "hello")); err != nil {
			t.Fatal(err)
		}
	}
	es, err := s.ReadEntries(ctx, "w1", []string{s.keys.SenderQueue(shard, testSender, message.LaneTx, "")}, 10, nil)
	if err != nil || len(es) != 6 {
		t.Fatalf("read %d entries: %v", len(es), err)
	}
	return shard, l, es
}

// runOneCall runs jobs in one merged call, as a flush does.
func runOneCall(rdb *goredis.Client, jobs []mergedJob) {
	g := &callGroup{key: jobs[0].mergeKey(), jobs: jobs}
	p := rdb.Pipeline()
	g.queue(context.Background(), p)
	p.Exec(context.Background())
	g.answer()
}

// testLease takes shard's dispatch lease for instance.
func testLease(t *testing.T, s *Store, shard int, instance string) *Lease {
	t.Helper()
	l, ok, err := s.TakeLease(context.Background(), "dispatch", shard, instance, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !ok { // held already: by this instance, or the test is wrong
		v := s.rdb.Get(context.Background(), s.keys.Lease(shard, "dispatch")).Val()
		if !strings.HasPrefix(v, instance+"\t") {
			t.Fatalf("lease of shard %d held by %q", shard, v)
		}
		l = &Lease{Shard: shard, Role: "dispatch", Value: v}
	}
	return l
}

// readOne reads the one new entry of the sender's tx queue.
func readOne(t *testing.T, s *Store, shard int, consumer string) Entry {
	t.Helper()
	es, err := s.ReadEntries(context.Background(), consumer, []string{s.keys.SenderQueue(shard, testSender, message.LaneTx, "")}, 10, nil)
	if err != nil || len(es) != 1 {
		t.Fatalf("read: %v %v", es, err)
	}
	return es[0]
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
	if err != nil || shard != message.ShardFor(testSender, 4) {
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
	q := s.keys.SenderQueue(shard, testSender, message.LaneTx, "")
	if n := rdb.XLen(ctx, q).Val(); n != 1 {
		t.Fatalf("tx queue holds %d entries, want 1", n)
	}
	if refs, _ := s.SenderQueueRefs(ctx, shard, testSender); len(refs) != 1 || refs[0].Stream != q || refs[0].Lane != message.LaneTx {
		t.Fatalf("queue registry %v", refs)
	}
	if senders, _ := s.ShardSenders(ctx, shard); len(senders) != 1 || senders[0] != testSender {
		t.Fatalf("senders %v", senders)
	}
	if wakes, _, _ := s.ReadWakes(ctx, shard, "0-0", -1, nil); len(wakes) != 1 || wakes[0] != testSender {
		t.Fatalf("wake-ups %v", wakes)
	}
	evs := events(t, s, shard)
	if len(evs) != 1 || evs[0].Status != "queued" || evs[0].MessageID != res.ID || evs[0].TenantID != "hotel" ||
		evs[0].ConversationID != "conv_abc123" || evs[0].Channel != "whatsapp" || evs[0].AtMS == 0 {
		t.Fatalf("events %v", evs)
	}
	// A queued message is its send record, which waits as long as it
	// must; its state is made, with its TTL, when the dispatcher takes it.
	if n := rdb.Exists(ctx, s.keys.Msg(shard, res.ID)).Val(); n != 0 {
		t.Fatal("a state hash for a message the dispatcher has not taken")
	}
	if rdb.HExists(ctx, s.keys.Pending(shard), res.ID).Val() != true || rdb.TTL(ctx, s.keys.Pending(shard)).Val() != -1 {
		t.Fatalf("send record in the pending hash: %v, its TTL %v; want there, none",
			rdb.HExists(ctx, s.keys.Pending(shard), res.ID).Val(), rdb.TTL(ctx, s.keys.Pending(shard)).Val())
	}
	if n, _ := s.TenantOpen(ctx, "hotel"); n != 1 {
		t.Fatalf("tenant has %d open messages, want 1", n)
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
	if n := rdb.XLen(ctx, s.keys.SenderQueue(shard, testSender, message.LaneTx, "")).Val(); n != 1 {
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
	s, _ := newTestStore(t)
	ctx := context.Background()
	const n = 500
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			a := textArgs(fmt.Sprintf("+1555%07d", i), "hi")
			a.Sender = fmt.Sprintf("+1444%07d", i%7)
			res, err := s.Enqueue(ctx, a)
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
	tx, bulk, delayed, err := s.QueueDepth(ctx)
	if err != nil || tx != n || bulk != 0 || delayed != 0 {
		t.Fatalf("queue depth %d/%d/%d (%v), want %d transactional", tx, bulk, delayed, err, n)
	}
}

func TestBulkCampaignsGetTheirOwnQueues(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	for _, c := range []string{"spring", "spring", "loyalty"} {
		a := textArgs("+1234567890", "offer")
		a.Lane, a.Campaign = message.LaneBulk, c
		if _, err := s.Enqueue(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	shard := message.ShardFor(testSender, 4)
	refs, _ := s.SenderQueueRefs(ctx, shard, testSender)
	got := map[string]bool{}
	for _, r := range refs {
		if r.Lane != message.LaneBulk {
			t.Fatalf("queue %+v", r)
		}
		got[r.Campaign] = true
	}
	if len(got) != 2 || !got["spring"] || !got["loyalty"] {
		t.Fatalf("campaign queues %v", refs)
	}
	if tx, bulk, _, _ := s.QueueDepth(ctx); tx != 0 || bulk != 3 {
		t.Fatalf("depth tx %d bulk %d", tx, bulk)
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
	q := s.keys.SenderQueue(shard, testSender, message.LaneTx, "")
	if n, _ := s.Promote(ctx, shard, 100); n != 0 || rdb.Exists(ctx, q).Val() != 0 {
		t.Fatalf("promoted %d before due", n)
	}
	time.Sleep(200 * time.Millisecond)
	if n, _ := s.Promote(ctx, shard, 100); n != 1 {
		t.Fatalf("promoted %d when due, want 1", n)
	}
	e := readOne(t, s, shard, "w1") // the stream and its group were made on the way
	if e.MessageID != res.ID || e.Recipient != "+1234567890" {
		t.Fatalf("entry %+v", e)
	}
	if wakes, _, _ := s.ReadWakes(ctx, shard, "0-0", -1, nil); len(wakes) != 1 {
		t.Fatalf("promotion woke %v", wakes)
	}
}

// beginOne enqueues a text, reads its entry under lease and begins it.
func beginOne(t *testing.T, s *Store, l *Lease, consumer string) *Job {
	t.Helper()
	ctx := context.Background()
	res, err := s.Enqueue(ctx, textArgs("+1234567890", "hello"))
	if err != nil {
		t.Fatal(err)
	}
	e := readOne(t, s, l.Shard, consumer)
	if e.MessageID != res.ID {
		t.Fatalf("read %s, want %s", e.MessageID, res.ID)
	}
	j := NewJob(l, l.Shard, testSender, &e)
	if b, err := s.Begin(ctx, j); err != nil || b != BeginGo {
		t.Fatalf("begin: %v %v", b, err)
	}
	return j
}

func claimOne(t *testing.T, s *Store, consumer string) *Job {
	t.Helper()
	return beginOne(t, s, testLease(t, s, message.ShardFor(testSender, 4), consumer), consumer)
}

func TestBeginAndFinish(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	j := claimOne(t, s, "w1")
	if string(j.Msg.Content) != `{"body":"hello"}` || j.Msg.Attempt != 1 || j.Redelivered || j.Msg.Lane != message.LaneTx || j.Msg.TenantID != "hotel" {
		t.Fatalf("job %+v", j)
	}
	if st, _ := s.State(ctx, j.Msg.ID); st.Status != message.StatusSending {
		t.Fatalf("status while sending: %s", st.Status)
	}
	err := s.Finish(ctx, j, &Result{Status: message.StatusSent, AtMS: time.Now().UnixMilli(), Provider: "meta", ProviderMessageID: "wamid.X1"}, FinishOptions{})
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
	if n := rdb.XLen(ctx, j.Stream).Val(); n != 0 {
		t.Fatalf("queue still holds %d entries", n)
	}
	if p := rdb.XPending(ctx, j.Stream, GroupDispatch).Val(); p.Count != 0 {
		t.Fatalf("%d entries still pending", p.Count)
	}
	if n, _ := s.TenantOpen(ctx, "hotel"); n != 0 {
		t.Fatalf("a sent message still counts as open: %d", n)
	}
}

func TestTakenOverEntriesAreRedelivered(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	shard := message.ShardFor(testSender, 4)
	l1 := testLease(t, s, shard, "w1")
	j := beginOne(t, s, l1, "w1")
	// w1 dies mid-send; its lease goes, w2 takes the shard and its entries.
	s.ReleaseLease(ctx, l1)
	l2 := testLease(t, s, shard, "w2")
	es, next, err := s.ClaimEntries(ctx, j.Stream, "w2", "0-0", 100, nil)
	if err != nil || len(es) != 1 || next != "0-0" {
		t.Fatalf("claim: %v %s %v", es, next, err)
	}
	j2 := NewJob(l2, shard, testSender, &es[0])
	if b, err := s.Begin(ctx, j2); err != nil || b != BeginGo || !j2.Redelivered || j2.Msg.Attempt != 2 {
		t.Fatalf("begin after takeover: %v %v %+v", b, err, j2)
	}
	// w1's late outcome is refused: w2 owns the shard now.
	if err := s.Finish(ctx, j, &Result{Status: message.StatusSent, AtMS: 1}, FinishOptions{}); !errors.Is(err, ErrFenced) {
		t.Fatalf("finish under a lost lease: %v, want ErrFenced", err)
	}
	if err := s.Retry(ctx, j, 1, &Result{}, false); !errors.Is(err, ErrFenced) {
		t.Fatalf("retry under a lost lease: %v, want ErrFenced", err)
	}
	if _, err := s.Begin(ctx, NewJob(l1, shard, testSender, &es[0])); !errors.Is(err, ErrFenced) {
		t.Fatalf("begin under a lost lease: %v", err)
	}
	if err := s.Finish(ctx, j2, &Result{Status: message.StatusSent, AtMS: time.Now().UnixMilli()}, FinishOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestRetryKeepsTheEntryInPlace(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	j := claimOne(t, s, "w1")
	due := time.Now().Add(100 * time.Millisecond).UnixMilli()
	for i := 0; i < 2; i++ { // twice: a repeat of the same write changes nothing
		if err := s.Retry(ctx, j, due, &Result{ErrorCode: 131000, ErrorTitle: "Something went wrong"}, false); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := s.State(ctx, j.Msg.ID)
	if st.Status != message.StatusQueued || st.ErrorCode != 131000 || st.DueMS != 0 {
		t.Fatalf("state after retry: %+v", st)
	}
	if p := rdb.XPending(ctx, j.Stream, GroupDispatch).Val(); p.Count != 1 || rdb.XLen(ctx, j.Stream).Val() != 1 {
		t.Fatalf("the retried entry left its place: pending %d", p.Count)
	}
	n := 0
	for _, e := range events(t, s, j.Shard) {
		if e.Status == "queued" && e.ErrorCode == 131000 {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d retry events for one failed attempt", n)
	}
	// Before its time, a new owner taking it over is told to wait.
	j2 := NewJob(j.Lease, j.Shard, testSender, &Entry{Stream: j.Stream, ID: j.EntryID, MessageID: j.Msg.ID, Recipient: j.Msg.Recipient})
	if b, err := s.Begin(ctx, j2); err != nil || b != BeginLater || j2.RetryDue.UnixMilli() != due {
		t.Fatalf("begin before due: %v %v %v", b, err, j2.RetryDue)
	}
	time.Sleep(120 * time.Millisecond)
	if b, err := s.Begin(ctx, j2); err != nil || b != BeginGo || j2.Msg.Attempt != 2 || j2.Counted() != 2 || j2.Redelivered {
		t.Fatalf("after due: %v %v %+v", b, err, j2)
	}
	if err := s.Finish(ctx, j2, &Result{Status: message.StatusSent, AtMS: time.Now().UnixMilli()}, FinishOptions{}); err != nil {
		t.Fatal(err)
	}
	if rdb.XLen(ctx, j.Stream).Val() != 0 {
		t.Fatal("entry not acknowledged after the send")
	}
}

func TestThrottledRetriesAreNotCounted(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	j := claimOne(t, s, "w1")
	s.Retry(ctx, j, 1, &Result{ErrorCode: 130429}, true)
	j2 := NewJob(j.Lease, j.Shard, testSender, &Entry{Stream: j.Stream, ID: j.EntryID, MessageID: j.Msg.ID, Recipient: j.Msg.Recipient})
	s.Begin(ctx, j2)
	if j2.Msg.Attempt != 2 || j2.Throttled != 1 || j2.Counted() != 1 {
		t.Fatalf("attempt %d throttled %d counted %d", j2.Msg.Attempt, j2.Throttled, j2.Counted())
	}
}

func TestExpiredMessagesAreNeverSent(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	a := textArgs("+1234567890", "room ready")
	a.ExpiresMS = time.Now().Add(50 * time.Millisecond).UnixMilli()
	res, _ := s.Enqueue(ctx, a)
	time.Sleep(80 * time.Millisecond)
	shard, _ := message.ShardOf(res.ID)
	l := testLease(t, s, shard, "w1")
	e := readOne(t, s, shard, "w1")
	if b, err := s.Begin(ctx, NewJob(l, shard, testSender, &e)); err != nil || b != BeginExpired {
		t.Fatalf("begin of an expired message: %v %v", b, err)
	}
	st, _ := s.State(ctx, res.ID)
	if st.Status != message.StatusExpired || st.ExpiredMS == 0 || st.Attempts != 0 || st.ErrorTitle == "" {
		t.Fatalf("state %+v", st)
	}
	if n := rdb.XLen(ctx, e.Stream).Val(); n != 0 {
		t.Fatal("the expired entry is still queued")
	}
	if n, _ := s.TenantOpen(ctx, "hotel"); n != 0 {
		t.Fatalf("an expired message counts as open: %d", n)
	}
	var statuses []string
	for _, ev := range events(t, s, shard) {
		statuses = append(statuses, string(ev.Status))
	}
	if fmt.Sprint(statuses) != "[queued expired]" {
		t.Fatalf("events %v", statuses)
	}
}

func TestBeginDropsCanceledAndVanishedMessages(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	res, _ := s.Enqueue(ctx, textArgs("+1234567890", "a"))
	gone, _ := s.Enqueue(ctx, textArgs("+1234567891", "b"))
	shard, _ := message.ShardOf(res.ID)
	rdb.HSet(ctx, s.keys.Msg(shard, res.ID), "st", "canceled")
	rdb.HDel(ctx, s.keys.Pending(shard), gone.ID)
	l := testLease(t, s, shard, "w1")
	es, _ := s.ReadEntries(ctx, "w1", []string{s.keys.SenderQueue(shard, testSender, message.LaneTx, "")}, 10, nil)
	want := []Begun{BeginDone, BeginGone}
	for i, e := range es {
		if b, err := s.Begin(ctx, NewJob(l, shard, testSender, &e)); err != nil || b != want[i] {
			t.Fatalf("entry %d: %v %v, want %v", i, b, err, want[i])
		}
	}
	if n := rdb.XLen(ctx, es[0].Stream).Val(); n != 0 {
		t.Fatalf("dropped entries left in the queue: %d", n)
	}
}

func TestStatusesMoveForwardOnly(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	f := func(name string, seq []message.Status, want message.Status, wantEvents int) {
		t.Run(name, func(t *testing.T) {
			j := claimOne(t, s, "w1")
			if err := s.Finish(ctx, j, &Result{Status: message.StatusSent, AtMS: 1000, Provider: "meta", ProviderMessageID: "wamid." + j.Msg.ID}, FinishOptions{}); err != nil {
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
			for _, e := range events(t, s, j.Shard) {
				if e.MessageID == j.Msg.ID {
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
			// A scheduled send has its state from the start.
			a := textArgs("+1234567890", "x")
			a.DueMS = time.Now().Add(time.Hour).UnixMilli()
			res, _ := s.Enqueue(ctx, a)
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
	// The webhook deliverer's group has not read them yet: nothing goes.
	if n, err := s.TrimEvents(ctx); err != nil || n != 0 {
		t.Fatalf("trimmed %d (%v) that the hooks group still needs", n, err)
	}
	hr := s.HookEventReader("hooks-1")
	hevs, err := hr.Read(ctx, nil, 100, 0)
	if err != nil || len(hevs) != 5 {
		t.Fatalf("hooks group read %d events: %v", len(hevs), err)
	}
	if err := hr.Ack(ctx, hevs); err != nil {
		t.Fatal(err)
	}
	if n, err := s.TrimEvents(ctx); err != nil || n != 3 {
		t.Fatalf("trimmed %d (%v), want the 3 both groups acknowledged", n, err)
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
	l := testLease(t, s, shard, "w1")
	e := readOne(t, s, shard, "w1")
	rdb.ScriptFlush(ctx)
	if b, err := s.Begin(ctx, NewJob(l, shard, testSender, &e)); err != nil || b != BeginGo {
		t.Fatalf("begin after SCRIPT FLUSH: %v %v", b, err)
	}
}

func TestStatusTimesNeverPrecedeEarlierStatuses(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	j := claimOne(t, s, "w1")
	sentAt := time.Now().UnixMilli()
	if err := s.Finish(ctx, j, &Result{Status: message.StatusSent, AtMS: sentAt, ProviderMessageID: "wamid.T"}, FinishOptions{}); err != nil {
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

// A consumer that dies holding events (it stops heartbeating and never
// acknowledges) has them taken over within seconds of its membership
// running out; a live one keeps them however long it holds them (a loader
// while ClickHouse is down). For both groups of the events streams.
func TestEventReaderTakesOverOnlyDeadConsumersEvents(t *testing.T) {
	const ttl = time.Second
	for _, tc := range []struct {
		group  string
		reader func(*Store, string) *EventReader
	}{{"loader", (*Store).EventReader}, {"hooks", (*Store).HookEventReader}} {
		t.Run(tc.group, func(t *testing.T) {
			s, _ := newTestStore(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for i := 0; i < 3; i++ {
				if _, err := s.Enqueue(ctx, textArgs(fmt.Sprintf("+155500030%02d", i), "x")); err != nil {
					t.Fatal(err)
				}
			}
			actx, die := context.WithCancel(ctx)
			a := tc.reader(s, "a")
			a.MemberTTL = ttl
			held, err := a.Read(actx, nil, 100, 0)
			if err != nil || len(held) != 3 {
				t.Fatalf("a read %d: %v", len(held), err)
			}
			b := tc.reader(s, "b")
			b.MemberTTL, b.ReclaimIdle = ttl, 20*time.Millisecond
			// a holds them without reading, alive, for twice its TTL: b
			// takes none, not even with its idle rule at 20 ms.
			for until := time.Now().Add(2 * ttl); time.Now().Before(until); {
				b.lastReclaim = time.Time{}
				if got, err := b.Read(ctx, nil, 100, 50*time.Millisecond); err != nil || len(got) != 0 {
					t.Fatalf("b took %d events of a live consumer (%v)", len(got), err)
				}
			}
			if dup, _ := a.Read(actx, nil, 100, 0); len(dup) != 0 {
				t.Fatalf("a was handed %d of its own held events again", len(dup))
			}
			// a dies: b has them within its TTL and half another (b looks
			// every half TTL), give or take a read.
			die()
			died := time.Now()
			var got []message.Event
			for len(got) < 3 {
				if time.Since(died) > 3*ttl {
					t.Fatalf("b took over %d of a dead consumer's 3 events in %v", len(got), time.Since(died))
				}
				if got, err = b.Read(ctx, got, 100, 50*time.Millisecond); err != nil {
					t.Fatal(err)
				}
			}
			ids := func(evs []message.Event) []string {
				var out []string
				for _, e := range evs {
					out = append(out, fmt.Sprint(e.Shard, e.StreamID))
				}
				slices.Sort(out)
				return out
			}
			if !slices.Equal(ids(got), ids(held)) {
				t.Fatalf("b took %v, a held %v", ids(got), ids(held))
			}
			t.Logf("taken over %v after a died (TTL %v)", time.Since(died).Round(10*time.Millisecond), ttl)
		})
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

func redistestClient(t *testing.T) *goredis.Client           { return redistest.Client(t) }
func redistestPrefix(t *testing.T, c *goredis.Client) string { return redistest.Prefix(t, c) }
func discard() *slog.Logger                                  { return slog.New(slog.DiscardHandler) }

func TestABurstWakesItsSenderOnce(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	shard := message.ShardFor(testSender, 4)
	for i := 0; i < 5; i++ {
		s.Enqueue(ctx, textArgs(fmt.Sprintf("+155500050%02d", i), "x"))
	}
	wakes, after, err := s.ReadWakes(ctx, shard, "0-0", -1, nil)
	if err != nil || len(wakes) != 1 {
		t.Fatalf("5 messages gave wake-ups %v (%v), want one", wakes, err)
	}
	// Taken up: the next message wakes the sender again.
	s.Enqueue(ctx, textArgs("+15550006000", "x"))
	if more, _, _ := s.ReadWakes(ctx, shard, after, -1, nil); len(more) != 1 {
		t.Fatalf("after the wake-up was taken, a new message gave %v", more)
	}
}

// TestStatusFieldsAsLuaLaysThemOut: a status recorded by the dispatcher
// (Finish: lib.lua's status_fields and provider_part) and the same status
// from a webhook (ApplyStatuses: Go's appendStatusFields and
// appendProviderPart) write the same state fields and the same event.
func TestStatusFieldsAsLuaLaysThemOut(t *testing.T) {
	ctx := context.Background()
	for _, r := range []Result{
		{Status: message.StatusSent, Provider: "meta", ProviderMessageID: "wamid.A"},
		{Status: message.StatusFailed, Provider: "meta", ProviderMessageID: "wamid.B", ErrorCode: 131026, ErrorTitle: "Message undeliverable"},
		{Status: message.StatusFallback, Provider: "twilio", ProviderMessageID: "SM123", Channel: "sms"},
		{Status: message.StatusCanceled, ErrorTitle: "canceled through the API"},
	} {
		t.Run(string(r.Status), func(t *testing.T) {
			s, rdb := newTestStore(t)
			var fields [2]map[string]string
			var evs [2]message.Event
			for k := range 2 {
				j := claimOne(t, s, "w1")
				r := r
				r.AtMS = time.Now().UnixMilli()
				if k == 0 {
					if err := s.Finish(ctx, j, &r, FinishOptions{}); err != nil {
						t.Fatal(err)
					}
				} else if _, err := s.ApplyStatuses(ctx, []StatusApply{{MessageID: j.Msg.ID, Result: r}}); err != nil {
					t.Fatal(err)
				}
				all := rdb.HGetAll(ctx, s.keys.Msg(j.Shard, j.Msg.ID)).Val()
				fields[k] = map[string]string{}
				for _, f := range []string{"st", "p", "pid", "fbp", "fbid", "fbch", "ec", "et", "pc", "bl", "pcv"} {
					if v, ok := all[f]; ok {
						fields[k][f] = v
					}
				}
				es := events(t, s, j.Shard)
				evs[k] = es[len(es)-1]
				evs[k].MessageID, evs[k].StreamID, evs[k].AtMS, evs[k].Recipient, evs[k].ConversationID = "", "", 0, "", ""
			}
			if fields[0]["st"] != string(r.Status) || !maps.Equal(fields[0], fields[1]) {
				t.Errorf("state: Finish wrote %v, ApplyStatuses %v", fields[0], fields[1])
			}
			if evs[0] != evs[1] || evs[0].Status != r.Status {
				t.Errorf("event: Finish wrote %+v, ApplyStatuses %+v", evs[0], evs[1])
			}
		})
	}
}

// TestRepeatedStatusesWriteOnlyNews: Meta's "sent" webhook comes after the
// dispatcher recorded "sent" from the provider's answer, and brings the
// pricing: it is stored (without a second event); the same status again
// writes nothing (its TTL is not even renewed); a new status is recorded
// with its event.
func TestRepeatedStatusesWriteOnlyNews(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	j := claimOne(t, s, "w1")
	key := s.keys.Msg(j.Shard, j.Msg.ID)
	if err := s.Finish(ctx, j, &Result{Status: message.StatusSent, AtMS: time.Now().UnixMilli(), Provider: "meta", ProviderMessageID: "wamid.R1"}, FinishOptions{}); err != nil {
		t.Fatal(err)
	}
	evs := len(events(t, s, j.Shard))
	webhookSent := Result{Status: message.StatusSent, AtMS: time.Now().UnixMilli(), Provider: "meta", ProviderMessageID: "wamid.R1",
		PricingCategory: "utility", Billable: "1", PricingModel: "PMP", PricingType: "regular", ConversationID: "cv-1"}
	for i, c := range []struct {
		name      string
		r         Result
		newEvents int
		renews    bool
	}{
		{"Meta's sent with the pricing", webhookSent, 0, true},
		{"the same again", webhookSent, 0, false},
		{"delivered", Result{Status: message.StatusDelivered, AtMS: time.Now().UnixMilli(), Provider: "meta", ProviderMessageID: "wamid.R1"}, 1, true},
		{"delivered again", Result{Status: message.StatusDelivered, AtMS: time.Now().UnixMilli(), Provider: "meta", ProviderMessageID: "wamid.R1"}, 0, false},
	} {
		rdb.PExpire(ctx, key, time.Minute)
		if _, err := s.ApplyStatuses(ctx, []StatusApply{{MessageID: j.Msg.ID, Result: c.r}}); err != nil {
			t.Fatal(err)
		}
		st, _ := s.State(ctx, j.Msg.ID)
		if st.PricingCategory != "utility" || st.PricingModel != "PMP" || st.PricingType != "regular" || st.ProviderMessageID != "wamid.R1" {
			t.Fatalf("%d %s: state %+v", i, c.name, st)
		}
		if got := len(events(t, s, j.Shard)); got != evs+c.newEvents {
			t.Fatalf("%d %s: %d new events, want %d", i, c.name, got-evs, c.newEvents)
		}
		evs += c.newEvents
		if renewed := rdb.PTTL(ctx, key).Val() > time.Minute; renewed != c.renews {
			t.Fatalf("%d %s: TTL renewed %v, want %v", i, c.name, renewed, c.renews)
		}
	}
}

// TestAShortMessagesStateStaysCompact: a short text's state keeps Redis's
// compact hash encoding (listpack, for values up to 64 bytes by default)
// through its life, so that a week of states costs what it must: the
// static part of its events is kept in two short fields, not one long one.
func TestAShortMessagesStateStaysCompact(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	j := claimOne(t, s, "w1")
	key := s.keys.Msg(j.Shard, j.Msg.ID)
	wamid := "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTZCMzE1QzQA"
	for _, step := range []func() error{
		func() error { return nil }, // begun
		func() error {
			return s.Finish(ctx, j, &Result{Status: message.StatusSent, AtMS: time.Now().UnixMilli(), Provider: "meta", ProviderMessageID: wamid}, FinishOptions{})
		},
		func() error {
			_, err := s.ApplyStatuses(ctx, []StatusApply{{MessageID: j.Msg.ID, Result: Result{Status: message.StatusDelivered, AtMS: time.Now().UnixMilli(),
				Provider: "meta", ProviderMessageID: wamid, PricingCategory: "service", Billable: "0", PricingModel: "PMP", PricingType: "free_customer_service"}}})
			return err
		},
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		if enc := rdb.ObjectEncoding(ctx, key).Val(); enc != "listpack" {
			t.Fatalf("state encoded as %s: %v", enc, rdb.HGetAll(ctx, key).Val())
		}
	}
}

// TestOneBrokenStateFailsOnlyItsOwnSend: the begins and the finishes of a
// shard share one call; a message whose state no code of ours wrote (here
// not even a hash) fails alone, the others of the same call go on. The
// jobs go through one call as the batcher merges them.
func TestOneBrokenStateFailsOnlyItsOwnSend(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	shard, l, es := queuedSix(t, s)
	broken := es[2].MessageID
	rdb.Set(ctx, s.keys.Msg(shard, broken), "not a state", 0)
	oneCall := func(jobs []mergedJob) { runOneCall(rdb, jobs) }
	begins := make([]mergedJob, len(es))
	for i := range es {
		begins[i] = &beginJob{s: s, job: NewJob(l, shard, testSender, &es[i]), now: s.nowMS(), done: make(chan struct{}, 1)}
	}
	oneCall(begins)
	var finishes []mergedJob
	for i, b := range begins {
		got, err := b.(*beginJob).result()
		if es[i].MessageID == broken {
			if err == nil {
				t.Fatalf("the broken state began: %v", got)
			}
			continue
		}
		if err != nil || got != BeginGo {
			t.Fatalf("begin %s beside a broken state: %v %v", es[i].MessageID, got, err)
		}
		finishes = append(finishes, &finishCall{s: s, job: b.(*beginJob).job, now: s.nowMS(), done: make(chan struct{}, 1),
			res: &Result{Status: message.StatusSent, AtMS: time.Now().UnixMilli(), Provider: "meta", ProviderMessageID: "wamid." + es[i].MessageID}})
	}
	// The broken one's finish joins the same call (as if its provider
	// answered before its state was damaged).
	finishes = append(finishes, &finishCall{s: s, job: begins[2].(*beginJob).job, now: s.nowMS(), done: make(chan struct{}, 1),
		res: &Result{Status: message.StatusSent, AtMS: time.Now().UnixMilli(), Provider: "meta", ProviderMessageID: "wamid.broken"}})
	oneCall(finishes)
	for _, f := range finishes {
		fc := f.(*finishCall)
		err := fc.result()
		if fc.job.Msg.ID == broken {
			if err == nil {
				t.Fatal("the broken state finished")
			}
			continue
		}
		if err != nil {
			t.Fatalf("finish %s beside a broken state: %v", fc.job.Msg.ID, err)
		}
		if st, _ := s.State(ctx, fc.job.Msg.ID); st.Status != message.StatusSent {
			t.Fatalf("%s: %s", fc.job.Msg.ID, st.Status)
		}
	}
}
