// Package sim is a simulator of Meta's WhatsApp Cloud API: the stand-in for
// a real provider in wagate's tests and what its benchmarks run against. It
// validates sends as Meta does and answers in Meta's shapes, limits each
// number's throughput, injects errors and outages, and posts signed status
// and inbound webhooks with Meta's envelope, retrying them while the
// receiver is down.
//
// One goroutine schedules all statuses (a min-heap, no timer per message)
// and a bounded pool posts the webhooks.
//
// It also stands in for the fallback providers, an SMS API in Twilio's
// shape, Gallabox and Alibaba's ChatApp, each with its own credentials and
// outage switch (alt.go, sms.go, gallabox.go, chatapp.go); Gallabox and
// ChatApp post their status callbacks (callbacks.go).
package sim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"golang.org/x/time/rate"
)

// Server is a running simulator. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	numbers map[string]*number
	// numList is numbers in config order, for the scheduler's batch scan.
	numList []*number

	rt          atomic.Pointer[Runtime]
	outageUntil atomic.Int64 // unix ns; 0 = none
	startedNS   atomic.Int64

	srv    *fasthttp.Server
	ln     net.Listener
	client *fasthttp.Client

	sched scheduler
	posts chan *post
	stop  chan struct{}
	wg    sync.WaitGroup
	state atomic.Int32

	// authHeader is the one Authorization value sends may carry.
	authHeader string

	idSeq    atomic.Uint64
	idPrefix [6]byte

	stats   counters
	metrics metrics

	// sms and gallabox are the other providers' endpoints (sms.go,
	// gallabox.go); their zero values are ready.
	sms      smsState
	gallabox gallaboxState
	chatapp  chatappState
	// alt posts Gallabox's and ChatApp's status callbacks (callbacks.go).
	alt altHooks
	// templates are the accounts' message templates (templates.go).
	templates templateState
	// files are the media bytes served for download (download.go).
	files mediaFiles
}

const (
	stateNew int32 = iota
	stateRunning
	stateStopped
)

// number is one simulated phone number and what is recorded about it.
type number struct {
	Number
	lim   *rate.Limiter
	pairs pairLimits

	mu    sync.Mutex
	reqs  []Request // ring of the last cfg.RecordRequests accepted sends
	next  int
	count int
	secs  []int64 // ring of per-second send counts, indexed by second mod len
	perS  []int32

	// open is the batch being filled; owned by the scheduler goroutine.
	open *post

	// inbound are the guests' message ids sent to this number (the
	// newest maxRemembered, in inboundOrder), receipts the read receipts
	// taken for them (read.go); under mu.
	inbound      map[string]bool
	inboundOrder []string
	receipts     []ReadReceipt
}

// New checks cfg and returns a Server that is not listening yet. Its
// metrics are registered with reg unless reg is nil.
func New(cfg Config, reg prometheus.Registerer) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		numbers: make(map[string]*number, len(cfg.Numbers)),
		posts:   make(chan *post, 4*cfg.WebhookConcurrency),
		stop:    make(chan struct{}),
		metrics: newMetrics(),

		authHeader: "Bearer " + cfg.AccessToken,
	}
	if _, err := rand.Read(s.idPrefix[:]); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	rt := cfg.runtime()
	s.rt.Store(&rt)
	histLen := int(cfg.RateHistory / time.Second)
	if histLen < 1 {
		histLen = 1
	}
	for _, n := range cfg.Numbers {
		num := &number{Number: n, lim: rate.NewLimiter(limitOf(&rt), burstOf(&rt)),
			secs: make([]int64, histLen), perS: make([]int32, histLen)}
		if cfg.RecordRequests > 0 {
			num.reqs = make([]Request, 0, min(cfg.RecordRequests, 1024))
		}
		s.numbers[n.PhoneNumberID] = num
		s.numList = append(s.numList, num)
	}
	s.seedTemplates()
	s.sched.wake = make(chan struct{}, 1)
	s.sched.nextWake = maxTime
	s.srv = &fasthttp.Server{
		Handler:              s.handle,
		Name:                 "wagate-sim",
		ReadTimeout:          30 * time.Second,
		IdleTimeout:          60 * time.Second,
		NoDefaultContentType: true,
		MaxRequestBodySize:   128 << 20, // media uploads
	}
	s.client = &fasthttp.Client{
		Name:                "Meta-Webhooks/1.0 (wagate-sim)",
		MaxConnsPerHost:     cfg.WebhookConcurrency,
		MaxConnWaitTimeout:  cfg.WebhookTimeout,
		ReadTimeout:         cfg.WebhookTimeout,
		WriteTimeout:        cfg.WebhookTimeout,
		MaxResponseBodySize: 1 << 20,
		// One immediate retry for a keep-alive connection the receiver
		// closed; duplicates are allowed for webhooks, as with Meta.
		RetryIfErr: func(_ *fasthttp.Request, attempts int, _ error) (bool, bool) { return false, attempts < 2 },
	}
	if reg != nil {
		if err := s.metrics.register(reg); err != nil {
			return nil, fmt.Errorf("sim: metrics: %w", err)
		}
	}
	return s, nil
}

func limitOf(rt *Runtime) rate.Limit {
	if rt.Throughput <= 0 {
		return rate.Inf
	}
	return rate.Limit(rt.Throughput)
}

func burstOf(rt *Runtime) int {
	if rt.ThroughputBurst > 0 {
		return rt.ThroughputBurst
	}
	if b := int(rt.Throughput); b > 0 {
		return b
	}
	return 1
}

// Start listens on the configured address and starts serving, scheduling
// and posting. It returns once the listener is open.
func (s *Server) Start() error {
	if !s.state.CompareAndSwap(stateNew, stateRunning) {
		return errors.New("sim: already started")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		s.state.Store(stateStopped)
		return fmt.Errorf("sim: listen: %w", err)
	}
	s.ln = ln
	s.startedNS.Store(time.Now().UnixNano())
	s.wg.Add(2 + s.cfg.WebhookConcurrency)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln) // returns when Shutdown closes ln
	}()
	go s.runScheduler()
	for i := 0; i < s.cfg.WebhookConcurrency; i++ {
		go s.runPoster()
	}
	s.startAlt()
	return nil
}

// Addr returns the address the server listens on (after Start).
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.cfg.Addr
	}
	return s.ln.Addr().String()
}

// URL returns "http://" + Addr(), the BaseURL for a Meta client.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Shutdown stops accepting sends, lets the posts in flight finish and
// abandons the statuses and webhooks not yet posted (counted in
// Stats.Abandoned). It returns when every goroutine has done its work (each
// is returning; the runtime lets it go a moment later), or with ctx's error
// if that comes first.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.state.CompareAndSwap(stateRunning, stateStopped) {
		if s.state.CompareAndSwap(stateNew, stateStopped) {
			return nil
		}
		return errors.New("sim: not running")
	}
	err := s.srv.ShutdownWithContext(ctx)
	// Shutdown misses a listener that Serve has not registered yet.
	_ = s.ln.Close()
	close(s.stop)
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.abandonRest()
	s.abandonAlt()
	s.client.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("sim: shutdown: %w", err)
	}
	return nil
}

// SetRuntime replaces the changeable settings; the throughput buckets keep
// their tokens.
func (s *Server) SetRuntime(rt Runtime) error {
	if err := rt.validate(); err != nil {
		return fmt.Errorf("sim: runtime: %w", err)
	}
	s.rt.Store(&rt)
	for _, n := range s.numList {
		n.lim.SetLimit(limitOf(&rt))
		n.lim.SetBurst(burstOf(&rt))
	}
	return nil
}

// Runtime returns the changeable settings in force.
func (s *Server) Runtime() Runtime { return *s.rt.Load() }

// SetOutage makes sends fail until the given time; the zero time ends an
// outage set this way (configured Outages windows still apply).
func (s *Server) SetOutage(until time.Time) {
	if until.IsZero() {
		s.outageUntil.Store(0)
		return
	}
	s.outageUntil.Store(until.UnixNano())
}

func (s *Server) inOutage(now int64) bool {
	if now < s.outageUntil.Load() {
		return true
	}
	if len(s.cfg.Outages) == 0 {
		return false
	}
	since := time.Duration(now - s.startedNS.Load())
	for _, w := range s.cfg.Outages {
		if since >= w.Start && since < w.End {
			return true
		}
	}
	return false
}

// metrics are the simulator's Prometheus series.
type metrics struct {
	sends    *prometheus.CounterVec
	webhooks *prometheus.CounterVec
	statuses prometheus.Counter

	accepted, invalid, unauthorized, throttled, injected, outage prometheus.Counter
	posted, failed, dropped                                      prometheus.Counter
}

func newMetrics() metrics {
	m := metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_sim_sends_total", Help: "Sends the simulator answered, by result.",
		}, []string{"result"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_sim_webhook_posts_total", Help: "Webhook POST attempts, by outcome.",
		}, []string{"outcome"}),
		statuses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wagate_sim_statuses_posted_total", Help: "Statuses delivered to the webhook receiver.",
		}),
	}
	m.accepted = m.sends.WithLabelValues("accepted")
	m.invalid = m.sends.WithLabelValues("invalid")
	m.unauthorized = m.sends.WithLabelValues("unauthorized")
	m.throttled = m.sends.WithLabelValues("throttled")
	m.injected = m.sends.WithLabelValues("injected_error")
	m.outage = m.sends.WithLabelValues("outage")
	m.posted = m.webhooks.WithLabelValues("ok")
	m.failed = m.webhooks.WithLabelValues("failed")
	m.dropped = m.webhooks.WithLabelValues("dropped")
	return m
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.sends, m.webhooks, m.statuses} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
