package ratelimit

import (
	"context"
	"math"
	"testing"
	"time"
)

func TestSenderDecreasesOnThrottleAndRecovers(t *testing.T) {
	s, err := NewSender(SenderConfig{Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	s.Throttled(t0, 0)
	if r := s.RateAt(t0); r != 70 {
		t.Fatalf("after one throttle: %v mps, want 70", r)
	}
	// Throttles from the same burst (within a second) count once.
	s.Throttled(t0.Add(100*time.Millisecond), 0)
	s.Throttled(t0.Add(200*time.Millisecond), 0)
	if r := s.RateAt(t0.Add(200 * time.Millisecond)); math.Abs(r-70.4) > 0.01 {
		t.Fatalf("after a burst of throttles: %v mps, want 70 plus 0.2 s of recovery", r)
	}
	// Additive recovery: 2 mps per second up to 90% of where the provider
	// throttled (100), a tenth of that above, never beyond the tier.
	if r := s.RateAt(t0.Add(5 * time.Second)); math.Abs(r-80) > 0.01 {
		t.Fatalf("5 s later: %v mps, want 80", r)
	}
	if r := s.RateAt(t0.Add(15 * time.Second)); math.Abs(r-91) > 0.01 {
		t.Fatalf("15 s later: %v mps, want 91: 80 to 90 in 5 s, then a tenth as fast", r)
	}
	if r := s.RateAt(t0.Add(3 * time.Minute)); r != 100 {
		t.Fatalf("minutes later: %v mps, want the tier's 100", r)
	}
	// Never below the floor.
	last := t0
	for i := 0; i < 50; i++ {
		last = t0.Add(61*time.Second + time.Duration(i)*1010*time.Millisecond)
		s.Throttled(last, 0)
	}
	if r := s.RateAt(last); r != 5 {
		t.Fatalf("after many throttles: %v mps, want the floor of 5", r)
	}
	if s.Throttles() != 51 {
		t.Fatalf("throttles %d", s.Throttles())
	}
}

func TestSenderPausesForRetryAfter(t *testing.T) {
	s, _ := NewSender(SenderConfig{Rate: 1000})
	s.Throttled(time.Now(), time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := s.Wait(ctx); err == nil {
		t.Fatal("Wait returned during the provider's Retry-After")
	}
}

func TestSenderBurstIsATenthOfASecond(t *testing.T) {
	for rate, want := range map[float64]int{80: 8, 1000: 100, 20: 2, 5: 1} {
		s, _ := NewSender(SenderConfig{Rate: rate})
		if s.lim.Burst() != want {
			t.Errorf("rate %v: burst %d, want %d", rate, s.lim.Burst(), want)
		}
	}
}

func TestPairsAllowABurstThenTheSteadyRate(t *testing.T) {
	p, _ := NewPairs(PairConfig{Every: 6 * time.Second, Burst: 3})
	t0 := time.Now()
	for i := 0; i < 3; i++ {
		if d := p.Take("+1234567890", t0); d != 0 {
			t.Fatalf("message %d of the burst waits %v", i+1, d)
		}
	}
	if d := p.Take("+1234567890", t0); d != 6*time.Second {
		t.Fatalf("4th message waits %v, want 6s", d)
	}
	if d := p.Take("+1987654321", t0); d != 0 {
		t.Fatalf("another recipient waits %v", d)
	}
	if d := p.Take("+1234567890", t0.Add(6*time.Second)); d != 0 {
		t.Fatalf("after 6 s: waits %v", d)
	}
}

func TestPairsDeferAndSweep(t *testing.T) {
	p, _ := NewPairs(PairConfig{Every: time.Second, Burst: 5})
	t0 := time.Now()
	until := p.Defer("+1234567890", t0, 0)
	if until != t0.Add(5*time.Second) {
		t.Fatalf("deferred until %v, want 5 × Every", until.Sub(t0))
	}
	if d := p.Take("+1234567890", t0.Add(time.Second)); d != 4*time.Second {
		t.Fatalf("deferred pair waits %v, want 4s", d)
	}
	if d := p.Take("+1555", t0); d != 0 {
		t.Fatal("deferring one pair held another")
	}
	// After the deferral the bucket starts empty: one message per Every.
	if d := p.Take("+1234567890", t0.Add(5*time.Second)); d != 0 {
		t.Fatalf("after the deferral: waits %v", d)
	}
	if d := p.Take("+1234567890", t0.Add(5*time.Second)); d <= 0 {
		t.Fatal("after the deferral the full burst came back at once")
	}
	if n := p.Sweep(t0.Add(time.Minute)); n != 0 {
		t.Fatalf("%d idle buckets kept", n)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []SenderConfig{{Rate: 0}, {Rate: -1}, {Rate: 1, Burst: -1}, {Rate: 1, Decrease: 1.5}} {
		if _, err := NewSender(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := NewPairs(PairConfig{Every: -1}); err == nil {
		t.Error("negative pair interval accepted")
	}
}

func TestSendersUseEachNumbersTier(t *testing.T) {
	s, err := NewSenders(Config{PerNumber: map[string]float64{"+15550001000": TierUpgrade, "+15550002000": TierShared}})
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]float64{"+15550001000": 1000, "+15550002000": 20, "+15550003000": 80} {
		if got := s.Get(n).Configured(); got != want || s.Get(n) != s.Get(n) {
			t.Errorf("%s: %v mps, want %v", n, got, want)
		}
	}
	if _, err := NewSenders(Config{PerNumber: map[string]float64{"+1": 0}}); err == nil {
		t.Error("a zero rate accepted")
	}
}
