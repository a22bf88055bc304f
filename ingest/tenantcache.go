package ingest

import (
	"context"
	"sync"
	"time"
)

// tenantCache keeps one value per tenant for ttl, read by load when
// missing or older, so that a send does not read it from Redis each time;
// a change made elsewhere reaches this process within ttl, one made here
// at once (forget). When load fails, the last value read is answered,
// however old: a Redis outage does not change a tenant's rules.
type tenantCache[T any] struct {
	load func(ctx context.Context, tenant string) (T, error)
	ttl  time.Duration
	mu   sync.Mutex
	m    map[string]cached[T]
}

type cached[T any] struct {
	v  T
	at time.Time
}

func newTenantCache[T any](ttl time.Duration, load func(ctx context.Context, tenant string) (T, error)) *tenantCache[T] {
	return &tenantCache[T]{load: load, ttl: ttl, m: map[string]cached[T]{}}
}

// get returns tenant's value; with nothing read yet and load failing,
// load's value and its error.
func (c *tenantCache[T]) get(ctx context.Context, tenant string) (T, error) {
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

// forget drops tenant's value (after this process changed it).
func (c *tenantCache[T]) forget(tenant string) {
	c.mu.Lock()
	delete(c.m, tenant)
	c.mu.Unlock()
}
