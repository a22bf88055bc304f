// Package filer is the role that files accepted and received messages into
// their conversations: the history, the summary (last activity, preview,
// unread count), the tenant's inbox index and the TTL renewals that the
// accept path leaves out so that a send costs Redis only what its 202
// promises.
//
// Messages wait in each shard's file stream; one call of the store's file
// function files the oldest of them in one atomic step and deletes them,
// so every message is filed exactly once and in order, whoever makes the
// call and whatever process dies. The filer spreads the shards over the
// live instances of the role (leases, for even work rather than safety:
// two filers on one shard would only take turns), wakes when a shard's
// stream has entries and files them in batches. A conversation read files
// what waits on its shard itself first (store FileNow), so a client that
// sends and then reads sees its message.
package filer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/internal/ctxsleep"
	"github.com/wagate/wagate/store/redis"
)

// Role names the filer's shard leases and membership.
const Role = "filer"

// Config configures a Filer.
type Config struct {
	// Instance names this process among live filers (its leases).
	Instance string
	// LeaseTTL is how long a shard stays with a dead instance (5 s).
	LeaseTTL time.Duration
	// Block is how long one wait for new messages lasts before the owned
	// shards are looked at again (500 ms).
	Block time.Duration
	// Gather is how long the filer lets messages gather after the first
	// one arrives, before it files them (100 ms): a call files a batch
	// instead of one or two messages, which costs Redis far less per
	// message, and the inbox lags by about this much.
	Gather time.Duration
}

func (c *Config) setDefaults() {
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 5 * time.Second
	}
	if c.Block == 0 {
		c.Block = 500 * time.Millisecond
	}
	if c.Gather == 0 {
		c.Gather = 100 * time.Millisecond
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Instance == "":
		return errors.New("filer: instance is required")
	case c.Block < 10*time.Millisecond:
		return fmt.Errorf("filer: block %v is too short", c.Block)
	case c.Gather < 0 || c.Gather > 900*time.Millisecond:
		return fmt.Errorf("filer: gather %v is outside 0..900ms (the inbox may lag at most 1 s)", c.Gather)
	}
	return nil
}

// Store is what the filer uses of the Redis store.
type Store interface {
	NewLeaser(cfg redis.LeaserConfig, owner redis.ShardOwner, log *slog.Logger) (*redis.Leaser, error)
	FileShards(ctx context.Context, shards []int) ([]redis.Filed, error)
	AwaitFile(ctx context.Context, shards []int, block time.Duration) (bool, error)
}

// Filer files messages into conversations in the background.
type Filer struct {
	cfg    Config
	store  Store
	log    *slog.Logger
	leaser *redis.Leaser

	mu      sync.Mutex
	owned   []int
	changed chan struct{} // capacity 1: the owned shards changed

	filed prometheus.Counter
	lag   prometheus.Histogram
	calls *prometheus.CounterVec

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a filer; Start runs it.
func New(cfg Config, store Store, reg prometheus.Registerer, log *slog.Logger) (*Filer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Filer{cfg: cfg, store: store, log: log, changed: make(chan struct{}, 1), done: make(chan struct{}),
		filed: prometheus.NewCounter(prometheus.CounterOpts{Name: "wagate_filer_messages_total",
			Help: "Messages filed into their conversations."}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wagate_filer_lag_seconds",
			Help:    "Age of the oldest message of each filing batch: how far the inbox lags behind the API.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wagate_filer_calls_total",
			Help: "Filing calls by result: filed (some messages), empty, error."}, []string{"result"}),
	}
	reg.MustRegister(f.filed, f.lag, f.calls)
	var err error
	f.leaser, err = store.NewLeaser(redis.LeaserConfig{Role: Role, Instance: cfg.Instance, TTL: cfg.LeaseTTL}, f, log)
	if err != nil {
		return nil, err
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f, nil
}

// Start runs the filer in the background.
func (f *Filer) Start() {
	f.leaser.Start()
	go f.run()
}

// Shutdown stops filing and gives the shards back.
func (f *Filer) Shutdown(ctx context.Context) error {
	f.cancel()
	<-f.done
	return f.leaser.Shutdown(ctx)
}

// Acquired implements redis.ShardOwner.
func (f *Filer) Acquired(l *redis.Lease) {
	f.mu.Lock()
	if !slices.Contains(f.owned, l.Shard) {
		f.owned = append(f.owned, l.Shard)
		slices.Sort(f.owned)
	}
	f.mu.Unlock()
	f.poke()
}

// Release implements redis.ShardOwner: a filing call under way needs no
// lease (any caller may file), so the shard is given back at once.
func (f *Filer) Release(shard int, done func()) {
	f.drop(shard)
	done()
}

// Lost implements redis.ShardOwner.
func (f *Filer) Lost(shard int) { f.drop(shard) }

func (f *Filer) drop(shard int) {
	f.mu.Lock()
	f.owned = slices.DeleteFunc(f.owned, func(s int) bool { return s == shard })
	f.mu.Unlock()
	f.poke()
}

func (f *Filer) poke() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// Owned returns the shards this filer works now.
func (f *Filer) Owned() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.owned)
}

func (f *Filer) run() {
	defer close(f.done)
	failing := false
	fail := func(err error) {
		if !failing {
			f.log.Warn("filing conversations fails; retrying", "err", err)
			failing = true
		}
		f.calls.WithLabelValues("error").Inc()
		_ = ctxsleep.Sleep(f.ctx, time.Second)
	}
	for f.ctx.Err() == nil {
		shards := f.Owned()
		if len(shards) == 0 {
			select {
			case <-f.ctx.Done():
			case <-f.changed:
			}
			continue
		}
		// Sleep until a message waits (or the owned shards change, seen
		// at the next round), then let more gather.
		waiting, err := f.store.AwaitFile(f.ctx, shards, f.cfg.Block)
		if err != nil {
			if f.ctx.Err() == nil {
				fail(err)
			}
			continue
		}
		if !waiting {
			continue
		}
		_ = ctxsleep.Sleep(f.ctx, f.cfg.Gather)
		for more := true; more && f.ctx.Err() == nil; {
			res, err := f.store.FileShards(f.ctx, shards)
			if err != nil {
				if f.ctx.Err() == nil {
					fail(err)
				}
				break
			}
			if failing {
				f.log.Info("filing conversations works again")
				failing = false
			}
			more = false
			now := time.Now().UnixMilli()
			for _, r := range res {
				if r.N == 0 {
					f.calls.WithLabelValues("empty").Inc()
					continue
				}
				f.calls.WithLabelValues("filed").Inc()
				f.filed.Add(float64(r.N))
				f.lag.Observe(float64(max(now-r.FirstMS, 0)) / 1000)
				more = more || r.More
			}
		}
	}
}
