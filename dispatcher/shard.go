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

	// scheduled and fallbacks wake the housekeeping loops (capacity 1):
	// scheduled carries the due of a send scheduled meanwhile (unix ms, the
	// earliest not yet taken, 0 when none), fallbacks a fallback check
	// this instance scheduled.
	scheduled atomic.Int64
	promote   chan struct{}
	fallbacks chan struct{}

	mu    sync.Mutex
	pumps map[string]*pump
	// lost is set when the lease is gone: writes still failing then are
	// left to the next owner.
	lost atomic.Bool

	wg sync.WaitGroup
}

func newShardWorker(d *Dispatcher, l *redis.Lease) *shardWorker {
	ctx, cancel := context.WithCancel(context.Background())
	return &shardWorker{d: d, lease: l, shard: l.Shard, ctx: ctx, cancel: cancel, pumps: map[string]*pump{},
		promote: make(chan struct{}, 1), fallbacks: make(chan struct{}, 1)}
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

// wakeBlock is how long one read of the wake-ups waits in Redis: an idle
// shard costs one command per wakeBlock.
const wakeBlock = 10 * time.Second

// pumpsNow returns the shard's pumps.
func (w *shardWorker) pumpsNow() []*pump {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*pump, 0, len(w.pumps))
	for _, p := range w.pumps {
		out = append(out, p)
	}
	return out
}

// listen pokes the pumps of the senders that have new messages, and the
// housekeeping when a send was scheduled.
func (w *shardWorker) listen(after string) {
	var senders []string
	failing := false
	for w.ctx.Err() == nil {
		wu, err := w.readWakes(after, senders[:0])
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
		senders, after = wu.Senders, wu.After
		for i, s := range senders {
			if i > 0 && senders[i-1] == s {
				continue
			}
			if p := w.pump(s); p != nil {
				p.wake()
			}
		}
		if !wu.Due.IsZero() {
			due := wu.Due.UnixMilli()
			for {
				old := w.scheduled.Load()
				if (old != 0 && old <= due) || w.scheduled.CompareAndSwap(old, due) {
					break
				}
			}
			poke(w.promote)
		}
	}
}

// readWakes waits for the shard's wake-ups, up to wakeBlock. A stop ends
// the wait at once: the read, which changes nothing in Redis but the
// wake-up flags the next owner clears anyway, finishes on its own.
func (w *shardWorker) readWakes(after string, dst []string) (redis.WakeUps, error) {
	type read struct {
		wu  redis.WakeUps
		err error
	}
	done := make(chan read, 1)
	go func() {
		wu, err := w.d.store.ReadWakeUps(w.ctx, w.shard, after, wakeBlock, dst)
		done <- read{wu, err}
	}()
	select {
	case <-w.ctx.Done():
		return redis.WakeUps{}, w.ctx.Err()
	case r := <-done:
		return r.wu, r.err
	}
}

// poke wakes the loop waiting on c, unless it is awake already.
func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// idleLook bounds how long the housekeeping trusts the wake-ups alone (a
// scheduled send whose wake-up was trimmed, or written by an older
// gateway).
const idleLook = 30 * time.Second

// housekeep moves due scheduled messages into their queues and collects
// drained queues. It sleeps until the earliest scheduled send is due, or
// a wake-up tells of an earlier one. Fallbacks run apart (fallbackLoop): a
// slow SMS provider must not delay scheduled sends.
func (w *shardWorker) housekeep() {
	d := w.d
	lastGC := time.Now()
	next := time.Now() // look at once: what was scheduled before this owner
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		case <-w.promote:
		}
		now := time.Now()
		if due := w.scheduled.Swap(0); due != 0 && time.UnixMilli(due).Before(next) {
			next = time.UnixMilli(due)
		}
		if !now.Before(next) {
			next = w.promoteDue(now)
		}
		if now.Sub(lastGC) > 30*time.Second {
			lastGC = now
			w.collect()
		}
		wait := min(time.Until(next), time.Until(lastGC.Add(30*time.Second)))
		t.Reset(max(wait, d.cfg.Tick))
	}
}

// promoteDue moves the due scheduled sends into their queues and returns
// when to look next: when the next one is due, at most idleLook from now.
func (w *shardWorker) promoteDue(now time.Time) time.Time {
	d := w.d
	for {
		due, ok, err := d.store.NextDue(w.ctx, w.shard)
		switch {
		case err != nil:
			return now.Add(time.Second)
		case !ok || due.After(now.Add(idleLook)):
			return now.Add(idleLook)
		case due.After(now):
			return due
		}
		if _, err := d.store.Promote(w.ctx, w.shard, 1000); err != nil {
			if w.ctx.Err() == nil {
				d.log.Warn("moving due messages", "shard", w.shard, "err", err)
			}
			return now.Add(time.Second)
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
