package dispatcher

import (
	"container/heap"
	"errors"
	"time"

	"golang.org/x/time/rate"

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
	notBefore time.Time // waiting for the pair's bucket
	via       Step      // "" for the primary provider, else the fallback step
	// hasFallback: the message carries a fallback text for SMS.
	hasFallback bool
	heapIndex   int
}

// pairState is one recipient's line: the head is the only one of its jobs
// that may be ready, in flight or waiting for a retry; the others wait in
// acceptance order.
type pairState struct {
	head     *job
	retrying bool // head is in the delay set; its promoted entry comes back
	// blockedBy is a message found holding the pair in Redis (waiting for a
	// retry when the shard was taken over): nothing goes before it.
	blockedBy string
	waiting   []*job
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
	// kind: what to do with the job's place in its pair's line.
	kind outcomeKind
	// holdFor holds the whole sender (spam limit, locked account).
	holdFor time.Duration
}

type outcomeKind uint8

const (
	// outDone: the message is settled (sent, failed, expired…): the next
	// message of its recipient may go.
	outDone outcomeKind = iota
	// outRetry: the message waits in the delay set; it keeps its pair.
	outRetry
	// outAgain: nothing was written (Redis failed); try the job again later.
	outAgain
	// outFenced: the shard has a new owner; stop.
	outFenced
)

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
	// moreTx, moreBulk: the last read of the lane filled its page, so more
	// is likely waiting: read again as soon as there is room.
	moreTx, moreBulk bool
	tx               fifo
	bulk             map[string]*fifo
	rr               []string // campaigns in round-robin order
	// caps holds the rate a batch set for its campaign (nil: the number's).
	caps      map[string]*rate.Limiter
	rrNext    int
	lines     map[string]*pairState
	blocked   map[string]string // recipient → message holding it (from Redis)
	timed     timedJobs
	txHeld    int // tx jobs in memory, not in flight
	bulkHeld  int
	inFlight  int
	holdUntil time.Time
	fenced    bool
}

func newPump(w *shardWorker, sender string, blocked map[string]string) *pump {
	d := w.d
	return &pump{w: w, sender: sender, lim: d.rates.Get(sender), pairs: d.pairsFor(sender),
		done: make(chan outcome, d.cfg.InFlight), poke: make(chan struct{}, 1), exited: make(chan struct{}),
		bulk: map[string]*fifo{}, caps: map[string]*rate.Limiter{}, lines: map[string]*pairState{}, blocked: blocked, poked: true}
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
			if until.IsZero() {
				until = now.Add(time.Second) // idle: look at the queues now and then
			}
			idle.Reset(time.Until(until))
			select {
			case <-ctx.Done():
			case o := <-p.done:
				p.handle(o)
			case <-p.poke:
				p.poked = true
			case <-wait:
			case <-idle.C:
				p.poked = true
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
		d.m.inFlight.Inc()
		go p.send(j)
	}
}

// drain handles the outcomes already in, and notes a poke.
func (p *pump) drain() {
	for {
		select {
		case o := <-p.done:
			p.handle(o)
		case <-p.poke:
			p.poked = true
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
		if until := time.Now().Add(o.holdFor); until.After(p.holdUntil) {
			p.holdUntil = until
		}
	}
	switch o.kind {
	case outDone:
		p.settle(j)
	case outRetry:
		if ln := p.lines[j.recipient]; ln != nil && ln.head == j {
			ln.retrying = true
		}
	case outAgain:
		j.notBefore = time.Now().Add(time.Second)
		p.hold(j)
		heap.Push(&p.timed, j)
	case outFenced:
		p.fenced = true
	}
}

// hold counts j as held in memory again.
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

// settle ends j's turn in its recipient's line and readies the next one.
func (p *pump) settle(j *job) {
	ln := p.lines[j.recipient]
	if ln == nil || ln.head != j {
		return
	}
	ln.head, ln.retrying = nil, false
	if len(ln.waiting) == 0 {
		delete(p.lines, j.recipient)
		return
	}
	next := ln.waiting[0]
	ln.waiting[0] = nil
	ln.waiting = ln.waiting[1:]
	ln.head = next
	p.ready(next)
}

// arrive takes a read entry into its recipient's line.
func (p *pump) arrive(e *redis.Entry, ref redis.QueueRef) {
	j := &job{rj: redis.NewJob(p.w.lease, p.w.shard, p.sender, e), msgID: e.MessageID, recipient: e.Recipient,
		lane: ref.Lane, campaign: ref.Campaign, hasFallback: e.HasFallback}
	p.hold(j)
	ln := p.lines[j.recipient]
	if ln == nil {
		ln = &pairState{blockedBy: p.blocked[j.recipient]}
		delete(p.blocked, j.recipient)
		p.lines[j.recipient] = ln
	}
	switch {
	case ln.retrying && ln.head.msgID == j.msgID:
		// The head is back from the delay set: this entry is its current one.
		ln.head, ln.retrying = j, false
		p.ready(j)
	case ln.head == nil && (ln.blockedBy == "" || ln.blockedBy == j.msgID):
		ln.blockedBy = ""
		ln.head = j
		p.ready(j)
	default:
		ln.waiting = append(ln.waiting, j)
	}
}

// ready puts a line's head where it can be picked: at once if the
// recipient's bucket has a token, else when it will.
func (p *pump) ready(j *job) {
	if wait := p.pairs.Take(j.recipient, time.Now()); wait > 0 {
		j.notBefore = time.Now().Add(wait)
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

// takeOver reads the queues' pending entries: messages the shard's previous
// owner had read but not finished (the previous owner is gone: the lease
// says so). They come first, in their queues' order.
func (p *pump) takeOver() {
	ctx := p.w.ctx
	p.loadQueues()
	for _, ref := range p.queues {
		start := "0-0"
		for ctx.Err() == nil {
			es, next, err := p.w.d.store.ClaimEntries(ctx, ref.Stream, p.w.d.cfg.Instance, start, 500, nil)
			if err != nil {
				p.w.d.log.Warn("taking over pending messages", "sender", p.sender, "err", err)
				sleepCtx(ctx, time.Second)
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

func (p *pump) loadQueues() {
	refs, err := p.w.d.store.SenderQueueRefs(p.w.ctx, p.w.shard, p.sender)
	if err != nil {
		return
	}
	p.queues, p.refreshed = refs, time.Now()
}

// read takes new entries from the sender's queues, each lane while it has
// room: the transactional one when poked or likely to hold more, the
// campaigns likewise, sharing the bulk lane's room.
func (p *pump) read() {
	d := p.w.d
	poked := p.poked
	p.poked = false
	if time.Since(p.refreshed) > 200*time.Millisecond {
		p.loadQueues()
	}
	txRoom, bulkRoom := d.cfg.ReadAhead-p.txHeld, d.cfg.ReadAhead-p.bulkHeld
	readTx := txRoom > 0 && (poked || p.moreTx)
	readBulk := bulkRoom > 0 && (poked || p.moreBulk)
	nBulk := 0
	for _, r := range p.queues {
		if r.Lane == message.LaneBulk {
			nBulk++
		}
	}
	var streams []string
	refs := map[string]redis.QueueRef{}
	count := 0
	for _, r := range p.queues {
		switch {
		case r.Lane != message.LaneBulk && readTx:
			count = max(count, txRoom)
		case r.Lane == message.LaneBulk && readBulk:
			count = max(count, max(1, bulkRoom/nBulk))
		default:
			continue
		}
		streams = append(streams, r.Stream)
		refs[r.Stream] = r
	}
	if len(streams) == 0 {
		return
	}
	count = min(count, 500)
	es, err := d.store.ReadEntries(p.w.ctx, d.cfg.Instance, streams, count, nil)
	if errors.Is(err, redis.ErrQueueGone) {
		p.refreshed = time.Time{}
		p.poked = true
		return
	}
	if err != nil {
		if p.w.ctx.Err() == nil {
			d.log.Warn("reading queues", "sender", p.sender, "err", err)
		}
		return
	}
	per := map[string]int{}
	for i := range es {
		p.arrive(&es[i], refs[es[i].Stream])
		per[es[i].Stream]++
	}
	if readTx {
		p.moreTx = false
	}
	if readBulk {
		p.moreBulk = false
	}
	for stream, n := range per {
		if n >= count {
			if refs[stream].Lane == message.LaneBulk {
				p.moreBulk = true
			} else {
				p.moreTx = true
			}
		}
	}
	d.m.rate.WithLabelValues(p.sender).Set(p.lim.Rate())
}
