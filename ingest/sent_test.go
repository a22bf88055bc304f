package ingest

import (
	"context"
	"time"

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
