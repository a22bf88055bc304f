package ingest

import (
	"context"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"

	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

const batchPath = "/api/v1/whatsapp/messages/batch-send"

func batchBody(n int, extra string) string {
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = fmt.Sprintf(`{"phone":"+1234%06d","content":"Message %d"}`, i, i)
	}
	return `{"messages":[` + strings.Join(msgs, ",") + `]` + extra + `}`
}

func TestBatchSendAsTheSeedShowsIt(t *testing.T) {
	h := newHarness(t)
	h.openWindow("+1234567891") // both guests wrote: free text may go
	body := `{"messages":[{"phone":"+1234567890","content":"Message 1"},{"phone":"+1234567891","content":"Message 2"}],
		"rate_limit":{"messages_per_second":10,"batch_size":100},"delivery_options":{"retry_failed":true,"track_delivery":true}}`
	before := time.Now()
	code, v, _ := h.do("POST", batchPath, staffToken, body)
	if code != 202 || v["batch_id"] == nil || v["estimated_completion"] == nil || v["accepted"] != float64(2) || v["status"] != "queued" {
		t.Fatalf("%d %v", code, v)
	}
	if r, _ := v["rate_limit"].(map[string]any); r["messages_per_second"] != float64(10) {
		t.Fatalf("rate_limit %v", v["rate_limit"])
	}
	// Two messages at 10 a second: done 200 ms after the batch was taken
	// (timed from before the call, however slow the machine answers).
	eta, err := time.Parse(time.RFC3339Nano, v["estimated_completion"].(string))
	if err != nil || eta.Before(before.Add(200*time.Millisecond).Truncate(time.Millisecond)) || eta.After(time.Now().Add(time.Second)) {
		t.Fatalf("estimated_completion %v (sent at %v)", v["estimated_completion"], before)
	}
	id := v["batch_id"].(string)
	code, b, _ := h.do("GET", "/api/v1/whatsapp/batches/"+id, staffToken, "")
	counts, _ := b["counts"].(map[string]any)
	if code != 200 || b["total"] != float64(2) || counts["queued"] != float64(2) || b["status"] != "queued" {
		t.Fatalf("%d %v", code, b)
	}
	if code, v, _ := h.do("GET", "/api/v1/whatsapp/batches/"+id, otherToken, ""); code != 404 || errCode(t, v) != "BATCH_NOT_FOUND" {
		t.Fatalf("another tenant: %d %v", code, v)
	}
	code, c, _ := h.do("POST", "/api/v1/whatsapp/batches/"+id+"/cancel", staffToken, "")
	counts, _ = c["counts"].(map[string]any)
	if code != 200 || c["canceled_now"] != float64(2) || counts["canceled"] != float64(2) || c["status"] != "canceled" {
		t.Fatalf("cancel: %d %v", code, c)
	}
	// The queue entries stay until a dispatcher drops them, but the
	// canceled messages no longer count against the tenant's cap.
	if open, err := h.store.TenantOpen(context.Background(), "grand-plaza"); err != nil || open != 0 {
		t.Fatalf("%d of the tenant's messages still open after the cancel (%v)", open, err)
	}
}

// windowRuleOff turns the hotel's window rule off, for tests of batches of
// free text to guests who never wrote.
func (h *harness) windowRuleOff() {
	h.t.Helper()
	if code, v, _ := h.do("PUT", "/api/v1/whatsapp/settings", adminToken, `{"window_enforcement":false}`); code != 200 {
		h.t.Fatalf("settings: %d %v", code, v)
	}
	h.srv.settings.Forget("grand-plaza")
}

// takeBulk takes every bulk message of sender as the dispatcher's pump
// would, without sending any: each gets its state (refused ones "failed")
// and the others are begun ("sending").
func (h *harness) takeBulk(sender string) {
	h.t.Helper()
	ctx := context.Background()
	shard := message.ShardFor(sender, h.store.Config().Shards)
	l, ok, err := h.store.TakeLease(ctx, "dispatch", shard, "test-pump", time.Minute)
	if err != nil || !ok {
		h.t.Fatalf("lease: %v %v", ok, err)
	}
	defer h.store.ReleaseLease(ctx, l)
	refs, err := h.store.SenderQueueRefs(ctx, shard, sender)
	must(h.t, err)
	for _, ref := range refs {
		if ref.Lane != message.LaneBulk {
			continue
		}
		es, err := h.store.ReadEntries(ctx, "test-pump", []string{ref.Stream}, 100, nil)
		must(h.t, err)
		for _, e := range es {
			b, err := h.store.BatchSpec(ctx, e.BatchID)
			must(h.t, err)
			items, err := h.store.BatchChunk(ctx, e.BatchID, e.Chunk)
			must(h.t, err)
			for i := range items {
				id := message.BatchMessageID(e.BatchID, e.Chunk*redis.ChunkSize+i)
				j := &redis.Job{Lease: l, Shard: shard, Stream: e.Stream, Batch: b, Item: &items[i],
					Msg: message.Message{ID: id, Sender: sender, Recipient: items[i].Recipient}}
				if _, err := h.store.Begin(ctx, j); err != nil {
					h.t.Fatal(err)
				}
			}
		}
	}
}

// A batch of 10 000 is stored in ten packed records and answers for every
// message before any of it was sent: its counts, each message's status,
// the listing and a cancel.
func TestBatchOfTenThousandInOneRequest(t *testing.T) {
	h := newHarness(t)
	h.windowRuleOff()
	code, v, _ := h.do("POST", batchPath, staffToken, batchBody(10_000, ""))
	if code != 202 || v["accepted"] != float64(10_000) {
		t.Fatalf("%d %v", code, v)
	}
	id := v["batch_id"].(string)
	_, b, _ := h.do("GET", "/api/v1/whatsapp/batches/"+id, staffToken, "")
	if b["counts"].(map[string]any)["queued"] != float64(10_000) {
		t.Fatalf("%v", b)
	}
	if q := h.queued(); q != 10_000 {
		t.Fatalf("%d queued", q)
	}
	// Nothing per message was written: no message has a state of its own.
	ctx := context.Background()
	if keys, _, err := h.store.Client().Scan(ctx, 0, h.store.Keys().Prefix()+":*:msg:*", 100_000).Result(); err != nil || len(keys) != 0 {
		t.Fatalf("message states written by the API: %d %v", len(keys), err)
	}
	for _, i := range []int{0, 999, 1000, 9999} {
		_, st, _ := h.do("GET", "/api/v1/whatsapp/messages/"+message.BatchMessageID(id, i)+"/status", staffToken, "")
		if st["status"] != "queued" || st["guest_phone"] != fmt.Sprintf("+1234%06d", i) {
			t.Fatalf("message %d: %v", i, st)
		}
	}
	if code, _, _ := h.do("GET", "/api/v1/whatsapp/messages/"+message.BatchMessageID(id, 10_000)+"/status", staffToken, ""); code != 404 {
		t.Fatalf("a position past the batch: %d", code)
	}
	if code, _, _ := h.do("GET", "/api/v1/whatsapp/messages/"+message.BatchMessageID(id, 5)+"/status", otherToken, ""); code != 404 {
		t.Fatalf("another tenant's view: %d", code)
	}
	seen, cursor := 0, ""
	for page := 0; page < 20; page++ {
		_, l, _ := h.do("GET", "/api/v1/whatsapp/batches/"+id+"/messages?limit=1000"+cursor, staffToken, "")
		for _, m := range l["messages"].([]any) {
			m := m.(map[string]any)
			if m["status"] != "queued" || m["guest_phone"] != fmt.Sprintf("+1234%06d", seen) || m["message_id"] != message.BatchMessageID(id, seen) {
				t.Fatalf("listed %d: %v", seen, m)
			}
			seen++
		}
		if l["next_cursor"] == nil {
			break
		}
		cursor = "&cursor=" + l["next_cursor"].(string)
	}
	if seen != 10_000 {
		t.Fatalf("listed %d", seen)
	}
	_, c, _ := h.do("POST", "/api/v1/whatsapp/batches/"+id+"/cancel", staffToken, "")
	if counts := c["counts"].(map[string]any); counts["canceled"] != float64(10_000) || c["status"] != "canceled" {
		t.Fatalf("cancel: %v", c)
	}
	_, st, _ := h.do("GET", "/api/v1/whatsapp/messages/"+message.BatchMessageID(id, 7777)+"/status", staffToken, "")
	if st["status"] != "canceled" {
		t.Fatalf("a canceled message: %v", st)
	}
	if n, _ := h.store.TenantOpen(ctx, "grand-plaza"); n != 0 {
		t.Fatalf("%d open after the cancel", n)
	}
	// The dispatcher, coming to the chunks, sends none of them.
	h.takeBulk("+15550001000")
	_, b, _ = h.do("GET", "/api/v1/whatsapp/batches/"+id, staffToken, "")
	if b["counts"].(map[string]any)["canceled"] != float64(10_000) {
		t.Fatalf("after the dispatcher came: %v", b["counts"])
	}
}

func TestBatchIsRefusedWholeWhenAMessageIsWrong(t *testing.T) {
	h := newHarness(t)
	f := func(name, body string, wantStatus int, wantCode string) {
		t.Run(name, func(t *testing.T) {
			code, v, _ := h.do("POST", batchPath, staffToken, body)
			if code != wantStatus || errCode(t, v) != wantCode {
				t.Fatalf("%d %v", code, v)
			}
		})
	}
	bad := strings.Replace(batchBody(50, ""), `"+1234000007"`, `"1234000007"`, 1)
	f("bad phone", bad, 400, "INVALID_PHONE_NUMBER")
	// Two kinds of wrong: the batch's code is the general one; each
	// message's own is in details.errors.
	f("bad phone and empty text", strings.Replace(bad, `"Message 1"`, `""`, 1), 400, "INVALID_REQUEST")
	f("empty text", strings.Replace(batchBody(3, ""), `"Message 1"`, `""`, 1), 400, "INVALID_REQUEST")
	f("no messages", `{"messages":[]}`, 400, "INVALID_REQUEST")
	f("too many", batchBody(10_001, ""), 400, "INVALID_REQUEST")
	f("bad rate", batchBody(2, `,"rate_limit":{"messages_per_second":-1}`), 400, "INVALID_REQUEST")
	f("unknown field", batchBody(2, `,"template":"x"`), 400, "INVALID_REQUEST")
	if q := h.queued(); q != 0 {
		t.Fatalf("%d queued by refused batches", q)
	}
	code, v, _ := h.do("POST", batchPath, staffToken, bad)
	errs := v["error"].(map[string]any)["details"].(map[string]any)["errors"].([]any)
	if code != 400 || errs[0].(map[string]any)["index"] != float64(7) {
		t.Fatalf("the error does not name message 7: %v", v)
	}
}

func TestBatchIdempotencyAndBackpressure(t *testing.T) {
	h := newHarness(t)
	h.windowRuleOff()
	body := batchBody(4, `,"send_at":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"`)
	c1, v1, _ := h.do("POST", batchPath, staffToken, body, "Idempotency-Key", "spring-1")
	c2, v2, hdr := h.do("POST", batchPath, staffToken, body, "Idempotency-Key", "spring-1")
	if c1 != 202 || c2 != 202 || v1["batch_id"] != v2["batch_id"] || hdr.Get("Idempotent-Replayed") != "true" || v1["status"] != "scheduled" {
		t.Fatalf("%d %v / %d %v", c1, v1, c2, v2)
	}
	if q := h.queued(); q != 4 {
		t.Fatalf("%d queued after a repeat", q)
	}
	if n, _ := h.store.TenantOpen(context.Background(), "grand-plaza"); n != 4 {
		t.Fatalf("%d open after a repeat", n)
	}
	h.srv.cfg.DefaultMaxQueued = 10
	code, v, _ := h.do("POST", batchPath, staffToken, batchBody(7, ""))
	if code != 429 || errCode(t, v) != "RATE_LIMIT_EXCEEDED" {
		b, _ := json.Marshal(v)
		t.Fatalf("over the cap: %d %s", code, b)
	}
}

// A replay answers the batch as it stands, from its first times; the rate
// shown is the number's when the batch has no cap of its own.
func TestBatchReplayAnswersTheBatchAsItStands(t *testing.T) {
	h := newHarness(t)
	h.windowRuleOff()
	body := batchBody(3, "")
	c3, f1, _ := h.do("POST", batchPath, staffToken, body, "Idempotency-Key", "spring-2")
	if c3 != 202 {
		t.Fatalf("%d %v", c3, f1)
	}
	path := "/api/v1/whatsapp/batches/" + f1["batch_id"].(string)
	_, g1, _ := h.do("GET", path, staffToken, "")
	time.Sleep(300 * time.Millisecond)
	h.do("POST", path+"/cancel", staffToken, "")
	_, f2, _ := h.do("POST", batchPath, staffToken, body, "Idempotency-Key", "spring-2")
	_, g2, _ := h.do("GET", path, staffToken, "")
	eta := func(v map[string]any) time.Time {
		at, _ := time.Parse(time.RFC3339Nano, v["estimated_completion"].(string))
		return at
	}
	// The first answer's clock is the API's, the stored one Redis's: a few
	// milliseconds apart, where a replay from its own time would be 300.
	if d := eta(f2).Sub(eta(f1)); f2["batch_id"] != f1["batch_id"] || f2["status"] != "canceled" || d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Fatalf("replay of a canceled batch: %v, first answer %v", f2, f1)
	}
	if g2["created_at"] != g1["created_at"] || g2["status"] != "canceled" {
		t.Fatalf("the replay changed the batch: %v -> %v", g1, g2)
	}
	for _, v := range []map[string]any{f1, g1} {
		if r, _ := v["rate_limit"].(map[string]any); r["messages_per_second"] != float64(80) {
			t.Fatalf("rate_limit %v, want the number's 80", v["rate_limit"])
		}
	}
}

func TestBatchCountsAddUpWithRefusedMessages(t *testing.T) {
	h := newHarness(t)
	// Two guests wrote; one of them then opted out; two never wrote.
	h.guestSays("100000000000001", "+14155550001", "wamid.b1", "Hello")
	h.guestSays("100000000000001", "+14155550002", "wamid.b2", "Hi")
	h.guestSays("100000000000001", "+14155550002", "wamid.b3", "STOP")
	body := `{"messages":[{"phone":"+14155550001","content":"Spa is open"},{"phone":"+14155550002","content":"Spa is open"},
		{"phone":"+14155550003","content":"Spa is open"},{"phone":"+14155550004","content":"Spa is open"}]}`
	before, _ := h.store.TenantOpen(context.Background(), "grand-plaza")
	code, v, _ := h.do("POST", batchPath, staffToken, body)
	if code != 202 || v["accepted"] != 4.0 {
		t.Fatalf("%d %v", code, v)
	}
	id := v["batch_id"].(string)
	sums := func() map[string]any {
		t.Helper()
		_, b, _ := h.do("GET", "/api/v1/whatsapp/batches/"+id, staffToken, "")
		counts := b["counts"].(map[string]any)
		sum := 0.0
		for _, n := range counts {
			sum += n.(float64)
		}
		if sum != b["total"] {
			t.Fatalf("counts %v of %v", counts, b["total"])
		}
		return counts
	}
	// Accepted whole; each guest's opt-out and window are checked when
	// the dispatcher takes the message.
	if counts := sums(); counts["queued"] != 4.0 {
		t.Fatalf("counts %v", counts)
	}
	h.takeBulk("+15550001000")
	counts := sums()
	if counts["sending"] != 1.0 || counts["failed"] != 3.0 {
		t.Fatalf("counts %v", counts)
	}
	if n, _ := h.store.TenantOpen(context.Background(), "grand-plaza"); n-before != 1 {
		t.Fatalf("%d open, want the one guest in the window", n-before)
	}
	// Each refused message says why.
	reasons := map[string]bool{}
	for i := 1; i < 4; i++ {
		_, st, _ := h.do("GET", "/api/v1/whatsapp/messages/"+message.BatchMessageID(id, i)+"/status", staffToken, "")
		reasons[strings.SplitN(st["failure_reason"].(string), ":", 2)[0]] = true
	}
	if !reasons["GUEST_OPTED_OUT"] || !reasons["MESSAGE_WINDOW_EXPIRED"] {
		t.Fatalf("reasons %v", reasons)
	}
	// The batch lists its failures with their reasons, one page at a time.
	var listed []string
	cursor := ""
	for page := 0; ; page++ {
		_, l, _ := h.do("GET", "/api/v1/whatsapp/batches/"+id+"/messages?status=failed&limit=2"+cursor, staffToken, "")
		for _, m := range l["messages"].([]any) {
			m := m.(map[string]any)
			if m["status"] != "failed" || m["failure_reason"] == nil {
				t.Fatalf("listed %v", m)
			}
			listed = append(listed, m["guest_phone"].(string)+" "+strings.SplitN(m["failure_reason"].(string), ":", 2)[0])
		}
		if l["next_cursor"] == nil {
			break
		}
		if page > 3 {
			t.Fatalf("pages never end: %v", l)
		}
		cursor = "&cursor=" + l["next_cursor"].(string)
	}
	if fmt.Sprint(listed) != "[+14155550002 GUEST_OPTED_OUT +14155550003 MESSAGE_WINDOW_EXPIRED +14155550004 MESSAGE_WINDOW_EXPIRED]" {
		t.Fatalf("failed messages %v", listed)
	}
	_, all, _ := h.do("GET", "/api/v1/whatsapp/batches/"+id+"/messages", staffToken, "")
	if ms := all["messages"].([]any); len(ms) != 4 || ms[0].(map[string]any)["status"] != "sending" || ms[0].(map[string]any)["failure_reason"] != nil || all["next_cursor"] != nil {
		t.Fatalf("every message: %v", all)
	}
	for _, q := range []string{"?status=gone", "?limit=0", "?cursor=x"} {
		if code, v, _ := h.do("GET", "/api/v1/whatsapp/batches/"+id+"/messages"+q, staffToken, ""); code != 400 || errCode(t, v) != "INVALID_REQUEST" {
			t.Fatalf("%s: %d %v", q, code, v)
		}
	}
	// A cancel leaves the message being sent, and the counts add up.
	_, c, _ := h.do("POST", "/api/v1/whatsapp/batches/"+id+"/cancel", staffToken, "")
	counts = c["counts"].(map[string]any)
	if counts["canceled"] != 0.0 || counts["sending"] != 1.0 || counts["failed"] != 3.0 {
		t.Fatalf("after cancel %v", c)
	}
}

func TestBatchAnswersTheRateItWasGiven(t *testing.T) {
	h := newHarness(t)
	h.windowRuleOff()
	code, v, _ := h.do("POST", batchPath, staffToken, batchBody(3, `,"rate_limit":{"messages_per_second":0.5}`))
	if code != 202 {
		t.Fatalf("%d %v", code, v)
	}
	if r, _ := v["rate_limit"].(map[string]any); r["messages_per_second"] != 0.5 {
		t.Fatalf("rate_limit %v", v["rate_limit"])
	}
	// Three messages at one every two seconds: about six seconds.
	eta, err := time.Parse(time.RFC3339Nano, v["estimated_completion"].(string))
	if d := time.Until(eta); err != nil || d < 4*time.Second || d > 7*time.Second {
		t.Fatalf("estimated_completion %v is %v away", v["estimated_completion"], d)
	}
	_, b, _ := h.do("GET", "/api/v1/whatsapp/batches/"+v["batch_id"].(string), staffToken, "")
	if r, _ := b["rate_limit"].(map[string]any); r["messages_per_second"] != 0.5 {
		t.Fatalf("batch rate_limit %v", b["rate_limit"])
	}
}
