package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/message"
)

// EventSource is the durable queue the loader drains (store/redis's events streams).
type EventSource interface {
	// Read appends to dst up to max events that are not yet acknowledged, waiting up
	// to block for the first one. After a restart, events returned before but never
	// acknowledged are returned again.
	Read(ctx context.Context, dst []message.Event, max int, block time.Duration) ([]message.Event, error)
	// Ack marks events as stored; they are not returned again.
	Ack(ctx context.Context, evs []message.Event) error
}

// idlePingEvery is how often an idle loader pings ClickHouse, so that
// wagate_loader_clickhouse_up means something when no events flow.
const idlePingEvery = 15 * time.Second

// Loader moves status events from an EventSource into message_events in
// batches. An event is acknowledged only after ClickHouse accepted the batch
// holding it; a batch that fails is kept and retried, with nothing read
// meanwhile, until it succeeds or Shutdown's deadline passes, so no event is
// ever dropped (at worst it is inserted twice, which message_events absorbs).
//
// One goroutine does all the work; create with NewLoader, then Start and
// Shutdown once each.
type Loader struct {
	cfg       Config
	conn      driver.Conn
	src       EventSource
	log       *slog.Logger
	m         *loaderMetrics
	insertSQL string
	now       func() time.Time

	// Owned by the run goroutine: the batch being filled or retried, the same
	// batch as columns, the sleep timer and the health of each dependency.
	buf         []message.Event
	rows        eventRows
	timer       *time.Timer
	chHealth    health
	readHealth  health
	ackHealth   health
	lastContact time.Time
	err         error // run's result, written before done is closed

	// Read by metrics and Shutdown while run writes them.
	firstReadNS atomic.Int64 // when the held batch's first event was read; 0 when empty
	heldEvents  atomic.Int64 // len(buf)

	stop chan struct{} // closed by Shutdown
	done chan struct{} // closed when run returns (or by Shutdown if never started)

	mu               sync.Mutex // guards the fields below
	started, stopped bool
	readCancel       context.CancelFunc // ends a pending Read at Shutdown
	workCancel       context.CancelFunc // ends everything when Shutdown's ctx expires
}

// NewLoader returns a loader of events from src into cfg.Database's
// message_events over conn. Zero fields of cfg take their defaults; cfg must
// otherwise be valid (Open has checked it), or NewLoader panics. Its metrics
// are registered on reg (nil: not registered); it panics if reg already has
// them, as promauto does. A nil logger discards.
func NewLoader(cfg Config, conn driver.Conn, src EventSource, reg prometheus.Registerer, logger *slog.Logger) *Loader {
	if err := cfg.Validate(); err != nil {
		panic("clickhouse.NewLoader: " + err.Error())
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Loader{
		cfg:       cfg,
		conn:      conn,
		src:       src,
		log:       logger.With("component", "clickhouse-loader"),
		insertSQL: insertEventsSQL(cfg.Database),
		now:       time.Now,
		buf:       make([]message.Event, 0, cfg.BatchSize),
		timer:     time.NewTimer(time.Hour),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	l.timer.Stop()
	l.m = newLoaderMetrics(l.oldestPendingSeconds)
	if reg != nil {
		l.m.register(reg)
	}
	return l
}

// Start runs the loader in a goroutine until Shutdown. Cancelling ctx stops
// it at once, without flushing: what it holds stays unacknowledged and is
// read again after a restart. Start does nothing after the first call or
// after Shutdown.
func (l *Loader) Start(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.stopped {
		return
	}
	l.started = true
	work, workCancel := context.WithCancel(ctx)
	read, readCancel := context.WithCancel(work)
	l.workCancel, l.readCancel = workCancel, readCancel
	go l.run(work, read)
}

// Shutdown stops reading, inserts and acknowledges what the loader holds,
// and returns when that is done. If ctx ends first (ClickHouse still down,
// say), it gives up and returns an error saying how many events were not
// stored: they stay unacknowledged in the source and are read again after a
// restart.
func (l *Loader) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	if !l.stopped {
		l.stopped = true
		close(l.stop)
		if l.started {
			l.readCancel()
			context.AfterFunc(ctx, l.workCancel)
		} else {
			close(l.done)
		}
	}
	l.mu.Unlock()
	select {
	case <-l.done:
		return l.err
	case <-ctx.Done():
		return fmt.Errorf("clickhouse loader shutdown: %d events not stored, left unacknowledged: %w",
			l.heldEvents.Load(), ctx.Err())
	}
}

func (l *Loader) stopping() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// run is the loader's loop: fill the batch until it is full, its first event
// is FlushInterval old or Shutdown was called; then insert it and ack it,
// retrying each until it succeeds.
func (l *Loader) run(work, read context.Context) {
	defer close(l.done)
	defer l.workCancel()
	l.ping(work)
	var first time.Time // when the held batch's first event was read
	readBackoff := l.cfg.RetryBackoffMin
	for {
		stopping := l.stopping()
		if n := len(l.buf); n > 0 && (stopping || n >= l.cfg.BatchSize || l.now().Sub(first) >= l.cfg.FlushInterval) {
			if err := l.flush(work); err != nil {
				l.err = err
				return
			}
			continue
		}
		if stopping || work.Err() != nil {
			return
		}
		if len(l.buf) == 0 && l.now().Sub(l.lastContact) >= idlePingEvery {
			l.ping(work)
		}

		wait := l.cfg.FlushInterval
		if len(l.buf) > 0 {
			wait -= l.now().Sub(first)
		}
		// Never 0: a Redis BLOCK 0 would wait forever.
		wait = max(wait, time.Millisecond)
		n := len(l.buf)
		got, err := l.src.Read(read, l.buf, l.cfg.BatchSize-n, wait)
		if len(got) >= n {
			l.buf = got // keep what was read even if Read also failed
		}
		if n == 0 && len(l.buf) > 0 {
			first = l.now()
			l.firstReadNS.Store(first.UnixNano())
		}
		l.setHeld()
		if err != nil {
			if read.Err() != nil {
				continue // Shutdown or Start's ctx: the loop decides what next
			}
			l.m.readErrors.Inc()
			l.readHealth.fail(l.log, l.now(), "reading events failed; retrying", err)
			l.sleep(read, readBackoff)
			readBackoff = min(readBackoff*2, l.cfg.RetryBackoffMax)
			continue
		}
		l.readHealth.ok(l.log, l.now(), "reading events works again")
		readBackoff = l.cfg.RetryBackoffMin
	}
}

// flush inserts the held batch and then acknowledges it, retrying each step
// with capped exponential backoff until it succeeds or ctx ends.
func (l *Loader) flush(ctx context.Context) error {
	// One version for the whole batch and all its retries: a retried batch is
	// then byte-identical, which lets a Replicated table deduplicate it.
	insertedMS := l.now().UnixMilli()
	l.rows.reset()
	for i := range l.buf {
		l.rows.add(&l.buf[i], insertedMS)
	}
	if err := l.retry(ctx, l.insert); err != nil {
		return fmt.Errorf("clickhouse loader: insert of %d events: %w", len(l.buf), err)
	}
	if err := l.retry(ctx, l.ack); err != nil {
		return fmt.Errorf("clickhouse loader: ack of %d stored events: %w", len(l.buf), err)
	}
	clear(l.buf) // drop the strings of stored events
	l.buf = l.buf[:0]
	l.rows.reset()
	l.firstReadNS.Store(0)
	l.setHeld()
	return nil
}

// retry calls fn until it succeeds, sleeping RetryBackoffMin, doubling up to
// RetryBackoffMax, between calls; it gives up only when ctx ends.
func (l *Loader) retry(ctx context.Context, fn func(context.Context) error) error {
	wait := l.cfg.RetryBackoffMin
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !l.sleep(ctx, wait) {
			return err
		}
		wait = min(wait*2, l.cfg.RetryBackoffMax)
	}
}

// insert sends the held batch to ClickHouse in one INSERT.
func (l *Loader) insert(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.InsertTimeout)
	defer cancel()
	start := l.now()
	err := l.send(ctx)
	l.lastContact = l.now()
	if err != nil {
		l.m.batchesError.Inc()
		l.m.up.Set(0)
		l.chHealth.fail(l.log, l.now(), "insert into clickhouse failed; holding the batch and retrying", err,
			"events", len(l.buf))
		return err
	}
	l.m.insertSeconds.Observe(l.now().Sub(start).Seconds())
	l.m.batchesOK.Inc()
	l.m.rowsInserted.Add(float64(len(l.buf)))
	l.m.up.Set(1)
	l.chHealth.ok(l.log, l.now(), "inserts into clickhouse work again")
	return nil
}

func (l *Loader) send(ctx context.Context) error {
	if l.cfg.Cluster != "" {
		// Acknowledged only once every shard has its rows: a Distributed
		// insert otherwise returns when its rows are queued on this server.
		ctx = ch.Context(ctx, ch.WithSettings(ch.Settings{"insert_distributed_sync": 1}))
	}
	b, err := l.conn.PrepareBatch(ctx, l.insertSQL)
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	if err := l.rows.appendTo(b); err != nil {
		b.Abort()
		return fmt.Errorf("append to insert: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("send insert: %w", err)
	}
	return nil
}

// ack acknowledges the held batch, which ClickHouse has.
func (l *Loader) ack(ctx context.Context) error {
	if err := l.src.Ack(ctx, l.buf); err != nil {
		l.m.ackErrors.Inc()
		l.ackHealth.fail(l.log, l.now(), "acknowledging stored events failed; retrying", err, "events", len(l.buf))
		return fmt.Errorf("ack: %w", err)
	}
	l.m.rowsAcked.Add(float64(len(l.buf)))
	l.ackHealth.ok(l.log, l.now(), "acknowledging events works again")
	return nil
}

// ping refreshes wagate_loader_clickhouse_up while no inserts do.
func (l *Loader) ping(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.InsertTimeout)
	defer cancel()
	err := l.conn.Ping(ctx)
	l.lastContact = l.now()
	if err != nil {
		if ctx.Err() == nil {
			l.m.up.Set(0)
			l.chHealth.fail(l.log, l.now(), "clickhouse does not answer", err)
		}
		return
	}
	l.m.up.Set(1)
	l.chHealth.ok(l.log, l.now(), "clickhouse answers again")
}

// sleep waits d or until ctx ends; it reports whether it waited the whole d.
func (l *Loader) sleep(ctx context.Context, d time.Duration) bool {
	l.timer.Reset(d)
	select {
	case <-l.timer.C:
		return true
	case <-ctx.Done():
		l.timer.Stop()
		return false
	}
}

func (l *Loader) setHeld() {
	l.heldEvents.Store(int64(len(l.buf)))
	l.m.pending.Set(float64(len(l.buf)))
}

func (l *Loader) oldestPendingSeconds() float64 {
	ns := l.firstReadNS.Load()
	if ns == 0 {
		return 0
	}
	return max(l.now().Sub(time.Unix(0, ns)).Seconds(), 0)
}

// health remembers whether a dependency is failing, so that the loader logs
// when that changes rather than at every retry.
type health struct {
	failing  bool
	since    time.Time
	failures int
}

func (h *health) fail(log *slog.Logger, now time.Time, msg string, err error, attrs ...any) {
	h.failures++
	if h.failing {
		return
	}
	h.failing, h.since = true, now
	log.Warn(msg, append(attrs, "err", err)...)
}

func (h *health) ok(log *slog.Logger, now time.Time, msg string) {
	if !h.failing {
		return
	}
	log.Info(msg, "failures", h.failures, "failing_for", now.Sub(h.since).Round(time.Millisecond))
	*h = health{}
}

// loaderMetrics are the loader's Prometheus metrics, all named wagate_loader_*.
type loaderMetrics struct {
	rowsInserted, rowsAcked  prometheus.Counter
	batchesOK, batchesError  prometheus.Counter
	readErrors, ackErrors    prometheus.Counter
	insertSeconds            prometheus.Histogram
	pending, up              prometheus.Gauge
	oldest                   prometheus.GaugeFunc
	batches, sourceErrorsVec *prometheus.CounterVec
}

func newLoaderMetrics(oldest func() float64) *loaderMetrics {
	const ns, sub = "wagate", "loader"
	m := &loaderMetrics{
		rowsInserted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "rows_inserted_total",
			Help: "Events inserted into message_events (a retried batch counts once per successful insert).",
		}),
		rowsAcked: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "rows_acked_total",
			Help: "Events acknowledged to the source after ClickHouse stored them.",
		}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "batches_total",
			Help: "Insert attempts of a batch into message_events, by result (ok, error).",
		}, []string{"result"}),
		sourceErrorsVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "source_errors_total",
			Help: "Failed calls to the event source, by operation (read, ack).",
		}, []string{"op"}),
		insertSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "insert_duration_seconds",
			Help:    "Time of successful batch inserts into message_events.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "pending_events",
			Help: "Events read and held by the loader, not yet in ClickHouse or not yet acknowledged.",
		}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "clickhouse_up",
			Help: "1 if the loader's last insert or ping of ClickHouse succeeded, else 0.",
		}),
		oldest: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "oldest_pending_seconds",
			Help: "Seconds since the oldest event the loader holds was read; 0 when it holds none.",
		}, oldest),
	}
	m.batchesOK = m.batches.WithLabelValues("ok")
	m.batchesError = m.batches.WithLabelValues("error")
	m.readErrors = m.sourceErrorsVec.WithLabelValues("read")
	m.ackErrors = m.sourceErrorsVec.WithLabelValues("ack")
	return m
}

func (m *loaderMetrics) register(reg prometheus.Registerer) {
	reg.MustRegister(m.rowsInserted, m.rowsAcked, m.batches, m.sourceErrorsVec,
		m.insertSeconds, m.pending, m.up, m.oldest)
}
