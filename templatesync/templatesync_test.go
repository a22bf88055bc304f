package templatesync

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

// The business number and its Meta phone number id the tests use.
const (
	sender  = "+15550001000"
	phoneID = "100000000000001"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func syncStore(t *testing.T) *redis.Store {
	t.Helper()
	rdb := redistest.Client(t)
	store, err := redis.New(context.Background(), rdb, redis.Config{Prefix: redistest.Prefix(t, rdb), Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	return store
}

// newSync returns a sync on clock (nil: the real one).
func newSync(t *testing.T, store *redis.Store, clock *fakeClock, instance string, accounts map[string]Account) *Sync {
	t.Helper()
	now := time.Now
	if clock != nil {
		now = clock.Now
	}
	s, err := New(Config{Instance: instance, Accounts: accounts, Now: now, Tick: 20 * time.Millisecond,
		LeaseTTL: time.Second, ListEvery: time.Hour, RetryBase: time.Second, RetryMax: time.Minute},
		store, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func lateCheckoutTemplate() *message.Template {
	return &message.Template{Name: "late_checkout_confirmation", Language: "en", Category: message.CategoryUtility, Group: "guest_services",
		Components: []message.TemplateComponent{
			{Type: "HEADER", Format: "TEXT", Text: "Late Checkout Confirmed"},
			{Type: "BODY", Text: "Hi {{1}}, your late checkout until {{2}} has been confirmed for room {{3}}. Additional charges: {{4}}."},
			{Type: "FOOTER", Text: "Thank you for staying with us!"},
		}}
}

func TestTemplateSyncSubmitsAndCatchesUpWithTheReview(t *testing.T) {
	store := syncStore(t)
	ctx := context.Background()
	s, err := sim.New(sim.Config{Addr: "127.0.0.1:0", TemplateReviewDelay: 300 * time.Millisecond,
		Numbers: []sim.Number{{PhoneNumberID: phoneID, DisplayPhoneNumber: sender[1:], WABAID: "1"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	account, err := meta.NewTemplates(meta.Config{BaseURL: s.URL(), AccessToken: sim.DefaultAccessToken, WABAID: "1",
		PhoneNumberIDs: map[string]string{sender: phoneID}})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Now().Add(time.Second)} // past the store's clock
	ts := newSync(t, store, clock, "a", map[string]Account{"grand-plaza": account})

	tp := lateCheckoutTemplate()
	if err := store.CreateTemplate(ctx, "grand-plaza", tp); err != nil {
		t.Fatal(err)
	}
	if err := ts.step(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := store.Template(ctx, "grand-plaza", tp.Name, "en")
	if got.Status != message.TemplatePending || got.ProviderID == "" {
		t.Fatalf("after submission %+v", got)
	}
	held := s.Templates("1")
	if len(held) != 1 || held[0].Name != tp.Name || held[0].ProviderID != got.ProviderID || held[0].Components[1].Text != tp.Components[1].Text {
		t.Fatalf("the provider holds %+v", held)
	}
	// The review is done; its webhook went nowhere (no webhook URL). The
	// next listing brings the status in.
	time.Sleep(400 * time.Millisecond)
	if err := ts.step(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.Template(ctx, "grand-plaza", tp.Name, "en"); got.Status != message.TemplatePending {
		t.Fatalf("listed before its time: %s", got.Status)
	}
	clock.add(time.Hour)
	if err := ts.step(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ = store.Template(ctx, "grand-plaza", tp.Name, "en")
	if got.Status != message.TemplateApproved || got.Group != "guest_services" {
		t.Fatalf("after the listing %+v", got)
	}
	if len(s.Templates("1")) != 1 {
		t.Fatal("submitted twice")
	}
}

// scripted is a Account answering as told.
type scripted struct {
	mu      sync.Mutex
	errs    []error
	creates int
	lists   int
	listing []message.Template
}

func (a *scripted) CreateTemplate(_ context.Context, t *message.Template) (provider.TemplateResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.creates++
	if len(a.errs) > 0 {
		err := a.errs[0]
		a.errs = a.errs[1:]
		if err != nil {
			return provider.TemplateResult{}, err
		}
	}
	return provider.TemplateResult{ID: "77", Status: message.TemplatePending, Category: t.Category}, nil
}

func (a *scripted) ListTemplates(context.Context) ([]message.Template, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lists++
	return a.listing, nil
}

func (a *scripted) counts() (int, int) { a.mu.Lock(); defer a.mu.Unlock(); return a.creates, a.lists }

func TestTemplateSyncAnswersEachKindOfRefusal(t *testing.T) {
	ctx := context.Background()
	f := func(name string, errs []error, wantCreates int, want message.TemplateStatus, wantReason string) {
		t.Run(name, func(t *testing.T) {
			store := syncStore(t)
			clock := &fakeClock{now: time.Now().Add(time.Second)} // past the store's clock
			acct := &scripted{errs: errs, listing: []message.Template{{Name: "late_checkout_confirmation", Language: "en",
				Category: message.CategoryUtility, Status: message.TemplateApproved, ProviderID: "55"}}}
			ts := newSync(t, store, clock, "a", map[string]Account{"grand-plaza": acct})
			ts.lastList = clock.Now() // the first listing is not the point here
			if err := store.CreateTemplate(ctx, "grand-plaza", lateCheckoutTemplate()); err != nil {
				t.Fatal(err)
			}
			for range 4 {
				if err := ts.step(ctx); err != nil {
					t.Fatal(err)
				}
				clock.add(2 * time.Minute) // past any backoff
			}
			if c, _ := acct.counts(); c != wantCreates {
				t.Fatalf("%d submissions, want %d", c, wantCreates)
			}
			got, _ := store.Template(ctx, "grand-plaza", "late_checkout_confirmation", "en")
			if got.Status != want || !strings.Contains(got.RejectedReason, wantReason) {
				t.Fatalf("%s %q", got.Status, got.RejectedReason)
			}
			if due, _ := store.DueTemplateSubmissions(ctx, "grand-plaza", clock.Now().Add(time.Hour), 10); len(due) != 0 {
				t.Fatalf("still queued: %v", due)
			}
		})
	}
	throttled := &provider.Error{Class: provider.ClassThrottle, HTTPStatus: 429, Code: 4, Title: "(#4) Application request limit reached"}
	transient := &provider.Error{Class: provider.ClassRetry, HTTPStatus: 500, Code: 2}
	refused := &provider.Error{Class: provider.ClassPermanent, HTTPStatus: 400, Code: 100, Title: "Invalid parameter", Details: "Body text can't have more than 1024 characters."}
	f("accepted", nil, 1, message.TemplatePending, "")
	f("throttled, then a server error, then accepted", []error{throttled, transient, nil}, 3, message.TemplatePending, "")
	f("refused", []error{refused}, 1, message.TemplateRejected, "1024 characters")
	f("timeout, then accepted", []error{context.DeadlineExceeded, nil}, 2, message.TemplatePending, "")
	// The provider had it already: the listing that follows gives its status.
	f("exists", []error{errors.Join(provider.ErrTemplateExists, refused)}, 1, message.TemplateApproved, "")
}

func TestTemplateSyncWaitsForItsBackoff(t *testing.T) {
	ctx := context.Background()
	store := syncStore(t)
	clock := &fakeClock{now: time.Now().Add(time.Second)} // past the store's clock
	acct := &scripted{errs: []error{&provider.Error{Class: provider.ClassThrottle, Code: 4, RetryAfter: 30 * time.Second}}}
	ts := newSync(t, store, clock, "a", map[string]Account{"grand-plaza": acct})
	if err := store.CreateTemplate(ctx, "grand-plaza", lateCheckoutTemplate()); err != nil {
		t.Fatal(err)
	}
	ts.step(ctx)
	clock.add(29 * time.Second)
	ts.step(ctx)
	if c, _ := acct.counts(); c != 1 {
		t.Fatalf("%d submissions before Retry-After passed", c)
	}
	clock.add(time.Second)
	ts.step(ctx)
	if c, _ := acct.counts(); c != 2 {
		t.Fatalf("%d submissions after Retry-After", c)
	}
}

func TestOnlyOneTemplateSyncRunsAtATime(t *testing.T) {
	ctx := context.Background()
	store := syncStore(t)
	acct := &scripted{}
	a := newSync(t, store, nil, "a", map[string]Account{"grand-plaza": acct})
	b := newSync(t, store, nil, "b", map[string]Account{"grand-plaza": acct})
	a.Start()
	testwait.For(t, 5*time.Second, "a takes the lease", func() bool { _, l := acct.counts(); return l == 1 })
	b.Start()
	t.Cleanup(func() { b.Shutdown(context.Background()) })
	for i := range 3 {
		tp := lateCheckoutTemplate()
		tp.Name = "t" + string(rune('a'+i))
		if err := store.CreateTemplate(ctx, "grand-plaza", tp); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, 5*time.Second, "three submissions", func() bool { c, _ := acct.counts(); return c == 3 })
	time.Sleep(100 * time.Millisecond) // five more ticks of both
	if c, l := acct.counts(); c != 3 || l != 1 {
		t.Fatalf("%d submissions and %d listings: both instances ran", c, l)
	}
	// a stops and gives the lease back: b takes over and lists at once.
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "b takes over", func() bool { _, l := acct.counts(); return l == 2 })
}

func TestTemplateSyncConfig(t *testing.T) {
	f := func(name string, c Config, want string) {
		t.Helper()
		c.setDefaults()
		err := c.Validate()
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	f("defaults", Config{}, "")
	f("lease shorter than two ticks", Config{Tick: time.Second, LeaseTTL: time.Second}, "two ticks")
	f("backoff upside down", Config{RetryBase: time.Minute, RetryMax: time.Second}, "retry backoff")
	f("nil account", Config{Accounts: map[string]Account{"x": nil}}, "nil account")
	f("negative tick", Config{Tick: -1}, "positive")
}

// TestTemplateSyncNeverCrossesTenants: two tenants whose numbers share a
// WhatsApp Business Account each keep their own templates; a tenant alone
// on its account gets the account's other templates imported.
func TestTemplateSyncNeverCrossesTenants(t *testing.T) {
	store := syncStore(t)
	ctx := context.Background()
	listing := []message.Template{
		{Name: "spa_offer", Language: "en", Category: message.CategoryMarketing, Status: message.TemplateApproved, ProviderID: "901"},
		{Name: "room_ready", Language: "en", Category: message.CategoryUtility, Status: message.TemplateApproved, ProviderID: "902"},
	}
	shared := &scripted{listing: listing}
	alone := &scripted{listing: []message.Template{
		{Name: "welcome", Language: "en", Category: message.CategoryUtility, Status: message.TemplateApproved, ProviderID: "903"}}}
	// "grand-plaza" made room_ready itself; "seaside" made nothing.
	mine := &message.Template{Name: "room_ready", Language: "en", Category: message.CategoryUtility,
		Components: []message.TemplateComponent{{Type: "BODY", Text: "Your room is ready."}}}
	if err := store.CreateTemplate(ctx, "grand-plaza", mine); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Now().Add(time.Second)}
	ts := newSync(t, store, clock, "a", map[string]Account{"grand-plaza": shared, "seaside": shared, "harbour": alone})
	clock.add(2 * time.Hour) // the listing is due
	for range 2 {
		if err := ts.step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		tenant string
		want   []string
	}{
		{"grand-plaza", []string{"room_ready"}},
		{"seaside", nil},
		{"harbour", []string{"welcome"}},
	}
	for _, tt := range tests {
		got, err := store.Templates(ctx, tt.tenant, redis.TemplateFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, g := range got {
			names = append(names, g.Name)
		}
		if strings.Join(names, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s holds %v, want %v", tt.tenant, names, tt.want)
		}
	}
	if got, _ := store.Template(ctx, "grand-plaza", "room_ready", "en"); got == nil || got.Status != message.TemplateApproved {
		t.Errorf("grand-plaza's own template was not brought in step: %+v", got)
	}
}
