// Package redis owns wagate's Redis layout: the shard queues, message state
// hashes, events and inbound streams, and the Lua scripts that change them
// atomically. Every key one script touches carries its shard's hash tag, so
// the same code runs on one Redis or on a Redis Cluster.
package redis

import "fmt"

// Keys builds key names. Prefix namespaces a deployment (and each test) so
// that several can share one Redis.
type Keys struct {
	prefix string
	shards []string // "wa:{s07}:" per shard, built once
	parts  []string // "wa:{i03}:" per inbound partition
}

// NewKeys returns the key names for prefix ("wa" by default), shards message
// shards and parts inbound partitions.
func NewKeys(prefix string, shards, parts int) *Keys {
	if prefix == "" {
		prefix = "wa"
	}
	k := &Keys{prefix: prefix, shards: make([]string, shards), parts: make([]string, parts)}
	for i := range k.shards {
		k.shards[i] = fmt.Sprintf("%s:{s%02d}:", prefix, i)
	}
	for i := range k.parts {
		k.parts[i] = fmt.Sprintf("%s:{i%02d}:", prefix, i)
	}
	return k
}

// Shards is the number of message shards.
func (k *Keys) Shards() int { return len(k.shards) }

// Parts is the number of inbound partitions.
func (k *Keys) Parts() int { return len(k.parts) }

// Prefix is the namespace all keys start with.
func (k *Keys) Prefix() string { return k.prefix }

// Queue is the stream of queued sends of shard's lane ("tx" or "bulk").
func (k *Keys) Queue(shard int, lane string) string { return k.shards[shard] + "q:" + lane }

// Delay is the zset of retries and scheduled sends of shard, scored by due time.
func (k *Keys) Delay(shard int) string { return k.shards[shard] + "delay" }

// Lease is the shard's ownership lease.
func (k *Keys) Lease(shard int) string { return k.shards[shard] + "lease" }

// Msg is the state hash of message id, which lives on shard.
func (k *Keys) Msg(shard int, id string) string { return k.shards[shard] + "msg:" + id }

// Idem maps a tenant's Idempotency-Key to a message id.
func (k *Keys) Idem(shard int, tenant, key string) string {
	return k.shards[shard] + "idem:" + tenant + ":" + key
}

// Conv is the (sender, guest) conversation hash.
func (k *Keys) Conv(shard int, guest string) string { return k.shards[shard] + "conv:" + guest }

// Events is the shard's status events stream.
func (k *Keys) Events(shard int) string { return k.shards[shard] + "events" }

// DLQ is the shard's dead-letter stream.
func (k *Keys) DLQ(shard int) string { return k.shards[shard] + "dlq" }

// PID maps a provider message id to wagate's message id. It has no hash tag:
// it is written and read on its own, never inside a shard's script.
func (k *Keys) PID(providerID string) string { return k.prefix + ":pid:" + providerID }

// Inbound is the stream of verified raw provider webhooks of partition part.
func (k *Keys) Inbound(part int) string { return k.parts[part] + "inbound" }

// Orphans is the zset of statuses whose provider id was not known yet when
// they arrived, scored by when to look again.
func (k *Keys) Orphans(part int) string { return k.parts[part] + "orphans" }
