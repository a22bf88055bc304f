// Package hooks is the tenant webhook role: it posts message status
// events, conversation, inbound-message and opt-out notices to the
// webhooks tenants configure, signed, retried, and kept as dead letters
// when they keep failing.
package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/internal/netguard"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// Config configures the Deliverer.
type Config struct {
	// Consumer names this instance in the hooks consumer group; keep it
	// stable across restarts so it resumes its own unacknowledged events.
	Consumer string
	// Workers is how many deliveries run at once (16).
	Workers int
	// Timeout bounds one delivery (10 s).
	Timeout time.Duration
	// Poll is how long a read waits for new events (250 ms).
	Poll time.Duration
	// ConfigTTL is how long a tenant's webhook configuration is cached (2 s).
	ConfigTTL time.Duration
	// ReclaimIdle is how long another instance may hold events before this
	// one delivers them, taking it for dead (1 min).
	ReclaimIdle time.Duration
	// RetryLease hides a retry from other instances while one delivers it
	// (1 min): longer than Timeout.
	RetryLease time.Duration
	// SkipEvery is how often the deliverer looks whether any tenant has a
	// webhook (2 s). While none has, it does not read the events but moves
	// its group past them every fifth look (Store.SkipHookEvents); a tenant
	// that sets one gets every event from then on, the first up to this
	// much later.
	SkipEvery time.Duration
	// Allow lists the internal networks (CIDR, or addresses) a tenant's
	// webhook may reach; none by default: every delivery is dialed by
	// internal/netguard, which refuses loopback, private, link-local and
	// metadata addresses after resolving the name.
	Allow []string
	// Now is the clock (time.Now).
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Consumer == "" {
		c.Consumer = "hooks-1"
	}
	if c.Workers == 0 {
		c.Workers = 16
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Poll == 0 {
		c.Poll = 250 * time.Millisecond
	}
	if c.ConfigTTL == 0 {
		c.ConfigTTL = 2 * time.Second
	}
	if c.ReclaimIdle == 0 {
		c.ReclaimIdle = time.Minute
	}
	if c.RetryLease == 0 {
		c.RetryLease = time.Minute
	}
	if c.SkipEvery == 0 {
		c.SkipEvery = 2 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Workers < 1:
		return errors.New("hooks: workers must be positive")
	case c.Timeout <= 0 || c.Poll <= 0 || c.ConfigTTL <= 0 || c.ReclaimIdle <= 0 || c.SkipEvery <= 0:
		return errors.New("hooks: durations must be positive")
	case c.RetryLease <= c.Timeout:
		return errors.New("hooks: the retry lease must be longer than the delivery timeout")
	}
	return nil
}

// Store is what the deliverer uses of the store (store/redis's *Store):
// the events and notices it reads, the tenants' webhook settings, and its
// records of deliveries and retries.
type Store interface {
	HookEventReader(consumer string) *redis.EventReader
	SkipHookEvents(ctx context.Context, move bool, pendingMax int) (bool, error)
	Config() redis.Config
	TenantDoc(ctx context.Context, tenant, name string) ([]byte, error)
	ReadNoticesAll(ctx context.Context, consumer string, count int, block time.Duration) ([]redis.Notice, error)
	ReclaimNotices(ctx context.Context, shard int, consumer string, minIdle time.Duration, count int) ([]redis.Notice, error)
	AckNotices(ctx context.Context, ns []redis.Notice) error
	RecordHook(ctx context.Context, tenant string, ok bool, errText string, retry bool, body []byte) error
	ScheduleHookRetry(ctx context.Context, member string, due time.Time) error
	ClaimHookRetries(ctx context.Context, n int, lease time.Duration) ([]string, error)
	DoneHookRetry(ctx context.Context, member string) error
}

// Deliverer posts events to the tenants' own webhooks: message status
// events from the events streams and conversation, inbound-message and
// opt-out notices from the notify streams, each signed with the tenant's
// secret. Delivery is at least once: an event is acknowledged after its
// delivery succeeded, or failed and was parked for a retry; a retry that
// fails MaxRetries times is kept among the tenant's dead letters.
type Deliverer struct {
	cfg    Config
	store  Store
	events *redis.EventReader
	client *fasthttp.Client
	log    *slog.Logger
	m      hookMetrics

	mu      sync.Mutex
	configs map[string]cachedHook
	// noticesReclaimed: when the notices loop last looked for a dead
	// instance's notices (its goroutine's alone).
	noticesReclaimed time.Time
	// skipping says no tenant had a webhook when the events loop last
	// looked, the skip's looks count; both the events loop's alone.
	skipping bool
	looked   time.Time
	looks    int

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

type cachedHook struct {
	cfg *message.WebhookConfig
	at  time.Time
}

type hookMetrics struct {
	deliveries *prometheus.CounterVec
	latency    prometheus.Observer
}

// New returns a deliverer over store; its metrics go to reg.
func New(cfg Config, store Store, reg prometheus.Registerer, log *slog.Logger) (*Deliverer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	guard, err := netguard.New(cfg.Allow, cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("hooks: allow-list: %w", err)
	}
	d := &Deliverer{cfg: cfg, store: store, events: store.HookEventReader(cfg.Consumer), log: log,
		client: &fasthttp.Client{Name: "wagate-webhooks", ReadTimeout: cfg.Timeout, WriteTimeout: cfg.Timeout,
			MaxConnsPerHost: cfg.Workers, MaxResponseBodySize: 64 << 10, Dial: guard.Dial,
			// A POST is not repeated by the transport: the retry schedule is ours.
			RetryIfErr: func(*fasthttp.Request, int, error) (bool, bool) { return false, false }},
		configs: map[string]cachedHook{}, stop: make(chan struct{})}
	d.events.ReclaimIdle, d.events.Poll = cfg.ReclaimIdle, 50*time.Millisecond
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wagate_webhook_deliveries_total",
		Help: "Deliveries to the tenants' webhooks by result: delivered, failed (will be retried), dead (given up).",
	}, []string{"result"})
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "wagate_webhook_delivery_seconds", Help: "Time a tenant's webhook took to answer a delivery.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 9),
	})
	if err := reg.Register(deliveries); err != nil {
		return nil, fmt.Errorf("hooks metrics: %w", err)
	}
	if err := reg.Register(latency); err != nil {
		return nil, fmt.Errorf("hooks metrics: %w", err)
	}
	d.m = hookMetrics{deliveries: deliveries, latency: latency}
	return d, nil
}

// Start runs the event, notice and retry loops in the background.
func (d *Deliverer) Start() {
	d.wg.Add(3)
	go d.loop(d.eventsOnce, d.cfg.Poll)
	go d.loop(d.noticesOnce, d.cfg.Poll)
	// Retries wait at least their RetryDelayMS (100 ms or more) and are
	// parked by time: a look a second is soon enough.
	go d.loop(d.retriesOnce, max(d.cfg.Poll, time.Second))
}

// Shutdown stops reading and waits for the deliveries in flight (bounded
// by ctx). Events read and not acknowledged are delivered after a restart.
func (d *Deliverer) Shutdown(ctx context.Context) error {
	d.stopOnce.Do(func() { close(d.stop) })
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop runs once until stopped; once reports whether it found work (else
// the loop waits a poll), and errors back off.
func (d *Deliverer) loop(once func(context.Context) (bool, error), idle time.Duration) {
	defer d.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-d.stop
		cancel()
	}()
	failing := false
	for {
		select {
		case <-d.stop:
			return
		default:
		}
		busy, err := once(ctx)
		if ctx.Err() != nil {
			return
		}
		if (err != nil) != failing {
			failing = err != nil
			if failing {
				d.log.Warn("webhook deliveries fail; retrying", "err", err)
			} else {
				d.log.Info("webhook deliveries work again")
			}
		}
		if busy && err == nil {
			continue
		}
		wait := idle
		if err != nil {
			wait = time.Second
		}
		select {
		case <-d.stop:
			return
		case <-time.After(wait):
		}
	}
}

// config returns tenant's webhook configuration (nil: none), cached.
func (d *Deliverer) config(ctx context.Context, tenant string) (*message.WebhookConfig, error) {
	now := d.cfg.Now()
	d.mu.Lock()
	c, ok := d.configs[tenant]
	d.mu.Unlock()
	if ok && now.Sub(c.at) < d.cfg.ConfigTTL {
		return c.cfg, nil
	}
	doc, err := d.store.TenantDoc(ctx, tenant, redis.DocWebhook)
	if err != nil {
		return nil, err
	}
	var cfg *message.WebhookConfig
	if doc != nil {
		cfg = new(message.WebhookConfig)
		if err := json.Unmarshal(doc, cfg); err != nil {
			return nil, fmt.Errorf("webhook config of %s: %w", tenant, err)
		}
	}
	d.mu.Lock()
	d.configs[tenant] = cachedHook{cfg: cfg, at: now}
	d.mu.Unlock()
	return cfg, nil
}

// delivery is one event on its way to one tenant's webhook; as JSON it is
// also how a retry is parked (the store's, which redelivers dead ones).
type delivery = redis.HookDelivery

// envelope is the body of every delivery.
type envelope struct {
	Event     string `json:"event"`
	EventID   string `json:"event_id"`
	TenantID  string `json:"tenant_id"`
	CreatedAt string `json:"created_at"`
	Data      any    `json:"data"`
}

func apiTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// messageData is a message event's data.
type messageData struct {
	MessageID string `json:"message_id"`
	Status    string `json:"status"`
	// GuestPhone is the guest as wagate knows them: the number, or the
	// business-scoped user id when Meta withheld it; GuestUserID is then
	// set too.
	GuestPhone        string  `json:"guest_phone"`
	GuestUserID       *string `json:"guest_user_id,omitempty"`
	From              string  `json:"from"`
	MessageType       string  `json:"message_type"`
	ConversationID    *string `json:"conversation_id"`
	StaffMemberID     *string `json:"staff_member_id"`
	Timestamp         string  `json:"timestamp"`
	Channel           string  `json:"channel"`
	Provider          *string `json:"provider"`
	ProviderMessageID *string `json:"provider_message_id"`
	Attempt           int     `json:"attempt"`
	ErrorCode         *int    `json:"error_code"`
	FailureReason     *string `json:"failure_reason"`
	PricingCategory   *string `json:"pricing_category"`
	// Pricing is the provider's whole pricing object, when it sent one.
	Pricing *pricingData `json:"pricing,omitempty"`
}

// pricingData is Meta's pricing object of a status: category, model
// ("PMP") and type (regular, free_customer_service, free_entry_point).
type pricingData struct {
	Category     string  `json:"category"`
	PricingModel *string `json:"pricing_model"`
	Type         *string `json:"type"`
	Billable     bool    `json:"billable"`
}

func eventDelivery(ev *message.Event, name string) delivery {
	data := messageData{MessageID: ev.MessageID, Status: string(ev.Status), GuestPhone: ev.Recipient, From: ev.Sender,
		MessageType: string(ev.Type), ConversationID: nullable(ev.ConversationID), StaffMemberID: nullable(ev.StaffMemberID),
		Timestamp: apiTime(ev.AtMS), Channel: ev.Channel, Provider: nullable(ev.Provider),
		ProviderMessageID: nullable(ev.ProviderMessageID), Attempt: ev.Attempt, FailureReason: nullable(ev.ErrorTitle),
		PricingCategory: nullable(ev.PricingCategory)}
	if message.ValidBSUID(ev.Recipient) {
		data.GuestUserID = &ev.Recipient
	}
	if ev.ErrorCode != 0 {
		data.ErrorCode = &ev.ErrorCode
	}
	if ev.PricingCategory != "" {
		data.Pricing = &pricingData{Category: ev.PricingCategory, PricingModel: nullable(ev.PricingModel),
			Type: nullable(ev.PricingType), Billable: ev.Billable}
	}
	id := "evt_" + strconv.Itoa(ev.Shard) + "_" + ev.StreamID
	if ev.Index > 0 {
		id += "." + strconv.Itoa(ev.Index) // one of an entry's several
	}
	body, _ := json.Marshal(envelope{Event: name, EventID: id, TenantID: ev.TenantID, CreatedAt: apiTime(ev.AtMS), Data: data})
	return delivery{Tenant: ev.TenantID, Event: name, ID: id, Body: body}
}

func noticeDelivery(n *redis.Notice) delivery {
	data := map[string]any{}
	_ = json.Unmarshal(n.Data, &data) // written by the scripts as a JSON object
	data["guest_phone"], data["from"], data["conversation_id"] = n.Guest, n.Sender, nullable(n.ConversationID)
	if message.ValidBSUID(n.Guest) {
		data["guest_user_id"] = n.Guest
	}
	if _, ok := data["timestamp"]; !ok {
		data["timestamp"] = apiTime(n.AtMS)
	}
	id := "ntc_" + strconv.Itoa(n.Shard) + "_" + n.StreamID
	body, _ := json.Marshal(envelope{Event: n.Kind, EventID: id, TenantID: n.TenantID, CreatedAt: apiTime(n.AtMS), Data: data})
	return delivery{Tenant: n.TenantID, Event: n.Kind, ID: id, Body: body}
}

// While no tenant has a webhook, the events loop moves its group past the
// events every skipMoveEvery looks, and acknowledges up to skipPending of
// the events a dead instance held every skipAckEvery: on one server a look
// is one command, a move one per shard.
const (
	skipMoveEvery = 5
	skipAckEvery  = 30
	skipPending   = 1000
)

// eventsOnce delivers one read of message events, or skips them while no
// tenant has a webhook.
func (d *Deliverer) eventsOnce(ctx context.Context) (bool, error) {
	if now := d.cfg.Now(); now.Sub(d.looked) >= d.cfg.SkipEvery {
		d.looked = now
		// The first look of a skip moves the group at once: from then
		// on, the looks between moves leave events unread.
		move := !d.skipping || d.looks%skipMoveEvery == 0
		pending := 0
		if d.looks%skipAckEvery == 0 {
			pending = skipPending
		}
		skip, err := d.store.SkipHookEvents(ctx, move, pending)
		if err != nil {
			return false, err
		}
		d.skipping = skip
		d.looks++
		if !skip {
			d.looks = 0
		}
	}
	if d.skipping {
		return false, nil
	}
	evs, err := d.events.Read(ctx, nil, 512, noticesBlock)
	if err != nil || len(evs) == 0 {
		return false, err
	}
	var ds []delivery
	for i := range evs {
		name := message.EventForStatus(evs[i].Status)
		if name == "" {
			continue
		}
		cfg, err := d.config(ctx, evs[i].TenantID)
		if err != nil {
			return false, err
		}
		if cfg != nil && cfg.Wants(name) {
			ds = append(ds, eventDelivery(&evs[i], name))
		}
	}
	if err := d.deliverAll(ctx, ds); err != nil {
		return false, err
	}
	return true, d.events.Ack(ctx, evs)
}

// noticesOnce delivers one read of every shard's notices, reclaiming those
// a dead instance held.
func (d *Deliverer) noticesOnce(ctx context.Context) (bool, error) {
	var ns []redis.Notice
	// A dead instance's notices: looked for now and then, not at every
	// read (they wait ReclaimIdle anyway).
	if now := d.cfg.Now(); now.Sub(d.noticesReclaimed) >= d.cfg.ReclaimIdle/2 {
		d.noticesReclaimed = now
		for sh := 0; sh < d.store.Config().Shards; sh++ {
			got, err := d.store.ReclaimNotices(ctx, sh, d.cfg.Consumer, d.cfg.ReclaimIdle, 256)
			if err != nil {
				return false, err
			}
			ns = append(ns, got...)
		}
	}
	if len(ns) == 0 {
		var err error
		if ns, err = d.store.ReadNoticesAll(ctx, d.cfg.Consumer, 256, noticesBlock); err != nil {
			return false, err
		}
	}
	if len(ns) == 0 {
		return false, nil
	}
	var ds []delivery
	for i := range ns {
		cfg, err := d.config(ctx, ns[i].TenantID)
		if err != nil {
			return true, err
		}
		if cfg != nil && cfg.Wants(ns[i].Kind) {
			ds = append(ds, noticeDelivery(&ns[i]))
		}
	}
	if err := d.deliverAll(ctx, ds); err != nil {
		return true, err
	}
	return true, d.store.AckNotices(ctx, ns)
}

// noticesBlock is how long a read of the events or notify streams waits
// in Redis for the first entry.
const noticesBlock = 2 * time.Second

// retriesOnce delivers the parked deliveries that are due.
func (d *Deliverer) retriesOnce(ctx context.Context) (bool, error) {
	ms, err := d.store.ClaimHookRetries(ctx, 64, d.cfg.RetryLease)
	if err != nil || len(ms) == 0 {
		return false, err
	}
	ds := make([]delivery, 0, len(ms))
	for _, m := range ms {
		var dl delivery
		if json.Unmarshal([]byte(m), &dl) != nil {
			d.store.DoneHookRetry(ctx, m) //nolint:errcheck // unreadable: nothing to deliver
			continue
		}
		ds = append(ds, dl)
	}
	if err := d.deliverAll(ctx, ds); err != nil {
		return true, err
	}
	for _, m := range ms {
		if err := d.store.DoneHookRetry(ctx, m); err != nil {
			return true, err
		}
	}
	return true, nil
}

// deliverAll posts ds with at most Workers at once. A failed delivery is
// parked for its next attempt (or kept as a dead letter): the error is
// only for what could not be recorded, which keeps the events unacked.
func (d *Deliverer) deliverAll(ctx context.Context, ds []delivery) error {
	if len(ds) == 0 {
		return nil
	}
	sem := make(chan struct{}, d.cfg.Workers)
	errs := make(chan error, len(ds))
	var wg sync.WaitGroup
	for i := range ds {
		sem <- struct{}{}
		wg.Add(1)
		go func(dl *delivery) {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- d.deliver(ctx, dl)
		}(&ds[i])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// deliver posts one delivery with the tenant's current configuration and
// records the outcome.
func (d *Deliverer) deliver(ctx context.Context, dl *delivery) error {
	cfg, err := d.config(ctx, dl.Tenant)
	if err != nil {
		return err
	}
	if cfg == nil {
		return nil // the webhook was removed meanwhile
	}
	dl.Attempt++
	start := d.cfg.Now()
	failure := d.post(cfg, dl)
	d.m.latency.Observe(d.cfg.Now().Sub(start).Seconds())
	if failure == "" {
		d.m.deliveries.WithLabelValues("delivered").Inc()
		return d.store.RecordHook(ctx, dl.Tenant, true, "", false, nil)
	}
	retry := dl.Attempt <= cfg.MaxRetries
	if retry {
		d.m.deliveries.WithLabelValues("failed").Inc()
		// The first retry waits RetryDelayMS, each next one twice as long,
		// at most a day.
		wait := time.Duration(cfg.RetryDelayMS) * time.Millisecond << min(dl.Attempt-1, 20)
		member, _ := json.Marshal(dl)
		if err := d.store.ScheduleHookRetry(ctx, string(member), d.cfg.Now().Add(min(wait, 24*time.Hour))); err != nil {
			return err
		}
		return d.store.RecordHook(ctx, dl.Tenant, false, failure, true, nil)
	}
	d.m.deliveries.WithLabelValues("dead").Inc()
	dead, _ := json.Marshal(map[string]any{"event_id": dl.ID, "event": dl.Event, "attempts": dl.Attempt,
		"last_error": failure, "failed_at": apiTime(d.cfg.Now().UnixMilli()), "body": dl.Body})
	return d.store.RecordHook(ctx, dl.Tenant, false, failure, false, dead)
}

// post sends dl to cfg's URL; it returns why it failed, "" on a 2xx.
func (d *Deliverer) post(cfg *message.WebhookConfig, dl *delivery) string {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(cfg.URL)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.Set(message.HeaderWebhookEvent, dl.Event)
	req.Header.Set(message.HeaderWebhookDelivery, dl.ID)
	req.Header.Set(message.HeaderWebhookSignature, message.SignWebhook(cfg.Secret, dl.Body, d.cfg.Now()))
	if cfg.VerifyToken != "" {
		req.Header.Set(message.HeaderWebhookVerifyToken, cfg.VerifyToken)
	}
	req.SetBody(dl.Body)
	if err := d.client.DoTimeout(req, resp, d.cfg.Timeout); err != nil {
		return err.Error()
	}
	if c := resp.StatusCode(); c < 200 || c > 299 {
		return "HTTP " + strconv.Itoa(c)
	}
	return ""
}
