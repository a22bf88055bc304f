package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Tenant documents: JSON a tenant's admin sets through the API, read by
// every process.
const (
	DocSettings = "settings"
	DocWebhook  = "webhook"
)

// TenantDoc returns tenant's document name, nil when it was never set.
func (s *Store) TenantDoc(ctx context.Context, tenant, name string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.keys.Tenant(tenant)+name).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", name, err)
	}
	return b, nil
}

// PutTenantDoc sets tenant's document name (nil deletes it). A webhook
// document also enters (or leaves) every shard's index of tenants with a
// webhook, which lets the hooks group skip events while it is empty
// (SkipHookEvents): entered before the document is written, so no event
// after this call returns is skipped.
func (s *Store) PutTenantDoc(ctx context.Context, tenant, name string, doc []byte) error {
	key := s.keys.Tenant(tenant) + name
	if name == DocWebhook && doc != nil {
		if err := s.writeHookIndex(ctx, true, tenant); err != nil {
			return err
		}
	}
	var err error
	if doc == nil {
		err = s.rdb.Del(ctx, key).Err()
	} else {
		err = s.rdb.Set(ctx, key, doc, 0).Err()
	}
	if err != nil {
		return fmt.Errorf("tenant %s: %w", name, err)
	}
	if name == DocWebhook && doc == nil {
		return s.writeHookIndex(ctx, false, tenant)
	}
	return nil
}

// writeHookIndex adds members to (or removes them from) every shard's
// index of tenants with a webhook: in one transaction on one server, where
// the skip reads only the first shard's.
func (s *Store) writeHookIndex(ctx context.Context, add bool, members ...any) error {
	do := func(p goredis.Pipeliner) error {
		for sh := 0; sh < s.cfg.Shards; sh++ {
			if add {
				p.SAdd(ctx, s.keys.HookTenants(sh), members...)
			} else {
				p.SRem(ctx, s.keys.HookTenants(sh), members...)
			}
		}
		return nil
	}
	var err error
	if s.cluster {
		_, err = s.rdb.Pipelined(ctx, do)
	} else {
		_, err = s.rdb.TxPipelined(ctx, do)
	}
	if err != nil {
		return fmt.Errorf("index of webhook tenants: %w", err)
	}
	return nil
}

// SkipHookEvents reports whether no tenant has a webhook, so that the
// hooks group may skip the events instead of reading them; with move it
// also moves the group past every event, acknowledging up to pendingMax of
// the events it held per shard (0: none). The first call of a deployment
// whose index is not built yet (its data written by an older wagate)
// builds it from the tenants' documents.
func (s *Store) SkipHookEvents(ctx context.Context, move bool, pendingMax int) (bool, error) {
	r, err := s.skipHooks(ctx, move, pendingMax)
	if err == nil && r < 0 {
		if err = s.buildHookIndex(ctx); err == nil {
			r, err = s.skipHooks(ctx, move, pendingMax)
		}
	}
	if err != nil {
		return false, fmt.Errorf("skip hook events: %w", err)
	}
	return r == 1, nil
}

// skipHooks runs hook_skip: one call over every shard on one server, one
// per shard (its slot) on a Cluster, where it answers the first answer
// that is not 1 (a shard moved before another said no is as safe: its
// events came before the tenant's webhook).
func (s *Store) skipHooks(ctx context.Context, move bool, pendingMax int) (int64, error) {
	if !s.cluster {
		keys := make([]string, 1, 1+s.cfg.Shards)
		keys[0] = s.keys.HookTenants(0)
		for sh := 0; move && sh < s.cfg.Shards; sh++ {
			keys = append(keys, s.keys.Events(sh))
		}
		return s.scripts.hookSkip.Run(ctx, s.rdb, keys, GroupHooks, pendingMax).Int64()
	}
	for sh := 0; sh < s.cfg.Shards; sh++ {
		keys := []string{s.keys.HookTenants(sh)}
		if move {
			keys = append(keys, s.keys.Events(sh))
		}
		r, err := s.scripts.hookSkip.Run(ctx, s.rdb, keys, GroupHooks, pendingMax).Int64()
		if err != nil || r != 1 {
			return r, err
		}
		if !move {
			return r, nil // every shard's index says the same
		}
	}
	return 1, nil
}

// buildHookIndex fills every shard's index of tenants with a webhook from
// the tenants' webhook documents (SCAN on every master), and marks it
// built. A document set meanwhile is indexed by its own PutTenantDoc; one
// deleted meanwhile may stay indexed, which only keeps the events read.
func (s *Store) buildHookIndex(ctx context.Context) error {
	// A tenant's key is <head><tenant><tail>.
	head := strings.TrimSuffix(s.keys.Tenant(""), "}:")
	tail := "}:" + DocWebhook
	pattern := globEscape(head) + "*" + globEscape(tail)
	tenants := []any{""}
	var mu sync.Mutex // a Cluster's masters are scanned at once
	scan := func(ctx context.Context, c goredis.Cmdable) error {
		it := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for it.Next(ctx) {
			if k := it.Val(); strings.HasPrefix(k, head) && strings.HasSuffix(k, tail) {
				mu.Lock()
				tenants = append(tenants, k[len(head):len(k)-len(tail)])
				mu.Unlock()
			}
		}
		return it.Err()
	}
	if err := onEveryMaster(ctx, s.rdb, scan); err != nil {
		return fmt.Errorf("index of webhook tenants: %w", err)
	}
	return s.writeHookIndex(ctx, true, tenants...)
}

// globEscape escapes the characters SCAN's MATCH patterns give a meaning.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// HookStats counts a tenant's webhook deliveries.
type HookStats struct {
	Delivered, Failed, Retried, DeadLettered int64
	LastSuccessMS, LastFailureMS             int64
	LastError                                string
	// DeadLetters are the newest deliveries given up on (JSON), newest first.
	DeadLetters []string
}

// hookDLQMax bounds the dead deliveries kept per tenant.
const hookDLQMax = 1000

// RecordHook counts one delivery attempt's outcome for tenant: ok, or
// failed with errText; retry says it will be tried again, and dead, when
// not, keeps body (the payload) among the dead letters.
func (s *Store) RecordHook(ctx context.Context, tenant string, ok bool, errText string, retry bool, body []byte) error {
	key := s.keys.Tenant(tenant) + "hookstats"
	now := s.nowMS()
	p := s.rdb.TxPipeline()
	switch {
	case ok:
		p.HIncrBy(ctx, key, "delivered", 1)
		p.HSet(ctx, key, "last_success", now)
	default:
		p.HIncrBy(ctx, key, "failed", 1)
		p.HSet(ctx, key, "last_failure", now, "last_error", errText)
		if retry {
			p.HIncrBy(ctx, key, "retried", 1)
		} else {
			dlq := s.keys.Tenant(tenant) + "hookdlq"
			p.HIncrBy(ctx, key, "dead", 1)
			p.LPush(ctx, dlq, body)
			p.LTrim(ctx, dlq, 0, hookDLQMax-1)
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("record webhook delivery: %w", err)
	}
	return nil
}

// HookStats returns tenant's webhook delivery counts and up to dead of its
// newest dead deliveries.
func (s *Store) HookStats(ctx context.Context, tenant string, dead int) (*HookStats, error) {
	p := s.rdb.Pipeline()
	h := p.HGetAll(ctx, s.keys.Tenant(tenant)+"hookstats")
	l := p.LRange(ctx, s.keys.Tenant(tenant)+"hookdlq", 0, int64(dead)-1)
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("webhook stats: %w", err)
	}
	m := h.Val()
	num := func(k string) int64 { n, _ := strconv.ParseInt(m[k], 10, 64); return n }
	return &HookStats{Delivered: num("delivered"), Failed: num("failed"), Retried: num("retried"), DeadLettered: num("dead"),
		LastSuccessMS: num("last_success"), LastFailureMS: num("last_failure"), LastError: m["last_error"],
		DeadLetters: l.Val()}, nil
}

// HookDelivery is one event on its way to a tenant's webhook, as a parked
// retry holds it (the member of ScheduleHookRetry, JSON).
type HookDelivery struct {
	Tenant  string          `json:"t"`
	Event   string          `json:"e"`
	ID      string          `json:"id"`
	Body    json.RawMessage `json:"b"`
	Attempt int             `json:"a"`
}

// RedeliverHooks gives tenant's dead deliveries whose event ids are in ids
// (every one kept when ids is empty) a new round of attempts, due now, and
// takes them off the dead letters; it returns the event ids scheduled.
// The retry is parked before the dead letter is dropped: a crash between
// the two can only deliver an event twice (receivers dedupe by
// X-Wagate-Delivery), never lose it.
func (s *Store) RedeliverHooks(ctx context.Context, tenant string, ids []string) ([]string, error) {
	dlq := s.keys.Tenant(tenant) + "hookdlq"
	raws, err := s.rdb.LRange(ctx, dlq, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redeliver webhooks: %w", err)
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var done []string
	now := float64(s.nowMS())
	// One round trip for all: in a pipeline each ZADD still comes before
	// its LREM.
	p := s.rdb.Pipeline()
	for _, raw := range raws {
		var dead struct {
			EventID string          `json:"event_id"`
			Event   string          `json:"event"`
			Body    json.RawMessage `json:"body"`
		}
		if json.Unmarshal([]byte(raw), &dead) != nil || dead.EventID == "" || (len(want) > 0 && !want[dead.EventID]) ||
			slices.Contains(done, dead.EventID) {
			continue
		}
		member, _ := json.Marshal(HookDelivery{Tenant: tenant, Event: dead.Event, ID: dead.EventID, Body: dead.Body})
		p.ZAdd(ctx, s.keys.Prefix()+":hookretry", goredis.Z{Score: now, Member: member})
		p.LRem(ctx, dlq, 1, raw)
		done = append(done, dead.EventID)
	}
	if len(done) == 0 {
		return nil, nil
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redeliver webhooks: %w", err)
	}
	return done, nil
}

// ScheduleHookRetry parks a delivery (opaque member) until due.
func (s *Store) ScheduleHookRetry(ctx context.Context, member string, due time.Time) error {
	if err := s.rdb.ZAdd(ctx, s.keys.Prefix()+":hookretry", goredis.Z{Score: float64(due.UnixMilli()), Member: member}).Err(); err != nil {
		return fmt.Errorf("schedule webhook retry: %w", err)
	}
	return nil
}

// ClaimHookRetries returns up to n due deliveries, each hidden from other
// claimers for lease; DoneHookRetry removes one once handled.
func (s *Store) ClaimHookRetries(ctx context.Context, n int, lease time.Duration) ([]string, error) {
	now := s.nowMS()
	v, err := s.scripts.claimDue.Run(ctx, s.rdb, []string{s.keys.Prefix() + ":hookretry"}, now, now+lease.Milliseconds(), n).StringSlice()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("claim webhook retries: %w", err)
	}
	return v, nil
}

// DoneHookRetry forgets a retried delivery.
func (s *Store) DoneHookRetry(ctx context.Context, member string) error {
	if err := s.rdb.ZRem(ctx, s.keys.Prefix()+":hookretry", member).Err(); err != nil {
		return fmt.Errorf("webhook retry done: %w", err)
	}
	return nil
}
