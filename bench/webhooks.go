package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// simHold is the simulator's status delays while the webhooks scenario
// prepares its messages: long enough that the simulator posts none of
// their statuses itself (the scenario posts them).
var simHold = []byte(`{"sent_delay":"2h","delivered_delay":"2h","read_delay":"2h"}`)

// whMessage is a message the webhooks scenario reports on.
type whMessage struct {
	id        string
	seq       uint64
	pid       string
	delivered bool // a delivered status for it was posted (and answered 200)
	read      bool
}

// webhooks: Meta status webhooks, correctly signed, for messages the
// gateway sent: first one status per request, then WebhookBatch statuses
// per envelope; then every status must show in the message's status.
func (s *Suite) webhooks(ctx context.Context) error {
	if s.sim != nil {
		restore, err := s.holdSimulator()
		if err != nil {
			return err
		}
		defer restore()
	}
	n := s.cfg.WebhookMessages
	msgs, err := s.prepareSent(ctx, 2*n)
	if err != nil {
		return err
	}
	one, batched := msgs[:n], msgs[n:]

	// One status per request: delivered then read of each message.
	var oneBodies [][]byte
	var oneSigs []string
	var oneCounts []int
	now := time.Now().Unix()
	for i := range one {
		for _, st := range []string{"delivered", "read"} {
			b := AppendStatusEnvelope(nil, s.senders.Business(s.senders.sender(one[i].seq)),
				[]StatusItem{{ProviderID: one[i].pid, Status: st, Timestamp: now, Recipient: recipientDigits(s.base, one[i].seq)}})
			oneBodies = append(oneBodies, b)
			oneSigs = append(oneSigs, string(AppendSignature(nil, b, []byte(s.cfg.AppSecret))))
			oneCounts = append(oneCounts, 1)
		}
	}
	// Batched: per sender (an envelope is one number's), WebhookBatch
	// statuses each, a message's delivered before its read.
	bySender := map[int][]int{}
	for i := range batched {
		k := s.senders.sender(batched[i].seq)
		bySender[k] = append(bySender[k], i)
	}
	type item struct {
		msg    int
		status string
	}
	var bBodies [][]byte
	var bSigs []string
	var bCounts []int
	var bItems [][]item
	keys := make([]int, 0, len(bySender))
	for k := range bySender {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		var its []item
		for _, i := range bySender[k] {
			its = append(its, item{i, "delivered"}, item{i, "read"})
		}
		for len(its) > 0 {
			chunk := its[:min(s.cfg.WebhookBatch, len(its))]
			its = its[len(chunk):]
			sts := make([]StatusItem, len(chunk))
			for j, it := range chunk {
				m := &batched[it.msg]
				sts[j] = StatusItem{ProviderID: m.pid, Status: it.status, Timestamp: now, Recipient: recipientDigits(s.base, m.seq)}
			}
			b := AppendStatusEnvelope(nil, s.senders.Business(k), sts)
			bBodies = append(bBodies, b)
			bSigs = append(bSigs, string(AppendSignature(nil, b, []byte(s.cfg.AppSecret))))
			bCounts = append(bCounts, len(chunk))
			bItems = append(bItems, chunk)
		}
	}
	s.base += 100_000_000

	oneName := "webhooks/one-per-request"
	batchName := fmt.Sprintf("webhooks/batched-%d", s.cfg.WebhookBatch)
	ceilOne, err := s.ceiling(ctx, "http/webhook", func() (Ceiling, error) {
		return HTTPCeiling(ctx, "http/webhook", "bare fasthttp handler answering 200 to the same signed one-status webhooks, same load generator",
			s.load("", s.cfg.Concurrency, s.cfg.CeilingDuration, 0, 0), 200, []byte("EVENT_RECEIVED"),
			newWebhookSource(oneBodies, oneSigs, oneCounts, true))
	})
	if err != nil {
		return err
	}
	ceilBatch, err := s.ceiling(ctx, "http/webhook-batched", func() (Ceiling, error) {
		return HTTPCeiling(ctx, "http/webhook-batched", fmt.Sprintf("bare fasthttp handler answering 200 to the same signed %d-status webhooks; per message = statuses/s", s.cfg.WebhookBatch),
			s.load("", s.cfg.Concurrency, s.cfg.CeilingDuration, 0, 0), 200, []byte("EVENT_RECEIVED"),
			newWebhookSource(bBodies, bSigs, bCounts, true))
	})
	if err != nil {
		return err
	}

	before, err := s.ops.Scrape()
	if err != nil {
		return err
	}
	newBefore := before.Value("wagate_inbound_statuses_total", "result", "new")

	rOne := Result{Scenario: "webhooks", Name: oneName, Unit: "req/s",
		Goal: fmt.Sprintf("≥ %.0f%% of http/webhook with one status per request, every status applied", targetWebhookRatio*100)}
	rBatch := Result{Scenario: "webhooks", Name: batchName, Unit: "statuses/s"}
	srcOne := newWebhookSource(oneBodies, oneSigs, oneCounts, false)
	lOne, err := s.measure(ctx, s.load(oneName, s.cfg.Concurrency, s.cfg.Duration, uint64(len(oneBodies)), 0), srcOne, &rOne)
	if err != nil {
		return err
	}
	srcBatch := newWebhookSource(bBodies, bSigs, bCounts, false)
	lBatch, err := s.measure(ctx, s.load(batchName, s.cfg.Concurrency, s.cfg.Duration, uint64(len(bBodies)), 0), srcBatch, &rBatch)
	if err != nil {
		return err
	}
	postedAt := time.Now()
	for i := range oneBodies {
		if srcOne.posted[i].Load() {
			if i%2 == 0 {
				one[i/2].delivered = true
			} else {
				one[i/2].read = true
			}
		}
	}
	for i, its := range bItems {
		if srcBatch.posted[i].Load() {
			for _, it := range its {
				if it.status == "delivered" {
					batched[it.msg].delivered = true
				} else {
					batched[it.msg].read = true
				}
			}
		}
	}

	// The processor applies what the receiver stored: wait until it has
	// counted every posted status as new, or stops making progress.
	posted := lOne.Messages + lBatch.Messages
	applied, appliedAt := s.waitApplied(ctx, newBefore, float64(posted))

	rOne.fromLoad(lOne)
	rOne.Throughput = rOne.RPS
	rOne.compare(ceilOne, false)
	rBatch.fromLoad(lBatch)
	rBatch.Throughput = rBatch.MPS
	rBatch.compare(ceilBatch, true)
	rBatch.Notes = append(rBatch.Notes, fmt.Sprintf("%d statuses per envelope; latency is per envelope; ceiling per message = the bare handler's envelopes/s × statuses per envelope", s.cfg.WebhookBatch))
	for _, r := range []*Result{&rOne, &rBatch} {
		r.figure("statuses counted new by the processor (all sub-runs)", applied)
		r.figure("processor applied every status within (s after the last post)", appliedAt.Sub(postedAt).Seconds())
	}
	checkOf := func(ms []whMessage) Check {
		var want int
		for i := range ms {
			if ms[i].delivered || ms[i].read {
				want++
			}
		}
		idx := make([]int, 0, want)
		for i := range ms {
			if ms[i].delivered || ms[i].read {
				idx = append(idx, i)
			}
		}
		return s.verifyCheck(ctx, "messages whose posted statuses all show (delivered_at, read_at, status read)", len(idx),
			func(i int) string { return ms[idx[i]].id },
			func(i int, st *MessageStatus) string {
				m := &ms[idx[i]]
				switch {
				case m.delivered && st.DeliveredAt == nil:
					return m.id + " has no delivered_at"
				case m.read && (st.ReadAt == nil || st.Status != "read"):
					return m.id + " is " + st.Status + " without read_at"
				}
				return ""
			})
	}
	rOne.Checks = append(rOne.Checks, checkOf(one))
	rBatch.Checks = append(rBatch.Checks, checkOf(batched))
	rOne.judge(ceilOne == nil || rOne.Ratio >= targetWebhookRatio)
	s.report.Results = append(s.report.Results, rOne, rBatch)
	return nil
}

// holdSimulator stops the simulator from posting statuses of the messages
// about to be sent, and returns what puts its settings back.
func (s *Suite) holdSimulator() (func(), error) {
	status, old, err := s.sim.Do("GET", pathSimConfig, nil)
	if err != nil || status != 200 {
		return nil, fmt.Errorf("simulator config: %v (status %d)", err, status)
	}
	var cur map[string]any
	if err := json.Unmarshal(old, &cur); err != nil {
		return nil, fmt.Errorf("simulator config: %w", err)
	}
	restore := map[string]any{}
	for _, k := range []string{"sent_delay", "delivered_delay", "read_delay"} {
		if v, ok := cur[k]; ok {
			restore[k] = v
		}
	}
	if status, _, err := s.sim.Do("POST", pathSimConfig, simHold); err != nil || status != 200 {
		return nil, fmt.Errorf("simulator config: %v (status %d)", err, status)
	}
	s.note("simulator holds its own statuses for 2 h meanwhile (the webhooks scenario posts them itself; the asynq peer has no status loop)")
	return func() {
		b, _ := json.Marshal(restore)
		s.sim.Do("POST", pathSimConfig, b) //nolint:errcheck // best effort
	}, nil
}

// prepareSent sends n messages through the API (untimed) and waits until
// the dispatcher has sent every one, so that each has its provider id.
func (s *Suite) prepareSent(ctx context.Context, n int) ([]whMessage, error) {
	src := newSendSource(s.cfg.Token, s.senders, s.base, s.cfg.Text, s.cfg.Concurrency, true)
	l, err := Run(ctx, s.load("webhooks: prepare", s.cfg.Concurrency, 0, uint64(n), 0), src)
	if err != nil {
		return nil, err
	}
	acc := src.accepted()
	if len(acc) < n {
		return nil, fmt.Errorf("prepare: %d of %d sends accepted (errors %v)", len(acc), n, l.Errors)
	}
	sort.Slice(acc, func(a, b int) bool { return acc[a].seq < acc[b].seq })
	msgs := make([]whMessage, len(acc))
	for i, a := range acc {
		msgs[i] = whMessage{id: a.id, seq: a.seq}
	}
	s.note("waiting until the dispatcher has sent all %d messages", n)
	deadline := time.Now().Add(5 * time.Minute)
	pending := make([]int, len(msgs))
	for i := range pending {
		pending[i] = i
	}
	for len(pending) > 0 {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("prepare: %d messages not sent after 5 minutes", len(pending))
		}
		time.Sleep(time.Second)
		still := make([]bool, len(pending))
		parallel(ctx, len(pending), s.cfg.VerifyConcurrency, func(k int) {
			m := &msgs[pending[k]]
			st, found, err := s.api.Status(m.id)
			if err != nil || !found || st.ProviderMessageID == nil || st.Status != "sent" {
				still[k] = true
				return
			}
			m.pid = *st.ProviderMessageID
		})
		next := pending[:0]
		for k, i := range pending {
			if still[k] {
				next = append(next, i)
			}
		}
		pending = next
		s.note("%d messages still to be sent", len(pending))
	}
	return msgs, nil
}

// waitApplied waits until the gateway counted want more statuses new than
// before, or their count stops moving for 30 s; it returns the count and
// when it got there.
func (s *Suite) waitApplied(ctx context.Context, before, want float64) (float64, time.Time) {
	last, lastMove := -1.0, time.Now()
	for ctx.Err() == nil {
		m, err := s.ops.Scrape()
		if err == nil {
			got := m.Value("wagate_inbound_statuses_total", "result", "new") - before
			if got >= want {
				return got, time.Now()
			}
			if got != last {
				last, lastMove = got, time.Now()
			}
		}
		if time.Since(lastMove) > 30*time.Second {
			return last, time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return last, time.Now()
}
