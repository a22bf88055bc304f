// Package templatesync is the template sync role: one instance at a time
// submits the templates tenants create to their providers and keeps their
// stored statuses in step with the providers' lists.
package templatesync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/store/redis"
)

// Account is the provider side of the template sync: the account
// holding a tenant's templates (Meta: a WhatsApp Business Account, see
// meta.Templates).
type Account interface {
	// CreateTemplate submits t for review. A refusal because the name and
	// language exist already matches provider.ErrTemplateExists.
	CreateTemplate(ctx context.Context, t *message.Template) (provider.TemplateResult, error)
	// ListTemplates returns every template of the account with its status.
	ListTemplates(ctx context.Context) ([]message.Template, error)
}

// templateLeaseRole names the sync's lease (on shard 0's lease key).
const templateLeaseRole = "templates"

// Config configures the template sync.
type Config struct {
	// Instance names this process as the holder of the sync's lease; it
	// must be unique among live instances.
	Instance string
	// Accounts maps a tenant id to the provider account holding its
	// templates. A tenant without one keeps its submissions queued.
	Accounts map[string]Account
	// Tick is how often queued submissions are looked for and the lease
	// renewed (2 s).
	Tick time.Duration
	// ListEvery is how often every account's templates are listed, to
	// catch up on status webhooks that never came (5 min). The first
	// listing comes as soon as the lease is taken.
	ListEvery time.Duration
	// LeaseTTL is how long the lease outlives its holder (30 s): only its
	// holder runs the sync, so that two processes do not submit the same
	// template at once.
	LeaseTTL time.Duration
	// CallTimeout bounds one provider call (30 s).
	CallTimeout time.Duration
	// RetryBase and RetryMax bound the exponential backoff, with full
	// jitter, of a submission that failed for a passing reason (10 s,
	// 10 min); a Retry-After the provider gave wins.
	RetryBase, RetryMax time.Duration
	// Batch is how many of a tenant's submissions one tick makes (20).
	Batch int
	// Now is the clock (time.Now).
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Instance == "" {
		c.Instance = "templates-1"
	}
	if c.Tick == 0 {
		c.Tick = 2 * time.Second
	}
	if c.ListEvery == 0 {
		c.ListEvery = 5 * time.Minute
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 30 * time.Second
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.RetryBase == 0 {
		c.RetryBase = 10 * time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = 10 * time.Minute
	}
	if c.Batch == 0 {
		c.Batch = 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Tick <= 0 || c.ListEvery <= 0 || c.CallTimeout <= 0:
		return errors.New("template sync: tick, list interval and call timeout must be positive")
	case c.LeaseTTL < 2*c.Tick:
		return fmt.Errorf("template sync: lease TTL %v must be at least two ticks (%v), or the lease lapses between renewals", c.LeaseTTL, c.Tick)
	case c.RetryBase <= 0 || c.RetryMax < c.RetryBase:
		return errors.New("template sync: retry backoff must be positive with max ≥ base")
	case c.Batch < 1:
		return errors.New("template sync: batch must be at least 1")
	}
	for tenant, a := range c.Accounts {
		if a == nil {
			return fmt.Errorf("template sync: tenant %s has a nil account", tenant)
		}
	}
	return nil
}

// Store is what the sync uses of the store (store/redis's *Store): its
// lease, the templates waiting for submission, and the providers' view of
// them.
type Store interface {
	TakeLease(ctx context.Context, role string, shard int, instance string, ttl time.Duration) (*redis.Lease, bool, error)
	RenewLease(ctx context.Context, l *redis.Lease, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, l *redis.Lease) error
	Template(ctx context.Context, tenant, name, language string) (*message.Template, error)
	DueTemplateSubmissions(ctx context.Context, tenant string, now time.Time, limit int) ([]redis.TemplateRef, error)
	FinishTemplateSubmission(ctx context.Context, tenant string, ref redis.TemplateRef, sub redis.Submission) error
	RetryTemplateSubmission(ctx context.Context, tenant string, ref redis.TemplateRef, due time.Time) error
	SyncProviderTemplates(ctx context.Context, tenant string, ts []message.Template, importUnknown bool) (redis.SyncResult, error)
}

// Sync submits the templates tenants create to their provider
// accounts and keeps the stored statuses in step with the providers'
// (the webhooks usually do; the periodic listing catches what they
// missed). One instance across processes runs it, the holder of a Redis
// lease.
type Sync struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	tenants []string // sorted, for a stable order
	// shared[tenant]: its account serves other tenants too, so its
	// listing holds their templates: only the tenant's own are synced.
	shared map[string]bool

	submissions *prometheus.CounterVec
	listings    *prometheus.CounterVec

	// Owned by the loop goroutine (or a test driving step).
	lease    *redis.Lease
	lastList time.Time
	listSoon bool
	attempts map[string]int

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// New checks cfg and returns a sync over store, not started.
func New(cfg Config, store Store, reg prometheus.Registerer, log *slog.Logger) (*Sync, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sync{cfg: cfg, store: store, log: log, attempts: map[string]int{},
		stop: make(chan struct{}), done: make(chan struct{}),
		submissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_template_submissions_total",
			Help: "Template submissions to providers by result: submitted, exists (the provider had it), refused, retry.",
		}, []string{"result"}),
		listings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_template_listings_total", Help: "Listings of a tenant's provider templates by result (ok, error).",
		}, []string{"result"}),
	}
	for t := range cfg.Accounts {
		s.tenants = append(s.tenants, t)
	}
	sort.Strings(s.tenants)
	s.shared = sharedAccounts(cfg.Accounts)
	if err := reg.Register(s.submissions); err != nil {
		return nil, fmt.Errorf("template sync metrics: %w", err)
	}
	if err := reg.Register(s.listings); err != nil {
		return nil, fmt.Errorf("template sync metrics: %w", err)
	}
	return s, nil
}

// Start runs the sync in the background until Shutdown.
func (s *Sync) Start() { go s.loop() }

// Shutdown stops the sync after the step under way and gives its lease
// back, so that another instance takes over at once.
func (s *Sync) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Sync) loop() {
	defer close(s.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-s.done:
		}
	}()
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	failing := false
	for {
		err := s.step(ctx)
		if ctx.Err() == nil && (err != nil) != failing { // log changes, not every tick
			failing = err != nil
			if failing {
				s.log.Warn("template sync fails; retrying", "err", err)
			} else {
				s.log.Info("template sync works again")
			}
		}
		select {
		case <-s.stop:
			s.release()
			return
		case <-t.C:
		}
	}
}

// release gives the lease back, if held.
func (s *Sync) release() {
	if s.lease == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.ReleaseLease(ctx, s.lease); err != nil {
		s.log.Warn("template sync: giving the lease back", "err", err)
	}
	s.lease = nil
}

// step renews or takes the lease and, holding it, makes the due
// submissions and, when it is time, lists the accounts' templates.
func (s *Sync) step(ctx context.Context) error {
	held, err := s.hold(ctx)
	if err != nil || !held {
		return err
	}
	var errs []error
	for _, tenant := range s.tenants {
		if err := s.submitDue(ctx, tenant); err != nil {
			errs = append(errs, err)
		}
	}
	now := s.cfg.Now()
	if s.listSoon || s.lastList.IsZero() || now.Sub(s.lastList) >= s.cfg.ListEvery {
		s.listSoon = false
		s.lastList = now
		for _, tenant := range s.tenants {
			if err := s.list(ctx, tenant); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// hold reports whether this instance holds the sync's lease, renewing it
// or taking it when it is free.
func (s *Sync) hold(ctx context.Context) (bool, error) {
	if s.lease != nil {
		ok, err := s.store.RenewLease(ctx, s.lease, s.cfg.LeaseTTL)
		if err != nil {
			return false, fmt.Errorf("template sync: %w", err)
		}
		if ok {
			return true, nil
		}
		s.lease = nil
		s.lastList = time.Time{} // list again once the lease is back
	}
	l, ok, err := s.store.TakeLease(ctx, templateLeaseRole, 0, s.cfg.Instance, s.cfg.LeaseTTL)
	if err != nil {
		return false, fmt.Errorf("template sync: %w", err)
	}
	if ok {
		s.lease = l
	}
	return ok, nil
}

// submitDue submits tenant's due templates.
func (s *Sync) submitDue(ctx context.Context, tenant string) error {
	now := s.cfg.Now()
	refs, err := s.store.DueTemplateSubmissions(ctx, tenant, now, s.cfg.Batch)
	if err != nil {
		return fmt.Errorf("template sync: %w", err)
	}
	account := s.cfg.Accounts[tenant]
	for _, ref := range refs {
		if err := s.submit(ctx, tenant, account, ref, now); err != nil {
			return err
		}
	}
	return nil
}

// submit submits one template and records what came of it.
func (s *Sync) submit(ctx context.Context, tenant string, account Account, ref redis.TemplateRef, now time.Time) error {
	t, err := s.store.Template(ctx, tenant, ref.Name, ref.Language)
	if errors.Is(err, redis.ErrNotFound) {
		// Gone since it was queued: take it off the queue.
		return s.store.FinishTemplateSubmission(ctx, tenant, ref, redis.Submission{})
	}
	if err != nil {
		return fmt.Errorf("template sync: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	res, err := account.CreateTemplate(cctx, t)
	cancel()
	key := tenant + "\x00" + ref.Name + "\x00" + ref.Language
	var pe *provider.Error
	var sub redis.Submission
	switch {
	case err == nil:
		sub = redis.Submission{ProviderID: res.ID, Status: res.Status, Category: res.Category}
		s.submissions.WithLabelValues("submitted").Inc()
	case errors.Is(err, provider.ErrTemplateExists):
		// Submitted before (its answer lost) or made elsewhere: the
		// listing, brought forward, tells its id and status.
		sub = redis.Submission{Status: message.TemplatePending}
		s.listSoon = true
		s.submissions.WithLabelValues("exists").Inc()
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &pe) && pe.Class == provider.ClassPermanent:
		reason := pe.Details
		if reason == "" {
			reason = pe.Title
		}
		sub = redis.Submission{Status: message.TemplateRejected, Reason: reason}
		s.submissions.WithLabelValues("refused").Inc()
	default:
		s.attempts[key]++
		due := now.Add(s.backoff(s.attempts[key], err))
		s.submissions.WithLabelValues("retry").Inc()
		s.log.Info("template submission failed; retrying", "tenant", tenant, "template", ref.Name, "language", ref.Language,
			"attempt", s.attempts[key], "at", due, "err", err)
		if err := s.store.RetryTemplateSubmission(ctx, tenant, ref, due); err != nil {
			return fmt.Errorf("template sync: %w", err)
		}
		return nil
	}
	delete(s.attempts, key)
	if err := s.store.FinishTemplateSubmission(ctx, tenant, ref, sub); err != nil {
		return fmt.Errorf("template sync: %w", err)
	}
	return nil
}

// backoff is the wait before attempt n+1: the provider's Retry-After, or
// exponential from RetryBase to RetryMax with full jitter.
func (s *Sync) backoff(n int, err error) time.Duration {
	var pe *provider.Error
	if errors.As(err, &pe) && pe.RetryAfter > 0 {
		return min(pe.RetryAfter, s.cfg.RetryMax)
	}
	d := s.cfg.RetryBase
	for i := 1; i < n && d < s.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, s.cfg.RetryMax)
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

// sharedAccounts tells the tenants whose account serves another tenant
// too (the same account value: gateway configs hand every tenant of a
// WhatsApp Business Account the same one). An account that cannot be
// compared is taken as shared: importing nothing is the safe side.
func sharedAccounts(accounts map[string]Account) map[string]bool {
	users := map[Account]int{}
	shared := map[string]bool{}
	for t, a := range accounts {
		if !reflect.TypeOf(a).Comparable() {
			shared[t] = true
			continue
		}
		users[a]++
	}
	for t, a := range accounts {
		if reflect.TypeOf(a).Comparable() && users[a] > 1 {
			shared[t] = true
		}
	}
	return shared
}

// list brings tenant's stored templates in step with its account's.
func (s *Sync) list(ctx context.Context, tenant string) error {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	ts, err := s.cfg.Accounts[tenant].ListTemplates(cctx)
	cancel()
	if err != nil {
		s.listings.WithLabelValues("error").Inc()
		return fmt.Errorf("template sync: list %s: %w", tenant, err)
	}
	res, err := s.store.SyncProviderTemplates(ctx, tenant, ts, !s.shared[tenant])
	if err != nil {
		s.listings.WithLabelValues("error").Inc()
		return fmt.Errorf("template sync: %w", err)
	}
	s.listings.WithLabelValues("ok").Inc()
	if res.Updated > 0 || res.Imported > 0 {
		s.log.Info("templates brought in step with the provider", "tenant", tenant, "updated", res.Updated, "imported", res.Imported)
	}
	return nil
}
