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
	if got := rdb.XLen(ctx, q).Val(); got != 1200 {
		t.Fatalf("queue holds %d", got)
	}
	st, err := s.State(ctx, message.BatchMessageID(a.ID, 1199))
	if err != nil || st.Recipient != "+15550001199" || st.Lane != message.LaneBulk || st.Campaign != a.ID || st.Status != message.StatusQueued {
		t.Fatalf("last message: %+v %v", st, err)
	}
	// The same request again (a client retry) queues nothing more.
	again := testBatch(s, 1200)
	again.IdempotencyKey = "campaign-7"
	res, n, err = s.EnqueueBatch(ctx, again)
	if err != nil || n != 0 || res.Outcome != Duplicate || res.ID != a.ID {
		t.Fatalf("retry: %+v %d %v", res, n, err)
	}
	if got := rdb.XLen(ctx, q).Val(); got != 1200 {
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
	sent := NewJob(l, shard, testSender, &es[0])
	s.Begin(ctx, sent)
	s.Finish(ctx, sent, &Result{Status: message.StatusSent, AtMS: time.Now().UnixMilli()}, FinishOptions{})
	sending := NewJob(l, shard, testSender, &es[1])
	s.Begin(ctx, sending)
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
	rest, _ := s.ReadEntries(ctx, "w1", []string{s.keys.SenderQueue(shard, testSender, message.LaneBulk, a.ID)}, 100, nil)
	for i := range rest {
		if b, err := s.Begin(ctx, NewJob(l, shard, testSender, &rest[i])); err != nil || b != BeginDone {
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
	if z := rdb.ZCard(ctx, s.keys.Delay(shard)).Val(); z != 5 {
		t.Fatalf("delay set %d", z)
	}
	time.Sleep(150 * time.Millisecond)
	if moved, _ := s.Promote(ctx, shard, 100); moved != 5 {
		t.Fatalf("promoted %d", moved)
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
