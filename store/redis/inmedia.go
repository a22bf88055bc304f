package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// The media guests send are downloaded by the inbound role, off the path
// that records their message: inbound.lua puts a download job in the
// shard's media queue in the same call that records the message (so that
// no kill loses one), and the role claims due jobs (claim_due.lua: a lease
// moves a claimed job's score ahead, so a claimer that dies gives it back),
// retries them later or finishes them with their notice.

// MediaQueue is the zset of shard's media downloads to make, scored by
// when each is due (ms); a member is the job (JSON, opaque to the store).
func (k *Keys) MediaQueue(shard int) string { return k.shards[shard] + "mediaq" }

// MediaJob is a claimed download: its shard and its member, as claimed
// (retried and finished by that member).
type MediaJob struct {
	Shard  int
	Member string
}

// ClaimMediaJobs claims up to n due download jobs of every shard for
// lease, in one round trip; a job not finished or retried within the
// lease is due again.
func (s *Store) ClaimMediaJobs(ctx context.Context, n int, lease time.Duration) ([]MediaJob, error) {
	now := s.nowMS()
	until := now + lease.Milliseconds()
	cmds := make([]*goredis.Cmd, s.cfg.Shards)
	run := func() error {
		p := s.rdb.Pipeline()
		for sh := range cmds {
			cmds[sh] = s.scripts.claimDue.FCall(ctx, p, []string{s.keys.MediaQueue(sh)}, now, until, n)
		}
		_, err := p.Exec(ctx)
		return err
	}
	err := run()
	if isNoScript(err) {
		if err = s.scripts.load(ctx, s.rdb); err == nil {
			err = run()
		}
	}
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("claim media jobs: %w", err)
	}
	var out []MediaJob
	for sh, c := range cmds {
		ms, _ := c.StringSlice()
		for _, m := range ms {
			if len(out) < n {
				out = append(out, MediaJob{Shard: sh, Member: m})
				continue
			}
			// Claimed past n: due again at once for the next claim.
			if err := s.rdb.ZAddXX(ctx, s.keys.MediaQueue(sh), goredis.Z{Score: float64(now), Member: m}).Err(); err != nil {
				return out, fmt.Errorf("claim media jobs: %w", err)
			}
		}
	}
	return out, nil
}

// RetryMediaJob replaces claimed job j by member next (its attempts
// counted), due at due.
func (s *Store) RetryMediaJob(ctx context.Context, j MediaJob, next string, due time.Time) error {
	key := s.keys.MediaQueue(j.Shard)
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.ZRem(ctx, key, j.Member)
		p.ZAdd(ctx, key, goredis.Z{Score: float64(due.UnixMilli()), Member: next})
		return nil
	})
	if err != nil {
		return fmt.Errorf("retry media job: %w", err)
	}
	return nil
}

// MediaNotice is the event a finished download writes to its shard's
// notify stream, for the tenant's webhook.
type MediaNotice struct {
	Kind, TenantID, Sender, Guest, ConversationID string
	AtMS                                          int64
	// Data is the event's JSON object.
	Data []byte
}

// FinishMediaJob removes claimed job j and writes its notice, atomically
// (both on the shard): a download's event is written once.
func (s *Store) FinishMediaJob(ctx context.Context, j MediaJob, n *MediaNotice) error {
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.ZRem(ctx, s.keys.MediaQueue(j.Shard), j.Member)
		p.XAdd(ctx, &goredis.XAddArgs{Stream: s.keys.Notify(j.Shard), Values: []any{
			"k", n.Kind, "t", n.TenantID, "f", n.Sender, "g", n.Guest, "c", n.ConversationID, "ts", n.AtMS, "d", n.Data}})
		return nil
	})
	if err != nil {
		return fmt.Errorf("finish media job: %w", err)
	}
	return nil
}

// MediaQueueLen is the number of downloads waiting (or under way) on
// every shard.
func (s *Store) MediaQueueLen(ctx context.Context) (int64, error) {
	p := s.rdb.Pipeline()
	cmds := make([]*goredis.IntCmd, s.cfg.Shards)
	for sh := range cmds {
		cmds[sh] = p.ZCard(ctx, s.keys.MediaQueue(sh))
	}
	if _, err := p.Exec(ctx); err != nil {
		return 0, fmt.Errorf("media queue length: %w", err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// DropMediaJob removes claimed job j without a notice: a job that cannot
// be read.
func (s *Store) DropMediaJob(ctx context.Context, j MediaJob) error {
	if err := s.rdb.ZRem(ctx, s.keys.MediaQueue(j.Shard), j.Member).Err(); err != nil {
		return fmt.Errorf("drop media job: %w", err)
	}
	return nil
}
