package ratelimit

import (
	"context"
	"testing"
	"time"
)

func TestSendersUseEachNumbersRate(t *testing.T) {
	s, err := NewSenders(Config{PerNumber: map[string]float64{"+15550001000": 1000, "+15550002000": 20}})
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]float64{"+15550001000": 1000, "+15550002000": 20, "+15550003000": 80} {
		if got := s.Rate(n); got != want {
			t.Errorf("Rate(%s) = %v, want %v", n, got, want)
		}
		if b := s.bucket(n); b != s.bucket(n) || float64(b.Limit()) != want || b.Burst() != int(want) {
			t.Errorf("%s: bucket %v/%d", n, b.Limit(), b.Burst())
		}
	}
}

func TestWaitGivesUpWhenTheContextCannotWait(t *testing.T) {
	s, _ := NewSenders(Config{DefaultRate: 1, Burst: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Wait(ctx, "+15550001000"); err != nil {
		t.Fatalf("first message within the burst: %v", err)
	}
	if err := s.Wait(ctx, "+15550001000"); err == nil {
		t.Fatal("second message at 1 mps waited less than a second")
	}
	if err := s.Wait(ctx, "+15550009999"); err != nil {
		t.Fatalf("another number is not slowed by the first: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{DefaultRate: -1}, {DefaultRate: 1, Burst: -1}, {DefaultRate: 1, PerNumber: map[string]float64{"+1": 0}}} {
		if _, err := NewSenders(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
