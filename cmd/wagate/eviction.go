package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// checkEviction refuses a Redis whose maxmemory-policy is not noeviction:
// such a Redis, once full, silently deletes keys (queued messages, their
// states, leases) instead of refusing writes. allow accepts the risk with
// a warning. Where CONFIG is not permitted (managed Redis often renames
// it) the policy cannot be read: a warning, and the gateway starts.
func checkEviction(ctx context.Context, rdb goredis.UniversalClient, allow bool, log *slog.Logger) error {
	policy, err := maxmemoryPolicy(ctx, rdb)
	if err != nil {
		log.Warn("cannot read Redis's maxmemory-policy (CONFIG GET not permitted?): make sure it is noeviction, or queued messages may be lost when Redis fills up", "err", err)
		return nil
	}
	if policy == "noeviction" {
		return nil
	}
	if allow {
		log.Warn("Redis may evict keys when it fills up, losing queued messages; started anyway (-allow-eviction)", "maxmemory_policy", policy)
		return nil
	}
	return fmt.Errorf("redis maxmemory-policy is %q: once Redis is full it deletes keys, queued messages and their states among them, without telling anyone. "+
		"Set it to noeviction (CONFIG SET maxmemory-policy noeviction, and maxmemory-policy noeviction in redis.conf) so that Redis refuses writes instead, "+
		"or start with -allow-eviction (WAGATE_ALLOW_EVICTION=1) to accept the risk", policy)
}

// maxmemoryPolicy reads the policy: of every master of a Cluster, the
// first that is not noeviction.
func maxmemoryPolicy(ctx context.Context, rdb goredis.UniversalClient) (string, error) {
	one := func(ctx context.Context, c goredis.Cmdable) (string, error) {
		m, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
		if err != nil {
			return "", fmt.Errorf("config get maxmemory-policy: %w", err)
		}
		p, ok := m["maxmemory-policy"]
		if !ok {
			return "", fmt.Errorf("config get maxmemory-policy: no answer")
		}
		return p, nil
	}
	cc, ok := rdb.(*goredis.ClusterClient)
	if !ok {
		return one(ctx, rdb)
	}
	policy := "noeviction"
	var mu sync.Mutex // ForEachMaster calls at once
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		p, err := one(ctx, c)
		if err == nil && p != "noeviction" {
			mu.Lock()
			policy = p
			mu.Unlock()
		}
		return err
	})
	return policy, err
}
