package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
)

// oneCallOfSends accepts sends from testSender to guests, all in one call
// of the enqueue function (as one flush carries them), and returns their
// ids in order.
func oneCallOfSends(t *testing.T, s *Store, rdb *goredis.Client, args []*EnqueueArgs) []string {
	t.Helper()
	var jobs []mergedJob
	for _, a := range args {
		j := &enqueueJob{done: make(chan struct{}, 1)}
		s.prepareEnqueue(j, a)
		jobs = append(jobs, j)
	}
	runOneCall(rdb, jobs)
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		e := j.(*enqueueJob)
		if e.err != nil || e.vals[0] != "ok" {
			t.Fatalf("send %d: %v %v", i, e.vals, e.err)
		}
		ids[i] = e.vals[1].(string)
	}
	return ids
}

// The sends one call accepts are written as one send record each in the
// shard's pending hash and one queue entry, events entry and file entry for
// all of them: no state hash until the dispatcher takes them. Taken one by
// one, each gets its state from its record, and the entry is acknowledged
// once every one of them is settled.
func TestACallsSendsAreOneQueueEntry(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	shard := message.ShardFor(testSender, 4)
	var args []*EnqueueArgs
	for i := range 5 {
		a := textArgs(fmt.Sprintf("+1415555%04d", i), fmt.Sprintf("hello %d", i))
		if i == 2 {
			a.FallbackText, a.FallbackAfter = "Your room is ready", time.Minute
		}
		args = append(args, a)
	}
	ids := oneCallOfSends(t, s, rdb, args)
	q := s.keys.SenderQueue(shard, testSender, message.LaneTx, "")
	for _, c := range []struct {
		what string
		n    int64
	}{
		{"queue entries", rdb.XLen(ctx, q).Val()},
		{"events entries", rdb.XLen(ctx, s.keys.Events(shard)).Val()},
		{"file entries", rdb.XLen(ctx, s.keys.File(shard)).Val()},
	} {
		if c.n != 1 {
			t.Fatalf("%d %s for a call of 5 sends, want 1", c.n, c.what)
		}
	}
	if n := rdb.HLen(ctx, s.keys.Pending(shard)).Val(); n != 5 {
		t.Fatalf("%d send records, want 5", n)
	}
	for _, id := range ids {
		if rdb.Exists(ctx, s.keys.Msg(shard, id)).Val() != 0 {
			t.Fatalf("%s has a state hash before the dispatcher took it", id)
		}
	}
	if tx, _, _, _ := s.QueueDepth(ctx); tx != 5 {
		t.Fatalf("queue depth %d, want the entry's 5 messages", tx)
	}
	// Its status, as the API answers it, comes from its record.
	st, err := s.State(ctx, ids[2])
	if err != nil || st.Status != message.StatusQueued || st.Recipient != "+14155550002" || st.TenantID != "hotel" ||
		string(st.Content) != `{"body":"hello 2"}` || st.FallbackText != "Your room is ready" || st.FallbackAfterS != 60 ||
		st.ConversationID == "" || st.QueuedMS == 0 || st.Lane != message.LaneTx {
		t.Fatalf("state from the record: %+v %v", st, err)
	}
	evs := events(t, s, shard)
	if len(evs) != 5 {
		t.Fatalf("%d events, want 5 queued", len(evs))
	}
	for i, e := range evs {
		if e.MessageID != ids[i] || e.Status != message.StatusQueued || e.Index != i || e.ConversationID == "" || e.Channel != "whatsapp" {
			t.Fatalf("event %d: %+v", i, e)
		}
	}

	l := testLease(t, s, shard, "w1")
	es, err := s.ReadEntries(ctx, "w1", []string{q}, 10, nil)
	if err != nil || len(es) != 1 || len(es[0].Sends) != 5 || es[0].Count != 5 {
		t.Fatalf("read %+v %v, want one entry of 5 sends", es, err)
	}
	for i, ps := range es[0].Sends {
		if ps.ID != ids[i] || ps.Recipient != args[i].Recipient || ps.HasFallback != (i == 2) {
			t.Fatalf("send %d of the entry: %+v", i, ps)
		}
		j := &Job{Lease: l, Shard: shard, Stream: q, Msg: message.Message{ID: ps.ID, Sender: testSender, Recipient: ps.Recipient}, Pending: &es[0].Sends[i]}
		if b, err := s.Begin(ctx, j); err != nil || b != BeginGo {
			t.Fatalf("begin %d: %v %v", i, b, err)
		}
		if j.Msg.TenantID != "hotel" || string(j.Msg.Content) != fmt.Sprintf(`{"body":"hello %d"}`, i) || j.Msg.Attempt != 1 ||
			(i == 2) != (j.FallbackText == "Your room is ready" && j.FallbackAfter == time.Minute) {
			t.Fatalf("job %d: %+v", i, j)
		}
		if err := s.Finish(ctx, j, &Result{Status: message.StatusSent, AtMS: time.Now().UnixMilli(), Provider: "meta",
			ProviderMessageID: "wamid." + ps.ID}, FinishOptions{}); err != nil {
			t.Fatal(err)
		}
		if n := rdb.XLen(ctx, q).Val(); n != 1 {
			t.Fatalf("the entry went before all its sends were settled (%d left)", n)
		}
	}
	if n := rdb.HLen(ctx, s.keys.Pending(shard)).Val(); n != 0 {
		t.Fatalf("%d send records left after every send was taken", n)
	}
	if err := s.ChunkDone(ctx, l, shard, q, es[0].ID, "", 0); err != nil {
		t.Fatal(err)
	}
	if n := rdb.XLen(ctx, q).Val(); n != 0 {
		t.Fatalf("%d queue entries once the call's sends were settled", n)
	}
	if n, _ := s.TenantOpen(ctx, "hotel"); n != 0 {
		t.Fatalf("tenant has %d open messages, want 0", n)
	}
	for i, id := range ids {
		st, err := s.State(ctx, id)
		if err != nil || st.Status != message.StatusSent || st.ConversationID != evs[i].ConversationID {
			t.Fatalf("state of %d after it was sent: %+v %v", i, st, err)
		}
	}
	// Each message's events: queued (its record), sending, sent.
	byID := map[string][]message.Status{}
	for _, e := range events(t, s, shard) {
		byID[e.MessageID] = append(byID[e.MessageID], e.Status)
	}
	for _, id := range ids {
		if fmt.Sprint(byID[id]) != "[queued sending sent]" {
			t.Fatalf("events of %s: %v", id, byID[id])
		}
	}
}

// Before the dispatcher takes a send, what reads it by id answers from its
// record: a repeat of its Idempotency-Key (its conversation and status), a
// status the provider reports (the state is made first), and a send that
// names the conversation it made.
func TestAPendingSendAnswersByID(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	a := textArgs("+14155550111", "hello")
	a.IdempotencyKey = "k-pending"
	first, err := s.Enqueue(ctx, a)
	if err != nil || first.Outcome != Queued {
		t.Fatalf("%+v %v", first, err)
	}
	again, err := s.Enqueue(ctx, a)
	if err != nil || again.Outcome != Duplicate || again.ID != first.ID || again.Status != message.StatusQueued ||
		again.Conversation != first.Conversation {
		t.Fatalf("repeat: %+v %v, want %+v", again, err, first)
	}
	b := textArgs("+14155550112", "not yours")
	b.ConversationID = first.Conversation
	if res, err := s.Enqueue(ctx, b); err != nil || res.Outcome != ConversationOther {
		t.Fatalf("another guest naming the conversation: %+v %v", res, err)
	}
	st, err := s.ApplyStatuses(ctx, []StatusApply{{MessageID: first.ID, Result: Result{Status: message.StatusFailed,
		AtMS: time.Now().UnixMilli(), ErrorCode: 131026, ErrorTitle: "undeliverable"}}})
	if err != nil || st[0] != AppliedNew {
		t.Fatalf("a status for a pending send: %v %v", st, err)
	}
	got, err := s.State(ctx, first.ID)
	if err != nil || got.Status != message.StatusFailed || got.ConversationID != first.Conversation || got.Recipient != "+14155550111" {
		t.Fatalf("state after the status: %+v %v", got, err)
	}
}

// Within one call, a later message reads what an earlier one accepted
// before any of it reaches the pending hash: a repeat of its
// Idempotency-Key is answered as its duplicate (status and conversation),
// and another guest naming the conversation it made is refused.
func TestACallsLaterSendsSeeItsEarlierOnes(t *testing.T) {
	s, rdb := newTestStore(t)
	a := textArgs("+14155550121", "hello")
	a.IdempotencyKey = "k-same-call"
	again := *a
	other := textArgs("+14155550122", "hello")
	prepare := func(x *EnqueueArgs) *enqueueJob {
		j := &enqueueJob{done: make(chan struct{}, 1)}
		s.prepareEnqueue(j, x)
		return j
	}
	first := prepare(a)
	// The conversation the first makes is named after its id.
	other.ConversationID = "conv_" + string(first.id.b[len("msg_"):])
	jobs := []mergedJob{first, prepare(&again), prepare(other)}
	runOneCall(rdb, jobs)
	f, d, o := first.vals, jobs[1].(*enqueueJob).vals, jobs[2].(*enqueueJob).vals
	if len(f) != 4 || f[0] != "ok" {
		t.Fatalf("first: %v", f)
	}
	if d[0] != "dup" || d[1] != f[1] || d[2] != f[2] || d[3] != "queued" {
		t.Fatalf("the repeat in the same call: %v, want the duplicate of %v", d, f)
	}
	if o[0] != "conv_other" {
		t.Fatalf("another guest naming the first's conversation in the same call: %v", o)
	}
	if n := rdb.HLen(context.Background(), s.keys.Pending(message.ShardFor(testSender, 4))).Val(); n != 1 {
		t.Fatalf("%d send records, want the first's", n)
	}
}

// A send record that is not one (no code of ours writes such) is dropped
// when the dispatcher takes it: the message is gone, nothing is left in
// the pending hash.
func TestAnUnreadableSendRecordIsDropped(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	res, err := s.Enqueue(ctx, textArgs("+14155550131", "hello"))
	if err != nil {
		t.Fatal(err)
	}
	shard := message.ShardFor(testSender, 4)
	rdb.HSet(ctx, s.keys.Pending(shard), res.ID, "3not a record")
	l := testLease(t, s, shard, "w1")
	e := readOne(t, s, shard, "w1")
	if b, err := s.Begin(ctx, NewJob(l, shard, testSender, &e)); err != nil || b != BeginGone {
		t.Fatalf("begin: %v %v, want gone", b, err)
	}
	if n := rdb.HLen(ctx, s.keys.Pending(shard)).Val(); n != 0 {
		t.Fatalf("%d send records left", n)
	}
	if n := rdb.XLen(ctx, s.keys.SenderQueue(shard, testSender, message.LaneTx, "")).Val(); n != 0 {
		t.Fatalf("%d queue entries left", n)
	}
}

// A batch's messages are made as a batch's whatever the tenant's id (one
// named "S", as the single sends' marker is, included).
func TestABatchOfATenantNamedSIsSent(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	a := testBatch(s, 3)
	a.TenantID = "S"
	if res, n, err := s.EnqueueBatch(ctx, a); err != nil || n != 3 || res.Outcome != Queued {
		t.Fatalf("%+v %d %v", res, n, err)
	}
	shard := message.ShardFor(testSender, 4)
	l := testLease(t, s, shard, "w1")
	es, err := s.ReadEntries(ctx, "w1", []string{s.keys.SenderQueue(shard, testSender, message.LaneBulk, a.ID)}, 10, nil)
	if err != nil || len(es) != 1 {
		t.Fatalf("read %v %v", es, err)
	}
	for _, j := range chunkJobs(t, s, l, shard, &es[0]) {
		if b, err := s.Begin(ctx, j); err != nil || b != BeginGo || j.Msg.TenantID != "S" {
			t.Fatalf("begin %s: %v %v, tenant %q", j.Msg.ID, b, err, j.Msg.TenantID)
		}
	}
}
