package dispatcher

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/gallabox"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/provider/sms"
	"github.com/wagate/wagate/ratelimit"
	"github.com/wagate/wagate/store/redis"
)

// withSMS gives the rig's sender an SMS route through the simulator.
func (r *rig) withSMS(steps ...Step) {
	c, err := sms.New(sms.Config{BaseURL: r.sim.URL(), AccountSID: sim.DefaultSMSAccountSID, AuthToken: sim.DefaultSMSAuthToken, DefaultFrom: sender})
	if err != nil {
		r.t.Fatal(err)
	}
	r.routes[sender].SMS = c
	r.routes[sender].Fallback = steps
}

func TestPairDeferralHoldsOnlyThatPair(t *testing.T) {
	// The gateway thinks a guest takes 10 a second; Meta takes one.
	r := newRig(t, sim.Config{PairRate: 1, PairBurst: 1}, Config{Pairs: ratelimit.PairConfig{Every: 100 * time.Millisecond, Burst: 10, Defer: 300 * time.Millisecond}})
	guest := r.enqueue(4, sender, func(a *redis.EnqueueArgs) { a.Recipient = "+14155550000" })
	others := r.enqueue(20, sender, func(a *redis.EnqueueArgs) { a.Recipient = "+1999" + a.Recipient[5:] })
	start := time.Now()
	r.start()
	for id, st := range r.wait(others, is(message.StatusSent)) {
		if st.SentMS-start.UnixMilli() > 1500 {
			t.Fatalf("%s of another guest waited %d ms: the deferral held more than its pair", id, st.SentMS-start.UnixMilli())
		}
	}
	r.wait(guest, is(message.StatusSent))
	if r.sim.Stats().PairThrottled == 0 {
		t.Fatal("the simulator never refused the pair: the test proves nothing")
	}
	var texts []string
	for _, b := range r.bodies() {
		if strings.HasPrefix(b, "14155550000 ") {
			texts = append(texts, strings.TrimPrefix(b, "14155550000 "))
		}
	}
	if strings.Join(texts, ",") != "message 0,message 1,message 2,message 3" {
		t.Fatalf("the deferred guest got %v: out of order", texts)
	}
}

func TestNotDeliveredInTimeFallsBackToSMS(t *testing.T) {
	r := newRig(t, sim.Config{}, Config{}) // no webhooks: nothing is ever delivered
	r.withSMS(StepHold)
	late := r.enqueue(1, sender, func(a *redis.EnqueueArgs) {
		a.FallbackText, a.FallbackAfter = "Your room is ready (by SMS)", time.Second
	})
	onTime := r.enqueue(1, sender, func(a *redis.EnqueueArgs) {
		a.Recipient = "+14155551234"
		a.FallbackText, a.FallbackAfter = "never sent", time.Second
	})
	r.start()
	r.wait(append(late, onTime...), is(message.StatusSent))
	// The provider reports one delivered before its deadline.
	r.store.ApplyStatuses(context.Background(), []redis.StatusApply{{MessageID: onTime[0],
		Result: redis.Result{Status: message.StatusDelivered, AtMS: time.Now().UnixMilli()}}})
	deadline := time.Now().Add(5 * time.Second)
	var st *redis.State
	for {
		st, _ = r.store.State(context.Background(), late[0])
		if st.FallbackMS != 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.FallbackMS == 0 || st.FallbackChannel != "sms" || st.Status != message.StatusSent || st.FallbackMS-st.SentMS < 1000 {
		t.Fatalf("late message: %+v", st)
	}
	time.Sleep(300 * time.Millisecond)
	smsSent := r.sim.SMSRequests()
	if len(smsSent) != 1 || smsSent[0].Body != "Your room is ready (by SMS)" || smsSent[0].To != "+14155550000" {
		t.Fatalf("SMS sent: %+v", smsSent)
	}
	if st, _ := r.store.State(context.Background(), onTime[0]); st.FallbackMS != 0 {
		t.Fatalf("a delivered message went by SMS too: %+v", st)
	}
}

func TestFailedMessageFallsBackToSMS(t *testing.T) {
	r := newRig(t, sim.Config{RecipientErrors: map[string]int{"14155550000": 131026}}, Config{})
	r.withSMS(StepHold)
	ids := r.enqueue(1, sender, func(a *redis.EnqueueArgs) { a.FallbackText = "Your booking is confirmed" })
	r.start()
	st := r.wait(ids, is(message.StatusFailed))[ids[0]]
	if st.ErrorCode != 131026 || st.Attempts != 1 {
		t.Fatalf("state %+v", st)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(r.sim.SMSRequests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := r.sim.SMSRequests(); len(got) != 1 || got[0].Body != "Your booking is confirmed" {
		t.Fatalf("SMS sent: %+v", got)
	}
	time.Sleep(200 * time.Millisecond)
	if st, _ := r.store.State(context.Background(), ids[0]); st.FallbackMS == 0 || st.Status != message.StatusFailed {
		t.Fatalf("both outcomes should stay recorded: %+v", st)
	}
	if n := testutil.ToFloat64(r.d.m.fallbacks.WithLabelValues("sms", "failed")); n != 1 {
		t.Fatalf("fallbacks{sms,failed} = %v", n)
	}
}

func TestSecondaryProviderCarriesWhileTheBreakerIsOpen(t *testing.T) {
	r := newRig(t, sim.Config{}, Config{Breaker: BreakerConfig{Window: time.Second, MinRequests: 5, FailureRatio: 0.5, OpenFor: time.Minute}})
	g, err := gallabox.New(gallabox.Config{BaseURL: r.sim.URL(), APIKey: sim.DefaultGallaboxAPIKey, APISecret: sim.DefaultGallaboxAPISecret, DefaultChannelID: "ch-1"})
	if err != nil {
		t.Fatal(err)
	}
	r.routes[sender].Secondary = g
	r.routes[sender].Fallback = []Step{StepSecondary, StepHold}
	r.sim.SetOutage(time.Now().Add(time.Hour))
	ids := r.enqueue(30, sender)
	r.start()
	states := r.wait(ids, is(message.StatusSent))
	viaGallabox := 0
	for _, st := range states {
		if st.Provider == "gallabox" {
			viaGallabox++
		}
	}
	if viaGallabox == 0 || len(r.sim.GallaboxRequests()) != viaGallabox {
		t.Fatalf("%d sent through Gallabox, the simulator's Gallabox got %d", viaGallabox, len(r.sim.GallaboxRequests()))
	}
	if testutil.ToFloat64(r.d.m.breaker.WithLabelValues("meta")) != 2 {
		t.Fatal("Meta's breaker is not open")
	}
}

func TestSpamLimitHoldsTheSender(t *testing.T) {
	r := newRig(t, sim.Config{RecipientErrors: map[string]int{"14155550000": 131048}}, Config{HoldFor: time.Second})
	first := r.enqueue(1, sender)
	r.start()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(r.d.m.held.WithLabelValues(sender, "hold")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sender was not held")
		}
		time.Sleep(10 * time.Millisecond)
	}
	heldAt := time.Now()
	// The rate applied while held is none, whatever the tier.
	if rate, ok := series(t, r.reg, "wagate_dispatch_sender_rate")["sender="+sender]; !ok || rate != 0 {
		t.Fatalf("a held sender's rate is %v (reported: %v)", rate, ok)
	}
	rt := r.sim.Runtime()
	rt.RecipientErrors = nil
	r.sim.SetRuntime(rt)
	other := r.enqueue(1, sender, func(a *redis.EnqueueArgs) { a.Recipient = "+14155559999" })
	st := r.wait(other, is(message.StatusSent))[other[0]]
	if wait := time.UnixMilli(st.SentMS).Sub(heldAt); wait < 800*time.Millisecond {
		t.Fatalf("another message went %v after the spam limit: the sender was not held", wait)
	}
	if st := r.wait(first, is(message.StatusSent))[first[0]]; st.Attempts != 2 {
		t.Fatalf("held message: %+v", st)
	}
}

func TestBatchRateCapsItsCampaign(t *testing.T) {
	r := newRig(t, sim.Config{}, Config{})
	a := &redis.BatchArgs{ID: r.store.NewBatchID(sender), TenantID: "hotel", Sender: sender, RatePerSecond: 5}
	for i := 0; i < 11; i++ {
		a.Items = append(a.Items, redis.BatchItem{Recipient: fmt.Sprintf("+1415555%04d", i), Type: message.TypeText, Content: []byte(`{"body":"offer"}`)})
	}
	if _, _, err := r.store.EnqueueBatch(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(a.Items))
	for i := range ids {
		ids[i] = message.BatchMessageID(a.ID, i)
	}
	// A transactional message of the same number is not held by the cap.
	tx := r.enqueue(1, sender, func(a *redis.EnqueueArgs) { a.Recipient = "+19995550000" })
	r.start()
	states := r.wait(ids, is(message.StatusSent))
	var first, last int64 = 1 << 62, 0
	for _, st := range states {
		first, last = min(first, st.SentMS), max(last, st.SentMS)
	}
	if span := last - first; span < 1800 {
		t.Fatalf("11 messages at 5 per second went out in %d ms", span)
	}
	if st := r.wait(tx, is(message.StatusSent))[tx[0]]; st.SentMS > first+1000 {
		t.Fatalf("the transactional message waited for the capped campaign")
	}
}

func TestBatchWithoutRetriesFailsAtOnce(t *testing.T) {
	r := newRig(t, sim.Config{ErrorRate: 1}, Config{MaxAttempts: 5})
	a := &redis.BatchArgs{ID: r.store.NewBatchID(sender), TenantID: "hotel", Sender: sender, NoRetry: true,
		Items: []redis.BatchItem{{Recipient: "+14155550000", Type: message.TypeText, Content: []byte(`{"body":"x"}`)}}}
	if _, _, err := r.store.EnqueueBatch(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	r.start()
	id := message.BatchMessageID(a.ID, 0)
	if st := r.wait([]string{id}, is(message.StatusFailed))[id]; st.Attempts != 1 {
		t.Fatalf("attempts %d, want 1 (retry_failed false)", st.Attempts)
	}
}

// TestFallbackStepsPassOnWhatTheyCannotCarry: with Meta's breaker open and
// the chain secondary (Gallabox: text and templates only), sms, hold,
// every kind of message ends where it can go and none fails for a step
// that cannot carry it: text through Gallabox; the rest by SMS when it has
// a fallback text, else held until Meta is back, then sent there.
func TestFallbackStepsPassOnWhatTheyCannotCarry(t *testing.T) {
	r := newRig(t, sim.Config{}, Config{Breaker: BreakerConfig{Window: time.Second, MinRequests: 5, FailureRatio: 0.5, OpenFor: 2 * time.Second}})
	g, err := gallabox.New(gallabox.Config{BaseURL: r.sim.URL(), APIKey: sim.DefaultGallaboxAPIKey, APISecret: sim.DefaultGallaboxAPISecret, DefaultChannelID: "ch-1"})
	if err != nil {
		t.Fatal(err)
	}
	r.routes[sender].Secondary = g
	r.withSMS(StepSecondary, StepSMS, StepHold)
	r.sim.SetOutage(time.Now().Add(time.Hour))
	kinds := []struct {
		name    string
		typ     message.Type
		content string
		sms     string
	}{
		{"text", message.TypeText, `{"body":"Your room is ready"}`, ""},
		{"image with an SMS text", message.TypeImage, `{"link":"https://cdn.grandplaza.example/key.jpg","caption":"Your key"}`, "Your key: see the front desk"},
		{"image", message.TypeImage, `{"link":"https://cdn.grandplaza.example/key.jpg"}`, ""},
		{"interactive", message.TypeInteractive, `{"type":"button","body":{"text":"Late checkout?"},"action":{"buttons":[{"type":"reply","reply":{"id":"yes","title":"Yes"}}]}}`, ""},
		{"interactive with an SMS text", message.TypeInteractive, `{"type":"button","body":{"text":"Late checkout?"},"action":{"buttons":[{"type":"reply","reply":{"id":"yes","title":"Yes"}}]}}`, "Late checkout? Reply YES"},
		{"location", message.TypeLocation, `{"latitude":"52.52","longitude":"13.40","name":"Grand Plaza"}`, ""},
		{"template", message.TypeTemplate, `{"name":"room_ready","language":{"code":"en"}}`, ""},
	}
	// Texts that trip Meta's breaker first.
	trip := r.enqueue(8, sender)
	ids := map[string]string{}
	for i, k := range kinds {
		id := r.enqueue(1, sender, func(a *redis.EnqueueArgs) {
			a.Recipient = fmt.Sprintf("+1416555%04d", i)
			a.Type, a.Content, a.FallbackText = k.typ, []byte(k.content), k.sms
		})[0]
		ids[k.name] = id
	}
	r.start()
	r.wait(trip, is(message.StatusSent)) // through Gallabox once the breaker opened
	settled := func(names ...string) map[string]*redis.State {
		var want []string
		for _, n := range names {
			want = append(want, ids[n])
		}
		return r.wait(want, func(s message.Status) bool { return s == message.StatusSent || s == message.StatusFallback })
	}
	now := settled("text", "image with an SMS text", "interactive with an SMS text", "template")
	for name, want := range map[string]struct {
		status   message.Status
		provider string
	}{
		"text": {message.StatusSent, "gallabox"}, "template": {message.StatusSent, "gallabox"},
		"image with an SMS text": {message.StatusFallback, ""}, "interactive with an SMS text": {message.StatusFallback, ""},
	} {
		st := now[ids[name]]
		if st.Status != want.status || want.provider != "" && st.Provider != want.provider {
			t.Errorf("%s while Meta is down: %s via %q, want %s %s", name, st.Status, st.Provider, want.status, want.provider)
		}
	}
	// The rest wait, failed by nothing, until Meta is back.
	for _, name := range []string{"image", "interactive", "location"} {
		st, err := r.store.State(context.Background(), ids[name])
		if err != nil {
			t.Fatal(err)
		}
		if message.Terminal(st.Status) {
			t.Fatalf("%s ended %s (%s) while held", name, st.Status, st.ErrorTitle)
		}
	}
	r.sim.SetOutage(time.Time{})
	for name, st := range settled("image", "interactive", "location") {
		if st.Status != message.StatusSent || st.Provider != "meta" {
			t.Errorf("%s after the outage: %s via %q, want sent via meta", name, st.Status, st.Provider)
		}
	}
	if got := testutil.ToFloat64(r.d.m.fallbacks.WithLabelValues("secondary", "cannot_carry")); got < 5 {
		t.Errorf("cannot_carry counted %v, want the 5 messages Gallabox could not take", got)
	}
}

// TestEveryChainHoldsWhatItCannotCarry: the shorter chains, each kind of
// message while Meta is down: what a step takes goes there, the rest is
// held (never failed) and sent through Meta once it is back.
func TestEveryChainHoldsWhatItCannotCarry(t *testing.T) {
	type want struct {
		status   message.Status
		provider string // "" for the SMS
	}
	held := want{message.StatusSent, "meta"}
	tests := []struct {
		chain []Step
		// by kind: text, text with an SMS text, image, interactive with an SMS text
		want [4]want
	}{
		{[]Step{StepSecondary, StepHold}, [4]want{{message.StatusSent, "gallabox"}, {message.StatusSent, "gallabox"}, held, held}},
		{[]Step{StepSMS, StepHold}, [4]want{held, {message.StatusFallback, ""}, held, {message.StatusFallback, ""}}},
		{[]Step{StepHold}, [4]want{held, held, held, held}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.chain), func(t *testing.T) {
			r := newRig(t, sim.Config{}, Config{Breaker: BreakerConfig{Window: time.Second, MinRequests: 5, FailureRatio: 0.5, OpenFor: 2 * time.Second}})
			g, err := gallabox.New(gallabox.Config{BaseURL: r.sim.URL(), APIKey: sim.DefaultGallaboxAPIKey, APISecret: sim.DefaultGallaboxAPISecret, DefaultChannelID: "ch-1"})
			if err != nil {
				t.Fatal(err)
			}
			r.routes[sender].Secondary = g
			r.withSMS(tt.chain...)
			r.sim.SetOutage(time.Now().Add(time.Hour))
			kinds := []struct {
				typ          message.Type
				content, sms string
			}{
				{message.TypeText, `{"body":"Your room is ready"}`, ""},
				{message.TypeText, `{"body":"Your room is ready"}`, "Your room is ready"},
				{message.TypeImage, `{"link":"https://cdn.grandplaza.example/key.jpg"}`, ""},
				{message.TypeInteractive, `{"type":"button","body":{"text":"Late checkout?"},"action":{"buttons":[{"type":"reply","reply":{"id":"yes","title":"Yes"}}]}}`, "Late checkout? Reply YES"},
			}
			trip := r.enqueue(8, sender, func(a *redis.EnqueueArgs) { a.FallbackText = "trip" })
			var ids []string
			for i, k := range kinds {
				ids = append(ids, r.enqueue(1, sender, func(a *redis.EnqueueArgs) {
					a.Recipient = fmt.Sprintf("+1416555%04d", i)
					a.Type, a.Content, a.FallbackText = k.typ, []byte(k.content), k.sms
				})[0])
			}
			r.start()
			settled := func(s message.Status) bool { return s == message.StatusSent || s == message.StatusFallback }
			if slices.Contains(tt.chain, StepSecondary) || slices.Contains(tt.chain, StepSMS) {
				r.wait(trip, settled) // the breaker opened and the chain carried them
			}
			time.Sleep(time.Second) // the held ones stay held meanwhile
			for i, id := range ids {
				st, err := r.store.State(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if st.Status == message.StatusFailed || st.Status == message.StatusExpired {
					t.Fatalf("kind %d ended %s (%s)", i, st.Status, st.ErrorTitle)
				}
			}
			r.sim.SetOutage(time.Time{})
			states := r.wait(ids, settled)
			for i, id := range ids {
				st, w := states[id], tt.want[i]
				if st.Status != w.status || w.provider != "" && st.Provider != w.provider {
					t.Errorf("kind %d: %s via %q, want %s via %q", i, st.Status, st.Provider, w.status, w.provider)
				}
			}
		})
	}
}

// TestSecondarysUndeliveredFallsBackWhenItReports: a message the secondary
// provider carried falls back to SMS when not delivered in time only if
// that provider's status callbacks reach wagate (Config.Reporting); from a
// provider that reports nothing it would always go twice.
func TestSecondarysUndeliveredFallsBackWhenItReports(t *testing.T) {
	for _, c := range []struct {
		name      string
		reporting map[string]bool
		sms       int
	}{
		{"gallabox reports", map[string]bool{"gallabox": true}, 1},
		{"gallabox reports nothing", nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, sim.Config{}, Config{Reporting: c.reporting,
				Breaker: BreakerConfig{Window: time.Second, MinRequests: 1, FailureRatio: 0.5, OpenFor: time.Minute}})
			g, err := gallabox.New(gallabox.Config{BaseURL: r.sim.URL(), APIKey: sim.DefaultGallaboxAPIKey, APISecret: sim.DefaultGallaboxAPISecret, DefaultChannelID: "ch-1"})
			if err != nil {
				t.Fatal(err)
			}
			r.withSMS(StepSecondary, StepSMS, StepHold)
			r.routes[sender].Secondary = g
			r.sim.SetOutage(time.Now().Add(time.Hour))
			// The first opens Meta's breaker; the rest go through Gallabox.
			ids := r.enqueue(3, sender, func(a *redis.EnqueueArgs) {
				a.FallbackText, a.FallbackAfter = "Your room is ready (by SMS)", time.Second
			})
			r.start()
			states := r.wait(ids, is(message.StatusSent))
			via := 0
			for _, st := range states {
				if st.Provider == "gallabox" && st.FallbackMS == 0 {
					via++
				}
			}
			if via == 0 {
				t.Fatalf("nothing went through Gallabox: %v", states)
			}
			before := len(r.sim.SMSRequests())
			// A second past sent, the fallback is due: wait for it (or,
			// when none may come, well past its time).
			deadline := time.Now().Add(10 * time.Second)
			if c.sms == 0 {
				deadline = time.Now().Add(2500 * time.Millisecond)
			}
			for time.Now().Before(deadline) && len(r.sim.SMSRequests())-before < c.sms*via {
				time.Sleep(50 * time.Millisecond)
			}
			if c.sms == 0 {
				time.Sleep(time.Until(deadline))
			}
			if got := len(r.sim.SMSRequests()) - before; got != c.sms*via {
				t.Fatalf("%d SMS after the delivery deadline for %d Gallabox sends, want %d each", got, via, c.sms)
			}
		})
	}
}
