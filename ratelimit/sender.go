package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Tier rates of Meta's Cloud API, in messages per second.
const (
	TierDefault = 80   // every number at first
	TierUpgrade = 1000 // after Meta's automatic upgrade
	TierShared  = 20   // numbers shared with the WhatsApp Business app
)

// SenderConfig sets one sender's bucket.
type SenderConfig struct {
	// Rate is the number's allowed messages per second (its tier).
	Rate float64
	// Burst is how many may go at once after a quiet spell (0: a tenth of a
	// second's worth, at least 1). Kept small so that a provider counting
	// per second never sees more than Rate in any second.
	Burst int
	// Decrease multiplies the rate when the provider throttles (0.7).
	Decrease float64
	// Increase is what the rate regains per second without throttling, as
	// a fraction of Rate (0.02: from half the rate back in 25 s).
	Increase float64
	// Floor is the lowest the rate goes, as a fraction of Rate (0.05).
	Floor float64
}

func (c *SenderConfig) setDefaults() {
	if c.Burst == 0 {
		c.Burst = max(1, int(c.Rate/10))
	}
	if c.Decrease == 0 {
		c.Decrease = 0.7
	}
	if c.Increase == 0 {
		c.Increase = 0.02
	}
	if c.Floor == 0 {
		c.Floor = 0.05
	}
}

// Validate reports the first setting that cannot work.
func (c SenderConfig) Validate() error {
	switch {
	case c.Rate <= 0:
		return fmt.Errorf("ratelimit: rate must be positive, got %v", c.Rate)
	case c.Burst < 0:
		return errors.New("ratelimit: burst must not be negative")
	case c.Decrease < 0 || c.Decrease >= 1:
		return errors.New("ratelimit: decrease must be in (0, 1)")
	case c.Increase < 0 || c.Floor < 0 || c.Floor > 1:
		return errors.New("ratelimit: increase and floor must be fractions")
	}
	return nil
}

// Sender is one number's adaptive token bucket: additive increase,
// multiplicative decrease on throttling, and a pause for Retry-After. It is
// safe for concurrent use.
type Sender struct {
	cfg SenderConfig
	lim *rate.Limiter

	mu         sync.Mutex
	current    float64
	pauseUntil time.Time
	// lastAdjust is when the rate last changed (either way), lastDecrease
	// when it was last lowered.
	lastAdjust   time.Time
	lastDecrease time.Time
	throttles    int
	// ceiling is the rate at which the provider last throttled: recovery
	// slows down near it, so the rate settles just below what the
	// provider takes instead of overshooting it again and again.
	ceiling float64
}

// NewSender returns a bucket full to its burst, at cfg.Rate.
func NewSender(cfg SenderConfig) (*Sender, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Sender{cfg: cfg, lim: rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst), current: cfg.Rate}, nil
}

// Wait blocks until one more message may go, or ctx ends.
func (s *Sender) Wait(ctx context.Context) error {
	for {
		now := time.Now()
		s.mu.Lock()
		s.recover(now)
		pause := s.pauseUntil.Sub(now)
		s.mu.Unlock()
		if pause <= 0 {
			break
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return s.lim.Wait(ctx)
}

// Throttled lowers the rate after the provider refused a message for going
// too fast, and pauses the sender for retryAfter when the provider gave one.
// Throttles within one refill of the bucket count once: they are the same
// burst seen by several sends in flight.
func (s *Sender) Throttled(now time.Time, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if retryAfter > 0 && now.Add(retryAfter).After(s.pauseUntil) {
		s.pauseUntil = now.Add(retryAfter)
	}
	if now.Sub(s.lastDecrease) < time.Second && s.throttles > 0 {
		return
	}
	s.recover(now)
	s.throttles++
	s.ceiling = s.current
	s.current = max(s.current*s.cfg.Decrease, s.cfg.Rate*s.cfg.Floor)
	s.lastAdjust, s.lastDecrease = now, now
	s.lim.SetLimitAt(now, rate.Limit(s.current))
}

// recover adds back Increase×Rate per second since the last change, up to
// Rate; a tenth of that within 10% of the last throttling rate, where the
// provider's limit likely is. Called with mu held.
func (s *Sender) recover(now time.Time) {
	if s.current >= s.cfg.Rate {
		return
	}
	el := now.Sub(s.lastAdjust).Seconds()
	if el < 0.1 {
		return
	}
	fast := s.cfg.Increase * s.cfg.Rate
	near := s.cfg.Rate
	if s.ceiling > 0 {
		near = min(near, 0.9*s.ceiling)
	}
	if s.current < near {
		// Fast up to near the ceiling, and the rest of the time slowly.
		need := (near - s.current) / fast
		if el <= need {
			s.current += el * fast
			el = 0
		} else {
			s.current = near
			el -= need
		}
	}
	s.current = min(s.cfg.Rate, s.current+el*fast/10)
	s.lastAdjust = now
	s.lim.SetLimitAt(now, rate.Limit(s.current))
}

// Rate is the sender's current rate in messages per second.
func (s *Sender) Rate() float64 { return s.RateAt(time.Now()) }

// RateAt is the sender's rate at now.
func (s *Sender) RateAt(now time.Time) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recover(now)
	return s.current
}

// Configured is the sender's tier rate.
func (s *Sender) Configured() float64 { return s.cfg.Rate }

// Throttles counts the decreases so far.
func (s *Sender) Throttles() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttles
}
