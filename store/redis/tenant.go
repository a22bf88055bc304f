package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
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

// PutTenantDoc sets tenant's document name (nil deletes it).
func (s *Store) PutTenantDoc(ctx context.Context, tenant, name string, doc []byte) error {
	var err error
	if doc == nil {
		err = s.rdb.Del(ctx, s.keys.Tenant(tenant)+name).Err()
	} else {
		err = s.rdb.Set(ctx, s.keys.Tenant(tenant)+name, doc, 0).Err()
	}
	if err != nil {
		return fmt.Errorf("tenant %s: %w", name, err)
	}
	return nil
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
