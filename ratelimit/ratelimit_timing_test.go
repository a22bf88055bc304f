package ratelimit

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// hugeRate never makes a caller wait: what is measured is the bucket's own
// cost per message, which every send of the dispatcher pays.
const hugeRate = 1e12

func newHugeSender(tb testing.TB) *Sender {
	tb.Helper()
	s, err := NewSender(SenderConfig{Rate: hugeRate, Burst: 1 << 30})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestSenderWaitDoesNotAllocate: a token that is there is taken without
// allocating, so the per-message cost of the bucket is a lock and some
// arithmetic.
func TestSenderWaitDoesNotAllocate(t *testing.T) {
	s := newHugeSender(t)
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() {
		if err := s.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Sender.Wait allocates %v times per message, want 0", n)
	}
}

func BenchmarkSenderWait(b *testing.B) {
	s := newHugeSender(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSenderWaitParallel is one number's bucket shared by the
// dispatcher's sends in flight.
func BenchmarkSenderWaitParallel(b *testing.B) {
	s := newHugeSender(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Wait(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSenderWaitThrottled is Wait after a throttle, while the rate
// recovers (the recover arithmetic runs on every call).
func BenchmarkSenderWaitThrottled(b *testing.B) {
	s := newHugeSender(b)
	s.Throttled(time.Now().Add(-time.Second), 0)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// pairRecipients are guests numbered as a bulk campaign's.
func pairRecipients(n int) []string {
	r := make([]string, n)
	for i := range r {
		r[i] = "+447" + strconv.Itoa(100000000+i)
	}
	return r
}

// BenchmarkPairsTakeNew is the first message to each of many guests: a
// bucket is made per recipient (the bulk case: one message per guest).
func BenchmarkPairsTakeNew(b *testing.B) {
	rs := pairRecipients(1 << 16)
	now := time.Now()
	var p *Pairs
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%len(rs) == 0 {
			b.StopTimer()
			var err error
			if p, err = NewPairs(PairConfig{}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		if d := p.Take(rs[i%len(rs)], now); d != 0 {
			b.Fatalf("a new guest waits %v", d)
		}
	}
}

// TestPairsTakeKnownDoesNotAllocate: a guest whose bucket exists costs no
// allocation; only a guest's first message makes its bucket (two
// allocations, BenchmarkPairsTakeNew), and Sweep drops it once refilled.
func TestPairsTakeKnownDoesNotAllocate(t *testing.T) {
	p, err := NewPairs(PairConfig{Every: time.Nanosecond, Burst: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	p.Take("+447100000000", now)
	if n := testing.AllocsPerRun(1000, func() {
		if d := p.Take("+447100000000", now); d != 0 {
			t.Fatalf("a guest with tokens waits %v", d)
		}
	}); n != 0 {
		t.Errorf("Pairs.Take of a known guest allocates %v times, want 0", n)
	}
}

// BenchmarkPairsTakeKnown is a message to a guest whose bucket exists and
// has tokens (a conversation's later messages).
func BenchmarkPairsTakeKnown(b *testing.B) {
	rs := pairRecipients(1024)
	p, err := NewPairs(PairConfig{Every: time.Nanosecond, Burst: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for _, r := range rs {
		p.Take(r, now)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if d := p.Take(rs[i%len(rs)], now); d != 0 {
			b.Fatalf("a guest with tokens waits %v", d)
		}
	}
}

// BenchmarkPairsTakeRefused is a guest over the pair rate: the token is
// reserved and cancelled again, and the wait returned.
func BenchmarkPairsTakeRefused(b *testing.B) {
	p, err := NewPairs(PairConfig{Every: time.Hour, Burst: 1})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	p.Take("+447100000000", now)
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Take("+447100000000", now); d == 0 {
			b.Fatal("a guest over the pair rate was let through")
		}
	}
}
