package ingest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// sentMessage queues a message through the API and records it as sent by
// the provider with pid, as the dispatcher would.
func (h *harness) sentMessage(pid string) string {
	h.t.Helper()
	_, v, _ := h.do("POST", sendPath, staffToken, seedSend("hi"))
	id := v["message_id"].(string)
	h.markSent(id, pid)
	return id
}

func (h *harness) markSent(id, pid string) {
	h.t.Helper()
	j := h.begin(id)
	must(h.t, h.store.Finish(context.Background(), j, &redis.Result{Status: message.StatusSent, AtMS: time.Now().UnixMilli(), Provider: "meta", ProviderMessageID: pid}, redis.FinishOptions{}))
}

// begin takes message id from its queue as the dispatcher would: under the
// shard's lease, read, begun.
func (h *harness) begin(id string) *redis.Job {
	h.t.Helper()
	ctx := context.Background()
	st, err := h.store.State(ctx, id)
	must(h.t, err)
	shard, _ := message.ShardOf(id)
	l, ok, err := h.store.TakeLease(ctx, "dispatch", shard, "test", time.Minute)
	must(h.t, err)
	if !ok {
		v := h.store.Client().Get(ctx, h.store.Keys().Lease(shard, "dispatch")).Val()
		l = &redis.Lease{Shard: shard, Role: "dispatch", Value: v}
	}
	q := h.store.Keys().SenderQueue(shard, st.Sender, st.Lane, st.Campaign)
	es, err := h.store.ReadEntries(ctx, "test", []string{q}, 1000, nil)
	must(h.t, err)
	for i := range es {
		if es[i].MessageID == id {
			j := redis.NewJob(l, shard, st.Sender, &es[i])
			if b, err := h.store.Begin(ctx, j); err != nil || b != redis.BeginGo {
				h.t.Fatalf("begin %s: %v %v", id, b, err)
			}
			return j
		}
	}
	h.t.Fatalf("message %s not in its queue", id)
	return nil
}

func (h *harness) startProcessor() *Processor {
	p := NewProcessor(ProcessorConfig{Consumer: "p1", Block: 50 * time.Millisecond, OrphanSweep: 20 * time.Millisecond,
		Numbers: harnessNumbers},
		h.store, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	p.Start()
	h.t.Cleanup(func() { p.Shutdown(context.Background()) })
	return p
}

// harnessNumbers are the Meta phone number ids of the harness's numbers.
var harnessNumbers = map[string]NumberRef{
	"100000000000001": {Tenant: "grand-plaza", Sender: "+15550001000"},
	"100000000000002": {Tenant: "grand-plaza", Sender: "+15550001001"},
	"200000000000001": {Tenant: "seaside", Sender: "+15550002000"},
}

// waitStatus polls the status endpoint until it shows want.
func (h *harness) waitStatus(id string, want message.Status) map[string]any {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var v map[string]any
	for time.Now().Before(deadline) {
		_, v, _ = h.do("GET", "/api/v1/whatsapp/messages/"+id+"/status", staffToken, "")
		if v["status"] == string(want) {
			return v
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("message %s: status %v, want %s", id, v["status"], want)
	return nil
}

func TestStatusesEndInTheRightState(t *testing.T) {
	h := newHarness(t)
	h.startProcessor()
	f := func(name string, seq []string, want message.Status) {
		t.Run(name, func(t *testing.T) {
			pid := "wamid." + name
			id := h.sentMessage(pid)
			for i, st := range seq {
				if c := h.postWebhook(statusBody(pid, st, 1700000000+int64(i)), appSecret); c != 200 {
					t.Fatalf("webhook %s: %d", st, c)
				}
			}
			v := h.waitStatus(id, want)
			// give late statuses a chance to (wrongly) apply
			time.Sleep(100 * time.Millisecond)
			v = h.waitStatus(id, want)
			if want == message.StatusRead && (v["delivered_at"] == nil || v["read_at"] == nil || v["sent_at"] == nil) {
				t.Fatalf("times missing: %v", v)
			}
		})
	}
	f("in-order", []string{"sent", "delivered", "read"}, message.StatusRead)
	f("reversed", []string{"read", "delivered", "sent"}, message.StatusRead)
	f("duplicated", []string{"delivered", "delivered", "sent", "delivered"}, message.StatusDelivered)
	f("failed", []string{"sent", "failed"}, message.StatusFailed)
}

func TestStatusForUnknownIDIsAppliedWhenTheIDAppears(t *testing.T) {
	h := newHarness(t)
	h.startProcessor()
	_, v, _ := h.do("POST", sendPath, staffToken, seedSend("hi"))
	id := v["message_id"].(string)
	// The provider's "delivered" arrives before the dispatcher recorded the
	// provider's id.
	if c := h.postWebhook(statusBody("wamid.early", "delivered", 1700000001), appSecret); c != 200 {
		t.Fatal(c)
	}
	time.Sleep(200 * time.Millisecond)
	if n, _ := h.store.OrphanCount(context.Background()); n != 1 {
		t.Fatalf("%d parked statuses, want 1", n)
	}
	h.markSent(id, "wamid.early")
	h.waitStatus(id, message.StatusDelivered)
	deadline := time.Now().Add(2 * time.Second)
	for {
		n, _ := h.store.OrphanCount(context.Background())
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d statuses still parked after they applied", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestProcessorResumesAfterRestart(t *testing.T) {
	h := newHarness(t)
	id := h.sentMessage("wamid.restart")
	// Bodies arrive while no processor runs.
	h.postWebhook(statusBody("wamid.restart", "delivered", 1700000001), appSecret)
	h.postWebhook(statusBody("wamid.restart", "read", 1700000002), appSecret)
	h.startProcessor()
	h.waitStatus(id, message.StatusRead)
	deadline := time.Now().Add(2 * time.Second)
	for h.inboundLen() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d processed bodies left in the inbound streams", h.inboundLen())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
