package meta

import (
	"context"
	"time"
)

// SetFetchClock gives f's rate limiter a test's clock.
func SetFetchClock(f *MediaFetcher, now func() time.Time, sleep func(context.Context, time.Duration) error) {
	f.now, f.sleep = now, sleep
}
