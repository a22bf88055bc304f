package ingest

import (
	"context"
	"sync"
	"time"
)

// depthCache keeps each tenant's count of messages not yet sent, refreshed
// at most every maxAge, so that backpressure costs a Redis round trip per
// tenant and second rather than per request.
type depthCache struct {
	read   func(ctx context.Context, tenant string) (int64, error)
	maxAge time.Duration

	mu sync.Mutex
	m  map[string]depthEntry
}

type depthEntry struct {
	n  int64
	at time.Time
}

func newDepthCache(read func(context.Context, string) (int64, error), maxAge time.Duration) *depthCache {
	return &depthCache{read: read, maxAge: maxAge, m: map[string]depthEntry{}}
}

// get returns tenant's count, at most maxAge old. When Redis cannot say, it
// answers 0: the send itself will then fail or succeed on its own.
func (c *depthCache) get(ctx context.Context, tenant string) int64 {
	c.mu.Lock()
	e, ok := c.m[tenant]
	c.mu.Unlock()
	if ok && time.Since(e.at) < c.maxAge {
		return e.n
	}
	n, err := c.read(ctx, tenant)
	if err != nil {
		return e.n
	}
	c.mu.Lock()
	c.m[tenant] = depthEntry{n: n, at: time.Now()}
	c.mu.Unlock()
	return n
}

// add counts n more messages for tenant until the next refresh, so that a
// burst within one refresh period is held to the cap too.
func (c *depthCache) add(tenant string, n int64) {
	c.mu.Lock()
	if e, ok := c.m[tenant]; ok {
		e.n += n
		c.m[tenant] = e
	}
	c.mu.Unlock()
}
