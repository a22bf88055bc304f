package redis

import (
	"sync"

	"github.com/wagate/wagate/message"
)

// argCache keeps the values that recur in the enqueue function's arguments
// (shard prefixes, tenants, senders, types, lanes, queue keys) as the
// interface values go-redis takes: converting a string to an interface
// allocates every time, so a send would pay for each; these are converted
// once. It forgets everything when it grows past argCacheMax.
type argCache struct {
	mu     sync.RWMutex
	strs   map[string]any
	queues map[queueRef]any
}

// argCacheMax bounds each of argCache's maps.
const argCacheMax = 10_000

// queueRef names one queue stream.
type queueRef struct {
	shard    int
	sender   string
	lane     message.Lane
	campaign string
}

// str returns s as an interface value.
func (c *argCache) str(s string) any {
	c.mu.RLock()
	v, ok := c.strs[s]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = s
	c.mu.Lock()
	if c.strs == nil || len(c.strs) >= argCacheMax {
		c.strs = make(map[string]any)
	}
	c.strs[s] = v
	c.mu.Unlock()
	return v
}

// queue returns the key of a queue stream as an interface value.
func (c *argCache) queue(k *Keys, r queueRef) any {
	c.mu.RLock()
	v, ok := c.queues[r]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = k.SenderQueue(r.shard, r.sender, r.lane, r.campaign)
	c.mu.Lock()
	if c.queues == nil || len(c.queues) >= argCacheMax {
		c.queues = make(map[queueRef]any)
	}
	c.queues[r] = v
	c.mu.Unlock()
	return v
}
