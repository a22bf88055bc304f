package redis

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestPortfolioLimitRollsWithTheDay: a portfolio at its limit holds new
// guests, admits guests it counted already and guests whose window is
// open, lets a new guest go when the oldest counted one leaves the moving
// 24 hours, shares the limit between its numbers, and takes the limit Meta
// announces over the configured one.
func TestPortfolioLimitRollsWithTheDay(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	start := time.Now()
	now := start
	s.now = func() time.Time { return now }
	const pf, limit = "pf-grand-plaza", 3
	other := "+15550009999" // another number of the same portfolio
	admit := func(sender, guest string) Admission {
		t.Helper()
		a, err := s.AdmitBusinessInitiated(ctx, pf, sender, guest, limit)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	guest := func(i int) string { return fmt.Sprintf("+4477009%05d", i) }

	// Three new guests an hour apart, from two numbers: counted.
	for i := range 3 {
		sender := testSender
		if i == 1 {
			sender = other
		}
		if a := admit(sender, guest(i)); !a.OK || a.Counted != i+1 || a.Limit != limit {
			t.Fatalf("guest %d: %+v, want admitted as %d of %d", i, a, i+1, limit)
		}
		now = now.Add(time.Hour)
	}
	steps := []struct {
		name   string
		at     time.Duration // after start
		sender string
		guest  string
		ok     bool
		until  time.Duration // after start, when held
	}{
		{"a fourth guest is held until the first leaves the day", 3 * time.Hour, testSender, guest(3), false, 24 * time.Hour},
		{"from the portfolio's other number too", 3 * time.Hour, other, guest(3), false, 24 * time.Hour},
		{"a guest counted already goes again", 4 * time.Hour, other, guest(0), true, 0},
		{"a minute before the first leaves: still held", 24*time.Hour - time.Minute, testSender, guest(3), false, 24 * time.Hour},
		{"the first left the window: the fourth goes", 24*time.Hour + time.Millisecond, testSender, guest(3), true, 0},
		{"and a fifth waits for the second to leave", 24*time.Hour + time.Second, testSender, guest(4), false, 25 * time.Hour},
		{"the first, counted again, waits too", 24*time.Hour + time.Second, testSender, guest(0), false, 25 * time.Hour},
	}
	for _, st := range steps {
		now = start.Add(st.at)
		a := admit(st.sender, st.guest)
		if a.OK != st.ok || (!st.ok && !a.Until.Equal(start.Add(st.until).Truncate(time.Millisecond))) {
			t.Fatalf("%s: %+v, want ok %v until %v", st.name, a, st.ok, start.Add(st.until))
		}
	}

	// A guest who wrote within 24 hours is the guest's own conversation:
	// not counted, admitted at the limit.
	inbound(t, s, guest(9), "wamid.pf-9", "Is breakfast included?", now, "")
	if a := admit(testSender, guest(9)); !a.OK || !a.InWindow {
		t.Fatalf("a guest whose window is open: %+v", a)
	}
	if a := admit(testSender, guest(8)); a.OK {
		t.Fatalf("the window of one guest opened the portfolio to another: %+v", a)
	}

	// Meta raises the limit: the next guests go; unlimited counts no one.
	if ok, err := s.SetPortfolioLimit(ctx, pf, 2000, now.UnixMilli()); err != nil || !ok {
		t.Fatal(ok, err)
	}
	// An older announcement, come late, changes nothing.
	if ok, err := s.SetPortfolioLimit(ctx, pf, 250, now.Add(-time.Hour).UnixMilli()); err != nil || ok {
		t.Fatalf("an older limit was recorded: %v %v", ok, err)
	}
	if a := admit(testSender, guest(8)); !a.OK || a.Limit != 2000 {
		t.Fatalf("after Meta raised the limit to 2000: %+v", a)
	}
	if ok, err := s.SetPortfolioLimit(ctx, pf, Unlimited, now.Add(time.Second).UnixMilli()); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if a := admit(testSender, guest(7)); !a.OK || a.Limit != Unlimited || a.Counted != 5 {
		t.Fatalf("unlimited: %+v, want admitted and counted (guests 1, 2, 3, 8 and 7 in the day)", a)
	}
	if n, ok, err := s.PortfolioLimit(ctx, pf); err != nil || !ok || n != Unlimited {
		t.Fatalf("PortfolioLimit: %d %v %v", n, ok, err)
	}
}
