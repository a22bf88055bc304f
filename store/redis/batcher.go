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

// mergeKey says which jobs of a flush share one function call: those of
// one function and one shard (every key of a call lies in one slot).
type mergeKey struct {
	fn    *function
	shard int
	// role is the lease role of jobs that check one (begin, finish).
	role string
}

// mergedJob is a job whose arguments join those of the other jobs of its
// mergeKey in a flush, in one function call (group commit): the call's
// fixed cost is paid once per shard and flush instead of per job. The
// function answers each job with mergeWidth values, in the jobs' order.
type mergedJob interface {
	pipeJob
	mergeKey() mergeKey
	// mergeHead returns the call's keys and the arguments before the
	// jobs' own; the first job of a group gives them. Both are the
	// store's, built once: the caller must not change them.
	mergeHead() (keys, head []any)
	// mergeArgs appends the job's own arguments.
	mergeArgs(dst []any) []any
	mergeWidth() int
	// merged hands the job its answer values, or the call's error; the job
	// is then finished (finish is not called as well).
	merged(vals []any, err error)
}

// prequeuer is a merged job with a command of its own that goes before its
// group's call, in the same pipeline (a key of another slot).
type prequeuer interface {
	prequeue(ctx context.Context, p goredis.Pipeliner)
}

// callGroup is one merged call of a flush; a flusher reuses its groups.
type callGroup struct {
	key  mergeKey
	jobs []mergedJob
	args []any
	cmd  *goredis.Cmd
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

	// replicas, when not 0, is how many replicas must have what the API
	// acknowledges before it is answered (Config.Replicas); replicaTimeout
	// bounds the wait.
	replicas       int
	replicaTimeout time.Duration
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

// flushScratch is one flusher's memory, reused from flush to flush.
type flushScratch struct {
	singles []pipeJob
	groups  []*callGroup
	spare   []*callGroup
	again   []pipeJob
	gagain  []*callGroup
	// unreplicated are the acknowledged jobs of the flush that too few
	// replicas confirmed (Config.Replicas), under mu.
	mu           sync.Mutex
	unreplicated map[pipeJob]bool
}

// group returns a cleared call group for key, reusing a spare one.
func (f *flushScratch) group(key mergeKey) *callGroup {
	var g *callGroup
	if n := len(f.spare); n > 0 {
		g, f.spare = f.spare[n-1], f.spare[:n-1]
		g.jobs, g.cmd, g.args = g.jobs[:0], nil, g.args[:0]
	} else {
		g = &callGroup{}
	}
	g.key = key
	return g
}

// reset returns the groups to the spares and clears the job lists.
func (f *flushScratch) reset() {
	for _, g := range f.groups {
		clear(g.jobs)
		clear(g.args)
		f.spare = append(f.spare, g)
	}
	clear(f.unreplicated)
	clear(f.singles)
	clear(f.groups)
	clear(f.again)
	clear(f.gagain)
	f.singles, f.groups, f.again, f.gagain = f.singles[:0], f.groups[:0], f.again[:0], f.gagain[:0]
}

func (b *batcher) run() {
	defer b.wg.Done()
	var scratch flushScratch
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
		b.exec(batch, &scratch)
		clear(batch)
		scratch.reset()
	}
}

func (b *batcher) exec(batch []pipeJob, f *flushScratch) {
	// No deadline of its own: the client's read and write timeouts bound
	// each round trip, and a context with a timer per flush would cost
	// every flush three allocations.
	ctx := context.Background()
	for _, j := range batch {
		m, ok := j.(mergedJob)
		if !ok {
			f.singles = append(f.singles, j)
			continue
		}
		k := m.mergeKey()
		var g *callGroup
		for _, x := range f.groups {
			if x.key == k {
				g = x
				break
			}
		}
		if g == nil {
			g = f.group(k)
			f.groups = append(f.groups, g)
		}
		g.jobs = append(g.jobs, m)
	}
	b.pipeline(ctx, f, f.singles, f.groups)
	// After a Redis restart or FUNCTION FLUSH the functions answer
	// "function not found" and did nothing: load them and send those jobs,
	// and only those, again.
	for _, j := range f.singles {
		if j.noScript() {
			f.again = append(f.again, j)
		} else {
			j.finish(f.replicated(j))
		}
	}
	for _, g := range f.groups {
		if isNoScript(g.cmd.Err()) {
			f.gagain = append(f.gagain, g)
		} else {
			g.answer()
		}
	}
	if len(f.again) == 0 && len(f.gagain) == 0 {
		return
	}
	if err := b.scripts.load(ctx, b.rdb); err == nil {
		b.pipeline(ctx, f, f.again, f.gagain)
	}
	for _, j := range f.again {
		j.finish(f.replicated(j)) // each job reads its own commands' errors
	}
	for _, g := range f.gagain {
		g.answer()
	}
}

// pipeline sends the jobs' commands and the groups' calls in one round
// trip. Errors stay with the commands, where each job reads its own. With
// replicas to wait for, the acknowledged jobs' writes are followed by a
// WAIT on the same connection (one per master on a Cluster), and those
// too few replicas confirmed are noted in f.
func (b *batcher) pipeline(ctx context.Context, f *flushScratch, jobs []pipeJob, groups []*callGroup) {
	wait := b.replicas > 0 && acknowledges(jobs, groups)
	if cc, ok := b.rdb.(*goredis.ClusterClient); ok && wait {
		b.pipelineWaitCluster(ctx, cc, f, jobs, groups)
		return
	}
	p := b.rdb.Pipeline()
	for _, j := range jobs {
		j.queue(ctx, p)
	}
	for _, g := range groups {
		g.queue(ctx, p)
	}
	var waitCmd *goredis.Cmd
	if wait {
		waitCmd = p.Do(ctx, "wait", b.replicas, b.replicaTimeout.Milliseconds())
	}
	_, _ = p.Exec(ctx)
	if waitCmd != nil {
		f.waited(jobs, groups, waitCmd, b.replicas)
	}
}

// pipelineWaitCluster is pipeline on a Redis Cluster with replicas to wait
// for: the acknowledged jobs go in one pipeline per master, each ended by
// its WAIT (a WAIT counts its own connection's writes); the others in the
// cluster's usual pipeline.
func (b *batcher) pipelineWaitCluster(ctx context.Context, cc *goredis.ClusterClient, f *flushScratch, jobs []pipeJob, groups []*callGroup) {
	type node struct {
		jobs   []pipeJob
		groups []*callGroup
	}
	nodes := map[*goredis.Client]*node{}
	var rest []pipeJob
	var restGroups []*callGroup
	at := func(key string) *node {
		c, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return nil
		}
		n := nodes[c]
		if n == nil {
			n = &node{}
			nodes[c] = n
		}
		return n
	}
	for _, j := range jobs {
		if a, ok := j.(acknowledged); ok {
			if n := at(a.slotKey()); n != nil {
				n.jobs = append(n.jobs, j)
				continue
			}
		}
		rest = append(rest, j)
	}
	for _, g := range groups {
		if a, ok := g.jobs[0].(acknowledged); ok {
			if n := at(a.slotKey()); n != nil {
				n.groups = append(n.groups, g)
				continue
			}
		}
		restGroups = append(restGroups, g)
	}
	var wg sync.WaitGroup
	for c, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := c.Pipeline()
			for _, j := range n.jobs {
				j.queue(ctx, p)
			}
			for _, g := range n.groups {
				g.queue(ctx, p)
			}
			wait := p.Do(ctx, "wait", b.replicas, b.replicaTimeout.Milliseconds())
			_, _ = p.Exec(ctx)
			f.waited(n.jobs, n.groups, wait, b.replicas)
		}()
	}
	if len(rest) > 0 || len(restGroups) > 0 {
		p := cc.Pipeline()
		for _, j := range rest {
			j.queue(ctx, p)
		}
		for _, g := range restGroups {
			g.queue(ctx, p)
		}
		_, _ = p.Exec(ctx)
	}
	wg.Wait()
}

// acknowledged is a job the API answers a caller for once Redis has it
// (an accepted message, a batch's chunks, a provider's webhook): with
// Config.Replicas it waits for the replicas too. slotKey is a key of its
// writes, which names the master that takes them.
type acknowledged interface {
	slotKey() string
}

// acknowledges reports whether any of the jobs is acknowledged.
func acknowledges(jobs []pipeJob, groups []*callGroup) bool {
	for _, j := range jobs {
		if _, ok := j.(acknowledged); ok {
			return true
		}
	}
	for _, g := range groups {
		if _, ok := g.jobs[0].(acknowledged); ok {
			return true
		}
	}
	return false
}

// ErrNotReplicated says Redis took a write but fewer replicas than
// Config.Replicas confirmed it in time: it may be lost if its master
// dies now. It is an ErrUnconfirmed: retry with the same Idempotency-Key.
var ErrNotReplicated = fmt.Errorf("%w: too few replicas confirmed it", ErrUnconfirmed)

// waited notes the acknowledged jobs of a pipeline whose WAIT counted
// fewer than want replicas (or failed). Several pipelines may note at once
// (a Cluster's masters).
func (f *flushScratch) waited(jobs []pipeJob, groups []*callGroup, wait *goredis.Cmd, want int) {
	if n, err := wait.Int64(); err == nil && n >= int64(want) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unreplicated == nil {
		f.unreplicated = map[pipeJob]bool{}
	}
	for _, j := range jobs {
		if _, ok := j.(acknowledged); ok {
			f.unreplicated[j] = true
		}
	}
	for _, g := range groups {
		if _, ok := g.jobs[0].(acknowledged); ok && g.cmd.Err() == nil {
			g.cmd.SetErr(ErrNotReplicated)
		}
	}
}

// replicated is nil, or ErrNotReplicated for a job too few replicas
// confirmed.
func (f *flushScratch) replicated(j pipeJob) error {
	if f.unreplicated[j] {
		return ErrNotReplicated
	}
	return nil
}

// queue adds the group's one call to p.
func (g *callGroup) queue(ctx context.Context, p goredis.Pipeliner) {
	// The arguments are laid out as FCALL takes them, in the group's
	// reused slice: the command holds it until the pipeline has run.
	keys, head := g.jobs[0].mergeHead()
	for _, j := range g.jobs {
		if pq, ok := j.(prequeuer); ok {
			pq.prequeue(ctx, p)
		}
	}
	args := append(g.args[:0], "fcall", g.key.fn.name, len(keys))
	args = append(args, keys...)
	args = append(args, head...)
	for _, j := range g.jobs {
		args = j.mergeArgs(args)
	}
	g.args = args
	g.cmd = goredis.NewCmd(ctx, args...)
	if len(keys) > 0 {
		g.cmd.SetFirstKeyPos(3)
	}
	_ = p.Process(ctx, g.cmd)
}

// answer hands each job of the group its share of the call's answer.
func (g *callGroup) answer() {
	vals, err := g.cmd.Slice()
	off := 0
	for _, j := range g.jobs {
		w := j.mergeWidth()
		switch {
		case err != nil:
			j.merged(nil, err)
		case off+w > len(vals):
			j.merged(nil, errShortAnswer)
		default:
			j.merged(vals[off:off+w:off+w], nil)
		}
		off += w
	}
}

// errShortAnswer says a merged call answered fewer values than its jobs
// need: a function and its caller disagree.
var errShortAnswer = errors.New("redis function answered too few values")

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

// The jobs the API acknowledges (see acknowledged).
func (j *enqueueJob) slotKey() string { return j.s.keys.Events(j.shard) }
func (j *chunksJob) slotKey() string  { return j.keys[0] }
func (j *inboundJob) slotKey() string { return j.args.Stream }
