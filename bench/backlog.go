package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/wagate/wagate/internal/redisinfo"
)

// backlog: queue BacklogMessages with the dispatcher unable to keep up
// (run the gateway with -rate 1), then read the gateway's resident memory
// while they wait in Redis.
func (s *Suite) backlog(ctx context.Context) error {
	m0, err := s.ops.Scrape()
	if err != nil {
		return err
	}
	rss0 := m0.Value("process_resident_memory_bytes")
	n := s.cfg.BacklogMessages
	var l *LoadResult
	if s.cfg.BacklogSingle {
		src := newSendSource(s.cfg.Token, s.senders, s.base, s.cfg.Text, s.cfg.Concurrency, false)
		l, err = Run(ctx, s.load("backlog: queue", s.cfg.Concurrency, 0, uint64(n), 0), src)
	} else {
		src := newBulkSource(s.cfg.Token, s.senders, s.base, s.cfg.BulkSize, s.cfg.Text, s.cfg.BulkConcurrency)
		l, err = Run(ctx, s.load("backlog: queue", s.cfg.BulkConcurrency, 0, uint64((n+s.cfg.BulkSize-1)/s.cfg.BulkSize), 0), src)
	}
	if err != nil {
		return err
	}
	s.base += 100_000_000

	// Let the gateway settle (GC, pools) and sample it for 15 s.
	s.note("sampling the gateway's memory for 15 s")
	var depth, rss, heap, rssMax, redisMem float64
	for i := 0; i < 15 && ctx.Err() == nil; i++ {
		time.Sleep(time.Second)
		m, err := s.ops.Scrape()
		if err != nil {
			return err
		}
		depth = m.Value("wagate_queue_depth")
		rss = m.Value("process_resident_memory_bytes")
		heap = m.Value("go_memstats_heap_inuse_bytes")
		rssMax = max(rssMax, rss)
	}
	if s.cpu.rdb != nil {
		if info, err := s.cpu.rdb.Info(ctx, "memory").Result(); err == nil {
			redisMem = redisinfo.Field(info, "used_memory")
		}
	}
	r := Result{Scenario: "backlog", Name: "backlog", Unit: "MB RSS",
		Goal: fmt.Sprintf("RSS < %d MB while %s messages wait in Redis", targetBacklogRSS>>20, groupDigits(targetBacklogMsgs))}
	r.fromLoad(l)
	r.Throughput = rssMax / (1 << 20)
	r.figure("messages waiting (wagate_queue_depth, all lanes)", depth)
	r.figure("RSS before queueing (MB)", rss0/(1<<20))
	r.figure("RSS at the end (MB)", rss/(1<<20))
	r.figure("RSS highest while sampled (MB)", rssMax/(1<<20))
	r.figure("Go heap in use (MB)", heap/(1<<20))
	r.figure("queued at (msg/s)", l.MPS())
	if redisMem > 0 {
		r.figure("Redis used_memory (MB, all of this Redis)", redisMem/(1<<20))
	}
	// The dispatcher, unable to keep up (-rate 1), still sends a few
	// while the backlog is queued and sampled: 0.1% may be gone.
	r.Checks = append(r.Checks, Check{What: "messages waiting in Redis (queue depth metric; ≥ 99.9% of 1 000 000 accepted, the -rate 1 dispatcher sends a few)",
		Want: l.Messages, Got: int64(depth), OK: l.Messages >= targetBacklogMsgs && depth >= 0.999*targetBacklogMsgs})
	r.judge(rssMax > 0 && rssMax < targetBacklogRSS)
	s.report.Results = append(s.report.Results, r)
	return nil
}
