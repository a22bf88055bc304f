// Package ratelimit holds the token buckets that keep each sender number
// within what its provider allows. It imports nothing of the project.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/time/rate"
)

// Config sets the rates.
type Config struct {
	// DefaultRate is a number's messages per second unless PerNumber says
	// otherwise (80: Meta's default tier).
	DefaultRate float64
	// Burst is how many messages may go at once after a quiet spell, per
	// number (0: one second's worth of the number's rate, at least 1).
	Burst int
	// PerNumber overrides DefaultRate for some numbers (E.164 → mps): 1000
	// after Meta's upgrade, 20 for numbers shared with the Business app.
	PerNumber map[string]float64
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.DefaultRate <= 0 {
		return errors.New("ratelimit: default rate must be positive")
	}
	for n, r := range c.PerNumber {
		if r <= 0 {
			return fmt.Errorf("ratelimit: rate of %s must be positive", n)
		}
	}
	if c.Burst < 0 {
		return errors.New("ratelimit: burst must not be negative")
	}
	return nil
}

// Senders is a token bucket per sender number. It is safe for concurrent use.
type Senders struct {
	cfg     Config
	mu      sync.RWMutex
	buckets map[string]*rate.Limiter
}

// NewSenders returns the buckets for cfg.
func NewSenders(cfg Config) (*Senders, error) {
	if cfg.DefaultRate == 0 {
		cfg.DefaultRate = 80
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Senders{cfg: cfg, buckets: map[string]*rate.Limiter{}}, nil
}

// Wait blocks until sender may send one more message, or ctx ends.
func (s *Senders) Wait(ctx context.Context, sender string) error {
	return s.bucket(sender).Wait(ctx)
}

// Rate is sender's configured messages per second.
func (s *Senders) Rate(sender string) float64 {
	if r, ok := s.cfg.PerNumber[sender]; ok {
		return r
	}
	return s.cfg.DefaultRate
}

func (s *Senders) bucket(sender string) *rate.Limiter {
	s.mu.RLock()
	b := s.buckets[sender]
	s.mu.RUnlock()
	if b != nil {
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b = s.buckets[sender]; b == nil {
		r := s.Rate(sender)
		burst := s.cfg.Burst
		if burst == 0 {
			burst = max(1, int(r))
		}
		b = rate.NewLimiter(rate.Limit(r), burst)
		s.buckets[sender] = b
	}
	return b
}
