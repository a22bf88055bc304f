package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// pipeJob is one caller's share of a pipeline: it adds its commands, and is
// told when they have run. The batcher owns a job between submit and finish.
type pipeJob interface {
	queue(ctx context.Context, p goredis.Pipeliner)
	// noScript reports that the job's script was not in Redis's script
	// cache (NOSCRIPT), so it did nothing and may be queued again.
	noScript() bool
	finish(err error)
}

// batcher turns concurrent callers' commands into pipelines: whatever is
// waiting when a flusher comes free goes out in one round trip. Under load
// that is many requests per round trip; idle, a lone request goes at once.
type batcher struct {
	rdb     goredis.UniversalClient
	scripts *scripts
	ch      chan pipeJob
	max     int
	wg      sync.WaitGroup
	stop    chan struct{}

	// mu makes submit and close exclusive: once closed is set no job enters
	// ch, so the final drain in close sees every job that did.
	mu     sync.RWMutex
	closed bool
}

func newBatcher(rdb goredis.UniversalClient, sc *scripts, flushers, max int) *batcher {
	b := &batcher{rdb: rdb, scripts: sc, ch: make(chan pipeJob, flushers*max), max: max, stop: make(chan struct{})}
	for i := 0; i < flushers; i++ {
		b.wg.Add(1)
		go b.run()
	}
	return b
}

// errClosed is returned to jobs submitted after shutdown, errNotSent to
// jobs whose caller gave up before a flusher took them: neither reached Redis.
var (
	errClosed  = errors.New("redis store is closed")
	errNotSent = errors.New("not sent to redis")
)

// submit hands j to a flusher; j.finish is called exactly once.
func (b *batcher) submit(ctx context.Context, j pipeJob) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		j.finish(errClosed)
		return
	}
	select {
	case b.ch <- j:
	case <-ctx.Done():
		j.finish(fmt.Errorf("%w: %w", errNotSent, ctx.Err()))
	}
}

func (b *batcher) run() {
	defer b.wg.Done()
	batch := make([]pipeJob, 0, b.max)
	for {
		select {
		case <-b.stop:
			return
		case j := <-b.ch:
			batch = append(batch[:0], j)
		}
	fill:
		for len(batch) < b.max {
			select {
			case j := <-b.ch:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		b.exec(batch)
		clear(batch)
	}
}

// execTimeout bounds one pipeline; callers' contexts are not used for the
// pipeline because it carries other callers' commands too.
const execTimeout = 10 * time.Second

func (b *batcher) exec(batch []pipeJob) {
	ctx, cancel := context.WithTimeout(context.Background(), execTimeout)
	defer cancel()
	b.pipeline(ctx, batch)
	// After a Redis restart or SCRIPT FLUSH the scripts answer NOSCRIPT and
	// did nothing: load them and send those jobs, and only those, again.
	var again []pipeJob
	for _, j := range batch {
		if j.noScript() {
			again = append(again, j)
		} else {
			j.finish(nil)
		}
	}
	if len(again) == 0 {
		return
	}
	if err := b.scripts.load(ctx, b.rdb); err == nil {
		b.pipeline(ctx, again)
	}
	for _, j := range again {
		j.finish(nil) // each job reads its own commands' errors
	}
}

// pipeline sends the jobs' commands in one round trip. Errors stay with
// the commands, where each job reads its own.
func (b *batcher) pipeline(ctx context.Context, jobs []pipeJob) {
	p := b.rdb.Pipeline()
	for _, j := range jobs {
		j.queue(ctx, p)
	}
	_, _ = p.Exec(ctx)
}

// close stops the flushers after the jobs already taken are done.
func (b *batcher) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	b.wg.Wait()
	for {
		select {
		case j := <-b.ch:
			j.finish(errClosed)
		default:
			return
		}
	}
}
