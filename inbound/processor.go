// Package inbound is the inbound role: it applies the provider webhooks
// the API stored (package ingest verifies and stores them): statuses go
// to their messages forward only, those that beat their message's
// provider id are parked until it appears; guests' messages open the
// window and the conversation, their opt-out and opt-in keywords take
// effect, and the media they send are downloaded and kept; template
// status updates and messaging limits reach the store.
package inbound

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/internal/ctxsleep"
	"github.com/wagate/wagate/internal/mediakit"
	"github.com/wagate/wagate/internal/settings"
	"github.com/wagate/wagate/internal/tenantcache"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/store/redis"
)

// Config configures the Processor.
type Config struct {
	// Consumer names this instance in the inbound consumer group. Keep it
	// stable across restarts (the host name) so that it resumes its own
	// unacknowledged bodies at once.
	Consumer string
	// BatchSize is how many webhook bodies one read takes (256).
	BatchSize int
	// Block is how long a read waits for new bodies (1 s).
	Block time.Duration
	// Linger is how long the processor waits after a read that brought
	// only a few bodies (under BatchSize/8) before it reads again (5 ms;
	// negative: never), so that under load one read takes many bodies
	// and one call per shard applies all their statuses, instead of a
	// call per webhook. A status is applied at most this much later.
	Linger time.Duration
	// ReclaimIdle is how long another consumer may sit on bodies before this
	// one takes them over, taking it for dead (30 s).
	ReclaimIdle time.Duration
	// OrphanSweep is how often statuses for not-yet-known provider ids are
	// looked at again (100 ms).
	OrphanSweep time.Duration
	// OrphanMaxAge is how long such a status is kept before it is dropped
	// (7 days, as long as Meta retries a delivery).
	OrphanMaxAge time.Duration
	// Numbers maps a provider's phone number id to the business number
	// and its tenant, for the guests' inbound messages.
	Numbers map[string]NumberRef
	// WABATenants maps a WhatsApp Business Account id to the tenants whose
	// templates it holds, for template status updates.
	WABATenants map[string][]string
	// Portfolios maps a WhatsApp Business Account id to its business
	// portfolio's id (dispatcher.Portfolio.ID): the messaging limit Meta
	// announces for the account is the portfolio's.
	Portfolios map[string]string
	// Media is where guests' media are kept and how their URLs are signed:
	// the API's media settings (the same folder and key). Without Files,
	// downloads fail as not configured.
	Media mediakit.Config
	// MediaFetchers download guests' media, by the provider's phone number
	// id of the number they were sent to (its account's fetcher).
	MediaFetchers map[string]MediaFetcher
	// Downloads tunes the downloads of guests' media.
	Downloads DownloadConfig
}

// NumberRef is a business number and the tenant that owns it.
type NumberRef struct {
	// Tenant is the tenant's id.
	Tenant string
	// Sender is the business number, in E.164 form.
	Sender string
}

func (c *Config) setDefaults() {
	if c.Consumer == "" {
		c.Consumer = "inbound-1"
	}
	if c.BatchSize == 0 {
		c.BatchSize = 256
	}
	if c.Block == 0 {
		c.Block = time.Second
	}
	if c.Linger == 0 {
		c.Linger = 5 * time.Millisecond
	}
	if c.ReclaimIdle == 0 {
		c.ReclaimIdle = 30 * time.Second
	}
	if c.OrphanSweep == 0 {
		c.OrphanSweep = 100 * time.Millisecond
	}
	if c.OrphanMaxAge == 0 {
		c.OrphanMaxAge = 7 * 24 * time.Hour
	}
}

// Store is what the processor uses of the store (store/redis's *Store),
// grouped by the part of the role that uses it.
type Store interface {
	Bodies
	Statuses
	Guests
	Downloads
	Accounts
}

// Bodies are the inbound streams: the stored webhook bodies, read by a
// consumer group, taken over from a dead consumer, and acknowledged once
// applied.
type Bodies interface {
	Config() redis.Config
	ReadInbound(ctx context.Context, part int, consumer string, count int, block time.Duration, pending bool, dst []redis.InboundEntry) ([]redis.InboundEntry, error)
	ReclaimInbound(ctx context.Context, part int, consumer string, minIdle time.Duration, count int, dst []redis.InboundEntry) ([]redis.InboundEntry, error)
	AckInbound(ctx context.Context, entries []redis.InboundEntry) error
}

// Statuses apply providers' statuses to their messages, by provider id,
// and park those whose id is not known yet (orphans).
type Statuses interface {
	LookupProviderIDs(ctx context.Context, pids []string) ([]string, error)
	ApplyStatuses(ctx context.Context, sts []redis.StatusApply) ([]redis.Applied, error)
	ParkOrphans(ctx context.Context, part int, os []redis.Orphan) error
	DueOrphans(ctx context.Context, part, limit int) ([]string, error)
	RescheduleOrphans(ctx context.Context, part int, os []redis.Orphan) error
	RemoveOrphans(ctx context.Context, part int, members []string) error
}

// Guests record guests' messages: who wrote (a number, or a user id
// linked to one), the tenant's keywords (settings), the message with its
// window, conversation and opt change, and an opt change's confirmation.
type Guests interface {
	settings.DocReader
	LinkUserID(ctx context.Context, sender, bsuid, phone string) error
	PhoneOfUserID(ctx context.Context, sender, bsuid string) (string, error)
	RecordInbound(ctx context.Context, a *redis.InboundArgs) (redis.InboundResult, error)
	Enqueue(ctx context.Context, a *redis.EnqueueArgs) (redis.EnqueueResult, error)
}

// Downloads are the queue of guests' media downloads and the records of
// their outcomes.
type Downloads interface {
	ClaimMediaJobs(ctx context.Context, n int, lease time.Duration) ([]redis.MediaJob, error)
	RetryMediaJob(ctx context.Context, j redis.MediaJob, next string, due time.Time) error
	DropMediaJob(ctx context.Context, j redis.MediaJob) error
	FinishMediaJob(ctx context.Context, j redis.MediaJob, n *redis.MediaNotice) error
	Media(ctx context.Context, id string) (*redis.MediaRecord, error)
	PutMedia(ctx context.Context, rec *redis.MediaRecord, ttl time.Duration) error
}

// Accounts record what Meta tells of a business account: its templates'
// review outcomes and its portfolio's messaging limit.
type Accounts interface {
	SetTemplateStatus(ctx context.Context, tenant string, u redis.TemplateUpdate) (bool, error)
	SetPortfolioLimit(ctx context.Context, portfolio string, limit int, atMS int64) (bool, error)
}

// Processor applies stored provider webhooks: statuses go to their messages
// forward only; a status whose provider id is not known yet (the webhook
// beat the dispatcher's state write) is parked and applied once it is.
type Processor struct {
	cfg      Config
	store    Store
	settings *tenantcache.Cache[settings.Settings]
	log      *slog.Logger
	m        processorMetrics
	// media and dl are guests' media and their downloads (download.go).
	media    mediakit.Media
	dl       downloads
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	// parked wakes the sweeper: this process parked statuses.
	parked chan struct{}
}

type processorMetrics struct {
	bodies   *prometheus.CounterVec
	statuses *prometheus.CounterVec
	orphans  *prometheus.CounterVec
	inbound  *prometheus.CounterVec
	// downloads counts guests' media downloads by result.
	downloads *prometheus.CounterVec
}

// New returns a processor over store (store/redis's *Store); its metrics
// are registered with reg.
func New(cfg Config, store Store, reg prometheus.Registerer, log *slog.Logger) *Processor {
	cfg.setDefaults()
	cfg.Downloads.setDefaults()
	p := &Processor{cfg: cfg, store: store, log: log, stop: make(chan struct{}), settings: settings.NewCache(store, 2*time.Second),
		dl:     downloads{cfg: cfg.Downloads, fetchers: cfg.MediaFetchers, kick: make(chan struct{}, 1)},
		parked: make(chan struct{}, 1)}
	var err error
	if p.media, err = mediakit.New(cfg.Media); err != nil {
		// The API refuses the same settings at start; here downloads fail
		// as not configured rather than stopping the webhooks.
		log.Error("guests' media will not be downloaded", "err", err)
		p.media, _ = mediakit.New(mediakit.Config{})
	}
	p.m = processorMetrics{
		bodies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_inbound_bodies_total", Help: "Stored webhook bodies processed, by result (ok, malformed).",
		}, []string{"result"}),
		statuses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_inbound_statuses_total",
			Help: "Provider statuses by result: new (recorded), duplicate, unknown_message (state expired), parked (provider id not known yet).",
		}, []string{"result"}),
		orphans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_inbound_orphans_total", Help: "Parked statuses by result: applied (their id appeared), dropped (too old).",
		}, []string{"result"}),
		inbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_inbound_messages_total",
			Help: "Messages received from guests, by result: new, duplicate, opt_out, opt_in, unknown_number (no tenant has the number).",
		}, []string{"result"}),
	}
	p.m.downloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wagate_inbound_media_downloads_total",
		Help: "Downloads of guests' media, by result: ready (kept), failed (for good), retry (to be tried again).",
	}, []string{"result"})
	reg.MustRegister(p.m.bodies, p.m.statuses, p.m.orphans, p.m.inbound, p.m.downloads)
	return p
}

// Start runs one reader per inbound partition and the orphan sweeper.
func (p *Processor) Start() {
	for part := 0; part < p.store.Config().InboundParts; part++ {
		p.wg.Add(1)
		go p.readLoop(part)
	}
	p.wg.Add(2)
	go p.sweepLoop()
	go p.downloadLoop()
}

// Shutdown stops reading; bodies being processed are finished first.
// Anything read but not acknowledged is read again after a restart.
func (p *Processor) Shutdown(ctx context.Context) error {
	p.stopOnce.Do(func() { close(p.stop) })
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runCtx is cancelled when the processor stops.
func (p *Processor) runCtx() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (p *Processor) readLoop(part int) {
	defer p.wg.Done()
	ctx, cancel := p.runCtx()
	defer cancel()
	b := &batch{p: p, part: part}
	pending := true
	lastReclaim := time.Time{}
	failing := false
	for ctx.Err() == nil {
		var entries []redis.InboundEntry
		var err error
		if time.Since(lastReclaim) > p.cfg.ReclaimIdle/2 {
			lastReclaim = time.Now()
			entries, err = p.store.ReclaimInbound(ctx, part, p.cfg.Consumer, p.cfg.ReclaimIdle, p.cfg.BatchSize, nil)
		}
		if err == nil && len(entries) == 0 {
			entries, err = p.store.ReadInbound(ctx, part, p.cfg.Consumer, p.cfg.BatchSize, p.cfg.Block, pending, nil)
			if err == nil && pending && len(entries) == 0 {
				pending = false
				continue
			}
		}
		if err == nil && len(entries) > 0 {
			err = b.process(ctx, entries)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				p.log.Warn("inbound processing fails; retrying", "partition", part, "err", err)
				failing = true
			}
			pending = true // what was read is still pending: take it again
			_ = ctxsleep.Sleep(ctx, time.Second)
			continue
		}
		if failing {
			p.log.Info("inbound processing works again", "partition", part)
			failing = false
		}
		if n := len(entries); n > 0 && n < p.cfg.BatchSize/8 && p.cfg.Linger > 0 {
			_ = ctxsleep.Sleep(ctx, p.cfg.Linger)
		}
	}
}

// batch collects what one read's bodies report. It implements meta.Handler.
type batch struct {
	p        *Processor
	part     int
	statuses []provider.StatusUpdate
	inbound  []provider.Inbound
	// receivedMS is when the body being parsed reached the gateway.
	receivedMS int64
}

func (b *batch) HandleStatus(s *provider.StatusUpdate) error {
	st := *s
	st.AtMS = refineTime(st.AtMS, b.receivedMS)
	b.statuses = append(b.statuses, st)
	return nil
}

// refineTime sharpens a provider time stamped in whole seconds with the
// time the webhook arrived, when that falls within the same second: the
// status happened in [at, at+1s) and before it arrived.
func refineTime(atMS, receivedMS int64) int64 {
	if atMS%1000 == 0 && receivedMS >= atMS && receivedMS < atMS+1000 {
		return receivedMS
	}
	return atMS
}

func (b *batch) HandleInbound(m *provider.Inbound) error {
	in := *m
	in.AtMS = refineTime(in.AtMS, b.receivedMS)
	b.inbound = append(b.inbound, in)
	return nil
}

// process applies the statuses of entries and acknowledges the entries.
func (b *batch) process(ctx context.Context, entries []redis.InboundEntry) error {
	b.statuses, b.inbound = b.statuses[:0], b.inbound[:0]
	for i := range entries {
		b.receivedMS = entries[i].ReceivedMS
		if err := b.parse(&entries[i]); err != nil {
			if !unparsable(err) {
				// A handler could not record something (Redis): keep the
				// bodies to process again, which changes nothing twice.
				return err
			}
			// Verified and JSON-checked when received, so this is a body
			// its provider's format does not fit; keeping it would block
			// nothing and help nobody.
			b.p.m.bodies.WithLabelValues("malformed").Inc()
			b.p.log.Warn("dropping a webhook body that does not parse", "err", err, "entry", entries[i].ID)
			continue
		}
		b.p.m.bodies.WithLabelValues("ok").Inc()
	}
	if err := b.p.applyStatuses(ctx, b.part, b.statuses, time.Now().UnixMilli()); err != nil {
		return err
	}
	for i := range b.inbound {
		if err := b.p.fileInbound(ctx, &b.inbound[i]); err != nil {
			return err
		}
	}
	return b.p.store.AckInbound(ctx, entries)
}

// orphan is a parked status, as stored in the orphans zset.
type orphan struct {
	FirstSeenMS int64                 `json:"seen"`
	Status      provider.StatusUpdate `json:"st"`
}

// applyStatuses records statuses whose provider id is known and parks the
// others. firstSeenMS is when the parked ones were first seen.
func (p *Processor) applyStatuses(ctx context.Context, part int, sts []provider.StatusUpdate, firstSeenMS int64) error {
	if len(sts) == 0 {
		return nil
	}
	pids := make([]string, len(sts))
	for i := range sts {
		pids[i] = sts[i].ProviderMessageID
	}
	ids, err := p.store.LookupProviderIDs(ctx, pids)
	if err != nil {
		return err
	}
	var apply []redis.StatusApply
	var park []redis.Orphan
	now := time.Now()
	for i := range sts {
		if ids[i] == "" {
			member, _ := json.Marshal(orphan{FirstSeenMS: firstSeenMS, Status: sts[i]})
			park = append(park, redis.Orphan{Member: string(member), DueMS: now.Add(orphanBackoff(now.Sub(time.UnixMilli(firstSeenMS)))).UnixMilli()})
			continue
		}
		apply = append(apply, redis.StatusApply{MessageID: ids[i], Result: resultOf(&sts[i])})
	}
	res, err := p.store.ApplyStatuses(ctx, apply)
	if err != nil {
		return err
	}
	for _, r := range res {
		p.m.statuses.WithLabelValues([...]string{"new", "duplicate", "unknown_message"}[r]).Inc()
	}
	if err := p.store.ParkOrphans(ctx, part, park); err != nil {
		return err
	}
	if len(park) > 0 {
		select {
		case p.parked <- struct{}{}:
		default:
		}
	}
	p.m.statuses.WithLabelValues("parked").Add(float64(len(park)))
	return nil
}

// orphanBackoff is how long to wait before looking at a parked status of
// the given age again: soon at first (the id usually appears within
// milliseconds), then less and less often.
func orphanBackoff(age time.Duration) time.Duration {
	return min(max(age, 100*time.Millisecond), time.Minute)
}

// resultOf turns a provider's status into what the store records.
func resultOf(s *provider.StatusUpdate) redis.Result {
	r := redis.Result{
		Status: s.Status, AtMS: s.AtMS, Provider: cmp.Or(s.Provider, "meta"), ProviderMessageID: s.ProviderMessageID,
		ErrorCode: s.ErrorCode, ErrorTitle: s.ErrorTitle,
		PricingCategory: s.PricingCategory, PricingModel: s.PricingModel, PricingType: s.PricingType,
		ConversationID: s.ConversationID,
	}
	if s.PricingCategory != "" {
		if s.Billable {
			r.Billable = "1"
		} else {
			r.Billable = "0"
		}
	}
	return r
}

func (p *Processor) sweepLoop() {
	defer p.wg.Done()
	ctx, cancel := p.runCtx()
	defer cancel()
	// Every OrphanSweep while statuses wait; when none did, twice as long
	// each time up to orphanIdle: an idle gateway does not ask Redis ten
	// times a second. Parking here wakes it at once; what another process
	// parks is its own sweeper's.
	wait := p.cfg.OrphanSweep
	t := time.NewTimer(wait)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.parked:
			wait = p.cfg.OrphanSweep
		}
		var err error
		found := false
		for part := 0; part < p.store.Config().InboundParts && err == nil; part++ {
			var n int
			n, err = p.sweep(ctx, part)
			found = found || n > 0
		}
		if ctx.Err() != nil {
			return
		}
		if (err != nil) != failing { // log changes, not every tick
			failing = err != nil
			if failing {
				p.log.Warn("sweeping parked statuses fails; retrying", "err", err)
			} else {
				p.log.Info("sweeping parked statuses works again")
			}
		}
		if found || err != nil {
			wait = p.cfg.OrphanSweep
		} else {
			wait = min(2*wait, max(orphanIdle, p.cfg.OrphanSweep))
		}
		t.Reset(wait)
	}
}

// orphanIdle is the longest the sweeper waits when nothing was parked:
// a status whose message shows up later waits that much more at most.
const orphanIdle = time.Second

// sweep looks again at the due parked statuses of part; it returns how
// many were due.
func (p *Processor) sweep(ctx context.Context, part int) (int, error) {
	due, err := p.store.DueOrphans(ctx, part, 500)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	type parked struct {
		member string
		orphan
	}
	var drop []string
	os := make([]parked, 0, len(due))
	for _, member := range due {
		o := parked{member: member}
		if err := json.Unmarshal([]byte(member), &o.orphan); err != nil {
			drop = append(drop, member)
			continue
		}
		os = append(os, o)
	}
	pids := make([]string, len(os))
	for i := range os {
		pids[i] = os[i].Status.ProviderMessageID
	}
	ids, err := p.store.LookupProviderIDs(ctx, pids)
	if err != nil {
		return len(due), err
	}
	var apply []redis.StatusApply
	var applied []string
	var later []redis.Orphan
	now := time.Now()
	for i := range os {
		age := now.Sub(time.UnixMilli(os[i].FirstSeenMS))
		switch {
		case ids[i] != "":
			apply = append(apply, redis.StatusApply{MessageID: ids[i], Result: resultOf(&os[i].Status)})
			applied = append(applied, os[i].member)
		case age > p.cfg.OrphanMaxAge:
			drop = append(drop, os[i].member)
			p.m.orphans.WithLabelValues("dropped").Inc()
		default:
			later = append(later, redis.Orphan{Member: os[i].member, DueMS: now.Add(orphanBackoff(age)).UnixMilli()})
		}
	}
	res, err := p.store.ApplyStatuses(ctx, apply)
	if err != nil {
		return len(due), err
	}
	for _, r := range res {
		p.m.statuses.WithLabelValues([...]string{"new", "duplicate", "unknown_message"}[r]).Inc()
	}
	p.m.orphans.WithLabelValues("applied").Add(float64(len(applied)))
	if err := p.store.RescheduleOrphans(ctx, part, later); err != nil {
		return len(due), err
	}
	return len(due), p.store.RemoveOrphans(ctx, part, append(applied, drop...))
}
