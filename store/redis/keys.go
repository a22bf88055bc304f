// Package redis owns wagate's Redis layout: the shard queues, message state
// hashes, events and inbound streams, and the Lua scripts that change them
// atomically. Every key one script touches carries its shard's hash tag, so
// the same code runs on one Redis or on a Redis Cluster.
package redis

import (
	"fmt"
	"strconv"

	"github.com/wagate/wagate/message"
)

// Keys builds key names. Prefix namespaces a deployment (and each test) so
// that several can share one Redis.
type Keys struct {
	prefix string
	shards []string // "wa:{s07}:" per shard, built once
	parts  []string // "wa:{i03}:" per inbound partition
	// fileKeys are each shard's file stream as a function call's KEYS,
	// built once.
	fileKeys [][]string
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
		k.fileKeys = append(k.fileKeys, []string{k.File(i)})
	}
	for i := range k.parts {
		k.parts[i] = fmt.Sprintf("%s:{i%02d}:", prefix, i)
	}
	return k
}

// NewClusterKeys is NewKeys for a Redis Cluster: each shard's and
// partition's hash tag is chosen so that its slot lies in its own even
// share of the 16 384 slots ("{s07.12}" rather than "{s07}"), so that the
// shards spread evenly over masters that split the slots evenly. (The
// plain tags' slots are whatever CRC16 makes them: 16 shards fall 8, 4 and
// 4 over three masters.) A deployment keeps the keys it began with: one
// server uses NewKeys's.
func NewClusterKeys(prefix string, shards, parts int) *Keys {
	k := NewKeys(prefix, shards, parts)
	for i := range k.shards {
		k.shards[i] = fmt.Sprintf("%s:{%s}:", k.prefix, spreadTag(fmt.Sprintf("s%02d", i), i, shards))
		k.fileKeys[i] = []string{k.File(i)}
	}
	for i := range k.parts {
		// Inbound partitions are spread the same way.
		k.parts[i] = fmt.Sprintf("%s:{%s}:", k.prefix, spreadTag(fmt.Sprintf("i%02d", i), i, parts))
	}
	return k
}

// spreadTag is base.<k>, with the least k, whose slot lies within an
// eighth of a share of the middle of share i of n equal shares of the slot
// space: whichever even split of the slots the masters have, a shard
// belongs to the master holding most of its share.
func spreadTag(base string, i, n int) string {
	mid, w := (2*i+1)*clusterSlots/(2*n), max(clusterSlots/n/8, 1)
	lo, hi := mid-w, mid+w
	for k := 0; ; k++ {
		tag := base + "." + strconv.Itoa(k)
		if s := keySlot(tag); s >= lo && s < hi {
			return tag
		}
	}
}

// clusterSlots is a Redis Cluster's number of slots.
const clusterSlots = 16384

// keySlot is the Cluster slot of a hash tag: CRC16 (XMODEM) mod 16384.
func keySlot(tag string) int {
	var crc uint16
	for i := 0; i < len(tag); i++ {
		crc ^= uint16(tag[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % clusterSlots
}

// Shards is the number of message shards.
func (k *Keys) Shards() int { return len(k.shards) }

// Parts is the number of inbound partitions.
func (k *Keys) Parts() int { return len(k.parts) }

// Prefix is the namespace all keys start with.
func (k *Keys) Prefix() string { return k.prefix }

// SenderQueue is the stream of one sender's queued sends: its
// transactional lane ("tx"), or one campaign of its bulk lane. Queues per
// sender keep one number's backlog from slowing another on the same shard;
// queues per campaign let campaigns share a number fairly.
func (k *Keys) SenderQueue(shard int, sender string, lane message.Lane, campaign string) string {
	if lane == message.LaneBulk {
		if campaign == "" {
			campaign = "-"
		}
		return k.shards[shard] + "q:" + sender + ":b:" + campaign
	}
	return k.shards[shard] + "q:" + sender + ":tx"
}

// Senders is the shard's hash of senders that have queues (sender → 1).
func (k *Keys) Senders(shard int) string { return k.shards[shard] + "senders" }

// SenderQueues is the hash of one sender's queue streams (stream key →
// "<lane>\t<campaign>").
func (k *Keys) SenderQueues(shard int, sender string) string {
	return k.shards[shard] + "queues:" + sender
}

// Wake is the shard's stream of wake-ups: which sender has new entries.
func (k *Keys) Wake(shard int) string { return k.shards[shard] + "wake" }

// Awake is the shard's hash of senders woken and not yet taken up by the
// owner's listener: a sender's next messages need no wake-up of their own.
func (k *Keys) Awake(shard int) string { return k.shards[shard] + "awake" }

// TenantQueued is the shard's hash of messages not yet sent per tenant.
func (k *Keys) TenantQueued(shard int) string { return k.shards[shard] + "tq" }

// FallbackChecks is the shard's zset of messages to check for fallback
// (not delivered in time, or failed), scored by when.
func (k *Keys) FallbackChecks(shard int) string { return k.shards[shard] + "fbcheck" }

// Batch is a batch's hash (tenant, sender, total, rate, created, canceled).
func (k *Keys) Batch(shard int, id string) string { return k.shards[shard] + "batch:" + id }

// BatchChunk is chunk k of a batch: the packed record of its messages
// (chunk.go), until every one of them is settled.
func (k *Keys) BatchChunk(shard int, id string, chunk int) string {
	return k.shards[shard] + "bk:" + id + ":" + strconv.Itoa(chunk)
}

// ShardPrefix is the prefix of every key of shard ("wa:{s07}:").
func (k *Keys) ShardPrefix(shard int) string { return k.shards[shard] }

// Delay is the zset of retries and scheduled sends of shard, scored by due time.
func (k *Keys) Delay(shard int) string { return k.shards[shard] + "delay" }

// Lease is the shard's ownership lease for role ("dispatch").
func (k *Keys) Lease(shard int, role string) string { return k.shards[shard] + "lease:" + role }

// Fence is the shard's fencing token counter: every lease taken gets a
// higher token, and scripts refuse writes under a lease that is not current.
func (k *Keys) Fence(shard int) string { return k.shards[shard] + "fence" }

// Members is the zset of live instances of role, scored by last heartbeat.
func (k *Keys) Members(role string) string { return k.prefix + ":members:" + role }

// Pending is a shard's hash of the send records of single sends not taken
// by the dispatcher yet (field: message id; enqueue.lua, reccodec.go).
func (k *Keys) Pending(shard int) string { return k.shards[shard] + "pend" }

// Msg is the state hash of message id, which lives on shard.
func (k *Keys) Msg(shard int, id string) string { return k.shards[shard] + "msg:" + id }

// Idem maps a tenant's Idempotency-Key to a message id.
func (k *Keys) Idem(shard int, tenant, key string) string {
	return k.shards[shard] + "idem:" + tenant + ":" + key
}

// Guest is the hash of what sender knows of guest: the current
// conversation, the last inbound time (the 24-hour window) and the opt-out.
func (k *Keys) Guest(shard int, sender, guest string) string {
	return k.shards[shard] + "g:" + sender + ":" + guest
}

// Conversation is a conversation's hash; it lives on its number's shard.
func (k *Keys) Conversation(shard int, tenant, id string) string {
	return k.shards[shard] + "cv:" + tenant + ":" + id
}

// ConversationHistory is a conversation's list of history entries (JSON).
func (k *Keys) ConversationHistory(shard int, tenant, id string) string {
	return k.shards[shard] + "cvh:" + tenant + ":" + id
}

// Conversations is the zset of a tenant's conversations on shard, scored
// by last activity.
func (k *Keys) Conversations(shard int, tenant string) string {
	return k.shards[shard] + "cvi:" + tenant
}

// Notify is the shard's stream of conversation, inbound-message and
// opt-out events, for the tenants' webhooks.
func (k *Keys) Notify(shard int) string { return k.shards[shard] + "notify" }

// InboundSeen marks a provider's inbound message id as processed.
func (k *Keys) InboundSeen(shard int, providerID string) string {
	return k.shards[shard] + "in:" + providerID
}

// Tenant is the prefix of a tenant's own keys (settings, webhook
// configuration and deliveries, templates): hash-tagged by the tenant, so
// that a tenant's keys share a Cluster slot, and no shard's.
func (k *Keys) Tenant(tenant string) string { return k.prefix + ":t:{" + tenant + "}:" }

// File is the shard's stream of messages accepted or received and not yet
// filed into their conversations (the filer's input).
func (k *Keys) File(shard int) string { return k.shards[shard] + "file" }

// Events is the shard's status events stream.
func (k *Keys) Events(shard int) string { return k.shards[shard] + "events" }

// HookTenants is the shard's index of the tenants with a webhook (a set;
// its empty member marks it built). Every shard holds all of them: the hooks group's
// skip (hook_skip.lua) reads it in the events stream's slot.
func (k *Keys) HookTenants(shard int) string { return k.shards[shard] + "hookt" }

// DLQ is the shard's dead-letter stream.
func (k *Keys) DLQ(shard int) string { return k.shards[shard] + "dlq" }

// PID maps a provider message id to wagate's message id. It has no hash tag:
// it is written and read on its own, never inside a shard's script.
func (k *Keys) PID(providerID string) string { return k.prefix + ":pid:" + providerID }

// UserID links a guest's business-scoped user id to the guest's number,
// for one business number (the guest's keys are the number's).
func (k *Keys) UserID(shard int, sender, bsuid string) string {
	return k.shards[shard] + "uid:" + sender + ":" + bsuid
}

// PortfolioUsers is the guests a business portfolio started conversations
// with in the last 24 hours, and PortfolioTier its messaging limit as Meta
// last announced it; both in the portfolio's own slot.
func (k *Keys) PortfolioUsers(id string) string { return k.prefix + ":{pf:" + id + "}:users" }

// PortfolioTier: see PortfolioUsers.
func (k *Keys) PortfolioTier(id string) string { return k.prefix + ":{pf:" + id + "}:tier" }

// Inbound is the stream of verified raw provider webhooks of partition part.
func (k *Keys) Inbound(part int) string { return k.parts[part] + "inbound" }

// Orphans is the zset of statuses whose provider id was not known yet when
// they arrived, scored by when to look again.
func (k *Keys) Orphans(part int) string { return k.parts[part] + "orphans" }

// Staff is the hash of one of a tenant's staff members (see staff.go).
func (k *Keys) Staff(tenant, id string) string { return k.Tenant(tenant) + "staff:" + id }

// StaffNames is a tenant's index of its staff by user name (username →
// id): it keeps user names unique and lists the staff.
func (k *Keys) StaffNames(tenant string) string { return k.Tenant(tenant) + "staffnames" }

// LoginFailures counts the failed logins of one user name of a tenant in
// the current brute-force window.
func (k *Keys) LoginFailures(tenant, username string) string {
	return k.Tenant(tenant) + "loginfail:" + username
}

// Session is a staff member's browser session, named by the SHA-256 (hex)
// of its cookie value, so that the keys (a KEYS listing, a dump) hold no
// usable session. The cookie does not name its tenant, hence no hash tag.
func (k *Keys) Session(digest string) string { return k.prefix + ":sess:" + digest }
