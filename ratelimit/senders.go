package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Config sets every number's bucket.
type Config struct {
	// DefaultRate is a number's messages per second unless PerNumber says
	// otherwise (TierDefault).
	DefaultRate float64
	// PerNumber overrides DefaultRate (E.164 → mps): TierUpgrade after
	// Meta's upgrade, TierShared for numbers shared with the Business app.
	PerNumber map[string]float64
	// Burst, Decrease, Increase and Floor apply to every number (see
	// SenderConfig).
	Burst                     int
	Decrease, Increase, Floor float64
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.DefaultRate < 0 {
		return errors.New("ratelimit: default rate must be positive")
	}
	for n, r := range c.PerNumber {
		if r <= 0 {
			return fmt.Errorf("ratelimit: rate of %s must be positive", n)
		}
	}
	return nil
}

// Senders is the adaptive bucket of every sender number, made on first use.
// Safe for concurrent use.
type Senders struct {
	cfg Config
	mu  sync.RWMutex
	m   map[string]*Sender
}

// NewSenders returns the buckets for cfg.
func NewSenders(cfg Config) (*Senders, error) {
	if cfg.DefaultRate == 0 {
		cfg.DefaultRate = TierDefault
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Senders{cfg: cfg, m: map[string]*Sender{}}
	// Build one bucket to check the shared settings now, not on first use.
	if _, err := NewSender(s.senderConfig("")); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Senders) senderConfig(number string) SenderConfig {
	r, ok := s.cfg.PerNumber[number]
	if !ok {
		r = s.cfg.DefaultRate
	}
	return SenderConfig{Rate: r, Burst: s.cfg.Burst, Decrease: s.cfg.Decrease, Increase: s.cfg.Increase, Floor: s.cfg.Floor}
}

// Get returns number's bucket.
func (s *Senders) Get(number string) *Sender {
	s.mu.RLock()
	b := s.m[number]
	s.mu.RUnlock()
	if b != nil {
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b = s.m[number]; b == nil {
		b, _ = NewSender(s.senderConfig(number)) // checked in NewSenders
		s.m[number] = b
	}
	return b
}

// Wait blocks until number may send one more message, or ctx ends.
func (s *Senders) Wait(ctx context.Context, number string) error { return s.Get(number).Wait(ctx) }

// Throttled tells number's bucket the provider throttled it.
func (s *Senders) Throttled(number string, retryAfter time.Duration) {
	s.Get(number).Throttled(time.Now(), retryAfter)
}
