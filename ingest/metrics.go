package ingest

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// route names a group of endpoints for metrics.
type route uint8

const (
	routeOther route = iota
	routeSend
	routeStatus
	routeWebhookMeta
	routeMetrics
	routeHealth
	routeAdmin
	routeBatch
	routeTemplates
	routeMedia
	routeInteractive
	routeConversations
	routeStaff // sessions and the staff API
	routeWebhookGallabox
	routeWebhookChatApp
	nRoutes
)

var routeNames = [nRoutes]string{"other", "send", "status", "webhook_meta", "metrics", "health", "admin", "batch",
	"templates", "media", "interactive", "conversations", "staff", "webhook_gallabox", "webhook_chatapp"}

// metrics are the API's Prometheus series.
type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	durationBy   [nRoutes]prometheus.Observer
	webhooks     *prometheus.CounterVec
	idemReplays  prometheus.Counter
	backpressure prometheus.Counter
	// receiptsDropped counts read receipts not sent because too many were
	// in flight.
	receiptsDropped prometheus.Counter
	// counters caches requests' children by route and status code, so that
	// counting a request does not format and hash labels every time.
	counters [nRoutes][600]atomic.Pointer[prometheus.Counter]
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_http_requests_total", Help: "API and webhook requests by route and HTTP status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wagate_http_request_duration_seconds", Help: "Time to answer a request, by route.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_webhooks_received_total",
			Help: "Provider webhook deliveries by provider and result (accepted, unsigned, bad_signature, invalid, ignored, error, verified, verify_refused).",
		}, []string{"provider", "result"}),
		idemReplays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wagate_idempotent_replays_total", Help: "Sends answered from an earlier request with the same Idempotency-Key.",
		}),
	}
	m.backpressure = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "wagate_backpressure_refusals_total", Help: "Sends refused because the tenant's queue was at its cap.",
	})
	m.receiptsDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "wagate_read_receipts_dropped_total", Help: "Read receipts for conversations staff read, not passed to the provider because 64 were in flight already.",
	})
	reg.MustRegister(m.backpressure, m.receiptsDropped)
	for r := route(0); r < nRoutes; r++ {
		m.durationBy[r] = m.duration.WithLabelValues(routeNames[r])
	}
	reg.MustRegister(m.requests, m.duration, m.webhooks, m.idemReplays)
	return m
}

// observe counts one answered request.
func (m *metrics) observe(r route, code int, seconds float64) {
	m.durationBy[r].Observe(seconds)
	if code < 100 || code >= 600 {
		m.requests.WithLabelValues(routeNames[r], strconv.Itoa(code)).Inc()
		return
	}
	slot := &m.counters[r][code]
	c := slot.Load()
	if c == nil {
		cc := m.requests.WithLabelValues(routeNames[r], strconv.Itoa(code))
		slot.Store(&cc)
		c = &cc
	}
	(*c).Inc()
}
