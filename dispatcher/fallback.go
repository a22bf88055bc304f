package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/store/redis"
)

// fallbackConcurrency bounds the SMS fallbacks of a shard under way.
const fallbackConcurrency = 8

// fallbackLoop sends the due SMS fallbacks of the shard: for messages that
// failed on WhatsApp, and for those not delivered within their
// fallback_after (seed 004's rule). Both outcomes stay recorded: the
// WhatsApp status goes on, and a "fallback" event tells of the SMS. It
// sleeps until the next check is due, woken early when this instance
// schedules one, and looks at least every Rescan for those a provider's
// "failed" status scheduled.
func (w *shardWorker) fallbackLoop() {
	d := w.d
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		case <-w.fallbacks:
		}
		t.Reset(max(w.fallbackRound(), d.cfg.Tick))
	}
}

// fallbackRound sends the due fallbacks, and returns how long to sleep.
func (w *shardWorker) fallbackRound() time.Duration {
	d := w.d
	due, ok, err := d.store.NextFallbackDue(w.ctx, w.shard)
	switch {
	case err != nil:
		return time.Second
	case !ok:
		return d.cfg.Rescan
	case due.After(time.Now()):
		return min(time.Until(due), d.cfg.Rescan)
	}
	w.sendFallbacks()
	return 0 // the next one may be due already
}

// sendFallbacks sends up to 100 due fallbacks.
func (w *shardWorker) sendFallbacks() {
	d := w.d
	ids, err := d.store.DueFallbacks(w.ctx, w.shard, 100)
	if err != nil || len(ids) == 0 {
		return
	}
	// Only the shard's owner may send: a fallback is a provider send.
	if ok, err := d.store.HoldsLease(w.ctx, w.lease); err != nil || !ok {
		return
	}
	var mu sync.Mutex
	var checked []string
	var wg sync.WaitGroup
	slots := make(chan struct{}, fallbackConcurrency)
	for _, id := range ids {
		slots <- struct{}{}
		wg.Add(1)
		go func(id string) {
			defer func() { <-slots; wg.Done() }()
			if w.fallback(id) {
				mu.Lock()
				checked = append(checked, id)
				mu.Unlock()
			}
		}(id)
	}
	wg.Wait()
	if len(checked) > 0 {
		d.store.FallbackChecked(w.ctx, w.shard, checked...)
	}
}

// fallback sends one message's SMS if it still needs it, and reports
// whether the check is done (false: try again later).
func (w *shardWorker) fallback(id string) bool {
	d := w.d
	st, err := d.store.State(w.ctx, id)
	if errors.Is(err, redis.ErrNotFound) {
		return true
	}
	if err != nil {
		return false
	}
	switch {
	case st.FallbackMS != 0, st.FallbackText == "",
		st.Status == message.StatusDelivered, st.Status == message.StatusRead:
		return true
	}
	r, ok := d.router.Route(st.Sender)
	if !ok || r.SMS == nil {
		d.log.Warn("a message needs its SMS fallback but its sender has no SMS route", "message", id, "sender", st.Sender)
		return true
	}
	reason := "not_delivered"
	if st.Status == message.StatusFailed {
		reason = "failed"
	}
	up, _, _ := d.breakerFor(r.SMS).allow()
	if up == nil {
		d.store.RecheckFallback(w.ctx, w.shard, id, time.Now().Add(d.cfg.Breaker.OpenFor).UnixMilli())
		return false
	}
	body, _ := jsonString(st.FallbackText)
	m := &message.Message{ID: id, TenantID: st.TenantID, Sender: st.Sender, Recipient: st.Recipient,
		Type: message.TypeText, Content: append(append([]byte(`{"body":`), body...), '}')}
	ctx, cancel := context.WithTimeout(w.ctx, d.cfg.SendTimeout)
	res, err := r.SMS.Send(ctx, m)
	cancel()
	d.breakerFor(r.SMS).report(up, providerUp(err))
	if err != nil {
		if provider.ClassOf(err) == provider.ClassPermanent {
			d.log.Warn("SMS fallback refused", "message", id, "err", err)
			return true
		}
		d.store.RecheckFallback(w.ctx, w.shard, id, time.Now().Add(30*time.Second).UnixMilli())
		return false
	}
	d.m.fallbacks.WithLabelValues(string(StepSMS), reason).Inc()
	_, err = d.store.ApplyStatuses(w.ctx, []redis.StatusApply{{MessageID: id, Result: redis.Result{
		Status: message.StatusFallback, AtMS: time.Now().UnixMilli(), Provider: r.SMS.Name(),
		ProviderMessageID: res.ProviderMessageID, Channel: "sms"}}})
	return err == nil
}

// jsonString is s as a JSON string literal.
func jsonString(s string) ([]byte, error) { return json.Marshal(s) }
