// Package dispatcher sends queued messages. Shards are spread over the live
// dispatcher instances by leases; the owner of a shard runs one pump per
// sender number, which keeps the number within its rate, each recipient's
// messages in order and within the pair rate, the transactional lane before
// the bulk lane, and campaigns sharing the bulk lane fairly. Every send goes
// through its provider account's circuit breaker, with the sender's fallback
// chain while it is open, and its outcome is recorded before its queue entry
// is acknowledged.
package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker"

	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/ratelimit"
	"github.com/wagate/wagate/store/redis"
)

// Role names the dispatcher's shard leases.
const Role = "dispatch"

// Config configures the dispatcher.
type Config struct {
	// Instance names this process among the live dispatchers: its consumer
	// name in the queues and the holder of its shard leases. It must be
	// unique among live instances.
	Instance string
	// LeaseTTL is how long a dead instance's shards stay unowned (5 s).
	LeaseTTL time.Duration
	// InFlight bounds one sender's provider calls under way (256: enough
	// for 1 000 mps at 200 ms of provider latency).
	InFlight int
	// ReadAhead is how many of a sender's messages per lane are read into
	// memory ahead of sending (512).
	ReadAhead int
	// MaxAttempts is how many provider calls a message gets before it
	// fails for good and goes to the dead-letter stream (5). Throttled
	// calls, and failures while its provider is down (breaker.report), do
	// not count.
	MaxAttempts int
	// RetryBase and RetryMax bound the exponential backoff between
	// attempts (1 s, 5 min), with full jitter.
	RetryBase, RetryMax time.Duration
	// SendTimeout bounds one provider call (15 s).
	SendTimeout time.Duration
	// RecordTimeout bounds one attempt to record an outcome (5 s); it is
	// tried again until it succeeds or the shard is lost.
	RecordTimeout time.Duration
	// MaxAge is how long after acceptance a message is retried at all,
	// throttled or held attempts included (72 h); then it fails.
	MaxAge time.Duration
	// HoldFor is how long a sender is held after a spam-limit answer
	// (Meta 131048) and StopFor after its account was locked or its token
	// refused (131031, 368, 190): 10 min and 1 h.
	HoldFor, StopFor time.Duration
	// Rates are the senders' token buckets: tier per number, AIMD.
	Rates ratelimit.Config
	// Pairs are the per-recipient buckets (Meta: ~1 per 6 s, bursts of 45).
	Pairs ratelimit.PairConfig
	// Breaker is every provider account's circuit breaker.
	Breaker BreakerConfig
	// Tick is the least time between two looks of a shard's housekeeping
	// (moving due scheduled sends into their queues, sending due SMS
	// fallbacks) when told of new work (100 ms). Otherwise it sleeps until
	// its next due item: scheduled sends wake it (enqueue writes their due
	// to the wake stream), and so do fallbacks this instance schedules.
	Tick time.Duration
	// Rescan is how long a shard's fallback checks sleep at most (5 s): a
	// provider's "failed" status schedules a fallback without waking them.
	Rescan time.Duration
	// Portfolios are the business portfolios of the senders, by number
	// (E.164): Meta limits the unique guests a portfolio may start
	// conversations with in a moving 24 hours, shared by its numbers. A
	// template to a guest whose window is closed is held, not sent, while
	// its portfolio is at the limit. A sender in none is not limited.
	Portfolios map[string]Portfolio
	// Reporting names the secondary providers (by Name) whose status
	// callbacks wagate receives (a Gallabox webhook secret, a ChatApp
	// callback token): a message one of them carried may still fall back
	// to SMS when it is not delivered in time. Others report nothing, so
	// their sends never wait for a delivery.
	Reporting map[string]bool
	// PortfolioRecheck is how often a send held by its portfolio's limit
	// looks again (1 min): Meta may raise the limit before the oldest
	// counted guest leaves the window.
	PortfolioRecheck time.Duration
}

// Portfolio is a business portfolio: its id (the name its counters are
// kept under) and the messaging limit configured for it (redis.Unlimited
// for none), used until Meta announces one by webhook.
type Portfolio struct {
	ID    string
	Limit int
}

// UnknownLimit is a portfolio's configured limit when none was configured:
// no send is held until Meta announces one.
const UnknownLimit = -1

func (c *Config) setDefaults() {
	if c.Instance == "" {
		c.Instance = "dispatcher-1"
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 5 * time.Second
	}
	if c.InFlight == 0 {
		c.InFlight = 256
	}
	if c.ReadAhead == 0 {
		c.ReadAhead = 512
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.RetryBase == 0 {
		c.RetryBase = time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Minute
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = 15 * time.Second
	}
	if c.RecordTimeout == 0 {
		c.RecordTimeout = 5 * time.Second
	}
	if c.MaxAge == 0 {
		c.MaxAge = 72 * time.Hour
	}
	if c.HoldFor == 0 {
		c.HoldFor = 10 * time.Minute
	}
	if c.StopFor == 0 {
		c.StopFor = time.Hour
	}
	if c.PortfolioRecheck == 0 {
		c.PortfolioRecheck = time.Minute
	}
	if c.Rates.DefaultRate == 0 {
		c.Rates.DefaultRate = ratelimit.TierDefault
	}
	if c.Tick == 0 {
		c.Tick = 100 * time.Millisecond
	}
	if c.Rescan == 0 {
		c.Rescan = 5 * time.Second
	}
	c.Breaker.setDefaults()
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.InFlight < 1 || c.ReadAhead < 1:
		return errors.New("dispatcher: in-flight and read-ahead must be positive")
	case c.MaxAttempts < 1:
		return errors.New("dispatcher: max attempts must be at least 1")
	case c.RetryBase <= 0 || c.RetryMax < c.RetryBase:
		return errors.New("dispatcher: retry backoff must be positive with max ≥ base")
	case c.LeaseTTL < 100*time.Millisecond:
		return errors.New("dispatcher: lease TTL below 100 ms")
	case c.Breaker.FailureRatio <= 0 || c.Breaker.FailureRatio > 1:
		return errors.New("dispatcher: breaker failure ratio must be in (0, 1]")
	}
	if err := c.Rates.Validate(); err != nil {
		return err
	}
	return nil
}

// Store is what the dispatcher uses of the store (store/redis's *Store), in
// the groups below.
type Store interface {
	Leases
	Queues
	Sends
	Fallbacks
	Batches
	AdmitBusinessInitiated(ctx context.Context, portfolio, sender, guest string, configured int) (redis.Admission, error)
}

// Leases are the shards' leases: taken and kept by a leaser, checked
// before work that must be the owner's.
type Leases interface {
	NewLeaser(cfg redis.LeaserConfig, owner redis.ShardOwner, log *slog.Logger) (*redis.Leaser, error)
	HoldsLease(ctx context.Context, l *redis.Lease) (bool, error)
}

// Queues are a shard's senders' queue streams, their wake-ups and the
// scheduled sends that become due.
type Queues interface {
	ReadLanes(ctx context.Context, consumer string, tx []string, txCount int, bulk []string, bulkCount int, chunked []string, chunkCount int) ([]redis.Entry, error)
	ClaimEntries(ctx context.Context, stream, consumer, start string, count int, dst []redis.Entry) ([]redis.Entry, string, error)
	ReadWakeUps(ctx context.Context, shard int, after string, block time.Duration, dst []string) (redis.WakeUps, error)
	WakeTail(ctx context.Context, shard int) (string, error)
	SenderQueueRefs(ctx context.Context, shard int, sender string) ([]redis.QueueRef, error)
	ShardSenders(ctx context.Context, shard int) ([]string, error)
	ShardQueueStats(ctx context.Context, shards []int) ([]redis.QueueStats, error)
	CollectQueue(ctx context.Context, shard int, sender, stream string) (bool, error)
	CampaignRate(ctx context.Context, shard int, campaign string) (float64, error)
	NextDue(ctx context.Context, shard int) (time.Time, bool, error)
	Promote(ctx context.Context, shard, limit int) (int, error)
}

// Sends record a send's steps: begun, finished or to be retried, and the
// statuses a fallback's provider answers with at once.
type Sends interface {
	Begin(ctx context.Context, j *redis.Job) (redis.Begun, error)
	Finish(ctx context.Context, j *redis.Job, r *redis.Result, opts redis.FinishOptions) error
	Retry(ctx context.Context, j *redis.Job, dueMS int64, r *redis.Result, uncounted bool) error
	State(ctx context.Context, id string) (*redis.State, error)
	ApplyStatuses(ctx context.Context, sts []redis.StatusApply) ([]redis.Applied, error)
}

// Fallbacks are the checks of messages sent with a fallback after a
// delay: undelivered by then, they go by SMS.
type Fallbacks interface {
	DueFallbacks(ctx context.Context, shard, limit int) ([]string, error)
	NextFallbackDue(ctx context.Context, shard int) (time.Time, bool, error)
	FallbackChecked(ctx context.Context, shard int, ids ...string) error
	RecheckFallback(ctx context.Context, shard int, id string, dueMS int64) error
}

// Batches are the batches' packed chunks the dispatcher expands.
type Batches interface {
	BatchSpec(ctx context.Context, id string) (*redis.BatchInfo, error)
	BatchChunk(ctx context.Context, id string, k int) ([]redis.BatchItem, error)
	ChunkDone(ctx context.Context, l *redis.Lease, shard int, stream, entryID, batchID string, chunk int) error
}

// Dispatcher owns shards through a leaser and runs a worker per owned
// shard. It implements redis.ShardOwner.
type Dispatcher struct {
	cfg    Config
	store  Store
	router Router
	log    *slog.Logger
	m      *metrics
	rates  *ratelimit.Senders
	leaser *redis.Leaser

	mu       sync.Mutex
	shards   map[int]*shardWorker
	breakers map[provider.Provider]*breaker
	pairs    map[string]*ratelimit.Pairs
}

// New returns a dispatcher over store, routing senders with router.
func New(cfg Config, store Store, router Router, reg prometheus.Registerer, log *slog.Logger) (*Dispatcher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := ratelimit.NewPairs(cfg.Pairs); err != nil {
		return nil, err
	}
	rates, err := ratelimit.NewSenders(cfg.Rates)
	if err != nil {
		return nil, err
	}
	d := &Dispatcher{cfg: cfg, store: store, router: router, log: log, m: newMetrics(reg), rates: rates,
		shards: map[int]*shardWorker{}, breakers: map[provider.Provider]*breaker{}, pairs: map[string]*ratelimit.Pairs{}}
	d.leaser, err = store.NewLeaser(redis.LeaserConfig{Role: Role, Instance: cfg.Instance, TTL: cfg.LeaseTTL}, d, log)
	if err != nil {
		return nil, err
	}
	if err := reg.Register(newOwnedCollector(d)); err != nil {
		return nil, fmt.Errorf("dispatcher metrics: %w", err)
	}
	return d, nil
}

// Start takes part in the shard leases.
func (d *Dispatcher) Start() {
	d.leaser.Start()
}

// Shutdown stops taking messages, lets the sends in flight finish and be
// recorded, and gives the shards back at once (bounded by ctx). Whatever
// was read but not sent stays queued for the next owner.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	return d.leaser.Shutdown(ctx)
}

// Owned returns the shards this instance works now.
func (d *Dispatcher) Owned() []int { return d.leaser.Owned() }

// Acquired starts a worker for a shard this instance now owns.
func (d *Dispatcher) Acquired(l *redis.Lease) {
	w := newShardWorker(d, l)
	d.mu.Lock()
	d.shards[l.Shard] = w
	d.mu.Unlock()
	d.m.shards.Inc()
	w.start()
}

// Release stops a shard's worker gracefully, then lets the lease go.
func (d *Dispatcher) Release(shard int, done func()) {
	d.mu.Lock()
	w := d.shards[shard]
	delete(d.shards, shard)
	d.mu.Unlock()
	if w == nil {
		done()
		return
	}
	go func() {
		w.shutdown()
		d.m.shards.Dec()
		done()
	}()
}

// Lost stops a shard's worker whose lease is gone; its writes are fenced.
func (d *Dispatcher) Lost(shard int) {
	d.log.Warn("lost a shard", "shard", shard)
	d.mu.Lock()
	if w := d.shards[shard]; w != nil {
		w.lost.Store(true)
	}
	d.mu.Unlock()
	d.Release(shard, func() {})
}

// breakerFor returns p's circuit breaker, made on first use.
func (d *Dispatcher) breakerFor(p provider.Provider) *breaker {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.breakers[p]
	if b == nil {
		name := p.Name()
		b = newBreaker(name, d.cfg.Breaker, func(name string, to gobreaker.State) {
			d.m.breaker.WithLabelValues(name).Set(float64(to))
			d.log.Warn("provider circuit breaker", "provider", name, "state", to.String())
		})
		d.breakers[p] = b
		d.m.breaker.WithLabelValues(name).Set(0)
	}
	return b
}

// pairsFor returns sender's recipient buckets; they outlive shard moves
// within the process.
func (d *Dispatcher) pairsFor(sender string) *ratelimit.Pairs {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.pairs[sender]
	if p == nil {
		p, _ = ratelimit.NewPairs(d.cfg.Pairs) // checked in New
		d.pairs[sender] = p
	}
	return p
}

// String names the dispatcher in logs.
func (d *Dispatcher) String() string { return fmt.Sprintf("dispatcher %s", d.cfg.Instance) }
