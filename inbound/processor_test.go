package inbound

import (
	"context"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/internal/webhooktest"
	"github.com/wagate/wagate/message"
)

func TestStatusesEndInTheRightState(t *testing.T) {
	h := newHarness(t)
	h.start(Config{})
	for _, tc := range []struct {
		name string
		seq  []string
		want message.Status
	}{
		{"in-order", []string{"sent", "delivered", "read"}, message.StatusRead},
		{"reversed", []string{"read", "delivered", "sent"}, message.StatusRead},
		{"duplicated", []string{"delivered", "delivered", "sent", "delivered"}, message.StatusDelivered},
		{"failed", []string{"sent", "failed"}, message.StatusFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid := "wamid." + tc.name
			id := h.sentVia("meta", pid)
			for i, st := range tc.seq {
				h.post("meta", webhooktest.Status(pid, st, 1700000000+int64(i)))
			}
			h.waitStatus(id, tc.want)
			// give late statuses a chance to (wrongly) apply
			time.Sleep(100 * time.Millisecond)
			st := h.waitStatus(id, tc.want)
			if tc.want == message.StatusRead && (st.DeliveredMS == 0 || st.ReadMS == 0 || st.SentMS == 0) {
				t.Fatalf("times missing: %+v", st)
			}
		})
	}
}

func TestStatusForUnknownIDIsAppliedWhenTheIDAppears(t *testing.T) {
	h := newHarness(t)
	h.start(Config{})
	id := h.queued()
	// The provider's "delivered" arrives before the dispatcher recorded the
	// provider's id.
	h.post("meta", webhooktest.Status("wamid.early", "delivered", 1700000001))
	time.Sleep(200 * time.Millisecond)
	if n, _ := h.store.OrphanCount(context.Background()); n != 1 {
		t.Fatalf("%d parked statuses, want 1", n)
	}
	h.markSent(id, "meta", "wamid.early")
	h.waitStatus(id, message.StatusDelivered)
	testwait.For(t, 2*time.Second, "the parked status to go once applied", func() bool {
		n, _ := h.store.OrphanCount(context.Background())
		return n == 0
	})
}

func TestProcessorResumesAfterRestart(t *testing.T) {
	h := newHarness(t)
	id := h.sentVia("meta", "wamid.restart")
	// Bodies arrive while no processor runs.
	h.post("meta", webhooktest.Status("wamid.restart", "delivered", 1700000001))
	h.post("meta", webhooktest.Status("wamid.restart", "read", 1700000002))
	h.start(Config{})
	h.waitStatus(id, message.StatusRead)
	testwait.For(t, 2*time.Second, "the processed bodies to leave the inbound streams", func() bool { return h.inboundLen() == 0 })
}
