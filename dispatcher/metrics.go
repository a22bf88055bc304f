package dispatcher

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sends      *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	queueTime  *prometheus.HistogramVec
	duplicates prometheus.Counter
	inFlight   prometheus.Gauge
	depth      *prometheus.GaugeVec
	breaker    *prometheus.GaugeVec
	fallbacks  *prometheus.CounterVec
	shards     prometheus.Gauge
	rate       *prometheus.GaugeVec
	held       *prometheus.CounterVec
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
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wagate_queue_depth", Help: "Messages waiting in Redis, by lane (tx, bulk) and delayed (retries, scheduled).",
		}, []string{"lane"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wagate_dispatch_breaker_state", Help: "Circuit breaker per provider account: 0 closed, 1 half-open, 2 open.",
		}, []string{"provider"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_dispatch_fallbacks_total",
			Help: "Messages sent by a fallback, by step (secondary, sms) and reason (breaker_open, failed, not_delivered).",
		}, []string{"step", "reason"}),
		shards: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wagate_dispatch_shards_owned", Help: "Shards this instance works.",
		}),
		rate: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wagate_dispatch_sender_rate", Help: "A sender's current allowed rate, messages per second (lowered after throttling).",
		}, []string{"sender"}),
		held: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_dispatch_sender_held_total",
			Help: "Senders held after a spam limit (hold) or a locked account or refused token (stop): an operator should look.",
		}, []string{"sender", "reason"}),
	}
	reg.MustRegister(m.sends, m.duration, m.queueTime, m.duplicates, m.inFlight, m.depth,
		m.breaker, m.fallbacks, m.shards, m.rate, m.held)
	return m
}
