package ingest

import (
	"context"
	"time"

	"github.com/wagate/wagate/store/redis"
)

// openWindow opens the 24-hour window of guest with every number of the
// harness's tenants, as an inbound message from the guest would, so that
// free-form sends to the guest are accepted.
func (h *harness) openWindow(guest string) {
	h.t.Helper()
	h.guestWrote(guest, time.Now())
}

// guestWrote files a message from guest, sent at at, to every number of
// the harness's tenants, and returns each number's message id.
func (h *harness) guestWrote(guest string, at time.Time) map[string]string {
	h.t.Helper()
	ids := map[string]string{}
	for _, n := range []struct{ tenant, sender string }{
		{"grand-plaza", "+15550001000"}, {"grand-plaza", "+15550001001"}, {"seaside", "+15550002000"},
	} {
		wamid := "wamid.test-" + n.sender + guest + at.Format(time.RFC3339Nano)
		_, err := h.store.RecordInbound(context.Background(), &redis.InboundArgs{
			TenantID: n.tenant, Sender: n.sender, Guest: guest, ProviderMessageID: wamid, AtMS: at.UnixMilli(),
			Entry: redis.HistoryEntry{ID: wamid, AtMS: at.UnixMilli(), Type: "text", Preview: "Hello"}, NotifyKind: "inbound_message",
		})
		must(h.t, err)
		ids[n.sender] = wamid
	}
	return ids
}
