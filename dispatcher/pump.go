package dispatcher

import (
	"container/heap"
	"context"
	"errors"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/internal/ctxsleep"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/ratelimit"
	"github.com/wagate/wagate/store/redis"
)

// job is one queued message in a pump's hands, from its read until its
// outcome is recorded.
type job struct {
	rj        *redis.Job
	msgID     string
	recipient string
	lane      message.Lane
	campaign  string
	notBefore time.Time // waiting for the pair's bucket or a retry
	via       Step      // "" for the primary provider, else the fallback step
	// hasFallback: the message carries a fallback text for SMS.
	hasFallback bool
	// downs counts the failures of j not held against it (its provider was
	// down): its retries back off by them too.
	downs int
	// noSecondary: the secondary provider cannot carry j (its type): the
	// fallback chain goes on to its next step.
	noSecondary bool
	// portfolioHeld: j's portfolio was at its messaging limit when j was
	// last begun; it is looked at again before it is begun again.
	portfolioHeld bool
	// chunk is the batch's chunk the message came in (nil for a single
	// send): its entry is acknowledged when all its messages are settled.
	chunk     *chunk
	heapIndex int
}

// chunk is a batch's chunk, or an entry of single sends (batch ""), in a
// pump's hands: one queue entry standing for left more messages to settle.
type chunk struct {
	stream, entryID, batch string
	index, left            int
}

// lineKey names a recipient's line in one lane: order is kept per lane, so
// a campaign message held for a day does not hold the guest's "room ready".
type lineKey struct {
	lane      message.Lane
	recipient string
}

// line is one recipient's messages of one lane: the head is the only one
// that may be ready, in flight or waiting for its retry; the others wait in
// acceptance order.
type line struct {
	head    *job
	waiting []*job
}

// fifo is a queue of ready jobs.
type fifo struct{ q []*job }

func (f *fifo) push(j *job) { f.q = append(f.q, j) }
func (f *fifo) len() int    { return len(f.q) }

// remove takes j out; it is nearly always the first.
func (f *fifo) remove(j *job) {
	for i, x := range f.q {
		switch {
		case x != j:
			continue
		case i == 0:
			f.q[0] = nil
			f.q = f.q[1:]
		default:
			copy(f.q[i:], f.q[i+1:])
			f.q[len(f.q)-1] = nil
			f.q = f.q[:len(f.q)-1]
		}
		break
	}
	if len(f.q) == 0 {
		f.q = f.q[:0:0] // let a large spent backing array go
	}
}

// timedJobs is a min-heap of jobs by notBefore.
type timedJobs []*job

func (h timedJobs) Len() int           { return len(h) }
func (h timedJobs) Less(i, k int) bool { return h[i].notBefore.Before(h[k].notBefore) }
func (h timedJobs) Swap(i, k int) {
	h[i], h[k] = h[k], h[i]
	h[i].heapIndex, h[k].heapIndex = i, k
}
func (h *timedJobs) Push(x any) { j := x.(*job); j.heapIndex = len(*h); *h = append(*h, j) }
func (h *timedJobs) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return j
}

// outcome is what came of a dispatched job, handed back to the pump.
type outcome struct {
	j *job
	// kind: what to do with the job's place in its line.
	kind outcomeKind
	// due: when a job that stays (outRetry) may go again.
	due time.Time
	// holdFor holds the whole sender (spam limit, locked account), for
	// holdReason ("hold", "stop").
	holdFor    time.Duration
	holdReason string
}

type outcomeKind uint8

const (
	// outDone: the message is settled (sent, failed, expired…): the next
	// message of its line may go.
	outDone outcomeKind = iota
	// outRetry: the message stays its line's head until due; its entry
	// stays pending in Redis.
	outRetry
	// outFenced: the shard has a new owner, or this one is stopping with
	// Redis unreachable; stop.
	outFenced
)

// maxWaiting bounds the messages held in memory behind their line's head
// (one guest's long backlog): past it the pump reads no more until they
// drain, rather than grow without bound.
const maxWaiting = 50_000

// pump sends one sender's messages. Its run goroutine owns every field
// below the channels; sends run in their own goroutines and report back
// through done.
type pump struct {
	w      *shardWorker
	sender string
	lim    *ratelimit.Sender
	pairs  *ratelimit.Pairs

	done   chan outcome  // capacity InFlight: a finished send never waits
	poke   chan struct{} // new messages (capacity 1)
	exited chan struct{} // closed when run returns

	queues    []redis.QueueRef
	refreshed time.Time
	poked     bool
	// polled: the read is the idle safety net's, not a wake-up's: one
	// look is enough.
	polled bool
	// moreTx, moreBulk: the last read of the lane filled its page, so more
	// is likely waiting: read again as soon as there is room.
	moreTx, moreBulk bool
	tx               fifo
	bulk             map[string]*fifo
	rr               []string // campaigns in round-robin order
	rrNext           int
	// caps holds the rate a batch set for its campaign (nil: the number's).
	caps  map[string]*rate.Limiter
	lines map[lineKey]*line
	timed timedJobs
	// txHeld and bulkHeld count the lines' heads not in flight (what the
	// read-ahead bounds); waiting the jobs behind them.
	txHeld, bulkHeld, waiting int
	inFlight                  int
	holdUntil                 time.Time
	// heldUntil is holdUntil (unix ms) for the metrics' scrape.
	heldUntil  atomic.Int64
	fenced     bool
	lastActive time.Time
	// plain marks the bulk streams last seen to hold single messages;
	// the others are read a chunk at a time (an entry may be a batch's
	// chunk of ChunkSize messages).
	plain map[string]bool
	// batches caches the options of the batches whose chunks are read.
	batches map[string]*redis.BatchInfo
	// unloaded are chunk entries read whose record could not be read yet.
	unloaded []unloadedChunk
	// txPer and plainPer are how many messages an entry of the
	// transactional and of the plain bulk streams held lately: an entry
	// of the enqueue function holds all the single sends of a call, so
	// reads ask for about the room's worth of messages, not entries.
	txPer, plainPer float64
}

// unloadedChunk is a chunk entry to expand again.
type unloadedChunk struct {
	e   redis.Entry
	ref redis.QueueRef
}

func newPump(w *shardWorker, sender string) *pump {
	d := w.d
	return &pump{w: w, sender: sender, lim: d.rates.Get(sender), pairs: d.pairsFor(sender),
		done: make(chan outcome, d.cfg.InFlight), poke: make(chan struct{}, 1),
		exited: make(chan struct{}), bulk: map[string]*fifo{}, caps: map[string]*rate.Limiter{},
		lines: map[lineKey]*line{}, poked: true, lastActive: time.Now(),
		plain: map[string]bool{}, batches: map[string]*redis.BatchInfo{}}
}

// wake tells the pump there are new messages.
func (p *pump) wake() {
	select {
	case p.poke <- struct{}{}:
	default:
	}
}

// refresh makes the pump reload its queue list at its next read.
func (p *pump) refresh() {
	p.refreshed = time.Time{}
	p.wake()
}

func (p *pump) run() {
	defer close(p.exited)
	d := p.w.d
	ctx := p.w.ctx
	p.takeOver()
	idle := time.NewTimer(time.Second)
	defer idle.Stop()
	for {
		p.drain()
		if ctx.Err() != nil || p.fenced {
			// Start nothing more; wait for the sends in flight.
			for p.inFlight > 0 {
				p.handle(<-p.done)
			}
			return
		}
		now := time.Now()
		p.due(now)
		if len(p.unloaded) > 0 {
			p.retryUnloaded()
		}
		if p.poked || (p.moreTx && p.txHeld < d.cfg.ReadAhead/2) || (p.moreBulk && p.bulkHeld < d.cfg.ReadAhead/2) {
			p.read()
		}
		var j *job
		var wait <-chan struct{}
		var until time.Time
		switch {
		case p.inFlight >= d.cfg.InFlight:
			// A slot frees when an outcome comes in.
		case now.Before(p.holdUntil):
			until = p.holdUntil
		default:
			j, wait, until = p.choose()
		}
		if j == nil {
			if next := p.nextTimed(); !next.IsZero() && (until.IsZero() || next.Before(until)) {
				until = next
			}
			if len(p.unloaded) > 0 && (until.IsZero() || now.Add(time.Second).Before(until)) {
				until = now.Add(time.Second)
			}
			if until.IsZero() {
				// Idle: look at the queues now and then (wake-ups are the
				// fast path; this is the safety net), seldom when long idle.
				poll := 5 * time.Second
				if p.idleFor(now) > time.Minute {
					poll = 30 * time.Second
				}
				until = now.Add(poll)
			}
			idle.Reset(time.Until(until))
			select {
			case <-ctx.Done():
			case o := <-p.done:
				p.handle(o)
			case <-p.poke:
				p.poked, p.polled = true, false
			case <-wait:
			case <-idle.C:
				p.poked, p.polled = true, true
			}
			continue
		}
		if err := p.lim.Wait(ctx); err != nil {
			continue // stopping
		}
		// After the wait: a transactional message may have come first, or
		// a breaker may have changed.
		if j, _, _ = p.choose(); j == nil {
			continue
		}
		p.take(j)
		p.inFlight++
		p.lastActive = time.Now()
		d.m.inFlight.Inc()
		go p.send(j)
	}
}

// appliedRate is the rate the pump lets the sender's messages go at now:
// the bucket's (lowered after throttling), 0 while the sender is held.
func (p *pump) appliedRate(now time.Time) float64 {
	if now.UnixMilli() < p.heldUntil.Load() {
		return 0
	}
	return p.lim.RateAt(now)
}

// idleFor is how long the pump has had nothing at all to do.
func (p *pump) idleFor(now time.Time) time.Duration {
	if p.inFlight > 0 || p.txHeld+p.bulkHeld+p.waiting > 0 {
		return 0
	}
	return now.Sub(p.lastActive)
}

// drain handles the outcomes already in, and notes a poke.
func (p *pump) drain() {
	for {
		select {
		case o := <-p.done:
			p.handle(o)
		case <-p.poke:
			p.poked, p.polled = true, false
		default:
			return
		}
	}
}

func (p *pump) handle(o outcome) {
	p.inFlight--
	p.w.d.m.inFlight.Dec()
	j := o.j
	if o.holdFor > 0 {
		// Counted once the pump holds the sender: from then on it sends
		// nothing more of the number's until the hold ends.
		p.w.d.m.held.WithLabelValues(p.sender, o.holdReason).Inc()
		if until := time.Now().Add(o.holdFor); until.After(p.holdUntil) {
			p.holdUntil = until
			p.heldUntil.Store(until.UnixMilli())
		}
	}
	switch o.kind {
	case outDone:
		p.settle(j)
		if c := j.chunk; c != nil {
			if c.left--; c.left == 0 {
				go p.chunkDone(c)
			}
		}
	case outRetry:
		// The head stays where it is, in its line and its queue, until due.
		j.notBefore = o.due
		p.hold(j)
		heap.Push(&p.timed, j)
	case outFenced:
		p.fenced = true
	}
}

// hold counts j as a head held in memory.
func (p *pump) hold(j *job) {
	if j.lane == message.LaneBulk {
		p.bulkHeld++
	} else {
		p.txHeld++
	}
}

func (p *pump) release(j *job) {
	if j.lane == message.LaneBulk {
		p.bulkHeld--
	} else {
		p.txHeld--
	}
}

// settle ends j's turn in its line and readies the next one.
func (p *pump) settle(j *job) {
	k := lineKey{j.lane, j.recipient}
	ln := p.lines[k]
	if ln == nil || ln.head != j {
		return
	}
	ln.head = nil
	if len(ln.waiting) == 0 {
		delete(p.lines, k)
		return
	}
	next := ln.waiting[0]
	ln.waiting[0] = nil
	ln.waiting = ln.waiting[1:]
	p.waiting--
	ln.head = next
	p.hold(next)
	p.ready(next)
}

// arrive takes a read entry into its recipient's line; a batch's chunk
// brings each of its messages.
func (p *pump) arrive(e *redis.Entry, ref redis.QueueRef) {
	if len(e.Sends) > 1 {
		p.expandSends(e, ref)
		return
	}
	if e.BatchID != "" {
		if !p.expand(e, ref) {
			p.unloaded = append(p.unloaded, unloadedChunk{*e, ref})
		}
		return
	}
	j := &job{rj: redis.NewJob(p.w.lease, p.w.shard, p.sender, e), msgID: e.MessageID, recipient: e.Recipient,
		lane: ref.Lane, campaign: ref.Campaign, hasFallback: e.HasFallback}
	if j.lane != message.LaneBulk {
		j.lane = message.LaneTx
	}
	p.place(j)
}

// expand brings the messages of a batch's chunk into their lines, each
// with what makes its state when it is begun. false: the batch or the
// record could not be read now (retried later).
func (p *pump) expand(e *redis.Entry, ref redis.QueueRef) bool {
	d := p.w.d
	b := p.batches[e.BatchID]
	if b == nil {
		var err error
		if b, err = d.store.BatchSpec(p.w.ctx, e.BatchID); err != nil && !errors.Is(err, redis.ErrNotFound) {
			return false
		}
		if len(p.batches) > 1000 {
			clear(p.batches)
		}
		p.batches[e.BatchID] = b
	}
	var items []redis.BatchItem
	if b != nil {
		var err error
		if items, err = d.store.BatchChunk(p.w.ctx, e.BatchID, e.Chunk); err != nil && !errors.Is(err, redis.ErrNotFound) {
			return false
		}
	}
	c := &chunk{stream: e.Stream, entryID: e.ID, batch: e.BatchID, index: e.Chunk, left: len(items)}
	if len(items) == 0 {
		// Settled already (its record is dropped once every message of
		// it is), or its batch is gone: only the entry is left.
		go p.chunkDone(c)
		return true
	}
	for i := range items {
		id := message.BatchMessageID(e.BatchID, e.Chunk*redis.ChunkSize+i)
		rj := &redis.Job{Lease: p.w.lease, Shard: p.w.shard, Stream: e.Stream,
			Msg: message.Message{ID: id, Sender: p.sender, Recipient: items[i].Recipient}, Batch: b, Item: &items[i]}
		p.place(&job{rj: rj, msgID: id, recipient: items[i].Recipient, lane: message.LaneBulk, campaign: ref.Campaign,
			hasFallback: e.HasFallback, chunk: c})
	}
	return true
}

// expandSends brings the single sends of an entry of the enqueue function
// into their lines, each with the send record that makes its state when it
// is begun; the entry is acknowledged once all are settled.
func (p *pump) expandSends(e *redis.Entry, ref redis.QueueRef) {
	c := &chunk{stream: e.Stream, entryID: e.ID, left: len(e.Sends)}
	lane := ref.Lane
	if lane != message.LaneBulk {
		lane = message.LaneTx
	}
	for i := range e.Sends {
		ps := &e.Sends[i]
		rj := &redis.Job{Lease: p.w.lease, Shard: p.w.shard, Stream: e.Stream,
			Msg: message.Message{ID: ps.ID, Sender: p.sender, Recipient: ps.Recipient}, Pending: ps}
		p.place(&job{rj: rj, msgID: ps.ID, recipient: ps.Recipient, lane: lane, campaign: ref.Campaign,
			hasFallback: ps.HasFallback, chunk: c})
	}
}

// retryUnloaded expands the chunks whose records could not be read before.
func (p *pump) retryUnloaded() {
	left := p.unloaded[:0]
	for _, u := range p.unloaded {
		if !p.expand(&u.e, u.ref) {
			left = append(left, u)
		}
	}
	clear(p.unloaded[len(left):])
	p.unloaded = left
}

// chunkDone acknowledges a chunk whose messages are all settled, retrying
// while Redis fails (see persist); the next owner does it when this one
// cannot.
func (p *pump) chunkDone(c *chunk) {
	d := p.w.d
	wait := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.RecordTimeout)
		err := d.store.ChunkDone(ctx, p.w.lease, p.w.shard, c.stream, c.entryID, c.batch, c.index)
		cancel()
		if err == nil || errors.Is(err, redis.ErrFenced) || p.w.lost.Load() {
			return
		}
		d.log.Warn("acknowledging a queue entry of many messages fails; retrying", "batch", c.batch, "chunk", c.index, "entry", c.entryID, "err", err)
		time.Sleep(wait)
		wait = min(wait*2, 2*time.Second)
	}
}

// place puts j into its recipient's line.
func (p *pump) place(j *job) {
	k := lineKey{j.lane, j.recipient}
	ln := p.lines[k]
	if ln == nil {
		ln = &line{}
		p.lines[k] = ln
	}
	if ln.head != nil {
		ln.waiting = append(ln.waiting, j)
		p.waiting++
		return
	}
	ln.head = j
	p.hold(j)
	p.ready(j)
}

// ready puts a line's head where it can be picked: at once if the
// recipient's bucket has a token, else when it will.
func (p *pump) ready(j *job) {
	now := time.Now()
	if wait := p.pairs.Take(j.recipient, now); wait > 0 {
		j.notBefore = now.Add(wait)
		heap.Push(&p.timed, j)
		return
	}
	if j.lane == message.LaneBulk {
		f := p.bulk[j.campaign]
		if f == nil {
			f = &fifo{}
			p.bulk[j.campaign] = f
			p.rr = append(p.rr, j.campaign)
			p.loadCap(j.campaign)
		}
		f.push(j)
		return
	}
	p.tx.push(j)
}

// loadCap reads the rate a batch set for campaign, if any.
func (p *pump) loadCap(campaign string) {
	r, err := p.w.d.store.CampaignRate(p.w.ctx, p.w.shard, campaign)
	if err != nil || r <= 0 {
		p.caps[campaign] = nil
		return
	}
	p.caps[campaign] = rate.NewLimiter(rate.Limit(r), 1)
}

// due readies the timed jobs whose time has come.
func (p *pump) due(now time.Time) {
	for len(p.timed) > 0 && !p.timed[0].notBefore.After(now) {
		p.ready(heap.Pop(&p.timed).(*job))
	}
}

func (p *pump) nextTimed() time.Time {
	if len(p.timed) == 0 {
		return time.Time{}
	}
	return p.timed[0].notBefore
}

// choose returns the job to send next: the transactional lane first, then
// the bulk campaigns in turn. While the primary provider's breaker is open,
// a job no fallback step can carry is passed over for one that a step can
// (another recipient: their order is not at stake); when none can go, it
// returns what to wait for.
func (p *pump) choose() (*job, <-chan struct{}, time.Time) {
	var wait <-chan struct{}
	var until time.Time
	scanned := 0
	try := func(j *job) bool {
		scanned++
		w, u := p.route(j)
		if w == nil {
			return true
		}
		if wait == nil {
			wait, until = w, u
		}
		return false
	}
	for _, j := range p.tx.q {
		if try(j) {
			return j, nil, time.Time{}
		}
		if scanned >= maxScan {
			return nil, wait, until
		}
	}
	// Campaigns in turn: the i-th job of each before the (i+1)-th of any; a
	// campaign over its batch's rate waits for its next token.
	now := time.Now()
	for i := 0; ; i++ {
		any := false
		for k := 0; k < len(p.rr); k++ {
			c := p.rr[(p.rrNext+k)%len(p.rr)]
			f := p.bulk[c]
			if i >= f.len() {
				continue
			}
			any = true
			if lim := p.caps[c]; lim != nil && lim.TokensAt(now) < 1 {
				next := now.Add(time.Duration((1 - lim.TokensAt(now)) / float64(lim.Limit()) * float64(time.Second)))
				if until.IsZero() || next.Before(until) {
					until = next
				}
				continue
			}
			if try(f.q[i]) {
				return f.q[i], nil, time.Time{}
			}
			if scanned >= maxScan {
				return nil, wait, until
			}
		}
		if !any {
			return nil, wait, until
		}
	}
}

// maxScan bounds how far choose looks past jobs that must wait.
const maxScan = 1000

// take removes j, which choose returned, from its lane.
func (p *pump) take(j *job) {
	p.release(j)
	if j.lane != message.LaneBulk {
		p.tx.remove(j)
		return
	}
	p.bulk[j.campaign].remove(j)
	if lim := p.caps[j.campaign]; lim != nil {
		lim.Allow()
	}
	for k, c := range p.rr {
		if c == j.campaign {
			p.rrNext = (k + 1) % len(p.rr)
			break
		}
	}
}

// takeOver reads the queues' pending entries: messages the shard's
// previous owner (or this process before a restart) had read but not
// finished: the lease says nobody else works them now. They come first, in
// their queues' order, so a message waiting for its retry still holds the
// later ones of its line.
func (p *pump) takeOver() {
	ctx := p.w.ctx
	for ctx.Err() == nil && !p.loadQueues() {
		_ = ctxsleep.Sleep(ctx, time.Second)
	}
	for _, ref := range p.queues {
		start := "0-0"
		for ctx.Err() == nil {
			es, next, err := p.w.d.store.ClaimEntries(ctx, ref.Stream, p.w.d.cfg.Instance, start, 500, nil)
			if err != nil {
				p.w.d.log.Warn("taking over pending messages", "sender", p.sender, "err", err)
				_ = ctxsleep.Sleep(ctx, time.Second)
				continue
			}
			for i := range es {
				p.arrive(&es[i], ref)
			}
			if next == "0-0" || len(es) == 0 {
				break
			}
			start = next
		}
	}
}

// loadQueues reads the sender's queue list; false when Redis failed.
func (p *pump) loadQueues() bool {
	refs, err := p.w.d.store.SenderQueueRefs(p.w.ctx, p.w.shard, p.sender)
	if err != nil {
		return false
	}
	p.queues, p.refreshed = refs, time.Now()
	p.prune()
	return true
}

// prune forgets the campaigns whose queue is gone and that hold nothing.
func (p *pump) prune() {
	live, streams := map[string]bool{}, map[string]bool{}
	for _, r := range p.queues {
		streams[r.Stream] = true
		if r.Lane == message.LaneBulk {
			live[r.Campaign] = true
		}
	}
	for st := range p.plain {
		if !streams[st] {
			delete(p.plain, st)
		}
	}
	kept := p.rr[:0]
	for _, c := range p.rr {
		if live[c] || p.bulk[c].len() > 0 {
			kept = append(kept, c)
			continue
		}
		delete(p.bulk, c)
		delete(p.caps, c)
	}
	clear(p.rr[len(kept):])
	p.rr = kept
	if len(p.rr) > 0 {
		p.rrNext %= len(p.rr)
	} else {
		p.rrNext = 0
	}
}

// read takes new entries from the sender's queues, each lane while it has
// room: the transactional one when poked or likely to hold more, the
// campaigns likewise, sharing the bulk lane's room. One round trip, and a
// second with a fresh queue list when a wake-up found nothing: the news
// was a queue this pump did not know yet.
func (p *pump) read() {
	poked := p.poked && !p.polled
	p.polled = false
	if time.Since(p.refreshed) > 200*time.Millisecond {
		p.loadQueues()
	}
	if n := p.readOnce(); n == 0 && poked && time.Since(p.refreshed) > 0 {
		p.loadQueues()
		p.poked = true
		p.readOnce()
	}
}

// readOnce reads the known queues once and returns how many entries came.
func (p *pump) readOnce() int {
	d := p.w.d
	poked := p.poked
	p.poked = false
	if p.waiting >= maxWaiting {
		return 0
	}
	txRoom, bulkRoom := d.cfg.ReadAhead-p.txHeld, d.cfg.ReadAhead-p.bulkHeld
	readTx := txRoom > 0 && (poked || p.moreTx)
	readBulk := bulkRoom > 0 && (poked || p.moreBulk)
	var txStreams, bulkStreams, chunkStreams []string
	refs := map[string]redis.QueueRef{}
	for _, r := range p.queues {
		switch {
		case r.Lane == message.LaneBulk && readBulk && p.plain[r.Stream]:
			bulkStreams = append(bulkStreams, r.Stream)
		case r.Lane == message.LaneBulk && readBulk:
			chunkStreams = append(chunkStreams, r.Stream)
		case r.Lane != message.LaneBulk && readTx:
			txStreams = append(txStreams, r.Stream)
		default:
			continue
		}
		refs[r.Stream] = r
	}
	txCount := min(max(1, int(float64(txRoom)/max(1, p.txPer))), 500)
	bulkCount, chunkCount := 0, 0
	if n := len(bulkStreams) + len(chunkStreams); n > 0 {
		bulkCount = min(max(1, int(float64(bulkRoom/n)/max(1, p.plainPer))), 500)
		chunkCount = max(1, bulkRoom/n/redis.ChunkSize)
	}
	es, err := d.store.ReadLanes(p.w.ctx, d.cfg.Instance, txStreams, txCount, bulkStreams, bulkCount, chunkStreams, chunkCount)
	if err != nil && !errors.Is(err, goredis.Nil) {
		// The entries a lane's read brought before another lane's failed
		// are this consumer's pending ones now: a later read would not
		// bring them again, so they are taken all the same.
		for i := range es {
			p.arrive(&es[i], refs[es[i].Stream])
		}
		if errors.Is(err, redis.ErrQueueGone) {
			p.refreshed = time.Time{}
			p.poked = true
		} else if p.w.ctx.Err() == nil {
			d.log.Warn("reading queues", "sender", p.sender, "err", err)
		}
		return len(es)
	}
	per := map[string]int{}
	var txMsgs, txEntries, plainMsgs, plainEntries int
	for i := range es {
		e := &es[i]
		n := max(1, len(e.Sends))
		if refs[e.Stream].Lane == message.LaneBulk {
			p.plain[e.Stream] = e.BatchID == ""
			if e.BatchID == "" {
				plainMsgs, plainEntries = plainMsgs+n, plainEntries+1
			}
		} else {
			txMsgs, txEntries = txMsgs+n, txEntries+1
		}
		p.arrive(e, refs[e.Stream])
		per[e.Stream]++
	}
	if txEntries > 0 {
		p.txPer = (max(1, p.txPer) + float64(txMsgs)/float64(txEntries)) / 2
	}
	if plainEntries > 0 {
		p.plainPer = (max(1, p.plainPer) + float64(plainMsgs)/float64(plainEntries)) / 2
	}
	if len(es) > 0 {
		p.lastActive = time.Now()
	}
	if readTx {
		p.moreTx = false
	}
	if readBulk {
		p.moreBulk = false
	}
	for stream, n := range per {
		if refs[stream].Lane == message.LaneBulk {
			p.moreBulk = p.moreBulk || n >= bulkCount || (n >= chunkCount && !p.plain[stream])
		} else {
			p.moreTx = p.moreTx || n >= txCount
		}
	}
	return len(es)
}

// sweep drops the recipient buckets that are full again.
func (p *pump) sweep() { p.pairs.Sweep(time.Now()) }
