package ingest

import (
	"github.com/wagate/wagate/internal/dispatchtest"
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
	dispatchtest.MarkSent(h.t, h.store, id, "meta", pid)
}

// begin takes message id from its queue as the dispatcher would.
func (h *harness) begin(id string) *redis.Job {
	h.t.Helper()
	return dispatchtest.Begin(h.t, h.store, id)
}
