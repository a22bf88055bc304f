package bench

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Source makes the requests of one load run and judges their answers. The
// load generator calls it from many workers at once: Build and Done of one
// worker are never concurrent, those of different workers are.
type Source interface {
	// Build fills req (already reset; the target's host is set after) as request
	// seq; seq counts from 0 over the whole run. It returns false when the
	// source has nothing more to send, which ends the run.
	Build(worker int, seq uint64, req *fasthttp.Request) bool
	// Done judges the answer to request seq and says how many messages it
	// carried (1 for a single send, the accepted count of a batch, the
	// statuses of a webhook), or why it failed. body is valid only during
	// the call.
	Done(worker int, seq uint64, status int, body []byte) (messages int, err error)
}

// LoadConfig describes one load run.
type LoadConfig struct {
	// Name labels the progress line.
	Name string
	// Target is the base URL ("http://127.0.0.1:18080").
	Target string
	// Concurrency is the number of workers, each with its own keep-alive
	// connection (64).
	Concurrency int
	// Duration ends the run (0: only the source or MaxRequests end it).
	Duration time.Duration
	// MaxRequests ends the run after so many requests (0: no limit).
	MaxRequests uint64
	// Rate paces the run at so many requests per second over all workers
	// (0: each worker sends its next request as soon as the last is
	// answered). Latency is timed from when a request actually went out.
	Rate float64
	// Timeout bounds one request (10 s).
	Timeout time.Duration
	// Progress shows a progress line on stderr (nil: none).
	Progress *Progress
}

func (c *LoadConfig) setDefaults() {
	if c.Concurrency == 0 {
		c.Concurrency = 64
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
}

// Validate reports the first setting that cannot work.
func (c LoadConfig) Validate() error {
	if _, err := hostOf(c.Target); err != nil {
		return err
	}
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("load %s: concurrency must be at least 1", c.Name)
	case c.Duration < 0 || c.Rate < 0 || c.Timeout < 0:
		return fmt.Errorf("load %s: duration, rate and timeout must not be negative", c.Name)
	case c.Duration == 0 && c.MaxRequests == 0:
		return fmt.Errorf("load %s: give a duration or a request count", c.Name)
	}
	return nil
}

// hostOf checks an http:// base URL and returns its host:port.
func hostOf(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("target %q must be an http:// URL with a host", target)
	}
	return u.Host, nil
}

// LoadResult is what one load run measured.
type LoadResult struct {
	Name        string
	Concurrency int
	// Elapsed is from the first request out to the last answer in.
	Elapsed time.Duration
	// Requests answered as the source wanted, and the messages they
	// carried; Errors counts the others by kind.
	Requests, Messages int64
	Errors             map[string]int64
	// Latency of the successful requests.
	Latency Histogram
}

// ErrorCount is the number of failed requests.
func (r *LoadResult) ErrorCount() int64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// RPS is successful requests per second.
func (r *LoadResult) RPS() float64 { return perSecond(r.Requests, r.Elapsed) }

// MPS is messages per second.
func (r *LoadResult) MPS() float64 { return perSecond(r.Messages, r.Elapsed) }

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// worker is one load worker's tallies; merged at the end.
type worker struct {
	hist     Histogram
	requests int64
	messages int64
	errors   map[string]int64
}

// Run drives src against cfg.Target until the duration passes, the source
// runs dry, MaxRequests are sent or ctx ends.
func Run(ctx context.Context, cfg LoadConfig, src Source) (*LoadResult, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, _ := hostOf(cfg.Target)
	hc := &fasthttp.HostClient{
		Addr:                host,
		MaxConns:            cfg.Concurrency,
		ReadTimeout:         cfg.Timeout,
		WriteTimeout:        cfg.Timeout,
		MaxIdleConnDuration: time.Minute,
		// The gateway's keep-alive connections are what is measured:
		// never close them for a slow answer.
		MaxConnWaitTimeout: cfg.Timeout,
	}
	defer hc.CloseIdleConnections()

	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var (
		seq      atomic.Uint64
		live     liveCounts
		wg       sync.WaitGroup
		workers  = make([]*worker, cfg.Concurrency)
		start    = time.Now()
		interval float64 // ns between requests when paced
	)
	if cfg.Rate > 0 {
		interval = float64(time.Second) / cfg.Rate
	}
	if p := cfg.Progress; p != nil {
		p.Start(cfg.Name, cfg.Duration, cfg.MaxRequests, &live)
		defer p.Stop()
	}
	var last atomic.Int64 // when the last answer came, ns since start
	for w := range workers {
		workers[w] = &worker{errors: map[string]int64{}}
		wg.Add(1)
		go func(w int, t *worker) {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for ctx.Err() == nil {
				n := seq.Add(1) - 1
				if cfg.MaxRequests > 0 && n >= cfg.MaxRequests {
					return
				}
				if interval > 0 && !sleepUntil(ctx, start.Add(time.Duration(float64(n)*interval))) {
					return
				}
				req.Reset()
				if !src.Build(w, n, req) {
					return
				}
				req.SetHost(host) // after Build: SetRequestURI resets it
				t0 := time.Now()
				err := hc.DoTimeout(req, resp, cfg.Timeout)
				lat := time.Since(t0)
				last.Store(int64(time.Since(start)))
				if err != nil {
					t.errors[classifyErr(err)]++
					live.errors.Add(1)
					continue
				}
				msgs, err := src.Done(w, n, resp.StatusCode(), resp.Body())
				if err != nil {
					t.errors[err.Error()]++
					live.errors.Add(1)
					continue
				}
				t.hist.Record(lat)
				t.requests++
				t.messages += int64(msgs)
				live.requests.Add(1)
				live.messages.Add(int64(msgs))
			}
		}(w, workers[w])
	}
	wg.Wait()
	res := &LoadResult{Name: cfg.Name, Concurrency: cfg.Concurrency, Errors: map[string]int64{},
		Elapsed: time.Duration(last.Load())}
	for _, t := range workers {
		res.Latency.Merge(&t.hist)
		res.Requests += t.requests
		res.Messages += t.messages
		for k, v := range t.errors {
			res.Errors[k] += v
		}
	}
	return res, nil
}

// liveCounts are the running totals the progress line shows.
type liveCounts struct {
	requests, messages, errors atomic.Int64
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// classifyErr names a transport error's kind, briefly, so that errors of
// one kind add up in the report.
func classifyErr(err error) string {
	switch {
	case errors.Is(err, fasthttp.ErrTimeout):
		return "timeout"
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return "no free connections"
	case errors.Is(err, fasthttp.ErrConnectionClosed):
		return "connection closed"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s, "dial") {
		return "dial: " + s[i+2:]
	}
	return s
}

// statusError is the error a Source returns for an unexpected answer: the
// status and the API's error code when the body has one.
func statusError(status int, body []byte) error {
	code := jsonStringField(body, "code")
	if code == "" {
		return errors.New("http " + strconv.Itoa(status))
	}
	return errors.New("http " + strconv.Itoa(status) + " " + code)
}
