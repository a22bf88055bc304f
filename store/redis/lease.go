package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Lease is one instance's ownership of one shard for one role. Value holds
// the instance and its fencing token; scripts refuse writes under a value
// that is no longer the shard's lease.
type Lease struct {
	Shard int
	Role  string
	Value string
}

// Heartbeat records instance as alive in role's membership and returns the
// instances alive within ttl, sorted, itself included. Members silent for
// ten TTLs are forgotten.
func (s *Store) Heartbeat(ctx context.Context, role, instance string, ttl time.Duration) ([]string, error) {
	key := s.keys.Members(role)
	now := s.nowMS()
	p := s.rdb.Pipeline()
	p.ZAdd(ctx, key, goredis.Z{Score: float64(now), Member: instance})
	p.ZRemRangeByScore(ctx, key, "-inf", strconv.FormatInt(now-10*ttl.Milliseconds(), 10))
	alive := p.ZRangeByScore(ctx, key, &goredis.ZRangeBy{Min: strconv.FormatInt(now-ttl.Milliseconds(), 10), Max: "+inf"})
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	return alive.Val(), nil // ZRANGEBYSCORE orders by score; callers sort
}

// LiveMembers returns the instances of role alive within ttl, without a
// heartbeat of the caller's: one command, for looking between heartbeats.
func (s *Store) LiveMembers(ctx context.Context, role string, ttl time.Duration) ([]string, error) {
	alive, err := s.rdb.ZRangeByScore(ctx, s.keys.Members(role), &goredis.ZRangeBy{
		Min: strconv.FormatInt(s.nowMS()-ttl.Milliseconds(), 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("members: %w", err)
	}
	return alive, nil
}

// Leave removes instance from role's membership at once (graceful stop).
func (s *Store) Leave(ctx context.Context, role, instance string) error {
	if err := s.rdb.ZRem(ctx, s.keys.Members(role), instance).Err(); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	return nil
}

// TakeLease takes shard's lease for role if nobody holds it.
func (s *Store) TakeLease(ctx context.Context, role string, shard int, instance string, ttl time.Duration) (*Lease, bool, error) {
	v, err := s.scripts.lease.Run(ctx, s.rdb, []string{s.keys.Lease(shard, role), s.keys.Fence(shard)},
		"take", instance, ttl.Milliseconds()).Text()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("take lease of shard %d: %w", shard, err)
	}
	return &Lease{Shard: shard, Role: role, Value: v}, true, nil
}

// RenewLease extends l by ttl; false when l is no longer the shard's lease.
//
// It is one GETEX, not a script comparing first: a lease's renewal is its
// holder's steadiest traffic. When l was lost meanwhile, the renewal sets
// the new holder's lease to expire after ttl (the role's TTL, which that
// holder renews to anyway) and reports false, after which l is not renewed
// again: a new holder that died at once keeps its shard at most one TTL
// longer.
func (s *Store) RenewLease(ctx context.Context, l *Lease, ttl time.Duration) (bool, error) {
	held, err := s.RenewLeases(ctx, []*Lease{l}, ttl)
	if err != nil {
		return false, err
	}
	return held[0], nil
}

// RenewLeases renews ls in one round trip (see RenewLease); held[i] says
// whether ls[i] is still its shard's lease.
func (s *Store) RenewLeases(ctx context.Context, ls []*Lease, ttl time.Duration) ([]bool, error) {
	p := s.rdb.Pipeline()
	cmds := make([]*goredis.StringCmd, len(ls))
	for i, l := range ls {
		cmds[i] = p.GetEx(ctx, s.keys.Lease(l.Shard, l.Role), ttl)
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("renew leases: %w", err)
	}
	held := make([]bool, len(ls))
	for i, c := range cmds {
		v, err := c.Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return nil, fmt.Errorf("renew lease of shard %d: %w", ls[i].Shard, err)
		}
		held[i] = err == nil && v == ls[i].Value
	}
	return held, nil
}

// ReleaseLease gives l back at once, so another instance may take the
// shard without waiting for it to expire.
func (s *Store) ReleaseLease(ctx context.Context, l *Lease) error {
	if err := s.scripts.lease.Run(ctx, s.rdb, []string{s.keys.Lease(l.Shard, l.Role), s.keys.Fence(l.Shard)},
		"release", l.Value, 0).Err(); err != nil {
		return fmt.Errorf("release lease of shard %d: %w", l.Shard, err)
	}
	return nil
}

// HoldsLease reports whether l is still its shard's lease.
func (s *Store) HoldsLease(ctx context.Context, l *Lease) (bool, error) {
	v, err := s.rdb.Get(ctx, s.keys.Lease(l.Shard, l.Role)).Result()
	if errors.Is(err, goredis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lease of shard %d: %w", l.Shard, err)
	}
	return v == l.Value, nil
}
