package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/sim"
)

// An outage longer than the retry schedule costs no message its attempts:
// the messages are held (on the breaker, or backing off) and sent once the
// provider is back; none is dead-lettered.
func TestOutageLongerThanTheRetriesDeadLettersNothing(t *testing.T) {
	const attempts = 3 // the schedule (20–100 ms apart in the rig) is over in about 0.3 s
	fast := BreakerConfig{Window: time.Second, MinRequests: 3, OpenFor: 200 * time.Millisecond}
	for _, tc := range []struct {
		name     string
		messages int
		breaker  BreakerConfig
		outages  []sim.Window
		tripped  bool // the breaker must have opened
	}{
		// Too little traffic to trip the breaker: only the failures in a
		// row tell the outage.
		{"a lone message", 1, BreakerConfig{MinRequests: 1 << 30}, []sim.Window{{End: 2 * time.Second}}, false},
		// The breaker opens: its probes fail again and again.
		{"traffic that trips the breaker", 6, fast, []sim.Window{{End: 2 * time.Second}}, true},
		{"a flapping outage", 6, fast, []sim.Window{
			{End: 700 * time.Millisecond}, {Start: 720 * time.Millisecond, End: 1400 * time.Millisecond},
			{Start: 1420 * time.Millisecond, End: 2100 * time.Millisecond}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, sim.Config{Outages: tc.outages}, Config{MaxAttempts: attempts, Breaker: tc.breaker})
			ids := r.enqueue(tc.messages, sender)
			r.start()
			opened := false
			deadline := time.Now().Add(30 * time.Second)
			for {
				opened = opened || testutil.ToFloat64(r.d.m.breaker.WithLabelValues("meta")) == 2
				if sent := r.count(ids, message.StatusSent); sent == len(ids) || time.Now().After(deadline) {
					break
				}
				if failed := r.count(ids, message.StatusFailed); failed > 0 {
					t.Fatalf("%d of %d messages failed during the outage", failed, len(ids))
				}
				time.Sleep(5 * time.Millisecond)
			}
			states := r.wait(ids, is(message.StatusSent))
			if tc.tripped && !opened {
				t.Fatal("the breaker never opened: the test proves nothing")
			}
			most := 0
			for _, st := range states {
				most = max(most, st.Attempts)
			}
			if s := r.sim.Stats(); s.Outage <= attempts || (!tc.tripped && most <= attempts) {
				t.Fatalf("the outage answered %d sends, a message took at most %d calls: it did not outlast the retries", s.Outage, most)
			}
			if dl, _, err := r.store.DeadLetters(context.Background(), "hotel", 10, ""); err != nil || len(dl) != 0 {
				t.Fatalf("dead letters %+v %v", dl, err)
			}
			if n := testutil.ToFloat64(r.d.m.sends.WithLabelValues("meta", "outage")); n == 0 {
				t.Fatal("no retry was counted as the provider's outage")
			}
		})
	}
}

// count says how many of ids are in status st.
func (r *rig) count(ids []string, st message.Status) int {
	r.t.Helper()
	n := 0
	for _, id := range ids {
		s, err := r.store.State(context.Background(), id)
		if err != nil {
			r.t.Fatal(err)
		}
		if s.Status == st {
			n++
		}
	}
	return n
}
