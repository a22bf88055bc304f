package bench

import (
	"context"
	"fmt"
	"time"
)

// Targets of issue 5.
const (
	targetHTTPRatio   = 0.60
	targetP99         = 10 * time.Millisecond
	targetBulkMPS     = 300_000
	targetE2EMPS      = 10_000
	targetE2ESustain  = 60 * time.Second
	targetBacklogRSS  = 300 << 20
	targetBacklogMsgs = 1_000_000
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
		Goal: fmt.Sprintf("≥ %.0f%% of http/send, p99 < %d ms, every accepted message in Redis", targetHTTPRatio*100, targetP99.Milliseconds())}
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
	r.judge(ceil == nil || r.Ratio >= targetHTTPRatio, r.Latency != nil && p99 < targetP99)
	s.report.Results = append(s.report.Results, r)
	return nil
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
