package dispatcher

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wagate/wagate/internal/ctxsleep"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// shardWorker works one owned shard: a pump per sender, a listener for
// wake-ups (new messages), and housekeeping (due retries back into their
// queues, fallback checks, drained queues collected).
type shardWorker struct {
	d     *Dispatcher
	lease *redis.Lease
	shard int

	ctx    context.Context // ends when the worker stops
	cancel context.CancelFunc

	mu    sync.Mutex
	pumps map[string]*pump
	// lost is set when the lease is gone: writes still failing then are
	// left to the next owner.
	lost atomic.Bool

	wg sync.WaitGroup
}

func newShardWorker(d *Dispatcher, l *redis.Lease) *shardWorker {
	ctx, cancel := context.WithCancel(context.Background())
	return &shardWorker{d: d, lease: l, shard: l.Shard, ctx: ctx, cancel: cancel, pumps: map[string]*pump{}}
}

func (w *shardWorker) start() {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.run()
	}()
}

// shutdown stops the worker: pumps start nothing new, the sends in flight
// finish and are recorded, then it returns. What was read but not sent
// stays pending in the queues, for the next owner to take.
func (w *shardWorker) shutdown() {
	w.cancel()
	w.wg.Wait()
}

func (w *shardWorker) run() {
	d := w.d
	// Read the wake-ups from here on before looking at the queues, so that
	// nothing enqueued meanwhile goes unnoticed.
	var after string
	var senders []string
	for w.ctx.Err() == nil {
		var err error
		if after, err = d.store.WakeTail(w.ctx, w.shard); err == nil {
			senders, err = d.store.ShardSenders(w.ctx, w.shard)
		}
		if err == nil {
			break
		}
		d.log.Warn("starting a shard", "shard", w.shard, "err", err)
		_ = ctxsleep.Sleep(w.ctx, time.Second)
	}
	for _, s := range senders {
		w.pump(s)
	}
	w.wg.Add(3)
	go func() {
		defer w.wg.Done()
		w.listen(after)
	}()
	go func() {
		defer w.wg.Done()
		w.housekeep()
	}()
	go func() {
		defer w.wg.Done()
		w.fallbackLoop()
	}()
	<-w.ctx.Done()
	w.mu.Lock()
	pumps := make([]*pump, 0, len(w.pumps))
	for _, p := range w.pumps {
		pumps = append(pumps, p)
	}
	w.mu.Unlock()
	for _, p := range pumps {
		<-p.exited
	}
}

// pump returns sender's pump, starting it on first use.
func (w *shardWorker) pump(sender string) *pump {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.pumps[sender]
	if p == nil && w.ctx.Err() == nil {
		p = newPump(w, sender)
		w.pumps[sender] = p
		go p.run()
	}
	return p
}

// listen pokes the pumps of the senders that have new messages.
func (w *shardWorker) listen(after string) {
	var senders []string
	failing := false
	for w.ctx.Err() == nil {
		var err error
		senders, after, err = w.d.store.ReadWakes(w.ctx, w.shard, after, time.Second, senders[:0])
		if err != nil {
			if w.ctx.Err() != nil {
				return
			}
			if !failing {
				w.d.log.Warn("reading wake-ups fails; retrying", "shard", w.shard, "err", err)
				failing = true
			}
			_ = ctxsleep.Sleep(w.ctx, time.Second)
			continue
		}
		failing = false
		for i, s := range senders {
			if i > 0 && senders[i-1] == s {
				continue
			}
			if p := w.pump(s); p != nil {
				p.wake()
			}
		}
	}
}

// housekeep moves due scheduled messages into their queues and collects
// drained queues. Fallbacks run apart (fallbackLoop): a slow SMS provider
// must not delay scheduled sends.
func (w *shardWorker) housekeep() {
	d := w.d
	t := time.NewTicker(d.cfg.Tick)
	defer t.Stop()
	lastGC := time.Now()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		}
		if _, err := d.store.Promote(w.ctx, w.shard, 1000); err != nil && w.ctx.Err() == nil {
			d.log.Warn("moving due messages", "shard", w.shard, "err", err)
		}
		if time.Since(lastGC) > 30*time.Second {
			lastGC = time.Now()
			w.collect()
		}
	}
}

// collect drops drained bulk queues (a finished campaign) and the
// recipient buckets that are full again.
func (w *shardWorker) collect() {
	w.mu.Lock()
	pumps := make([]*pump, 0, len(w.pumps))
	for _, p := range w.pumps {
		pumps = append(pumps, p)
	}
	w.mu.Unlock()
	for _, p := range pumps {
		refs, err := w.d.store.SenderQueueRefs(w.ctx, w.shard, p.sender)
		if err != nil {
			return
		}
		for _, r := range refs {
			if r.Lane == message.LaneBulk {
				if _, err := w.d.store.CollectQueue(w.ctx, w.shard, p.sender, r.Stream); err != nil {
					return
				}
			}
		}
		p.sweep()
		p.refresh()
	}
}
