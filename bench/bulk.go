package bench

import (
	"context"
	"fmt"
)

// batchStatus is the part of GET …/batches/{id} the bulk check reads.
type batchStatus struct {
	BatchID string           `json:"batch_id"`
	Total   int64            `json:"total"`
	Counts  map[string]int64 `json:"counts"`
}

// bulk: batch-sends of BulkSize messages each, from BulkConcurrency
// workers, for the duration or until BulkMessages are sent; the figure is
// messages accepted per second. Then every batch is read back: it must
// hold what its answer accepted.
func (s *Suite) bulk(ctx context.Context) error {
	ceil, err := s.redisCeiling(ctx)
	if err != nil {
		return err
	}
	src := newBulkSource(s.cfg.Token, s.senders, s.base, s.cfg.BulkSize, s.cfg.Text, s.cfg.BulkConcurrency)
	s.base += 100_000_000
	maxReq := uint64((s.cfg.BulkMessages + s.cfg.BulkSize - 1) / s.cfg.BulkSize)
	r := Result{Scenario: "bulk", Name: "bulk", Unit: "msg/s",
		Goal: fmt.Sprintf("≥ %.0f%% of redis/xadd in messages accepted per second, Redis ≤ %.0f µs per message", targetBulkRatio*100, targetRedisBulk)}
	l, err := s.measure(ctx, s.load("bulk", s.cfg.BulkConcurrency, s.cfg.Duration, maxReq, 0), src, &r)
	if err != nil {
		return err
	}
	r.fromLoad(l)
	r.Throughput = r.MPS
	r.compare(ceil, false)
	r.Notes = append(r.Notes, fmt.Sprintf("%d messages per batch-send; latency is per batch request", s.cfg.BulkSize))

	batches := src.accepted()
	var want int64
	for _, b := range batches {
		want += b.accepted
	}
	got := make([]int64, len(batches))
	errs := make([]string, len(batches))
	parallel(ctx, len(batches), s.cfg.VerifyConcurrency, func(i int) {
		var st batchStatus
		if err := s.api.GetJSON(pathBatches+batches[i].id, &st); err != nil {
			errs[i] = err.Error()
			return
		}
		var sum int64
		for _, n := range st.Counts {
			sum += n
		}
		if st.Total != batches[i].accepted || sum != st.Total {
			errs[i] = fmt.Sprintf("batch %s: total %d, counts add up to %d, accepted %d", batches[i].id, st.Total, sum, batches[i].accepted)
			got[i] = min(st.Total, sum)
			return
		}
		got[i] = st.Total
	})
	c := Check{What: "accepted messages their batch holds (GET /batches/{id}, every batch)", Want: want}
	for i := range batches {
		c.Got += got[i]
		if errs[i] != "" && c.Detail == "" {
			c.Detail = errs[i]
		}
	}
	c.OK = c.Got == c.Want && ctx.Err() == nil
	r.Checks = append(r.Checks, c)
	redisOK := true
	if us, ok := r.Figures["Redis commands per message (µs, commandstats)"]; ok {
		redisOK = us <= targetRedisBulk
	}
	r.judge(ceil == nil || r.Ratio >= targetBulkRatio, redisOK)
	s.report.Results = append(s.report.Results, r)
	return nil
}
