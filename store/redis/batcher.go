package redis

import (
	"context"
	"errors"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// pipeJob is one caller's share of a pipeline: it adds its commands, and is
// told when they have run. The batcher owns a job between submit and finish.
type pipeJob interface {
	queue(ctx context.Context, p goredis.Pipeliner)
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

// errClosed is returned to jobs submitted after shutdown.
var errClosed = errors.New("redis store is closed")

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
		j.finish(ctx.Err())
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
	for try := 0; ; try++ {
		p := b.rdb.Pipeline()
		for _, j := range batch {
			j.queue(ctx, p)
		}
		cmds, err := p.Exec(ctx)
		if try == 0 && hasNoScript(cmds) {
			if lerr := b.scripts.load(ctx, b.rdb); lerr == nil {
				continue
			}
		}
		_ = err // each job reads its own commands' errors
		for _, j := range batch {
			j.finish(nil)
		}
		return
	}
}

func hasNoScript(cmds []goredis.Cmder) bool {
	for _, c := range cmds {
		if isNoScript(c.Err()) {
			return true
		}
	}
	return false
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
