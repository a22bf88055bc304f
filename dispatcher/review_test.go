package dispatcher

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/gallabox"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/provider/sms"
	"github.com/wagate/wagate/ratelimit"
	"github.com/wagate/wagate/store/redis"
)

// A guest with more queued messages than the read-ahead, with retries among
// them, must neither stall its own line nor the number's other guests.
func TestLongLineWithRetriesDoesNotStallTheNumber(t *testing.T) {
	r := newRig(t, sim.Config{ErrorRate: 0.2}, Config{ReadAhead: 10, MaxAttempts: 50, Breaker: BreakerConfig{MinRequests: 1 << 30},
		Pairs: ratelimit.PairConfig{Every: time.Millisecond, Burst: 1000}})
	guest := r.enqueue(40, sender, func(a *redis.EnqueueArgs) { a.Recipient = "+14155550000" })
	others := r.enqueue(20, sender, func(a *redis.EnqueueArgs) { a.Recipient = "+1999" + a.Recipient[5:] })
	start := time.Now()
	r.start()
	for id, st := range r.wait(others, is(message.StatusSent)) {
		if wait := st.SentMS - start.UnixMilli(); wait > 5000 {
			t.Fatalf("%s of another guest waited %d ms behind one guest's line", id, wait)
		}
	}
	r.wait(guest, is(message.StatusSent))
	var texts []string
	for _, b := range r.bodies() {
		if len(b) > 12 && b[:11] == "14155550000" {
			texts = append(texts, b[12:])
		}
	}
	for i, got := range texts {
		if want := fmt.Sprintf("message %d", i); got != want {
			t.Fatalf("the guest's %d-th message is %q: out of order", i, got)
		}
	}
}

// A campaign message held for a day must not hold the guest's
// transactional messages: order is kept per lane.
func TestHeldBulkMessageDoesNotHoldTheTransactionalLane(t *testing.T) {
	r := newRig(t, sim.Config{RecipientErrors: map[string]int{"14155550000": 131049}}, Config{})
	bulk := r.enqueue(1, sender, func(a *redis.EnqueueArgs) { a.Lane, a.Campaign = message.LaneBulk, "offers" })
	r.start()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := r.store.State(context.Background(), bulk[0])
		if st.ErrorCode == 131049 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	rt := r.sim.Runtime()
	rt.RecipientErrors = nil
	r.sim.SetRuntime(rt)
	tx := r.enqueue(1, sender, func(a *redis.EnqueueArgs) { a.Content = []byte(`{"body":"Your room is ready"}`) })
	if st := r.wait(tx, is(message.StatusSent))[tx[0]]; st.SentMS-st.QueuedMS > 1000 {
		t.Fatalf("the transactional message waited %d ms for the held campaign message", st.SentMS-st.QueuedMS)
	}
	if st, _ := r.store.State(context.Background(), bulk[0]); st.Status != message.StatusQueued {
		t.Fatalf("the capped campaign message: %+v", st)
	}
}

// A graceful stop finishes and records sends that outlast the lease TTL,
// so the next owner sends nothing twice.
func TestGracefulStopOutlastsTheLease(t *testing.T) {
	r := newRig(t, sim.Config{Latency: 1500 * time.Millisecond}, Config{}) // lease TTL 500 ms in the rig
	ids := r.enqueue(10, sender)
	r.start()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(r.d.m.inFlight) < 10 {
		if time.Now().After(deadline) {
			t.Fatal("sends did not go in flight")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if st, _ := r.store.State(context.Background(), id); st.Status != message.StatusSent {
			t.Fatalf("%s is %s after a graceful stop", id, st.Status)
		}
	}
	r.cfg.Instance = "d2"
	r.reg = prometheus.NewRegistry()
	r.start()
	time.Sleep(500 * time.Millisecond)
	if got := len(r.sim.Requests(phoneID)); got != 10 {
		t.Fatalf("simulator got %d sends for 10 messages", got)
	}
}

// A hanging SMS provider must not delay the shard's scheduled sends.
func TestHangingSMSProviderDoesNotDelayScheduledSends(t *testing.T) {
	hole, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	r := newRig(t, sim.Config{RecipientErrors: map[string]int{"14155550000": 131026}}, Config{SendTimeout: 10 * time.Second})
	c, err := sms.New(sms.Config{BaseURL: "http://" + hole.Addr().String(), AccountSID: sim.DefaultSMSAccountSID, AuthToken: "x", DefaultFrom: sender, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r.routes[sender].SMS = c
	failing := r.enqueue(5, sender, func(a *redis.EnqueueArgs) { a.Recipient = "+14155550000"; a.FallbackText = "sms" })
	r.start()
	r.wait(failing, is(message.StatusFailed))
	due := time.Now().Add(300 * time.Millisecond)
	later := r.enqueue(1, sender, func(a *redis.EnqueueArgs) { a.Recipient = "+14155559999"; a.DueMS = due.UnixMilli() })
	st := r.wait(later, is(message.StatusSent))[later[0]]
	if late := time.UnixMilli(st.SentMS).Sub(due); late > time.Second {
		t.Fatalf("scheduled message sent %v late", late)
	}
}

// A message carried by the secondary provider (no delivery receipts here)
// gets no fallback SMS for want of a receipt; the provider's ids stay.
func TestSecondaryProviderSendsGetNoFallbackForMissingReceipts(t *testing.T) {
	r := newRig(t, sim.Config{}, Config{Breaker: BreakerConfig{Window: time.Second, MinRequests: 3, FailureRatio: 0.5, OpenFor: time.Minute}})
	g, _ := gallabox.New(gallabox.Config{BaseURL: r.sim.URL(), APIKey: sim.DefaultGallaboxAPIKey, APISecret: sim.DefaultGallaboxAPISecret, DefaultChannelID: "c"})
	r.withSMS(StepSecondary, StepHold)
	r.routes[sender].Secondary = g
	r.sim.SetOutage(time.Now().Add(time.Hour))
	ids := r.enqueue(10, sender, func(a *redis.EnqueueArgs) { a.FallbackText, a.FallbackAfter = "sms", 500*time.Millisecond })
	r.start()
	states := r.wait(ids, is(message.StatusSent))
	time.Sleep(1500 * time.Millisecond)
	for id, st := range states {
		if st.Provider == "gallabox" {
			if now, _ := r.store.State(context.Background(), id); now.FallbackMS != 0 {
				t.Fatalf("%s went through Gallabox and still got an SMS", id)
			}
		}
	}
	if len(r.sim.SMSRequests()) != 0 && len(r.sim.GallaboxRequests()) == 10 {
		t.Fatalf("%d SMS sent for messages Gallabox carried", len(r.sim.SMSRequests()))
	}
}

// Retries that never count (here: the marketing cap, retried after a day)
// stop after MaxAge.
func TestUncountedRetriesStopAfterMaxAge(t *testing.T) {
	r := newRig(t, sim.Config{RecipientErrors: map[string]int{"14155550000": 131049}}, Config{MaxAge: time.Hour})
	ids := r.enqueue(1, sender)
	r.start()
	st := r.wait(ids, is(message.StatusFailed))[ids[0]]
	if st.ErrorCode != 131049 || st.Attempts != 1 {
		t.Fatalf("%+v", st)
	}
	if dl, _, _ := r.store.DeadLetters(context.Background(), "hotel", 10, ""); len(dl) != 1 {
		t.Fatalf("dead letters %v", dl)
	}
}
