package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Scenarios wabench knows, in the order "all" runs them (backlog is not
// part of "all": it needs a gateway whose dispatcher cannot keep up; bare
// drives a `wabench -bare` server, not a gateway).
var Scenarios = []string{"single", "bulk", "webhooks", "e2e", "backlog", "bare", "rates"}

// Config is one wabench run. Zero fields take the defaults noted.
type Config struct {
	// Target is the gateway's API (http://127.0.0.1:18080); Sim its
	// provider simulator (http://127.0.0.1:18090; "" for none: no
	// simulator stats, and the webhooks scenario needs the gateway started
	// with -sim-webhooks=false).
	Target string
	Sim    string
	// Peer is the peer gateway's API (bench/peers/asynq, e.g.
	// http://127.0.0.1:18085): the single scenario drives it with the same
	// load right after wagate. Empty: no peer.
	Peer string
	// Token is a staff token of the tenant (dev-staff-token), AppSecret
	// the Meta app secret the gateway verifies webhooks with
	// (dev-app-secret).
	Token     string
	AppSecret string
	// AdminToken is an admin token of the tenant (dev-admin-token): the
	// suite turns the 24-hour window rule off for its run (its guests
	// never wrote; Meta's own window is the simulator's business) and
	// restores the tenant's setting after.
	AdminToken string
	// Numbers is how many of the tenant's numbers sends spread over
	// (`wagate dev -numbers N`; 1).
	Numbers int
	// Duration of each timed load run (30 s); Concurrency its workers and
	// keep-alive connections (64).
	Duration    time.Duration
	Concurrency int
	// CeilingDuration of each ceiling run (10 s); NoCeilings skips them
	// (the results then carry no ratio).
	CeilingDuration time.Duration
	NoCeilings      bool
	// Text of every message (DefaultText).
	Text string
	// VerifySample checks so many accepted messages through the status
	// endpoint (0: all of them).
	VerifySample int
	// VerifyConcurrency is the status checks in flight (32).
	VerifyConcurrency int

	// Redis and ClickHouse, for the ceilings and the e2e check.
	RedisURL   string
	ClickHouse ClickHouseConfig

	// BulkSize is the messages per batch-send (1 000), BulkConcurrency
	// the batch requests in flight (4), BulkMessages the most messages
	// the bulk run sends (500 000: the tenant's queue cap is 1 000 000).
	BulkSize        int
	BulkConcurrency int
	BulkMessages    int

	// WebhookMessages is how many messages each webhooks sub-run reports
	// on (two statuses each: delivered and read; 50 000). WebhookBatch is
	// the statuses per envelope of the batched sub-run (50).
	WebhookMessages int
	WebhookBatch    int

	// E2EDuration is how long e2e sends (60 s), E2ERate at what pace
	// (10 000 msg/s; 0: as fast as the API answers), E2EWait how long it
	// waits for the last read rows after a pause in their arrival (60 s).
	E2EDuration time.Duration
	E2ERate     float64
	E2EWait     time.Duration

	// RatesMPS are the rates of the tenant's first numbers, as the
	// gateway runs them (`wagate dev -rates 1000,80`), that the rates
	// scenario checks over RatesDuration (60 s).
	RatesMPS      []float64
	RatesDuration time.Duration

	// BacklogMessages are queued by the backlog scenario (1 000 000),
	// via batch-send unless BacklogSingle.
	BacklogMessages int
	BacklogSingle   bool

	// Ops is the gateway's ops listener (its -ops address,
	// http://127.0.0.1:18060), where its /metrics is read: gateway CPU,
	// memory, queue depth, statuses applied. Empty: none (the webhooks
	// and backlog scenarios need it).
	Ops string

	// ProfileURL is where the gateway serves its profiles, its ops
	// listener (http://127.0.0.1:18060): a CPU profile of the gateway is
	// taken during each timed run and saved in ProfileDir (".") as
	// <run>.pprof. Empty: none.
	ProfileURL string
	ProfileDir string

	// Progress shows progress lines (nil: none).
	Progress *Progress
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Token == "" {
		c.Token = "dev-staff-token"
	}
	if c.AppSecret == "" {
		c.AppSecret = "dev-app-secret"
	}
	if c.AdminToken == "" {
		c.AdminToken = "dev-admin-token"
	}
	def(&c.Numbers, 1)
	def(&c.Concurrency, 64)
	def(&c.VerifyConcurrency, 32)
	def(&c.BulkSize, 1000)
	def(&c.BulkConcurrency, 4)
	def(&c.BulkMessages, 500_000)
	def(&c.WebhookMessages, 50_000)
	def(&c.WebhookBatch, 50)
	def(&c.BacklogMessages, 1_000_000)
	if c.Duration == 0 {
		c.Duration = 30 * time.Second
	}
	if c.CeilingDuration == 0 {
		c.CeilingDuration = 10 * time.Second
	}
	if c.RatesDuration == 0 {
		c.RatesDuration = 60 * time.Second
	}
	if c.E2EDuration == 0 {
		c.E2EDuration = 60 * time.Second
	}
	if c.E2EWait == 0 {
		c.E2EWait = 60 * time.Second
	}
	if c.Text == "" {
		c.Text = DefaultText
	}
	if c.ProfileDir == "" {
		c.ProfileDir = "."
	}
	if c.RedisURL == "" {
		c.RedisURL = "redis://127.0.0.1:6379/0"
	}
	if c.ClickHouse.Addr == "" {
		c.ClickHouse.Addr = "127.0.0.1:9000"
	}
	if c.ClickHouse.Database == "" {
		c.ClickHouse.Database = "wagate"
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if _, err := hostOf(c.Target); err != nil {
		return fmt.Errorf("-target: %w", err)
	}
	if c.Sim != "" {
		if _, err := hostOf(c.Sim); err != nil {
			return fmt.Errorf("-sim: %w", err)
		}
	}
	if c.Peer != "" {
		if _, err := hostOf(c.Peer); err != nil {
			return fmt.Errorf("-peer: %w", err)
		}
	}
	if c.Ops != "" {
		if _, err := hostOf(c.Ops); err != nil {
			return fmt.Errorf("-ops: %w", err)
		}
	}
	if c.ProfileURL != "" {
		if _, err := hostOf(c.ProfileURL); err != nil {
			return fmt.Errorf("-profile: %w", err)
		}
	}
	switch {
	case c.Numbers < 1 || c.Numbers > 99999:
		return errors.New("numbers must be 1..99999")
	case c.Concurrency < 1 || c.BulkConcurrency < 1 || c.VerifyConcurrency < 1:
		return errors.New("concurrency must be at least 1")
	case c.BulkSize < 1 || c.BulkSize > 10_000:
		return errors.New("bulk size must be 1..10000 (the batch endpoint's limit)")
	case c.WebhookBatch < 1 || c.WebhookBatch > 1000:
		return errors.New("webhook batch must be 1..1000")
	case c.WebhookMessages < 1 || c.BulkMessages < 1 || c.BacklogMessages < 1:
		return errors.New("message counts must be positive")
	case c.Duration <= 0 || c.CeilingDuration <= 0 || c.E2EDuration <= 0 || c.E2EWait <= 0 || c.RatesDuration <= 0:
		return errors.New("durations must be positive")
	case c.E2ERate < 0 || c.VerifySample < 0:
		return errors.New("rates and samples must not be negative")
	case !validIdent(c.ClickHouse.Database):
		return fmt.Errorf("clickhouse database %q: letters, digits and _ only", c.ClickHouse.Database)
	}
	return nil
}

func validIdent(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Suite runs scenarios against one gateway and collects their report.
type Suite struct {
	cfg Config
	api *Client
	// ops reads the gateway's /metrics (nil: Config.Ops is empty).
	ops     *Client
	sim     *Client
	senders Senders
	// base spreads this run's guests away from earlier runs', and each
	// scenario's from the others'.
	base   uint64
	report *Report
	ch     driver.Conn
	cpu    *cpuMeter
	prof   *profiler
}

// NewSuite checks cfg and connects to the gateway.
func NewSuite(cfg Config, command, gatewayCmd string) (*Suite, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	api, err := NewClient(cfg.Target, cfg.Token, cfg.VerifyConcurrency+8)
	if err != nil {
		return nil, err
	}
	// Each scenario moves base on by 10^8 guests; starting below 3×10^8
	// keeps six of them within the nine digits without wrapping around.
	var ops *Client
	if cfg.Ops != "" {
		if ops, err = NewClient(cfg.Ops, "", 2); err != nil {
			return nil, err
		}
	}
	s := &Suite{cfg: cfg, api: api, ops: ops, senders: Senders(cfg.Numbers), base: rand.Uint64N(300_000_000),
		cpu: newCPUMeter(ops, cfg.RedisURL)}
	if cfg.ProfileURL != "" {
		s.prof = &profiler{url: cfg.ProfileURL, dir: cfg.ProfileDir}
	}
	if cfg.Sim != "" {
		if s.sim, err = NewClient(cfg.Sim, "", 4); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	s.report = &Report{Date: now.Format("2006-01-02"), Started: now.Format(time.RFC3339), Machine: ThisMachine(),
		Command: command, Gateway: gatewayCmd, Ceilings: []Ceiling{}, Results: []Result{}}
	return s, nil
}

// Report is what the suite measured so far.
func (s *Suite) Report() *Report { return s.report }

// Close releases the suite's connections.
func (s *Suite) Close() {
	if s.ch != nil {
		s.ch.Close()
	}
	s.cpu.close()
}

// Run runs the named scenarios in order ("all": single, bulk, webhooks,
// e2e), each right after the ceilings it is compared with.
func (s *Suite) Run(ctx context.Context, names []string) error {
	var run []string
	for _, n := range names {
		switch {
		case n == "all":
			run = append(run, Scenarios[:4]...)
		case slices.Contains(Scenarios, n):
			run = append(run, n)
		default:
			return fmt.Errorf("unknown scenario %q (want %s or all)", n, strings.Join(Scenarios, ", "))
		}
	}
	if _, _, err := s.api.Do("GET", "/healthz", nil); err != nil {
		return fmt.Errorf("no gateway at %s: %w", s.cfg.Target, err)
	}
	// The bare handler is no gateway: it has no settings to change.
	if !slices.Equal(run, []string{"bare"}) {
		restore, err := s.windowRuleOff()
		if err != nil {
			return err
		}
		defer restore()
	}
	for _, n := range run {
		s.note("scenario %s", n)
		var err error
		switch n {
		case "single":
			err = s.single(ctx)
		case "bulk":
			err = s.bulk(ctx)
		case "webhooks":
			err = s.webhooks(ctx)
		case "e2e":
			err = s.e2e(ctx)
		case "backlog":
			err = s.backlog(ctx)
		case "bare":
			err = s.bareRun(ctx)
		case "rates":
			err = s.rates(ctx)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

func (s *Suite) note(format string, args ...any) { s.cfg.Progress.Note(format, args...) }

// windowRuleOff turns the tenant's 24-hour window rule off: the suite's
// guests are numbers that never wrote, which the rule would refuse free
// text to. It returns what restores the tenant's setting.
func (s *Suite) windowRuleOff() (func(), error) {
	admin, err := NewClient(s.cfg.Target, s.cfg.AdminToken, 1)
	if err != nil {
		return nil, err
	}
	var cur struct {
		WindowEnforcement bool `json:"window_enforcement"`
	}
	if err := admin.GetJSON("/api/v1/whatsapp/settings", &cur); err != nil {
		return nil, fmt.Errorf("tenant settings (admin token %q): %w", s.cfg.AdminToken, err)
	}
	set := func(on bool) error {
		status, body, err := admin.Do("PUT", "/api/v1/whatsapp/settings", []byte(fmt.Sprintf(`{"window_enforcement":%t}`, on)))
		if err == nil && status != 200 {
			err = fmt.Errorf("PUT settings: %d %s", status, body)
		}
		return err
	}
	if err := set(false); err != nil {
		return nil, err
	}
	// Every API process caches settings for up to 2 s.
	time.Sleep(2100 * time.Millisecond)
	return func() {
		if err := set(cur.WindowEnforcement); err != nil {
			s.note("restoring the window rule: %v", err)
		}
	}, nil
}

// measure runs a timed load, with the CPU each process used during it
// (into r's figures, per message) and a profile of the gateway.
func (s *Suite) measure(ctx context.Context, lc LoadConfig, src Source, r *Result) (*LoadResult, error) {
	wait := s.prof.during(lc.Name, lc.Duration)
	a := s.cpu.sample()
	l, err := Run(ctx, lc, src)
	b := s.cpu.sample()
	if perr := wait(); perr != nil {
		s.note("%v", perr)
	}
	if err != nil {
		return nil, err
	}
	for k, v := range cpuFigures(a, b, l.Messages, "message") {
		r.figure(k, v)
	}
	return l, nil
}

func (s *Suite) load(name string, conc int, dur time.Duration, maxReq uint64, rate float64) LoadConfig {
	return LoadConfig{Name: name, Target: s.cfg.Target, Concurrency: conc, Duration: dur, MaxRequests: maxReq,
		Rate: rate, Progress: s.cfg.Progress}
}

// ceiling returns the named ceiling, measuring it first if this run has
// not yet; nil with NoCeilings.
func (s *Suite) ceiling(ctx context.Context, name string, measure func() (Ceiling, error)) (*Ceiling, error) {
	if s.cfg.NoCeilings {
		return nil, nil
	}
	if c := s.report.Ceiling(name); c != nil {
		return c, nil
	}
	a := s.cpu.sample()
	c, err := measure()
	if err != nil {
		return nil, err
	}
	unit := map[string]string{"req/s": "request", "msg/s": "message", "rows/s": "row"}[c.Unit]
	c.Figures = cpuFigures(a, s.cpu.sample(), c.Count, unit)
	s.report.Ceilings = append(s.report.Ceilings, c)
	return s.report.Ceiling(name), nil
}

// gatewayAnswer is what the HTTP ceiling answers a send with: the body
// the gateway answers (an id of the gateway's shape).
var gatewayAnswer = []byte(`{"message_id":"msg_01m7yb4j2d3c59g3vj0tbha_15","status":"queued"}`)

func (s *Suite) httpSendCeiling(ctx context.Context) (*Ceiling, error) {
	return s.ceiling(ctx, "http/send", func() (Ceiling, error) {
		src := newSendSource(s.cfg.Token, s.senders, s.base, s.cfg.Text, s.cfg.Concurrency, false)
		return HTTPCeiling(ctx, "http/send", fmt.Sprintf("bare fasthttp handler answering 202 to the same messages/send requests, same load generator, %d keep-alive connections", s.cfg.Concurrency),
			s.load("", s.cfg.Concurrency, s.cfg.CeilingDuration, 0, 0), 202, gatewayAnswer, src)
	})
}

func (s *Suite) redisCeiling(ctx context.Context) (*Ceiling, error) {
	return s.ceiling(ctx, "redis/xadd", func() (Ceiling, error) {
		return RedisCeiling(ctx, RedisCeilingConfig{URL: s.cfg.RedisURL, Key: fmt.Sprintf("bench:ceiling:%d", os.Getpid()),
			Duration: s.cfg.CeilingDuration, Pipeline: s.cfg.BulkSize, Writers: s.cfg.BulkConcurrency, Text: s.cfg.Text}, s.cfg.Progress)
	})
}

func (s *Suite) clickhouse(ctx context.Context) (driver.Conn, error) {
	if s.ch == nil {
		conn, err := OpenClickHouse(ctx, s.cfg.ClickHouse)
		if err != nil {
			return nil, err
		}
		s.ch = conn
	}
	return s.ch, nil
}

func (s *Suite) clickhouseCeiling(ctx context.Context) (*Ceiling, error) {
	return s.ceiling(ctx, "clickhouse/insert", func() (Ceiling, error) {
		conn, err := s.clickhouse(ctx)
		if err != nil {
			return Ceiling{}, err
		}
		return ClickHouseCeiling(ctx, conn, ClickHouseCeilingConfig{ClickHouseConfig: s.cfg.ClickHouse,
			Table: fmt.Sprintf("bench_ceiling_%d", os.Getpid()), Duration: s.cfg.CeilingDuration, Writers: 2}, s.cfg.Progress)
	})
}

// verifyCheck asks the status endpoint about ids (all, or a random sample
// of VerifySample) and counts those ok says are as they should be.
func (s *Suite) verifyCheck(ctx context.Context, what string, n int, id func(i int) string,
	ok func(i int, st *MessageStatus) string) Check {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	if s.cfg.VerifySample > 0 && s.cfg.VerifySample < n {
		rand.Shuffle(n, func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
		idx = idx[:s.cfg.VerifySample]
	}
	res := make([]string, len(idx))
	var live liveCounts
	if p := s.cfg.Progress; p != nil {
		p.Start("verify "+what, 0, uint64(len(idx)), &live)
	}
	parallel(ctx, len(idx), s.cfg.VerifyConcurrency, func(k int) {
		i := idx[k]
		st, found, err := s.api.Status(id(i))
		switch {
		case err != nil:
			res[k] = err.Error()
		case !found:
			res[k] = id(i) + " not found"
		default:
			res[k] = ok(i, &st)
		}
		live.requests.Add(1)
		live.messages.Add(1)
		if res[k] != "" {
			live.errors.Add(1)
		}
	})
	if p := s.cfg.Progress; p != nil {
		p.Stop()
	}
	c := Check{What: what, Want: int64(len(idx))}
	var bad []string
	for _, r := range res {
		if r == "" {
			c.Got++
		} else if len(bad) < 3 {
			bad = append(bad, r)
		}
	}
	c.OK = c.Got == c.Want && ctx.Err() == nil
	c.Detail = strings.Join(bad, "; ")
	return c
}
