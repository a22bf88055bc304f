package redis

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
)

// TestInboundMediaJobIsQueuedWithItsMessage: the job is queued by the call
// that records the message, once however often the message comes, and
// learns its conversation there.
func TestInboundMediaJobIsQueuedWithItsMessage(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	now := time.Now()
	a := &InboundArgs{TenantID: "hotel", Sender: testSender, Guest: guestPhone, ProviderMessageID: "wamid.IMG", AtMS: now.UnixMilli(),
		Entry:      HistoryEntry{ID: "wamid.IMG", AtMS: now.UnixMilli(), Type: "image", Preview: "[image]", MediaID: "med_x"},
		NotifyKind: "inbound_message", MediaJob: []byte(`{"id":"med_x","a":0}`)}
	res, err := s.RecordInbound(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.RecordInbound(ctx, a); err != nil || !again.Duplicate {
		t.Fatalf("again: %+v %v", again, err)
	}
	shard := message.ShardFor(testSender, 4)
	jobs, err := rdb.ZRangeWithScores(ctx, s.keys.MediaQueue(shard), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 {
		t.Fatalf("%d jobs queued, want 1", len(jobs))
	}
	var job map[string]any
	if err := json.Unmarshal([]byte(jobs[0].Member.(string)), &job); err != nil {
		t.Fatalf("job %v: %v", jobs[0].Member, err)
	}
	if want := map[string]any{"c": res.Conversation, "id": "med_x", "a": 0.0}; !reflect.DeepEqual(job, want) {
		t.Fatalf("job %v, want %v", job, want)
	}
	if d := time.Duration(int64(jobs[0].Score)-now.UnixMilli()) * time.Millisecond; d < -time.Second || d > time.Second {
		t.Fatalf("due in %v, want now", d)
	}
	// A message without media queues nothing.
	inbound(t, s, guestPhone, "wamid.TXT", "hi", now, "")
	if n, _ := s.MediaQueueLen(ctx); n != 1 {
		t.Fatalf("queue length %d", n)
	}
}

func TestMediaJobsAreClaimedOnceRetriedAndFinished(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	now := time.Now()
	s.now = func() time.Time { return now }
	for sh, m := range []string{`{"id":"a"}`, `{"id":"b"}`, `{"id":"c"}`} {
		rdb.ZAdd(ctx, s.keys.MediaQueue(sh), goredisZ(now.UnixMilli(), m))
	}
	first, err := s.ClaimMediaJobs(ctx, 2, time.Minute)
	if err != nil || len(first) != 2 {
		t.Fatalf("first claim: %v %v", first, err)
	}
	rest, err := s.ClaimMediaJobs(ctx, 10, time.Minute)
	if err != nil || len(rest) != 1 {
		t.Fatalf("the one left: %v %v", rest, err)
	}
	if more, _ := s.ClaimMediaJobs(ctx, 10, time.Minute); len(more) != 0 {
		t.Fatalf("claimed twice within the lease: %v", more)
	}
	// A claimer that died gives its jobs back when the lease passes.
	now = now.Add(time.Minute + time.Millisecond)
	again, err := s.ClaimMediaJobs(ctx, 10, time.Minute)
	if err != nil || len(again) != 3 {
		t.Fatalf("after the lease: %v %v", again, err)
	}

	// A retry replaces the job, due later.
	j := again[0]
	if err := s.RetryMediaJob(ctx, j, `{"id":"a","a":1}`, now.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	got, _ := s.ClaimMediaJobs(ctx, 10, time.Minute)
	members := []string{}
	for _, g := range got {
		members = append(members, g.Member)
	}
	if len(got) != 3 || !slices.Contains(members, `{"id":"a","a":1}`) || slices.Contains(members, j.Member) {
		t.Fatalf("after the retry: %v", members)
	}

	// Finishing removes the job and writes its notice, once.
	n := &MediaNotice{Kind: "media_received", TenantID: "hotel", Sender: testSender, Guest: guestPhone, ConversationID: "conv_1",
		AtMS: now.UnixMilli(), Data: []byte(`{"media_status":"ready"}`)}
	for _, g := range got {
		if err := s.FinishMediaJob(ctx, g, n); err != nil {
			t.Fatal(err)
		}
	}
	if l, _ := s.MediaQueueLen(ctx); l != 0 {
		t.Fatalf("%d jobs left", l)
	}
	var notices []Notice
	for sh := range 4 {
		ns, err := s.ReadNotices(ctx, sh, "t", 10, false)
		if err != nil {
			t.Fatal(err)
		}
		notices = append(notices, ns...)
	}
	if len(notices) != 3 || notices[0].Kind != "media_received" || notices[0].ConversationID != "conv_1" ||
		notices[0].Guest != guestPhone || string(notices[0].Data) != `{"media_status":"ready"}` {
		t.Fatalf("notices %+v", notices)
	}
}

func TestInboundMediaRecords(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	ready := &MediaRecord{ID: "med_ready", TenantID: "hotel", SHA256: strings.Repeat("ab", 32), MIME: "image/jpeg", Type: "image",
		Size: 12, CreatedMS: 1, Source: "in", ProviderMediaID: "1003383421387256"}
	failed := &MediaRecord{ID: "med_failed", TenantID: "hotel", Type: "image", CreatedMS: 2, Source: "in", ProviderMediaID: "1",
		Status: MediaFailed, Reason: "too_large", Detail: "6 MB, over 5 MB"}
	for _, r := range []*MediaRecord{ready, failed} {
		if err := s.PutMedia(ctx, r, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.MediaRecords(ctx, []string{"med_ready", "med_gone", "med_failed"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !reflect.DeepEqual(got[0], ready) || got[1] != nil || !reflect.DeepEqual(got[2], failed) {
		t.Fatalf("records %+v %+v %+v", got[0], got[1], got[2])
	}
	// The bytes had at last: the failure is gone with the new record.
	fixed := *failed
	fixed.Status, fixed.Reason, fixed.Detail, fixed.SHA256 = "", "", "", strings.Repeat("cd", 32)
	if err := s.PutMedia(ctx, &fixed, time.Hour); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Media(ctx, "med_failed"); err != nil || !reflect.DeepEqual(r, &fixed) {
		t.Fatalf("rewritten %+v %v", r, err)
	}
	if err := s.PutMedia(ctx, &MediaRecord{ID: "med_y", TenantID: "hotel"}, time.Hour); err == nil {
		t.Fatal("a record with neither bytes nor failure was written")
	}
	if _, err := s.Media(ctx, "med_gone"); !errors.Is(err, ErrMediaNotFound) {
		t.Fatalf("gone: %v", err)
	}
}

func goredisZ(score int64, member string) goredis.Z {
	return goredis.Z{Score: float64(score), Member: member}
}
