package dispatcher

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/store/redis"
)

// worker drains one shard. Its run loop reads; each send runs in its own
// goroutine, at most cfg.Concurrency at once.
type worker struct {
	d     *Dispatcher
	shard int
	slots chan struct{}
}

func newWorker(d *Dispatcher, shard int) *worker {
	return &worker{d: d, shard: shard, slots: make(chan struct{}, d.cfg.Concurrency)}
}

func (w *worker) run() {
	d := w.d
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-d.stop
		cancel()
	}()

	var pending redis.PendingCursor // first take back what this consumer held before a restart
	lastReclaim := d.now()
	failing := false
	var jobs []*redis.Job
	for ctx.Err() == nil {
		free := cap(w.slots) - len(w.slots)
		if free == 0 {
			// All slots busy: wait for one rather than read what we
			// cannot start.
			select {
			case w.slots <- struct{}{}:
				<-w.slots
			case <-ctx.Done():
			}
			continue
		}
		jobs = jobs[:0]
		var err error
		if _, err = d.store.Promote(ctx, w.shard, 1000); err == nil {
			if d.now().Sub(lastReclaim) > d.cfg.ReclaimIdle/2 {
				lastReclaim = d.now()
				jobs, err = d.store.Reclaim(ctx, w.shard, d.cfg.Consumer, d.cfg.ReclaimIdle, free, jobs)
			}
		}
		if err == nil && len(jobs) == 0 {
			n := min(free, d.cfg.ReadCount)
			if !pending.Done {
				jobs, err = d.store.ClaimPending(ctx, w.shard, d.cfg.Consumer, n, &pending, jobs)
			} else {
				jobs, err = d.store.Claim(ctx, w.shard, d.cfg.Consumer, n, d.cfg.Block, jobs)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if !failing {
				d.log.Warn("reading the queue fails; retrying", "shard", w.shard, "err", err)
				failing = true
			}
			sleepCtx(ctx, time.Second)
			continue
		}
		if failing {
			d.log.Info("reading the queue works again", "shard", w.shard)
			failing = false
		}
		for _, j := range jobs {
			w.slots <- struct{}{}
			go w.send(j)
		}
	}
	// Wait for the sends in flight: they record their outcome and ack.
	for i := 0; i < cap(w.slots); i++ {
		w.slots <- struct{}{}
	}
}

// send makes one provider call for j and records what came of it.
func (w *worker) send(j *redis.Job) {
	defer func() { <-w.slots }()
	d := w.d
	m := &j.Msg
	if j.Redelivered {
		// The previous holder died after marking it "sending": the provider
		// may have it already. This is the one duplicate window.
		d.m.duplicates.Inc()
	}
	if m.Attempt == 1 {
		d.m.queueTime.WithLabelValues(string(m.Lane)).Observe(float64(d.now().UnixMilli()-j.QueuedMS) / 1000)
	}
	// Sends are not cut short by shutdown: a call under way is finished
	// and recorded, bounded by the send timeout.
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.SendTimeout)
	defer cancel()

	p, ok := d.router.Route(m.Sender)
	if !ok {
		d.m.sends.WithLabelValues("none", "no_route").Inc()
		w.record(j, &redis.Result{Status: message.StatusFailed, AtMS: d.now().UnixMilli(),
			ErrorTitle: "no provider is configured for sender " + m.Sender})
		return
	}
	if d.limiter != nil {
		if err := d.limiter.Wait(ctx, m.Sender); err != nil {
			w.retry(j, p.Name(), d.now().Add(d.cfg.RetryBase), &provider.Error{Class: provider.ClassThrottle, Title: "rate limiter: " + err.Error()}, true)
			return
		}
	}
	d.m.inFlight.Inc()
	start := d.now()
	res, err := p.Send(ctx, m)
	d.m.duration.WithLabelValues(p.Name()).Observe(d.now().Sub(start).Seconds())
	d.m.inFlight.Dec()
	if err == nil {
		d.m.sends.WithLabelValues(p.Name(), "sent").Inc()
		w.record(j, &redis.Result{Status: message.StatusSent, AtMS: d.now().UnixMilli(),
			Provider: p.Name(), ProviderMessageID: res.ProviderMessageID})
		return
	}
	var pe *provider.Error
	if !errors.As(err, &pe) {
		pe = &provider.Error{Class: provider.ClassRetry, Title: err.Error()}
	}
	switch pe.Class {
	case provider.ClassThrottle, provider.ClassPairThrottle:
		// The provider is pacing us: slow the sender and try again, without
		// using up the message's retry budget.
		if d.limiter != nil {
			d.limiter.Throttled(m.Sender, pe.RetryAfter)
		}
		w.retry(j, p.Name(), d.now().Add(max(pe.RetryAfter, d.cfg.RetryBase)), pe, true)
		return
	case provider.ClassRetry:
		if counted := m.Attempt - j.Throttled; counted < d.cfg.MaxAttempts {
			due := d.now().Add(w.backoff(counted, pe.RetryAfter))
			w.retry(j, p.Name(), due, pe, false)
			return
		}
	}
	d.m.sends.WithLabelValues(p.Name(), "failed").Inc()
	w.record(j, &redis.Result{Status: message.StatusFailed, AtMS: d.now().UnixMilli(), Provider: p.Name(),
		ErrorCode: pe.Code, ErrorTitle: failureTitle(pe)})
}

func failureTitle(pe *provider.Error) string {
	if pe.Details != "" && pe.Details != pe.Title {
		return pe.Title + ": " + pe.Details
	}
	return pe.Title
}

// backoff is the wait before attempt+1: exponential with full jitter, or
// the provider's Retry-After when it is longer.
func (w *worker) backoff(attempt int, retryAfter time.Duration) time.Duration {
	c := w.d.cfg
	ceil := c.RetryBase << min(attempt-1, 20)
	if ceil > c.RetryMax || ceil <= 0 {
		ceil = c.RetryMax
	}
	wait := c.RetryBase/2 + time.Duration(rand.Int64N(int64(ceil)))
	return max(wait, retryAfter)
}

// record writes j's outcome, retrying while Redis is unavailable: giving up
// early would leave a sent message to be sent again.
func (w *worker) record(j *redis.Job, r *redis.Result) {
	w.persist(j, func(ctx context.Context) error { return w.d.store.Finish(ctx, j, r) })
}

func (w *worker) retry(j *redis.Job, providerName string, due time.Time, pe *provider.Error, uncounted bool) {
	outcome := "retry"
	if uncounted {
		outcome = "throttled"
	}
	w.d.m.sends.WithLabelValues(providerName, outcome).Inc()
	r := &redis.Result{ErrorCode: pe.Code, ErrorTitle: failureTitle(pe)}
	w.persist(j, func(ctx context.Context) error { return w.d.store.Retry(ctx, j, due.UnixMilli(), r, uncounted) })
}

func (w *worker) persist(j *redis.Job, op func(context.Context) error) {
	deadline := w.d.now().Add(w.d.cfg.RecordTimeout)
	wait := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := op(ctx)
		cancel()
		if err == nil {
			return
		}
		if w.d.now().After(deadline) {
			w.d.log.Error("cannot record a send outcome; the message will be redelivered", "message", j.Msg.ID, "err", err)
			return
		}
		time.Sleep(wait)
		wait = min(wait*2, 2*time.Second)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
