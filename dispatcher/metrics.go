package dispatcher

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	sends      *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	queueTime  *prometheus.HistogramVec
	duplicates prometheus.Counter
	inFlight   prometheus.Gauge
	breaker    *prometheus.GaugeVec
	fallbacks  *prometheus.CounterVec
	shards     prometheus.Gauge
	held       *prometheus.CounterVec
	// portfolioHeld, portfolioCounted and portfolioLimit follow the
	// portfolios' messaging limits (send.go's portfolioHold).
	portfolioHeld                    *prometheus.CounterVec
	portfolioCounted, portfolioLimit *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_dispatch_sends_total",
			Help: "Provider calls by provider and outcome (sent, failed, retry, throttled, pair_throttled, outage, held, no_route).",
		}, []string{"provider", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wagate_dispatch_send_duration_seconds", Help: "Time of one provider call.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"provider"}),
		queueTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wagate_dispatch_queue_seconds", Help: "Time from acceptance to the first provider call, by lane.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
		}, []string{"lane"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wagate_dispatch_possible_duplicates_total",
			Help: "Messages sent again because their previous owner died between calling the provider and recording the outcome.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wagate_dispatch_in_flight", Help: "Provider calls under way.",
		}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wagate_dispatch_breaker_state", Help: "Circuit breaker per provider account: 0 closed, 1 half-open, 2 open.",
		}, []string{"provider"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_dispatch_fallbacks_total",
			Help: "Messages sent by a fallback, by step (secondary, sms) and reason (breaker_open, failed, not_delivered); reason cannot_carry counts those a step passed on to the next one, unable to send their kind.",
		}, []string{"step", "reason"}),
		shards: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wagate_dispatch_shards_owned", Help: "Shards this instance works.",
		}),
		portfolioHeld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_portfolio_held_total",
			Help: "Business-initiated sends held because their business portfolio was at its messaging limit (unique guests started in 24 hours), once per hold.",
		}, []string{"portfolio"}),
		portfolioCounted: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wagate_portfolio_guests_started",
			Help: "Unique guests the business portfolio started conversations with in the last 24 hours, as of its last business-initiated send.",
		}, []string{"portfolio"}),
		portfolioLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wagate_portfolio_messaging_limit",
			Help: "The business portfolio's messaging limit (-1: unlimited), as of its last business-initiated send.",
		}, []string{"portfolio"}),
		held: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_dispatch_sender_held_total",
			Help: "Senders held after a spam limit (hold) or a locked account or refused token (stop): an operator should look.",
		}, []string{"sender", "reason"}),
	}
	reg.MustRegister(m.sends, m.duration, m.queueTime, m.duplicates, m.inFlight,
		m.breaker, m.fallbacks, m.shards, m.held, m.portfolioHeld, m.portfolioCounted, m.portfolioLimit)
	return m
}

// ownedCollector reports, at each scrape, the queues of the shards this
// instance owns and the rates of the senders it pumps: every shard and
// sender is reported by its owner alone, so sums over instances are true,
// and a shard or sender that moves away takes its series with it. Reading
// Redis at scrape time costs nothing while nobody scrapes.
type ownedCollector struct {
	d                         *Dispatcher
	depth, oldest, dead, rate *prometheus.Desc
}

func newOwnedCollector(d *Dispatcher) *ownedCollector {
	return &ownedCollector{d: d,
		depth: prometheus.NewDesc("wagate_queue_depth",
			"Messages waiting in Redis on a shard this instance owns, by lane (tx, bulk; read or not) and delayed (scheduled).",
			[]string{"shard", "lane"}, nil),
		oldest: prometheus.NewDesc("wagate_queue_oldest_seconds",
			"Age of the oldest message in a shard's queues (waiting, in flight or waiting for its retry), on a shard this instance owns.",
			[]string{"shard"}, nil),
		dead: prometheus.NewDesc("wagate_dead_letters",
			"Messages in a shard's dead-letter stream (not requeued), on a shard this instance owns.",
			[]string{"shard"}, nil),
		rate: prometheus.NewDesc("wagate_dispatch_sender_rate",
			"The rate a sender's pump applies now, messages per second: its tier lowered after throttling, 0 while the sender is held.",
			[]string{"sender"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *ownedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.oldest
	ch <- c.dead
	ch <- c.rate
}

// Collect implements prometheus.Collector.
func (c *ownedCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	now := time.Now()
	d.mu.Lock()
	workers := make([]*shardWorker, 0, len(d.shards))
	for _, w := range d.shards {
		workers = append(workers, w)
	}
	// gobreaker changes state when asked: asking keeps the breaker gauge
	// true when no traffic comes by.
	for _, b := range d.breakers {
		b.cb.State()
	}
	d.mu.Unlock()
	shards := make([]int, 0, len(workers))
	for _, w := range workers {
		shards = append(shards, w.shard)
		for _, p := range w.pumpsNow() {
			ch <- prometheus.MustNewConstMetric(c.rate, prometheus.GaugeValue, p.appliedRate(now), p.sender)
		}
	}
	if len(shards) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	stats, err := d.store.ShardQueueStats(ctx, shards)
	if err != nil {
		d.log.Warn("queue metrics: reading the owned shards' queues", "err", err)
		return
	}
	for _, st := range stats {
		sh := strconv.Itoa(st.Shard)
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(st.Tx), sh, "tx")
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(st.Bulk), sh, "bulk")
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(st.Delayed), sh, "delayed")
		ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(st.DeadLetters), sh)
		age := 0.0
		if !st.Oldest.IsZero() {
			age = max(0, now.Sub(st.Oldest).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age, sh)
	}
}
