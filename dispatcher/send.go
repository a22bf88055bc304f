package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/store/redis"
)

// route decides how j goes now: through the sender's primary provider, or,
// while its breaker is open, the first usable step of the fallback chain.
// When no step can carry j, it returns what to wait for (the breaker's next
// change, or when it lets probes through): the pump holds without polling.
func (p *pump) route(j *job) (<-chan struct{}, time.Time) {
	d := p.w.d
	r, ok := d.router.Route(p.sender)
	j.via = ""
	if !ok {
		return nil, time.Time{} // send fails it: no route
	}
	b := d.breakerFor(r.Primary)
	if !b.open() {
		return nil, time.Time{}
	}
chain:
	for _, step := range r.Fallback {
		switch {
		case step == StepSecondary && r.Secondary != nil && !j.noSecondary && !d.breakerFor(r.Secondary).open(),
			step == StepSMS && r.SMS != nil && j.hasFallback && !d.breakerFor(r.SMS).open():
			j.via = step
			return nil, time.Time{}
		case step == StepHold:
			break chain
		}
	}
	_, wait, until := b.allow() // open: refused without using a probe
	return wait, until
}

// send runs in its own goroutine: one provider call for j and its record.
func (p *pump) send(j *job) {
	p.done <- p.deliver(j)
}

// deliver begins j's message, sends it, and records what came of it.
func (p *pump) deliver(j *job) outcome {
	d := p.w.d
	r, routed := d.router.Route(p.sender)
	var prov provider.Provider
	var up func(bool)
	if routed {
		switch j.via {
		case StepSecondary:
			prov = r.Secondary
		case StepSMS:
			prov = r.SMS
		default:
			prov = r.Primary
		}
		var until time.Time
		if up, _, until = d.breakerFor(prov).allow(); up == nil {
			// Half-open with its probes out: nothing was written; wait.
			d.m.sends.WithLabelValues(prov.Name(), "held").Inc()
			if j.via == "" && d.breakerFor(prov).open() {
				// The breaker opened after the job was routed to the
				// primary: route it again now, the fallback chain may
				// carry it (the pump waits on the breaker if none can).
				until = time.Now()
			}
			return outcome{j: j, kind: outRetry, due: until}
		}
	}
	if j.portfolioHeld {
		// Held by its portfolio's limit: looked at again without writing
		// anything until it may go (its hold was recorded once).
		if due, _, held := p.portfolioHold(&j.rj.Msg); held {
			if up != nil {
				up(true)
			}
			return outcome{j: j, kind: outRetry, due: due}
		}
	}
	ctx := context.Background() // a call under way is finished and recorded, even when stopping
	begun, err := d.store.Begin(ctx, j.rj)
	if err != nil || begun != redis.BeginGo {
		if up != nil {
			up(true) // no call was made: no verdict on the provider
		}
		switch {
		case errors.Is(err, redis.ErrFenced):
			return outcome{j: j, kind: outFenced}
		case err != nil:
			d.log.Warn("begin a send", "message", j.msgID, "err", err)
			return outcome{j: j, kind: outRetry, due: time.Now().Add(time.Second)}
		case begun == redis.BeginLater:
			return outcome{j: j, kind: outRetry, due: j.rj.RetryDue}
		}
		return outcome{j: j, kind: outDone}
	}
	rj := j.rj
	m := &rj.Msg
	if rj.Redelivered {
		// The previous owner died after marking it "sending": the provider
		// may have it already. This is the one duplicate window.
		d.m.duplicates.Inc()
	}
	if m.Attempt-rj.AttemptBase == 1 {
		d.m.queueTime.WithLabelValues(string(m.Lane)).Observe(float64(time.Now().UnixMilli()-rj.QueuedMS) / 1000)
	}
	if !routed {
		d.m.sends.WithLabelValues("none", "no_route").Inc()
		return p.record(j, &redis.Result{Status: message.StatusFailed, AtMS: time.Now().UnixMilli(),
			ErrorTitle: "no provider is configured for sender " + m.Sender}, false)
	}
	if c, ok := prov.(provider.Carrier); ok && j.via == StepSecondary && !c.Carries(m) {
		// The secondary cannot send this kind of message: no call, no
		// verdict on it, no attempt spent; the chain's next step takes it
		// (SMS with a fallback text, else the hold).
		up(true)
		j.noSecondary = true
		d.m.fallbacks.WithLabelValues(string(StepSecondary), "cannot_carry").Inc()
		return p.retry(j, time.Now(), &redis.Result{Status: message.StatusFailed, AtMS: time.Now().UnixMilli(), Provider: prov.Name(),
			ErrorTitle: prov.Name() + " cannot carry a " + string(m.Type) + " message: passed to the next fallback step"}, true)
	}
	if j.via != StepSMS {
		if due, why, held := p.portfolioHold(m); held {
			up(true)
			if !j.portfolioHeld {
				d.m.portfolioHeld.WithLabelValues(d.cfg.Portfolios[m.Sender].ID).Inc()
			}
			j.portfolioHeld = true
			return p.retry(j, due, &redis.Result{Status: message.StatusFailed, AtMS: time.Now().UnixMilli(), Provider: prov.Name(),
				ErrorTitle: why}, true)
		}
		j.portfolioHeld = false
	}
	msg := m
	if j.via == StepSMS {
		msg = smsMessage(rj)
	}
	cctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
	start := time.Now()
	res, err := prov.Send(cctx, msg)
	cancel()
	d.m.duration.WithLabelValues(prov.Name()).Observe(time.Since(start).Seconds())
	counts := d.breakerFor(prov).report(up, providerUp(err))
	now := time.Now()
	if err == nil {
		d.m.sends.WithLabelValues(prov.Name(), "sent").Inc()
		r := &redis.Result{Status: message.StatusSent, AtMS: now.UnixMilli(), Provider: prov.Name(), ProviderMessageID: res.ProviderMessageID}
		switch j.via {
		case StepSecondary:
			d.m.fallbacks.WithLabelValues(string(StepSecondary), "breaker_open").Inc()
		case StepSMS:
			d.m.fallbacks.WithLabelValues(string(StepSMS), "breaker_open").Inc()
			r.Status, r.Channel = message.StatusFallback, "sms"
		}
		return p.record(j, r, false)
	}
	return p.failed(j, prov, err, now, counts)
}

// failed decides what a provider's refusal means for j (PROVIDERS.md's
// classes) and records it. counts is false when a transient failure is the
// provider's rather than the message's (see breaker.report).
func (p *pump) failed(j *job, prov provider.Provider, err error, now time.Time, counts bool) outcome {
	d := p.w.d
	rj := j.rj
	var pe *provider.Error
	if !errors.As(err, &pe) {
		pe = &provider.Error{Class: provider.ClassRetry, Title: err.Error()}
	}
	r := &redis.Result{Status: message.StatusFailed, AtMS: now.UnixMilli(), Provider: prov.Name(),
		ErrorCode: pe.Code, ErrorTitle: failureTitle(pe)}
	retry := func(outcomeName string, due time.Time, uncounted bool, hold time.Duration) outcome {
		if rj.ExpiresMS > 0 && due.UnixMilli() > rj.ExpiresMS {
			// The next try would come after the message's validity.
			d.m.sends.WithLabelValues(prov.Name(), "failed").Inc()
			r.Status = message.StatusExpired
			r.ErrorTitle = "validity passed before a retry: " + r.ErrorTitle
			return p.record(j, r, false)
		}
		if due.Sub(time.UnixMilli(rj.QueuedMS)) > d.cfg.MaxAge {
			// Attempts that do not count (throttling, a held sender, the
			// marketing cap) must not go on for ever either.
			d.m.sends.WithLabelValues(prov.Name(), "failed").Inc()
			r.ErrorTitle = "gave up retrying after " + d.cfg.MaxAge.String() + ": " + r.ErrorTitle
			return p.record(j, r, true)
		}
		d.m.sends.WithLabelValues(prov.Name(), outcomeName).Inc()
		o := p.retry(j, due, r, uncounted)
		o.holdFor = hold
		if hold > 0 {
			o.holdReason = "hold"
			if pe.Class == provider.ClassStopSender {
				o.holdReason = "stop"
			}
		}
		return o
	}
	switch pe.Class {
	case provider.ClassThrottle:
		// The provider is pacing the number: slow it down, try again, and
		// do not count it against the message.
		p.lim.Throttled(now, pe.RetryAfter)
		return retry("throttled", now.Add(max(pe.RetryAfter, time.Second)), true, 0)
	case provider.ClassPairThrottle:
		return retry("pair_throttled", p.pairs.Defer(j.recipient, now, pe.RetryAfter), true, 0)
	case provider.ClassHoldSender, provider.ClassStopSender:
		hold := d.cfg.HoldFor
		if pe.Class == provider.ClassStopSender {
			hold = d.cfg.StopFor
		}
		d.log.Error("provider stopped a sender; holding it", "sender", p.sender, "provider", prov.Name(),
			"for", hold, "code", pe.Code, "error", pe.Title)
		return retry("held", now.Add(hold), true, hold)
	case provider.ClassNoRetry24h:
		return retry("retry", now.Add(24*time.Hour), true, 0)
	case provider.ClassRetry:
		limit := d.cfg.MaxAttempts
		if rj.MaxAttempts > 0 {
			limit = min(limit, rj.MaxAttempts)
		}
		if !counts && limit > 1 {
			// The provider is down: the message keeps its attempts. While
			// the breaker is open the pump holds it on the breaker (or a
			// fallback carries it); else it backs off as if counted, so a
			// lone message does not hammer a provider that is down.
			j.downs++
			due := now
			if d.breakerFor(prov).closed() {
				due = now.Add(p.backoff(rj.Counted()-1+j.downs, pe.RetryAfter))
			}
			return retry("outage", due, true, 0)
		}
		if rj.Counted() < limit {
			return retry("retry", now.Add(p.backoff(rj.Counted()+j.downs, pe.RetryAfter)), false, 0)
		}
		d.m.sends.WithLabelValues(prov.Name(), "failed").Inc()
		return p.record(j, r, true) // retries exhausted: dead letter
	}
	d.m.sends.WithLabelValues(prov.Name(), "failed").Inc()
	return p.record(j, r, false)
}

// smsMessage is the SMS carrying rj's fallback text.
func smsMessage(rj *redis.Job) *message.Message {
	m := rj.Msg
	m.Type = message.TypeText
	body, _ := jsonString(rj.FallbackText)
	m.Content = append(append([]byte(`{"body":`), body...), '}')
	return &m
}

func failureTitle(pe *provider.Error) string {
	if pe.Details != "" && pe.Details != pe.Title {
		return pe.Title + ": " + pe.Details
	}
	return pe.Title
}

// backoff is the wait before the next attempt after counted ones:
// exponential with full jitter, or the provider's Retry-After when longer.
func (p *pump) backoff(counted int, retryAfter time.Duration) time.Duration {
	c := p.w.d.cfg
	ceil := c.RetryBase << min(max(counted-1, 0), 20)
	if ceil > c.RetryMax || ceil <= 0 {
		ceil = c.RetryMax
	}
	wait := c.RetryBase/2 + time.Duration(rand.Int64N(int64(ceil)))
	return max(wait, retryAfter)
}

// record writes j's outcome; dlq sends it to the dead-letter stream.
func (p *pump) record(j *job, r *redis.Result, dlq bool) outcome {
	opts := redis.FinishOptions{DeadLetter: dlq, NoReceipts: j.via == StepSecondary && !p.w.d.cfg.Reporting[r.Provider]}
	o := p.persist(j, outcome{j: j, kind: outDone}, func(ctx context.Context) error { return p.w.d.store.Finish(ctx, j.rj, r, opts) })
	if o.kind == outDone && j.hasFallback {
		// Finish may have scheduled its fallback check: the shard's
		// fallback loop sleeps until the next one it knows of.
		poke(p.w.fallbacks)
	}
	return o
}

func (p *pump) retry(j *job, due time.Time, r *redis.Result, uncounted bool) outcome {
	return p.persist(j, outcome{j: j, kind: outRetry, due: due}, func(ctx context.Context) error {
		return p.w.d.store.Retry(ctx, j.rj, due.UnixMilli(), r, uncounted)
	})
}

// persist runs a state write, retrying while Redis is unavailable: giving
// up would leave a sent message to be sent again. It stops when the write
// is fenced (the shard has a new owner, who takes the message over) or the
// shard is no longer this instance's (its lease ran out meanwhile).
func (p *pump) persist(j *job, ok outcome, op func(context.Context) error) outcome {
	d := p.w.d
	wait := 50 * time.Millisecond
	failing := false
	for {
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.RecordTimeout)
		err := op(ctx)
		cancel()
		switch {
		case err == nil:
			if failing {
				d.log.Info("recording send outcomes works again", "sender", p.sender)
			}
			return ok
		case errors.Is(err, redis.ErrFenced):
			return outcome{j: j, kind: outFenced}
		case p.w.lost.Load():
			d.log.Error("cannot record a send's outcome and the shard is lost; its next owner sends the message again",
				"message", j.msgID, "err", err)
			return outcome{j: j, kind: outFenced}
		}
		if !failing {
			d.log.Warn("recording a send's outcome fails; retrying", "message", j.msgID, "err", err)
			failing = true
		}
		time.Sleep(wait)
		wait = min(wait*2, 2*time.Second)
	}
}

// portfolioHold admits m under its sender's portfolio messaging limit (a
// template to a guest whose window is closed starts a conversation and
// counts). When m must wait it returns when to look again and why.
func (p *pump) portfolioHold(m *message.Message) (time.Time, string, bool) {
	d := p.w.d
	pf, ok := d.cfg.Portfolios[m.Sender]
	if !ok || m.Type != message.TypeTemplate {
		return time.Time{}, "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.RecordTimeout)
	a, err := d.store.AdmitBusinessInitiated(ctx, pf.ID, m.Sender, m.Recipient, pf.Limit)
	cancel()
	now := time.Now()
	if err != nil {
		// Unknown: wait rather than risk a send Meta would refuse and
		// count against the portfolio's quality.
		d.log.Warn("portfolio messaging limit", "portfolio", pf.ID, "err", err)
		return now.Add(time.Second), "portfolio " + pf.ID + ": its messaging limit could not be checked", true
	}
	if a.InWindow {
		return time.Time{}, "", false
	}
	d.m.portfolioCounted.WithLabelValues(pf.ID).Set(float64(a.Counted))
	d.m.portfolioLimit.WithLabelValues(pf.ID).Set(float64(a.Limit))
	if a.OK {
		return time.Time{}, "", false
	}
	due := now.Add(d.cfg.PortfolioRecheck)
	if !a.Until.IsZero() && a.Until.Before(due) {
		due = a.Until
	}
	return due, fmt.Sprintf("portfolio %s is at its messaging limit (%d new guests in 24 hours): held, at the latest until %s",
		pf.ID, a.Limit, a.Until.UTC().Format(time.RFC3339)), true
}
