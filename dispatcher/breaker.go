package dispatcher

import (
	"errors"
	"sync"
	"time"

	"github.com/sony/gobreaker"

	"github.com/wagate/wagate/provider"
)

// BreakerConfig sets the circuit breaker of every provider account.
type BreakerConfig struct {
	// Window is the span over which failures are counted while closed (10 s).
	Window time.Duration
	// MinRequests is how many calls a window needs before it may trip (20).
	MinRequests uint32
	// FailureRatio trips the breaker (0.5): that share of calls failed with
	// a transient error (5xx, timeout, connection refused).
	FailureRatio float64
	// OpenFor is how long the breaker stays open before it lets probes
	// through (10 s).
	OpenFor time.Duration
	// Probes is how many calls may go while half-open (3); as many
	// successes close it again.
	Probes uint32
}

func (c *BreakerConfig) setDefaults() {
	if c.Window == 0 {
		c.Window = 10 * time.Second
	}
	if c.MinRequests == 0 {
		c.MinRequests = 20
	}
	if c.FailureRatio == 0 {
		c.FailureRatio = 0.5
	}
	if c.OpenFor == 0 {
		c.OpenFor = 10 * time.Second
	}
	if c.Probes == 0 {
		c.Probes = 3
	}
}

// breaker is a provider account's circuit breaker, with what pumps need to
// wait for it without polling: the time it opened and a channel closed at
// every change of state.
type breaker struct {
	cb      *gobreaker.TwoStepCircuitBreaker
	openFor time.Duration
	name    string

	mu       sync.Mutex
	openedAt time.Time
	changed  chan struct{}
	// lastUp says the provider's last answered call showed it working: a
	// failure right after another one is an outage's, not its message's.
	lastUp bool
}

func newBreaker(name string, cfg BreakerConfig, onChange func(name string, to gobreaker.State)) *breaker {
	b := &breaker{openFor: cfg.OpenFor, name: name, changed: make(chan struct{}), lastUp: true}
	b.cb = gobreaker.NewTwoStepCircuitBreaker(gobreaker.Settings{
		Name:        name,
		MaxRequests: cfg.Probes,
		Interval:    cfg.Window,
		Timeout:     cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.Requests >= cfg.MinRequests && float64(c.TotalFailures) >= cfg.FailureRatio*float64(c.Requests)
		},
		OnStateChange: func(_ string, _, to gobreaker.State) {
			b.mu.Lock()
			if to == gobreaker.StateOpen {
				b.openedAt = time.Now()
			}
			close(b.changed)
			b.changed = make(chan struct{})
			b.mu.Unlock()
			if onChange != nil {
				onChange(name, to)
			}
		},
	})
	return b
}

// allow asks to make one call; done reports whether the provider was up.
// When the breaker refuses, it returns the channel that closes at its next
// change of state and when it will let probes through.
func (b *breaker) allow() (done func(up bool), wait <-chan struct{}, until time.Time) {
	done, err := b.cb.Allow()
	if err == nil {
		return done, nil, time.Time{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	until = b.openedAt.Add(b.openFor)
	if errors.Is(err, gobreaker.ErrTooManyRequests) || until.Before(time.Now()) {
		// Half-open with its probes out: wait for them to decide.
		until = time.Now().Add(b.openFor / 10)
	}
	return nil, b.changed, until
}

// report records a call's outcome (done is allow's) and says whether a
// failure may count against its message: only when the provider was
// otherwise accepting. It was not when the breaker is open or half-open
// now (this failure tripped it, or a probe failed) or when the call
// answered before this one failed too (an outage, however little traffic
// there is to trip the breaker).
func (b *breaker) report(done func(up bool), up bool) (counts bool) {
	done(up) // first: gobreaker's state change takes b.mu
	b.mu.Lock()
	accepting := b.lastUp
	b.lastUp = up
	b.mu.Unlock()
	return !up && accepting && b.cb.State() == gobreaker.StateClosed
}

// closed reports whether the breaker lets every call through now.
func (b *breaker) closed() bool { return b.cb.State() == gobreaker.StateClosed }

// open reports whether calls are refused now, without using up a probe.
func (b *breaker) open() bool {
	st := b.cb.State()
	return st == gobreaker.StateOpen
}

// providerUp says whether a call's outcome shows the provider working: a
// refusal of the message (invalid, throttled) does; a 5xx, a timeout or a
// connection error does not.
func providerUp(err error) bool {
	return err == nil || provider.ClassOf(err) != provider.ClassRetry
}
