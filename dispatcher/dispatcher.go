// Package dispatcher sends queued messages: one worker per shard reads the
// shard's lanes, keeps each sender within its rate, calls the sender's
// provider, and records the outcome before acknowledging the queue entry.
package dispatcher

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/store/redis"
)

// Config configures the dispatcher.
type Config struct {
	// Consumer names this instance in the dispatch consumer group. Keep it
	// stable across restarts (the host name) so that it resumes its own
	// unacknowledged entries at once.
	Consumer string
	// ReadCount is how many entries one read of a shard takes (64).
	ReadCount int
	// Block is how long a read waits for new entries (100 ms). It also
	// paces the moving of due retries into the queues.
	Block time.Duration
	// Concurrency is how many sends of one shard may be in flight (64).
	Concurrency int
	// MaxAttempts is how many provider calls a message gets before it
	// fails for good (5).
	MaxAttempts int
	// RetryBase and RetryMax bound the exponential backoff between
	// attempts (1 s, 5 min), with full jitter.
	RetryBase, RetryMax time.Duration
	// SendTimeout bounds one provider call (15 s).
	SendTimeout time.Duration
	// RecordTimeout is how long an outcome is retried against Redis before
	// it is left to redelivery (30 s).
	RecordTimeout time.Duration
	// ReclaimIdle is how long an entry may stay unacknowledged with another
	// consumer before this one takes it over, taking it for dead (60 s). It
	// must exceed a send plus the time its outcome may take to be recorded.
	ReclaimIdle time.Duration
}

func (c *Config) setDefaults() {
	if c.Consumer == "" {
		c.Consumer = "dispatcher-1"
	}
	if c.ReadCount == 0 {
		c.ReadCount = 64
	}
	if c.Block == 0 {
		c.Block = 100 * time.Millisecond
	}
	if c.Concurrency == 0 {
		c.Concurrency = 64
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
	if c.ReclaimIdle == 0 {
		c.ReclaimIdle = time.Minute
	}
	if c.RecordTimeout == 0 {
		c.RecordTimeout = 30 * time.Second
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.ReadCount < 1 || c.Concurrency < 1:
		return errors.New("dispatcher: read count and concurrency must be positive")
	case c.MaxAttempts < 1:
		return errors.New("dispatcher: max attempts must be at least 1")
	case c.RetryBase <= 0 || c.RetryMax < c.RetryBase:
		return errors.New("dispatcher: retry backoff must be positive with max ≥ base")
	case c.ReclaimIdle <= c.SendTimeout+c.RecordTimeout:
		return errors.New("dispatcher: reclaim idle must exceed the send and record timeouts, or live sends get taken over")
	}
	return nil
}

// Router finds the provider account that sends for a sender number.
type Router interface {
	Route(sender string) (provider.Provider, bool)
}

// Limiter paces a sender to its allowed rate.
type Limiter interface {
	// Wait blocks until sender may send one more message.
	Wait(ctx context.Context, sender string) error
	// Throttled slows sender down after the provider throttled it, and
	// holds it for retryAfter when given.
	Throttled(sender string, retryAfter time.Duration)
}

// Dispatcher runs the shard workers.
type Dispatcher struct {
	cfg     Config
	store   *redis.Store
	router  Router
	limiter Limiter
	log     *slog.Logger
	m       *metrics
	now     func() time.Time

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// New returns a dispatcher over store.
func New(cfg Config, store *redis.Store, router Router, limiter Limiter, reg prometheus.Registerer, log *slog.Logger) (*Dispatcher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Dispatcher{cfg: cfg, store: store, router: router, limiter: limiter, log: log,
		m: newMetrics(reg), now: time.Now, stop: make(chan struct{})}, nil
}

// Start runs a worker for every shard and the queue depth poller.
func (d *Dispatcher) Start() {
	for sh := 0; sh < d.store.Config().Shards; sh++ {
		w := newWorker(d, sh)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			w.run()
		}()
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.pollDepth()
	}()
}

// Shutdown stops reading new entries and waits for the sends in flight to
// finish and be recorded (bounded by ctx). Whatever is left unacknowledged
// is picked up again by this consumer's restart or by another one.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
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

// pollDepth keeps the queue depth gauges current.
func (d *Dispatcher) pollDepth() {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		tx, bulk, delayed, err := d.store.QueueDepth(ctx)
		cancel()
		if err == nil {
			d.m.depth.WithLabelValues("tx").Set(float64(tx))
			d.m.depth.WithLabelValues("bulk").Set(float64(bulk))
			d.m.depth.WithLabelValues("delayed").Set(float64(delayed))
		}
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
	}
}
