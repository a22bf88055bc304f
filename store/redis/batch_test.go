package redis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
)

func testBatch(s *Store, n int) *BatchArgs {
	a := &BatchArgs{ID: s.NewBatchID(testSender), TenantID: "hotel", Sender: testSender, RatePerSecond: 10, Fingerprint: 42}
	for i := 0; i < n; i++ {
		a.Items = append(a.Items, BatchItem{Recipient: fmt.Sprintf("+1555%07d", i), Type: message.TypeText,
			Content: []byte(fmt.Sprintf(`{"body":"offer %d"}`, i))})
	}
	return a
}

func TestBatchQueuesEveryMessageOnce(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	a := testBatch(s, 1200)
	a.IdempotencyKey = "campaign-7"
	res, n, err := s.EnqueueBatch(ctx, a)
	if err != nil || n != 1200 || res.Outcome != Queued || res.ID != a.ID {
		t.Fatalf("%+v %d %v", res, n, err)
	}
	shard := message.ShardFor(testSender, 4)
	q := s.keys.SenderQueue(shard, testSender, message.LaneBulk, a.ID)
	// Two chunks: one packed record and one queue entry each.
	if got := rdb.XLen(ctx, q).Val(); got != 2 {
		t.Fatalf("queue holds %d entries, want a chunk of 1000 and one of 200", got)
	}
	es, _ := s.ReadEntries(ctx, "w1", []string{q}, 10, nil)
	if len(es) != 2 || es[0].BatchID != a.ID || es[0].Chunk != 0 || es[0].Count != 1000 || es[1].Chunk != 1 || es[1].Count != 200 {
		t.Fatalf("entries %+v", es)
	}
	// No message has a state yet; each is answered from its chunk.
	if n := rdb.Exists(ctx, s.keys.Msg(shard, message.BatchMessageID(a.ID, 1199))).Val(); n != 0 {
		t.Fatal("the API made a message's state")
	}
	st, err := s.State(ctx, message.BatchMessageID(a.ID, 1199))
	if err != nil || st.Recipient != "+15550001199" || st.Lane != message.LaneBulk || st.Campaign != a.ID ||
		st.Status != message.StatusQueued || string(st.Content) != `{"body":"offer 1199"}` || st.TenantID != "hotel" {
		t.Fatalf("last message: %+v %v", st, err)
	}
	if _, err := s.State(ctx, message.BatchMessageID(a.ID, 1200)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a position past the batch: %v", err)
	}
	// The same request again (a client retry) queues nothing more.
	again := testBatch(s, 1200)
	again.IdempotencyKey = "campaign-7"
	res, n, err = s.EnqueueBatch(ctx, again)
	if err != nil || n != 0 || res.Outcome != Duplicate || res.ID != a.ID {
		t.Fatalf("retry: %+v %d %v", res, n, err)
	}
	if got := rdb.XLen(ctx, q).Val(); got != 2 {
		t.Fatalf("after the retry the queue holds %d", got)
	}
	other := testBatch(s, 3)
	other.IdempotencyKey, other.Fingerprint = "campaign-7", 43
	if res, _, _ := s.EnqueueBatch(ctx, other); res.Outcome != Conflict || res.ID != a.ID {
		t.Fatalf("key reused for another batch: %+v", res)
	}
	b, err := s.Batch(ctx, a.ID)
	if err != nil || b.Total != 1200 || b.Counts[message.StatusQueued] != 1200 || b.RatePerSecond != 10 || b.TenantID != "hotel" {
		t.Fatalf("batch %+v %v", b, err)
	}
	if n, _ := s.TenantOpen(ctx, "hotel"); n != 1200 {
		t.Fatalf("open %d", n)
	}
	if r, _ := s.CampaignRate(ctx, shard, a.ID); r != 10 {
		t.Fatalf("campaign rate %v", r)
	}
}

// chunkJobs are the jobs of a read chunk entry, as the dispatcher's pump
// makes them.
func chunkJobs(t *testing.T, s *Store, l *Lease, shard int, e *Entry) []*Job {
	t.Helper()
	ctx := context.Background()
	b, err := s.BatchSpec(ctx, e.BatchID)
	if err != nil {
		t.Fatal(err)
	}
	items, err := s.BatchChunk(ctx, e.BatchID, e.Chunk)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*Job, len(items))
	for i := range items {
		id := message.BatchMessageID(e.BatchID, e.Chunk*ChunkSize+i)
		out[i] = &Job{Lease: l, Shard: shard, Stream: e.Stream, Batch: b, Item: &items[i],
			Msg: message.Message{ID: id, Sender: b.Sender, Recipient: items[i].Recipient}}
	}
	return out
}

func TestCancelBatchStopsWhatIsNotSent(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	a := testBatch(s, 10)
	if _, _, err := s.EnqueueBatch(ctx, a); err != nil {
		t.Fatal(err)
	}
	shard := message.ShardFor(testSender, 4)
	l := testLease(t, s, shard, "w1")
	es, _ := s.ReadEntries(ctx, "w1", []string{s.keys.SenderQueue(shard, testSender, message.LaneBulk, a.ID)}, 2, nil)
	if len(es) != 1 || es[0].Count != 10 {
		t.Fatalf("entries %+v", es)
	}
	jobs := chunkJobs(t, s, l, shard, &es[0])
	// The first is sent, the second being sent, the rest not taken yet.
	if b, err := s.Begin(ctx, jobs[0]); err != nil || b != BeginGo || jobs[0].Msg.TenantID != "hotel" || string(jobs[0].Msg.Content) != `{"body":"offer 0"}` {
		t.Fatalf("begin of a batch's message: %v %v %+v", b, err, jobs[0].Msg)
	}
	s.Finish(ctx, jobs[0], &Result{Status: message.StatusSent, AtMS: time.Now().UnixMilli()}, FinishOptions{})
	s.Begin(ctx, jobs[1])
	if _, err := s.CancelBatch(ctx, "resort", a.ID); err != ErrNotFound {
		t.Fatalf("another tenant's cancel: %v", err)
	}
	n, err := s.CancelBatch(ctx, "hotel", a.ID)
	if err != nil || n != 8 {
		t.Fatalf("canceled %d (%v), want the 8 not sent", n, err)
	}
	b, _ := s.Batch(ctx, a.ID)
	if b.Counts[message.StatusCanceled] != 8 || b.Counts[message.StatusSent] != 1 || b.Counts[message.StatusSending] != 1 {
		t.Fatalf("counts %v", b.Counts)
	}
	if open, _ := s.TenantOpen(ctx, "hotel"); open != 1 {
		t.Fatalf("open %d, want the one sending", open)
	}
	// A canceled message not taken before has its events all the same.
	var got []string
	for _, ev := range events(t, s, shard) {
		if ev.MessageID == jobs[9].Msg.ID {
			got = append(got, string(ev.Status))
		}
	}
	if fmt.Sprint(got) != "[queued canceled]" {
		t.Fatalf("events of a canceled message: %v", got)
	}
	for _, j := range jobs[2:] {
		if b, err := s.Begin(ctx, j); err != nil || b != BeginDone {
			t.Fatalf("begin of a canceled message: %v %v", b, err)
		}
	}
}

func TestScheduledBatchWaits(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	a := testBatch(s, 5)
	a.DueMS = time.Now().Add(100 * time.Millisecond).UnixMilli()
	res, n, err := s.EnqueueBatch(ctx, a)
	if err != nil || n != 5 || res.Status != message.StatusScheduled {
		t.Fatalf("%+v %d %v", res, n, err)
	}
	shard := message.ShardFor(testSender, 4)
	if z := rdb.ZCard(ctx, s.keys.Delay(shard)).Val(); z != 1 {
		t.Fatalf("delay set %d, want the one chunk", z)
	}
	if st, err := s.State(ctx, message.BatchMessageID(a.ID, 4)); err != nil || st.Status != message.StatusScheduled || st.DueMS != a.DueMS {
		t.Fatalf("a scheduled batch's message: %+v %v", st, err)
	}
	time.Sleep(150 * time.Millisecond)
	if moved, _ := s.Promote(ctx, shard, 100); moved != 1 {
		t.Fatalf("promoted %d", moved)
	}
	es, _ := s.ReadEntries(ctx, "w1", []string{s.keys.SenderQueue(shard, testSender, message.LaneBulk, a.ID)}, 10, nil)
	if len(es) != 1 || es[0].BatchID != a.ID || es[0].Count != 5 {
		t.Fatalf("entries after promotion %+v", es)
	}
}

func TestBatchMessagesPagesThroughEveryMessage(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	a := &BatchArgs{TenantID: "hotel", Sender: testSender}
	for i := 0; i < 1203; i++ {
		a.Items = append(a.Items, BatchItem{Recipient: fmt.Sprintf("+1415555%04d", i), Type: message.TypeText,
			Content: []byte(`{"body":"Spa is open"}`), Preview: "Spa is open"})
	}
	a.ID = s.NewBatchID(testSender)
	if _, _, err := s.EnqueueBatch(ctx, a); err != nil {
		t.Fatal(err)
	}
	f := func(want []message.Status, limit, pages, total int) {
		t.Helper()
		seen, cursor := 0, 0
		for page := 0; ; page++ {
			ms, next, err := s.BatchMessages(ctx, a.ID, want, cursor, limit)
			if err != nil || page > pages {
				t.Fatalf("page %d: %v", page, err)
			}
			for _, m := range ms {
				if m.Recipient != fmt.Sprintf("+1415555%04d", seen) && len(want) == 0 {
					t.Fatalf("message %d is %s", seen, m.Recipient)
				}
				seen++
			}
			if next < 0 {
				break
			}
			cursor = next
		}
		if seen != total {
			t.Fatalf("%d listed, want %d", seen, total)
		}
	}
	f(nil, 500, 3, 1203)
	f(nil, 1000, 2, 1203)
	f([]message.Status{message.StatusQueued}, 1000, 2, 1203)
	f([]message.Status{message.StatusFailed}, 100, 1, 0)
	if _, _, err := s.BatchMessages(ctx, "bat_nope", nil, 0, 10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an unknown batch: %v", err)
	}
}
