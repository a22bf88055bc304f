package inbound

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/internal/webhooktest"
	"github.com/wagate/wagate/message"
)

// TestProviderStatusesApplyForwardOnly: Gallabox's and ChatApp's statuses
// reach their messages, forward only, recorded under the account that
// reported them (the tag the API stored the body under); one for an
// unknown id touches no message. (The API refuses forged ones: ingest's
// TestProviderWebhooksAreVerified.)
func TestProviderStatusesApplyForwardOnly(t *testing.T) {
	h := newHarness(t)
	h.start(Config{})
	ctx := context.Background()

	t.Run("gallabox read before delivered", func(t *testing.T) {
		id := h.sentVia("gallabox", "66a7699b87b97af3ec4f2c01")
		h.post("gallabox", webhooktest.GallaboxStatus("66a7699b87b97af3ec4f2c01", "read", 1722247590))
		h.waitStatus(id, message.StatusRead)
		h.post("gallabox", webhooktest.GallaboxStatus("66a7699b87b97af3ec4f2c01", "delivered", 1722247580))
		// The late delivered is a fact and is recorded; the message stays read.
		deadline := time.Now().Add(5 * time.Second)
		for {
			st, err := h.store.State(ctx, id)
			must(t, err)
			if st.DeliveredMS != 0 {
				if st.Status != message.StatusRead || st.ReadMS == 0 || st.Provider != "gallabox" {
					t.Fatalf("after a late delivered: %s read %d provider %s", st.Status, st.ReadMS, st.Provider)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the late delivered was not recorded: %+v", st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("gallabox second account", func(t *testing.T) {
		id := h.sentVia("gallabox-eu", "66a7699b87b97af3ec4f2c02")
		h.post("gallabox/gallabox-eu", webhooktest.GallaboxStatus("66a7699b87b97af3ec4f2c02", "delivered", 1722247580))
		h.waitStatus(id, message.StatusDelivered)
		st, err := h.store.State(ctx, id)
		must(t, err)
		if st.Status != message.StatusDelivered || st.ReadMS != 0 || st.Provider != "gallabox-eu" {
			t.Fatalf("state %s read %d provider %s", st.Status, st.ReadMS, st.Provider)
		}
	})

	t.Run("gallabox failure", func(t *testing.T) {
		id := h.sentVia("gallabox", "66a76a5487b97af3ec4f2d35")
		h.post("gallabox", []byte(`{"id":"66a76a5487b97af3ec4f2d35","status":"failed","timestamp":"1722247764","errors":[{"code":131026,"title":"Message undeliverable","message":"Message undeliverable","error_data":{"details":"Message Undeliverable."}}],"recipient_id":"1234567890"}`))
		// The API's failure_reason is the error's title.
		if st := h.waitStatus(id, message.StatusFailed); !strings.Contains(st.ErrorTitle, "undeliverable") {
			t.Fatalf("failure reason %q", st.ErrorTitle)
		}
	})

	t.Run("chatapp batch out of order", func(t *testing.T) {
		a := h.sentVia("chatapp", "61851ccb2f1365b16aee0a01")
		b := h.sentVia("chatapp", "61851ccb2f1365b16aee0b01")
		push := "[" + webhooktest.ChatAppReport("61851ccb2f1365b16aee0a01", "Read", 1700000003000) + "," +
			webhooktest.ChatAppReport("61851ccb2f1365b16aee0a01", "Delivered", 1700000002000) + "," +
			webhooktest.ChatAppReport("61851ccb2f1365b16aee0b01", "Delivered", 1700000002000) + "," +
			webhooktest.ChatAppReport("61851ccb2f1365b16aee0b01", "Sent", 1700000001000) + "]"
		h.post("chatapp", []byte(push))
		h.waitStatus(a, message.StatusRead)
		h.waitStatus(b, message.StatusDelivered)
		for _, id := range []string{a, b} {
			st, err := h.store.State(ctx, id)
			must(t, err)
			if st.Provider != "chatapp" || st.DeliveredMS == 0 {
				t.Fatalf("%s: provider %s delivered %d", id, st.Provider, st.DeliveredMS)
			}
		}
	})

	t.Run("unknown id is harmless", func(t *testing.T) {
		id := h.sentVia("chatapp", "61851ccb2f1365b16aee0c01")
		before, err := h.store.OrphanCount(ctx)
		must(t, err)
		h.post("chatapp", []byte("["+webhooktest.ChatAppReport("no-such-message", "Read", 1700000003000)+"]"))
		h.post("gallabox", webhooktest.GallaboxStatus("000000000000000000000000", "read", 1722247590))
		// Parked for the dispatcher's late write, like Meta's, and nothing
		// else moves.
		testwait.For(t, 5*time.Second, "both to be parked", func() bool {
			n, _ := h.store.OrphanCount(ctx)
			return n >= before+2
		})
		h.post("chatapp", []byte("["+webhooktest.ChatAppReport("61851ccb2f1365b16aee0c01", "Delivered", 1700000002000)+"]"))
		h.waitStatus(id, message.StatusDelivered)
	})
}
