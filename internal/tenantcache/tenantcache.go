// Package tenantcache keeps one value per tenant (settings, staff ids)
// for a short while, so that a request or a webhook does not read it from
// Redis each time, and so that a Redis outage does not change a tenant's
// rules.
package tenantcache

import (
	"context"
	"sync"
	"time"
)

// Cache keeps one value per tenant for ttl, read by load when missing or
// older; a change made elsewhere reaches this process within ttl, one made
// here at once (Forget). When load fails, the last value read is
// answered, however old.
type Cache[T any] struct {
	load func(ctx context.Context, tenant string) (T, error)
	ttl  time.Duration
	mu   sync.Mutex
	m    map[string]cached[T]
}

type cached[T any] struct {
	v  T
	at time.Time
}

// New returns a cache whose values live ttl, read by load.
func New[T any](ttl time.Duration, load func(ctx context.Context, tenant string) (T, error)) *Cache[T] {
	return &Cache[T]{load: load, ttl: ttl, m: map[string]cached[T]{}}
}

// Get returns tenant's value; with nothing read yet and load failing,
// load's value and its error.
func (c *Cache[T]) Get(ctx context.Context, tenant string) (T, error) {
	c.mu.Lock()
	e, ok := c.m[tenant]
	c.mu.Unlock()
	if ok && time.Since(e.at) < c.ttl {
		return e.v, nil
	}
	v, err := c.load(ctx, tenant)
	if err != nil {
		if ok {
			return e.v, nil
		}
		return v, err
	}
	c.mu.Lock()
	c.m[tenant] = cached[T]{v: v, at: time.Now()}
	c.mu.Unlock()
	return v, nil
}

// Forget drops tenant's value (after this process changed it).
func (c *Cache[T]) Forget(tenant string) {
	c.mu.Lock()
	delete(c.m, tenant)
	c.mu.Unlock()
}
