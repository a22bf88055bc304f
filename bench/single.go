package bench

import (
	"context"
	"fmt"
	"time"
)

// Targets (issue 14 for single and bulk, issue 5 for the rest).
const (
	// single: at least targetPeerRatio times the asynq peer's req/s and
	// targetHTTPRatio of the bare fasthttp handler (http/send), p99 under
	// targetP99, Redis at most targetRedisSend µs per accepted send.
	targetPeerRatio = 2.0
	targetHTTPRatio = 0.35
	// webhooks (issue 5): targetWebhookRatio of http/webhook.
	targetWebhookRatio = 0.60
	targetP99          = 10 * time.Millisecond
	targetRedisSend    = 25.0
	// bulk: at least targetBulkRatio of the pipelined XADD ceiling,
	// Redis at most targetRedisBulk µs per message.
	targetBulkRatio = 0.50
	targetRedisBulk = 3.0
	targetE2EMPS    = 10_000
	// e2e: at least targetE2EPeerRatio times the asynq peer's
	// dispatch-only rate (issue "The status loop").
	targetE2EPeerRatio = 1.0
	targetE2ESustain   = 60 * time.Second
	targetBacklogRSS   = 300 << 20
	targetBacklogMsgs  = 1_000_000
)

// single: concurrent messages/send over keep-alive connections, spread
// over the numbers, then every accepted message (or a sample) is looked
// up through the status endpoint, which reads Redis.
func (s *Suite) single(ctx context.Context) error {
	ceil, err := s.httpSendCeiling(ctx)
	if err != nil {
		return err
	}
	src := newSendSource(s.cfg.Token, s.senders, s.base, s.cfg.Text, s.cfg.Concurrency, true)
	s.base += 100_000_000
	r := Result{Scenario: "single", Name: "single", Unit: "req/s",
		Goal: fmt.Sprintf("≥ %.0f× the asynq peer, ≥ %.0f%% of http/send, p99 < %d ms, Redis ≤ %.0f µs per send, every accepted message in Redis",
			targetPeerRatio, targetHTTPRatio*100, targetP99.Milliseconds(), targetRedisSend)}
	l, err := s.measure(ctx, s.load("single", s.cfg.Concurrency, s.cfg.Duration, 0, 0), src, &r)
	if err != nil {
		return err
	}
	r.fromLoad(l)
	r.Throughput = r.RPS
	r.compare(ceil, false)
	acc := src.accepted()
	r.Checks = append(r.Checks, s.verifyCheck(ctx, "accepted messages the status endpoint answers (from Redis)", len(acc),
		func(i int) string { return acc[i].id },
		func(i int, st *MessageStatus) string {
			if st.MessageID != acc[i].id {
				return "status of " + acc[i].id + " names " + st.MessageID
			}
			return ""
		}))
	p99 := time.Duration(0)
	if r.Latency != nil {
		p99 = time.Duration(r.Latency.P99 * float64(time.Millisecond))
	}
	if ceil == nil {
		r.Notes = append(r.Notes, "no ceiling measured (-no-ceilings): the ratio is not judged")
	}
	peerOK := true
	if s.cfg.Peer != "" {
		peer, err := s.peerRun(ctx)
		if err != nil {
			return err
		}
		x := r.Throughput / peer.Throughput
		r.figure("× the asynq peer's req/s", x)
		r.Notes = append(r.Notes, fmt.Sprintf("%.2f× the asynq peer (%.0f req/s, same load, same Redis, same run)", x, peer.Throughput))
		peerOK = x >= targetPeerRatio
	} else {
		r.Notes = append(r.Notes, "no peer measured (-peer): the ratio to it is not judged")
	}
	redisOK := true
	if us, ok := r.Figures["Redis commands per message (µs, commandstats)"]; ok {
		redisOK = us <= targetRedisSend
	}
	r.judge(ceil == nil || r.Ratio >= targetHTTPRatio, r.Latency != nil && p99 < targetP99, peerOK, redisOK)
	s.report.Results = append(s.report.Results, r)
	return nil
}

// peerRun drives the single scenario's load at the peer gateway (-peer:
// bench/peers/asynq, net/http + asynq + x/time/rate against the same
// Redis), right after wagate's run, and records it as a result of its own.
func (s *Suite) peerRun(ctx context.Context) (*Result, error) {
	src := newSendSource(s.cfg.Token, s.senders, s.base, s.cfg.Text, s.cfg.Concurrency, false)
	s.base += 100_000_000
	r := Result{Scenario: "single", Name: "single/asynq-peer", Unit: "req/s",
		Goal: "the gateway a Go team would write instead (bench/peers/asynq), for comparison"}
	lc := s.load("single/asynq-peer", s.cfg.Concurrency, s.cfg.Duration, 0, 0)
	lc.Target = s.cfg.Peer
	a := s.cpu.sample()
	l, err := Run(ctx, lc, src)
	b := s.cpu.sample()
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	for k, v := range cpuFigures(a, b, l.Messages, "message") {
		if k == "CPU gateway (cores)" || k == "CPU gateway per message (µs)" {
			continue // wagate's, idle meanwhile: the peer's own is in "everything else"
		}
		r.figure(k, v)
	}
	r.fromLoad(l)
	r.Throughput = r.RPS
	s.report.Results = append(s.report.Results, r)
	return &s.report.Results[len(s.report.Results)-1], nil
}

// bareRun drives the single scenario's sends at a target that is not a
// gateway (`wabench -bare` in another process) without checking anything
// after: the HTTP ceiling across processes, beside the in-process one.
func (s *Suite) bareRun(ctx context.Context) error {
	ceil, err := s.httpSendCeiling(ctx)
	if err != nil {
		return err
	}
	src := newSendSource(s.cfg.Token, s.senders, s.base, s.cfg.Text, s.cfg.Concurrency, false)
	r := Result{Scenario: "bare", Name: "bare handler, other process", Unit: "req/s"}
	l, err := s.measure(ctx, s.load("bare", s.cfg.Concurrency, s.cfg.Duration, 0, 0), src, &r)
	if err != nil {
		return err
	}
	r.fromLoad(l)
	r.Throughput = r.RPS
	r.compare(ceil, false)
	r.Notes = append(r.Notes, "the target is `wabench -bare` in a process of its own: the HTTP ceiling when server and load generator do not share a process")
	s.report.Results = append(s.report.Results, r)
	return nil
}
