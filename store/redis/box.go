package redis

import (
	"sync"

	"github.com/wagate/wagate/message"
)

// argCache keeps the values that recur in the enqueue function's arguments
// (shard prefixes, tenants, senders, types, lanes, queue keys) as the
// interface values go-redis takes: converting a string to an interface
// allocates every time, so a send would pay for each; these are converted
// once.
type argCache struct {
	strs   boxes[string]
	queues boxes[queueRef]
	regs   boxes[[2]string]
}

// queueRef names one queue stream.
type queueRef struct {
	shard    int
	sender   string
	lane     message.Lane
	campaign string
}

// str returns s as an interface value.
func (c *argCache) str(s string) any { return c.strs.get(s, func() any { return s }) }

// queue returns the key of a queue stream as an interface value.
func (c *argCache) queue(k *Keys, r queueRef) any {
	return c.queues.get(r, func() any { return k.SenderQueue(r.shard, r.sender, r.lane, r.campaign) })
}

// reg returns a queue's registration ("<lane>\t<campaign>", the value of
// its sender's queues hash) as an interface value.
func (c *argCache) reg(lane message.Lane, campaign string) any {
	k := [2]string{string(lane), campaign}
	return c.regs.get(k, func() any { return k[0] + "\t" + k[1] })
}

// boxesMax bounds a boxes map: past it, it forgets everything.
const boxesMax = 10_000

// boxes maps keys to interface values made once.
type boxes[K comparable] struct {
	mu sync.RWMutex
	m  map[K]any
}

// get returns k's value, making it with mk the first time.
func (b *boxes[K]) get(k K, mk func() any) any {
	b.mu.RLock()
	v, ok := b.m[k]
	b.mu.RUnlock()
	if ok {
		return v
	}
	v = mk()
	b.mu.Lock()
	if b.m == nil || len(b.m) >= boxesMax {
		b.m = map[K]any{}
	}
	b.m[k] = v
	b.mu.Unlock()
	return v
}
