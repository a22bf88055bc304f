package ratelimit

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// PairConfig sets the per-(sender, recipient) buckets.
type PairConfig struct {
	// Every is the steady interval between messages to one recipient
	// (6 s: Meta's pair rate).
	Every time.Duration
	// Burst is how many may go to one recipient at once (45).
	Burst int
	// Defer is how long a pair waits after the provider said it was over
	// its pair rate (131056) when it gave no Retry-After (5 × Every).
	Defer time.Duration
}

func (c *PairConfig) setDefaults() {
	if c.Every == 0 {
		c.Every = 6 * time.Second
	}
	if c.Burst == 0 {
		c.Burst = 45
	}
	if c.Defer == 0 {
		c.Defer = 5 * c.Every
	}
}

// Validate reports the first setting that cannot work.
func (c PairConfig) Validate() error {
	if c.Every <= 0 || c.Burst < 1 || c.Defer <= 0 {
		return errors.New("ratelimit: pair interval, burst and defer must be positive")
	}
	return nil
}

// Pairs holds one bucket per recipient of one sender. Buckets that have
// refilled are dropped by Sweep, so memory follows the recipients written
// to lately, not all recipients ever. Safe for concurrent use.
type Pairs struct {
	cfg PairConfig
	mu  sync.Mutex
	m   map[string]*pair
}

type pair struct {
	lim      *rate.Limiter
	lastUsed time.Time
	until    time.Time // deferred by the provider until then
	// drain: the provider counted more than this bucket did (others send
	// to this recipient too), so after the deferral it restarts empty.
	drain bool
}

// NewPairs returns empty pair buckets.
func NewPairs(cfg PairConfig) (*Pairs, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Pairs{cfg: cfg, m: map[string]*pair{}}, nil
}

// Take takes a token for recipient at now if one is there and returns 0,
// or takes none and returns how long until one will be.
func (p *Pairs) Take(recipient string, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.m[recipient]
	if b == nil {
		b = &pair{lim: rate.NewLimiter(rate.Every(p.cfg.Every), p.cfg.Burst)}
		p.m[recipient] = b
	}
	if wait := b.until.Sub(now); wait > 0 {
		return wait
	}
	if b.drain {
		// The deferral was this message's wait; the next ones go at the
		// steady rate.
		b.drain = false
		if t := int(b.lim.TokensAt(now)); t > 0 {
			b.lim.AllowN(now, t)
		}
		b.lastUsed = now
		return 0
	}
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	b.lastUsed = now
	return 0
}

// Defer holds recipient back for d (the provider's Retry-After) or for the
// configured Defer when d is 0, after the provider refused a message for
// the pair rate (Meta 131056).
func (p *Pairs) Defer(recipient string, now time.Time, d time.Duration) time.Time {
	if d <= 0 {
		d = p.cfg.Defer
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.m[recipient]
	if b == nil {
		b = &pair{lim: rate.NewLimiter(rate.Every(p.cfg.Every), p.cfg.Burst)}
		p.m[recipient] = b
	}
	b.until = now.Add(d)
	b.lastUsed = now
	b.drain = true
	return b.until
}

// Sweep drops buckets that are full again and not deferred: a fresh bucket
// would behave the same. It returns how many remain.
func (p *Pairs) Sweep(now time.Time) int {
	refill := p.cfg.Every * time.Duration(p.cfg.Burst)
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, b := range p.m {
		if now.Sub(b.lastUsed) > refill && now.After(b.until) {
			delete(p.m, k)
		}
	}
	return len(p.m)
}
