package bench

import (
	"context"
	"fmt"
	"math"
	"time"
)

// targetRateError is how far a number's measured send rate may be from its
// tier (issue "The status loop": within ±2% over 60 s).
const targetRateError = 0.02

// rates checks that each number sends exactly as fast as it may: the
// first len(RatesMPS) numbers, which the gateway must run at those rates
// (`wagate dev -numbers 2 -rates 1000,80`), each get enough messages
// queued by batch-send to keep them busy for RatesDuration and 20 s more;
// a number's rate is its "sent" events in ClickHouse over RatesDuration,
// counted from 5 s after its first (the start of a bucket's burst aside),
// and must be within ±2% of its tier.
func (s *Suite) rates(ctx context.Context) error {
	if len(s.cfg.RatesMPS) == 0 || len(s.cfg.RatesMPS) > int(s.senders) {
		return fmt.Errorf("-rates names %d numbers; the gateway's tenant has %d", len(s.cfg.RatesMPS), s.senders)
	}
	conn, err := s.clickhouse(ctx)
	if err != nil {
		return err
	}
	db := s.cfg.ClickHouse.Database
	startMS := time.Now().UnixMilli() - 1000
	base := s.base
	s.base += 100_000_000
	dur := s.cfg.RatesDuration
	seq := uint64(0)
	for i, mps := range s.cfg.RatesMPS {
		n := int(math.Ceil(mps * (dur + 20*time.Second).Seconds()))
		s.note("rates: queue %d messages from %s (%g mps)", n, s.senders.Number(i), mps)
		for n > 0 {
			k := min(n, 1000)
			b := appendBatchBody(nil, base, seq, k, s.cfg.Text, s.senders.Number(i))
			seq += uint64(k)
			code, body, err := s.api.Do("POST", pathBatchSend, b)
			if err != nil {
				return fmt.Errorf("batch-send: %w", err)
			}
			if code != 202 {
				return fmt.Errorf("batch-send: %w", statusError(code, body))
			}
			n -= k
		}
	}
	// This run's guests are a range of numbers of its own: 0 to seq-1.
	ours := fmt.Sprintf("status = 'sent' AND inserted_ms >= %d AND recipient >= '%s' AND recipient <= '%s'",
		startMS, appendRecipient(nil, base, 0), appendRecipient(nil, base, seq-1))

	// Wait until every number has sent for 5 s + dur after its first.
	type span struct {
		first, last uint64
	}
	spans := map[string]span{}
	deadline := time.Now().Add(dur + 2*time.Minute)
	for ctx.Err() == nil {
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT sender, toUInt64(min(event_ms)), toUInt64(max(event_ms))
			FROM %s.message_events WHERE %s GROUP BY sender`, db, ours))
		if err != nil {
			return fmt.Errorf("sent rows: %w", err)
		}
		for rows.Next() {
			var sender string
			var sp span
			if err := rows.Scan(&sender, &sp.first, &sp.last); err != nil {
				rows.Close()
				return fmt.Errorf("sent rows: %w", err)
			}
			spans[sender] = sp
		}
		rows.Close()
		done := true
		for i := range s.cfg.RatesMPS {
			sp, ok := spans[s.senders.Number(i)]
			// The loader lands rows about a second after they happen.
			done = done && ok && sp.last >= sp.first+uint64((dur+7*time.Second).Milliseconds())
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rates: the numbers did not send for %v within %v: %v", dur, dur+2*time.Minute, spans)
		}
		time.Sleep(2 * time.Second)
	}
	for i, mps := range s.cfg.RatesMPS {
		sender := s.senders.Number(i)
		from := spans[sender].first + 5000
		to := from + uint64(dur.Milliseconds())
		var n uint64
		if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT toUInt64(count()) FROM %s.message_events
			WHERE %s AND sender = '%s' AND event_ms >= %d AND event_ms < %d`, db, ours, sender, from, to)).Scan(&n); err != nil {
			return fmt.Errorf("sent rows: %w", err)
		}
		rate := float64(n) / dur.Seconds()
		dev := rate/mps - 1
		r := Result{Scenario: "rates", Name: fmt.Sprintf("rates/%s at %g mps", sender, mps), Unit: "msg/s",
			Elapsed: dur.Seconds(), Messages: int64(n), Throughput: rate,
			Goal: fmt.Sprintf("within ±%.0f%% of %g msg/s over %v, from ClickHouse's sent events", targetRateError*100, mps, dur)}
		r.figure("deviation from the tier (%)", dev*100)
		r.Notes = append(r.Notes, fmt.Sprintf("%d sent events between %d and %d ms (5 s after the number's first)", n, from, to))
		r.judge(math.Abs(dev) <= targetRateError)
		s.report.Results = append(s.report.Results, r)
	}
	return nil
}
