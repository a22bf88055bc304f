package redis

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Trimmer periodically removes acknowledged entries from the events streams
// (TrimEvents), so that Redis holds only what some consumer still needs.
type Trimmer struct {
	s        *Store
	interval time.Duration
	log      *slog.Logger
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// NewTrimmer returns a trimmer running every interval (10 s when 0).
func NewTrimmer(s *Store, interval time.Duration, log *slog.Logger) *Trimmer {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	return &Trimmer{s: s, interval: interval, log: log, stop: make(chan struct{})}
}

// Start runs the trimmer in the background.
func (t *Trimmer) Start() {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		tick := time.NewTicker(t.interval)
		defer tick.Stop()
		failing := false
		for {
			select {
			case <-t.stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), t.interval)
			_, err := t.s.TrimEvents(ctx)
			cancel()
			if (err != nil) != failing {
				failing = err != nil
				if failing {
					t.log.Warn("trimming events streams fails", "err", err)
				} else {
					t.log.Info("trimming events streams works again")
				}
			}
		}
	}()
}

// Shutdown stops the trimmer.
func (t *Trimmer) Shutdown() {
	t.stopOnce.Do(func() { close(t.stop) })
	t.wg.Wait()
}
