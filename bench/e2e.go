package bench

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// e2e: sends paced at E2ERate for E2EDuration through the API; the
// dispatcher sends them to the simulator, which posts their statuses back
// (-sim-webhook-batch per envelope); each message is done when its read row
// is in ClickHouse. The figures are the rate at which read rows landed,
// the lag from the API call to the row (inserted_ms, the loader's clock
// when it inserts the batch), and the messages with no read row (lost).
func (s *Suite) e2e(ctx context.Context) error {
	var ceils []*Ceiling
	for _, f := range []func(context.Context) (*Ceiling, error){s.httpSendCeiling, s.redisCeiling, s.clickhouseCeiling} {
		c, err := f(ctx)
		if err != nil {
			return err
		}
		if c != nil {
			ceils = append(ceils, c)
		}
	}
	conn, err := s.clickhouse(ctx)
	if err != nil {
		return err
	}
	db := s.cfg.ClickHouse.Database
	var simBefore map[string]any
	if s.sim != nil {
		s.sim.GetJSON(pathSimStats, &simBefore) //nolint:errcheck // figures only
	}
	startMS := time.Now().UnixMilli() - 1000 // the gateway's clock may lag a little

	base := s.base
	src := newSendSource(s.cfg.Token, s.senders, base, s.cfg.Text, s.cfg.Concurrency, true)
	s.base += 100_000_000
	r := Result{Scenario: "e2e", Name: "e2e", Unit: "msg/s",
		Goal: fmt.Sprintf("≥ %d msg/s API→read row in ClickHouse, sustained %.0f s, nothing lost", targetE2EMPS, targetE2ESustain.Seconds())}
	l, err := s.measure(ctx, s.load("e2e: send", s.cfg.Concurrency, s.cfg.E2EDuration, 0, s.cfg.E2ERate), src, &r)
	if err != nil {
		return err
	}
	acc := src.accepted()
	sendEnd := time.Now()
	// This run's guests are a range of numbers of their own, which tells
	// its rows from those of messages sent before (an earlier scenario's
	// still being dispatched).
	var last uint64
	for _, a := range acc {
		last = max(last, a.seq)
	}
	ours := fmt.Sprintf("status = 'read' AND inserted_ms >= %d AND recipient >= '%s' AND recipient <= '%s'",
		startMS, appendRecipient(nil, base, 0), appendRecipient(nil, base, last))

	// Wait for the read rows: until there are as many as messages, or
	// their count has not grown for E2EWait.
	countSQL := fmt.Sprintf("SELECT toUInt64(uniqExact(message_id)) FROM %s.message_events WHERE %s", db, ours)
	var live liveCounts
	if p := s.cfg.Progress; p != nil {
		p.Start("e2e: wait for read", 0, uint64(len(acc)), &live)
	}
	var seen uint64
	lastMove := time.Now()
	for ctx.Err() == nil {
		var n uint64
		if err := conn.QueryRow(ctx, countSQL).Scan(&n); err != nil {
			return fmt.Errorf("count read rows: %w", err)
		}
		live.requests.Store(int64(n))
		live.messages.Store(int64(n))
		if n >= uint64(len(acc)) {
			break
		}
		if n != seen {
			seen, lastMove = n, time.Now()
		}
		if time.Since(lastMove) > s.cfg.E2EWait {
			break
		}
		time.Sleep(time.Second)
	}
	if p := s.cfg.Progress; p != nil {
		p.Stop()
	}

	// Join the read rows with the sends.
	sentAt := make(map[string]int64, len(acc))
	for _, a := range acc {
		sentAt[a.id] = a.at
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT message_id, toUInt64(min(inserted_ms)), toUInt64(min(event_ms))
		FROM %s.message_events WHERE %s GROUP BY message_id`, db, ours))
	if err != nil {
		return fmt.Errorf("read rows: %w", err)
	}
	var lag, readLag Histogram
	landed := make([]int64, 0, len(acc))
	for rows.Next() {
		var id string
		var ins, ev uint64
		if err := rows.Scan(&id, &ins, &ev); err != nil {
			rows.Close()
			return fmt.Errorf("read rows: %w", err)
		}
		at, ok := sentAt[id]
		if !ok {
			continue // another run's message
		}
		delete(sentAt, id)
		lag.Record(time.Duration(int64(ins)*int64(time.Millisecond) - at))
		readLag.Record(time.Duration(int64(ev)*int64(time.Millisecond) - at))
		landed = append(landed, int64(ins))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read rows: %w", err)
	}

	r.fromLoad(l)
	r.Latency = LatencyOf(&lag)
	found := int64(len(landed))
	sort.Slice(landed, func(a, b int) bool { return landed[a] < landed[b] })
	var window time.Duration
	if len(landed) > 1 {
		window = time.Duration(landed[len(landed)-1]-landed[0]) * time.Millisecond
		r.Throughput = perSecond(found, window)
	}
	firstSend := int64(1<<63 - 1)
	for _, a := range acc {
		firstSend = min(firstSend, a.at)
	}
	if len(landed) > 0 {
		r.figure("e2e rate from the first send to the last read row (msg/s)",
			perSecond(found, time.Duration(landed[len(landed)-1]*int64(time.Millisecond)-firstSend)))
	}
	r.figure("API accepted (msg/s)", l.RPS())
	r.figure("read rows landing window (s)", window.Seconds())
	r.figure("slowest 10 s of read rows landing (msg/s)", slowestWindow(landed, 10_000, 5_000))
	r.figure("lag API→read event p50 (ms)", float64(readLag.Quantile(0.5))/1e6)
	r.figure("lag API→read event p99 (ms)", float64(readLag.Quantile(0.99))/1e6)
	r.figure("lag API→read row max (ms)", float64(lag.Max())/1e6)
	r.figure("waited for read rows after sending stopped (s)", time.Since(sendEnd).Seconds())
	if s.sim != nil {
		var simAfter map[string]any
		if s.sim.GetJSON(pathSimStats, &simAfter) == nil {
			for _, k := range []string{"accepted", "webhooks_posted", "statuses_posted", "throttled", "webhooks_failed"} {
				a, _ := simAfter[k].(float64)
				b, _ := simBefore[k].(float64)
				r.figure("simulator "+k, a-b)
			}
		}
	}
	r.Checks = append(r.Checks, Check{What: "accepted messages with their read row in ClickHouse", Want: int64(len(acc)), Got: found,
		OK: found == int64(len(acc)), Detail: lostDetail(sentAt)})
	r.Notes = append(r.Notes, "latency = API call to the read row's inserted_ms (the loader's clock as it inserts the batch); throughput = read rows / the time between the first and the last landing (rows land in the loader's batches, about one a second, so over 60 s the rate is good to about 2%)")
	if len(ceils) > 0 {
		low := ceils[0]
		for _, c := range ceils[1:] {
			if perMessage(c) < perMessage(low) {
				low = c
			}
		}
		r.compare(low, true)
		r.Notes = append(r.Notes, fmt.Sprintf("ceiling = the smallest of http/send (req/s), redis/xadd (msg/s) and clickhouse/insert per message (rows/s ÷ %d)", len(lifeStatuses)))
	}
	sustained := window >= targetE2ESustain-5*time.Second && s.cfg.E2EDuration >= targetE2ESustain
	peerOK := true
	if s.cfg.Peer != "" {
		peer, err := s.peerDispatch(ctx)
		if err != nil {
			return err
		}
		peerOK = false // a peer run that sent nothing judges nothing
		if peer.Throughput > 0 {
			x := r.Throughput / peer.Throughput
			r.figure("× the asynq peer's dispatch-only msg/s", x)
			r.Notes = append(r.Notes, fmt.Sprintf("%.2f× the asynq peer's dispatch-only rate (%.0f msg/s: accepted and sent to the simulator, no statuses, same load, same Redis, same run)", x, peer.Throughput))
			peerOK = x >= targetE2EPeerRatio
		}
	} else {
		r.Notes = append(r.Notes, "no peer measured (-peer): the ratio to its dispatch-only rate is not judged")
	}
	r.judge(r.Throughput >= targetE2EMPS, sustained, peerOK)
	s.report.Results = append(s.report.Results, r)
	return nil
}

// peerDispatch drives the e2e scenario's load at the peer gateway (-peer,
// started with a rate per number like wagate's) right after wagate's run,
// and measures its dispatch-only rate: the messages its API accepted, over
// the time from the first send to the simulator having taken the last of
// them. The peer has no status loop, so the simulator holds its statuses
// meanwhile (none reaches wagate's webhook). It is recorded as a result of
// its own.
func (s *Suite) peerDispatch(ctx context.Context) (*Result, error) {
	if s.sim == nil {
		return nil, fmt.Errorf("peer dispatch: needs the simulator (-sim) to count the peer's sends")
	}
	restore, err := s.holdSimulator()
	if err != nil {
		return nil, err
	}
	defer restore()
	accepted := func() float64 {
		var st map[string]any
		s.sim.GetJSON(pathSimStats, &st) //nolint:errcheck // a failed read counts as no progress
		v, _ := st["accepted"].(float64)
		return v
	}
	before := accepted()
	src := newSendSource(s.cfg.Token, s.senders, s.base, s.cfg.Text, s.cfg.Concurrency, false)
	s.base += 100_000_000
	r := Result{Scenario: "e2e", Name: "e2e/asynq-peer", Unit: "msg/s",
		Goal: "the gateway a Go team would write instead (bench/peers/asynq): accept and send, no status loop, for comparison"}
	lc := s.load("e2e/asynq-peer", s.cfg.Concurrency, s.cfg.E2EDuration, 0, s.cfg.E2ERate)
	lc.Target = s.cfg.Peer
	start := time.Now()
	a := s.cpu.sample()
	l, err := Run(ctx, lc, src)
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	// Until the simulator has taken every message the peer accepted, or
	// its count has not grown for E2EWait.
	want := float64(l.Messages)
	got, lastMove, doneAt := 0.0, time.Now(), time.Now()
	for ctx.Err() == nil {
		n := accepted() - before
		if n > got {
			got, lastMove, doneAt = n, time.Now(), time.Now()
		}
		if got >= want || time.Since(lastMove) > s.cfg.E2EWait {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	b := s.cpu.sample()
	for k, v := range cpuFigures(a, b, int64(got), "message") {
		if k == "CPU gateway (cores)" || k == "CPU gateway per message (µs)" {
			continue // wagate's (with the simulator): the peer's own is in "everything else"
		}
		r.figure(k, v)
	}
	r.fromLoad(l)
	r.Throughput = perSecond(int64(got), doneAt.Sub(start))
	r.figure("API accepted (msg/s)", l.RPS())
	r.figure("sent to the simulator", got)
	r.Checks = append(r.Checks, Check{What: "messages the peer accepted that reached the simulator", Want: int64(want), Got: int64(got),
		OK: got >= want})
	s.report.Results = append(s.report.Results, r)
	return &s.report.Results[len(s.report.Results)-1], nil
}

func perMessage(c *Ceiling) float64 {
	if c.PerMessage > 0 {
		return c.PerMessage
	}
	return c.Value
}

// slowestWindow is the lowest rate (per second) of timestamps (ms,
// sorted) in any window of width ms, stepping by step ms, between the
// first and the last: how steady the flow was.
func slowestWindow(ts []int64, width, step int64) float64 {
	if len(ts) < 2 || ts[len(ts)-1]-ts[0] < width {
		return 0
	}
	lowest := -1
	lo, hi := 0, 0
	for start := ts[0]; start+width <= ts[len(ts)-1]; start += step {
		for lo < len(ts) && ts[lo] < start {
			lo++
		}
		for hi < len(ts) && ts[hi] < start+width {
			hi++
		}
		if n := hi - lo; lowest < 0 || n < lowest {
			lowest = n
		}
	}
	return float64(lowest) / (float64(width) / 1000)
}

func lostDetail(missing map[string]int64) string {
	if len(missing) == 0 {
		return ""
	}
	var ids []string
	for id := range missing {
		ids = append(ids, id)
		if len(ids) == 3 {
			break
		}
	}
	return fmt.Sprintf("%d without a read row, e.g. %v", len(missing), ids)
}
