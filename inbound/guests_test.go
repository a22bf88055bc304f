package inbound

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/internal/webhooktest"
	"github.com/wagate/wagate/store/redis"
)

// guestSays stores a guest's text to number pnid as the API does, and
// waits until the processor filed it (the guest's record shows the
// message's time).
func (h *harness) guestSays(pnid, from, wamid, text string) {
	h.t.Helper()
	at := time.Now()
	h.post("meta", webhooktest.InboundText(pnid, from, wamid, text, at))
	sender := harnessNumbers[pnid].Sender
	testwait.For(h.t, 5*time.Second, "the guest's message "+wamid+" to be filed", func() bool {
		g, err := h.store.Guest(context.Background(), sender, from)
		must(h.t, err)
		return g.LastInboundMS >= at.Truncate(time.Second).UnixMilli() && g.LastInboundMS > 0
	})
	// Let the rest of the body (an opt keyword) settle too.
	time.Sleep(50 * time.Millisecond)
}

// TestInboundMessagesOpenTheWindowAndTheConversation: a guest's message
// opens the window with the number it was sent to (not the tenant's
// other), and a conversation with the guest's name and the message; the
// same webhook delivered again changes nothing.
func TestInboundMessagesOpenTheWindowAndTheConversation(t *testing.T) {
	h := newHarness(t)
	p := h.start(Config{})
	const guest = "+14155550123"
	h.guestSays("100000000000001", guest, "wamid.in1", "Hi, is the spa open tomorrow?")
	c, hist := h.conversation("grand-plaza", "+15550001000", guest)
	if c == nil || c.GuestName != "Maria Lopez" || c.Unread != 1 || c.LastPreview != "Hi, is the spa open tomorrow?" || c.LastDirection != "in" ||
		len(hist) != 1 || hist[0].ID != "wamid.in1" || hist[0].Name != "Maria Lopez" {
		t.Fatalf("conversation %+v, history %+v", c, hist)
	}
	ctx := context.Background()
	if g, err := h.store.Guest(ctx, "+15550001001", guest); err != nil || g.LastInboundMS != 0 {
		t.Fatalf("the other number's window: %+v %v", g, err)
	}
	h.post("meta", webhooktest.InboundText("100000000000001", guest, "wamid.in1", "Hi, is the spa open tomorrow?", time.Now()))
	testwait.For(t, 5*time.Second, "the redelivery to be counted", func() bool {
		return testutil.ToFloat64(p.m.inbound.WithLabelValues("duplicate")) == 1
	})
	if c, hist := h.conversation("grand-plaza", "+15550001000", guest); c.Unread != 1 || len(hist) != 1 {
		t.Fatalf("after a redelivered webhook: %+v %+v", c, hist)
	}
}

// TestOptKeywordsWorkBothWays: the tenant's opt-out keyword, whatever its
// case and punctuation, opts the guest out of the number's messages and
// is confirmed to the guest in their conversation; an opt-in keyword
// opts back in; Spanish keywords work too.
func TestOptKeywordsWorkBothWays(t *testing.T) {
	h := newHarness(t)
	h.start(Config{})
	ctx := context.Background()
	const guest = "+14155550177"
	guestOf := func() *redis.Guest {
		t.Helper()
		g, err := h.store.Guest(ctx, "+15550001000", guest)
		must(t, err)
		return g
	}
	h.guestSays("100000000000001", guest, "wamid.o1", "Hello")
	h.guestSays("100000000000001", guest, "wamid.o2", "  stop! ")
	if g := guestOf(); !g.OptedOut || g.OptSource != "keyword" || g.OptChangedMS == 0 {
		t.Fatalf("after STOP: %+v", g)
	}
	// Confirmed to the guest, in their conversation.
	_, hist := h.conversation("grand-plaza", "+15550001000", guest)
	last := hist[len(hist)-1]
	if last.Direction != "out" || !strings.Contains(last.Preview, "Reply START") {
		t.Fatalf("confirmation: %+v", hist)
	}
	// The number's only: the tenant's other number may still write.
	if g, err := h.store.Guest(ctx, "+15550001001", guest); err != nil || g.OptedOut {
		t.Fatalf("the other number: %+v %v", g, err)
	}
	h.guestSays("100000000000001", guest, "wamid.o3", "Start")
	if g := guestOf(); g.OptedOut {
		t.Fatalf("after START: %+v", g)
	}
	h.guestSays("100000000000001", guest, "wamid.o4", "No más")
	if g := guestOf(); !g.OptedOut {
		t.Fatalf("after NO MÁS: %+v", g)
	}
}
