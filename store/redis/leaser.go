package redis

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ShardOwner is told which shards it owns by a Leaser. The calls come from
// the leaser's goroutine and must not block.
type ShardOwner interface {
	// Acquired: work the shard under l from now on.
	Acquired(l *Lease)
	// Release: stop working the shard; call done once nothing more will be
	// written under its lease. The lease is kept alive until then.
	Release(shard int, done func())
	// Lost: the lease expired or was taken; stop at once (writes under it
	// are refused anyway).
	Lost(shard int)
}

// LeaserConfig configures a Leaser.
type LeaserConfig struct {
	// Role names what the leases are for ("dispatch"); each role has its
	// own leases and membership.
	Role string
	// Instance names this process; it must be unique among live ones.
	Instance string
	// TTL is how long a lease outlives its last renewal (5 s): when an
	// instance dies, its shards move within about that time.
	TTL time.Duration
	// Tick is how often the membership is read and free shards are taken
	// (TTL/10). Leases are renewed, and the membership written, every
	// TTL/5 (or tick, when longer).
	Tick time.Duration
}

// Leaser spreads a role's shards evenly over the live instances: each
// instance heartbeats into the role's membership, computes from the sorted
// members which shards are its share, takes those that are free, renews
// those it holds, and gives back those that are no longer its share.
type Leaser struct {
	s     *Store
	cfg   LeaserConfig
	owner ShardOwner
	log   *slog.Logger

	mu        sync.Mutex
	held      map[int]*heldLease
	members   []string
	stop      chan struct{}
	stopOnce  sync.Once
	done      chan struct{}
	lastRenew time.Time
	// lastBeat: the membership is written as often as leases are renewed,
	// and only read on the ticks between.
	lastBeat time.Time
	// stopping: Shutdown is giving the shards back; the loop keeps renewing
	// them until their owners are done, and takes nothing.
	stopping atomic.Bool
}

type heldLease struct {
	lease     *Lease
	releasing bool
}

// NewLeaser returns a leaser for cfg.Role's shards of s, telling owner.
func (s *Store) NewLeaser(cfg LeaserConfig, owner ShardOwner, log *slog.Logger) (*Leaser, error) {
	if cfg.Role == "" || cfg.Instance == "" {
		return nil, fmt.Errorf("leaser: role and instance are required")
	}
	if cfg.TTL == 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.Tick == 0 {
		cfg.Tick = cfg.TTL / 10
	}
	if cfg.TTL < 100*time.Millisecond || cfg.Tick <= 0 || cfg.Tick > cfg.TTL/3 {
		return nil, fmt.Errorf("leaser: TTL %v and tick %v do not fit (tick ≤ TTL/3)", cfg.TTL, cfg.Tick)
	}
	return &Leaser{s: s, cfg: cfg, owner: owner, log: log, held: map[int]*heldLease{},
		stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// Start runs the leaser in the background.
func (l *Leaser) Start() {
	go l.run()
}

func (l *Leaser) run() {
	defer close(l.done)
	t := time.NewTicker(l.cfg.Tick)
	defer t.Stop()
	failing := false
	for {
		err := l.tick()
		if (err != nil) != failing {
			failing = err != nil
			if failing {
				l.log.Warn("shard leases: Redis fails; retrying", "role", l.cfg.Role, "err", err)
			} else {
				l.log.Info("shard leases: Redis works again", "role", l.cfg.Role)
			}
		}
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
	}
}

// share returns the shards that are instance's share among members.
func share(members []string, instance string, shards int) []int {
	if !slices.Contains(members, instance) {
		members = append(slices.Clone(members), instance)
	}
	slices.Sort(members)
	me := slices.Index(members, instance)
	var out []int
	for sh := 0; sh < shards; sh++ {
		if sh%len(members) == me {
			out = append(out, sh)
		}
	}
	return out
}

func (l *Leaser) tick() error {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.TTL/2)
	defer cancel()
	if l.stopping.Load() {
		return l.renew(ctx, l.heldNow())
	}
	var members []string
	var err error
	if time.Since(l.lastBeat) >= l.renewEvery() {
		if members, err = l.s.Heartbeat(ctx, l.cfg.Role, l.cfg.Instance, l.leaseTTL()); err == nil {
			l.lastBeat = time.Now()
		}
	} else {
		members, err = l.s.LiveMembers(ctx, l.cfg.Role, l.leaseTTL())
	}
	if err != nil {
		l.expireUnrenewed()
		return err
	}
	target := share(members, l.cfg.Instance, l.s.cfg.Shards)
	l.mu.Lock()
	l.members = members
	held := make(map[int]*heldLease, len(l.held))
	for sh, h := range l.held {
		held[sh] = h
	}
	l.mu.Unlock()

	if err := l.renew(ctx, held); err != nil {
		return err
	}
	for sh, h := range held {
		l.mu.Lock()
		releasing := h.releasing
		l.mu.Unlock()
		if !releasing && !slices.Contains(target, sh) {
			l.release(sh, h)
		}
	}
	for _, sh := range target {
		if _, ok := held[sh]; ok {
			continue
		}
		lease, ok, err := l.s.TakeLease(ctx, l.cfg.Role, sh, l.cfg.Instance, l.leaseTTL())
		if err != nil {
			return err
		}
		if ok {
			l.mu.Lock()
			l.held[sh] = &heldLease{lease: lease}
			l.mu.Unlock()
			l.owner.Acquired(lease)
		}
	}
	return nil
}

// leaseTTL is the expiry set on a lease: a tick short of TTL, so that a
// survivor, looking every tick, holds a dead instance's shard within TTL.
func (l *Leaser) leaseTTL() time.Duration { return l.cfg.TTL - l.cfg.Tick }

// heldNow returns a copy of the held leases.
func (l *Leaser) heldNow() map[int]*heldLease {
	l.mu.Lock()
	defer l.mu.Unlock()
	held := make(map[int]*heldLease, len(l.held))
	for sh, h := range l.held {
		held[sh] = h
	}
	return held
}

// renewEvery is how often leases are renewed and the membership written:
// TTL/5, or the tick when longer.
func (l *Leaser) renewEvery() time.Duration { return max(l.cfg.TTL/5, l.cfg.Tick) }

// renew extends held leases every TTL/5, all in one round trip (a command
// each), dropping (and telling the owner of) the ones that are gone; it
// removes those from held. A lease lives TTL - tick, so a process stalled
// (GC, a starved CPU) for less than about three quarters of that keeps its
// shards: a lost lease means the sends in flight on it may go twice.
func (l *Leaser) renew(ctx context.Context, held map[int]*heldLease) error {
	if time.Since(l.lastRenew) < l.renewEvery() {
		return nil
	}
	shards := make([]int, 0, len(held))
	leases := make([]*Lease, 0, len(held))
	for sh, h := range held {
		shards, leases = append(shards, sh), append(leases, h.lease)
	}
	if len(leases) > 0 {
		ok, err := l.s.RenewLeases(ctx, leases, l.leaseTTL())
		if err != nil {
			l.expireUnrenewed()
			return err
		}
		for i, sh := range shards {
			if !ok[i] {
				l.drop(sh)
				l.owner.Lost(sh)
				l.log.Warn("shard lease lost", "role", l.cfg.Role, "shard", sh)
				delete(held, sh)
			}
		}
	}
	l.lastRenew = time.Now()
	return nil
}

// expireUnrenewed gives up leases that may have expired while Redis could
// not be reached: past their TTL another instance may own the shard.
func (l *Leaser) expireUnrenewed() {
	if time.Since(l.lastRenew) < l.leaseTTL() {
		return
	}
	l.mu.Lock()
	var lost []int
	for sh := range l.held {
		lost = append(lost, sh)
	}
	clear(l.held)
	l.mu.Unlock()
	for _, sh := range lost {
		l.owner.Lost(sh)
	}
}

// release asks the owner to stop the shard and gives the lease back when
// it has.
func (l *Leaser) release(sh int, h *heldLease) {
	l.mu.Lock()
	h.releasing = true
	l.mu.Unlock()
	l.owner.Release(sh, func() {
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.TTL)
		defer cancel()
		if err := l.s.ReleaseLease(ctx, h.lease); err != nil {
			l.log.Warn("giving back a shard lease", "shard", sh, "err", err)
		}
		l.drop(sh)
	})
}

func (l *Leaser) drop(sh int) {
	l.mu.Lock()
	delete(l.held, sh)
	l.mu.Unlock()
}

// Owned returns the shards held now, sorted.
func (l *Leaser) Owned() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]int, 0, len(l.held))
	for sh := range l.held {
		out = append(out, sh)
	}
	slices.Sort(out)
	return out
}

// Members returns the live instances of the role as last seen.
func (l *Leaser) Members() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.members)
}

// Shutdown gives every shard back: it leaves the membership (so that the
// others take the shards as soon as they are free), asks the owner to
// release each, keeps renewing the leases until the owner is done with them
// (bounded by ctx), and gives each back as it is.
func (l *Leaser) Shutdown(ctx context.Context) error {
	l.stopping.Store(true)
	lctx, lcancel := context.WithTimeout(context.Background(), time.Second)
	l.s.Leave(lctx, l.cfg.Role, l.cfg.Instance)
	lcancel()
	l.mu.Lock()
	release := map[int]*heldLease{}
	for sh, h := range l.held {
		if !h.releasing {
			h.releasing = true
			release[sh] = h
		}
	}
	l.mu.Unlock()
	var wg sync.WaitGroup
	for sh, h := range release {
		wg.Add(1)
		l.owner.Release(sh, func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			l.s.ReleaseLease(rctx, h.lease)
			l.drop(sh)
		})
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	var err error
	select {
	case <-waited:
	case <-ctx.Done():
		err = fmt.Errorf("leaser: shards not released in time: %w", ctx.Err())
	}
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
	return err
}
