package dispatcher

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sends      *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	queueTime  *prometheus.HistogramVec
	duplicates prometheus.Counter
	inFlight   prometheus.Gauge
	depth      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_dispatch_sends_total",
			Help: "Provider calls by provider and outcome (sent, failed, retry, throttled, no_route).",
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
			Help: "Messages sent again because a worker died between calling the provider and recording the outcome.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wagate_dispatch_in_flight", Help: "Provider calls under way.",
		}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wagate_queue_depth", Help: "Messages waiting in Redis, by lane (tx, bulk) and delayed (retries, scheduled).",
		}, []string{"lane"}),
	}
	reg.MustRegister(m.sends, m.duration, m.queueTime, m.duplicates, m.inFlight, m.depth)
	return m
}
