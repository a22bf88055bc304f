package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// fileBatch is the most messages one call of the file function files.
const fileBatch = 1000

// FileNow files the messages of shards that wait to be filed into their
// conversations (the file function; the filer role does the same in the
// background), so that a read that follows sees every message accepted or
// received before it. It files what was waiting when it began, or what
// it can within Config.FileWait, and then returns: a read is never held
// longer by a backlog.
func (s *Store) FileNow(ctx context.Context, shards []int) error {
	if len(shards) == 0 {
		return nil
	}
	deadline := time.Now().Add(s.cfg.FileWait)
	upto := make([]string, len(shards))
	for i := range upto {
		upto[i] = "+"
	}
	for len(shards) > 0 {
		cmds, err := s.fileCalls(ctx, shards, upto, true)
		if err != nil {
			return err
		}
		more, moreUpto := shards[:0:0], upto[:0:0]
		for i, c := range cmds {
			v, _ := c.Slice()
			if n, _ := v[0].(int64); n == fileBatch {
				tail, _ := v[2].(string)
				if upto[i] != "+" {
					tail = upto[i]
				}
				more, moreUpto = append(more, shards[i]), append(moreUpto, tail)
			}
		}
		if time.Now().After(deadline) {
			return nil
		}
		shards, upto = more, moreUpto
	}
	return nil
}

// fileCalls runs the file function once for each of shards (up to the
// stream id in upto, "+" for any) in one round trip; with tail each answer
// holds the newest id left.
func (s *Store) fileCalls(ctx context.Context, shards []int, upto []string, tail bool) ([]*goredis.Cmd, error) {
	cmds := make([]*goredis.Cmd, len(shards))
	for attempt := 0; ; attempt++ {
		p := s.rdb.Pipeline()
		for i, sh := range shards {
			cmds[i] = s.scripts.file.FCall(ctx, p, s.keys.fileKeys[sh], s.keys.ShardPrefix(sh), fileBatch, s.convTTL, upto[i], flag(tail))
		}
		_, _ = p.Exec(ctx)
		if attempt == 0 && slices.ContainsFunc(cmds, func(c *goredis.Cmd) bool { return isNoScript(c.Err()) }) {
			if err := s.scripts.load(ctx, s.rdb); err != nil {
				return nil, err
			}
			continue
		}
		for _, c := range cmds {
			if err := c.Err(); err != nil {
				return nil, fmt.Errorf("file conversations: %w", err)
			}
		}
		return cmds, nil
	}
}

// Filed is what one call of the file function did on a shard.
type Filed struct {
	Shard int
	// N messages were filed; the oldest of them was accepted or received
	// at FirstMS (Redis's clock, Unix ms; 0 when none).
	N       int
	FirstMS int64
	// More: the call filed as many as it may, more are waiting.
	More bool
}

// FileShards files, for each of shards, the oldest messages waiting to be
// filed into their conversations (at most a batch each), in one round
// trip.
func (s *Store) FileShards(ctx context.Context, shards []int) ([]Filed, error) {
	upto := make([]string, len(shards))
	for i := range upto {
		upto[i] = "+"
	}
	cmds, err := s.fileCalls(ctx, shards, upto, false)
	if err != nil {
		return nil, err
	}
	out := make([]Filed, len(shards))
	for i, c := range cmds {
		v, _ := c.Slice()
		n, _ := v[0].(int64)
		first, _ := v[1].(string)
		ms, _ := strconv.ParseInt(first[:max(strings.IndexByte(first, '-'), 0)], 10, 64)
		out[i] = Filed{Shard: shards[i], N: int(n), FirstMS: ms, More: n == fileBatch}
	}
	return out, nil
}

// AwaitFile waits up to block until one of shards has messages waiting to
// be filed, and returns at once when one has some already. It reports
// whether any has.
func (s *Store) AwaitFile(ctx context.Context, shards []int, block time.Duration) (bool, error) {
	if len(shards) == 0 {
		return false, nil
	}
	args := make([]string, 0, 2*len(shards))
	for _, sh := range shards {
		args = append(args, s.keys.File(sh))
	}
	for range shards {
		// Filed entries are deleted: whatever the stream holds waits.
		args = append(args, "0-0")
	}
	res, err := s.rdb.XRead(ctx, &goredis.XReadArgs{Streams: args, Count: 1, Block: block}).Result()
	if errors.Is(err, goredis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("await filing: %w", err)
	}
	return len(res) > 0, nil
}

// FileBacklog is how many messages wait to be filed, over all shards.
func (s *Store) FileBacklog(ctx context.Context) (int64, error) {
	p := s.rdb.Pipeline()
	cmds := make([]*goredis.IntCmd, s.cfg.Shards)
	for sh := range cmds {
		cmds[sh] = p.XLen(ctx, s.keys.File(sh))
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return 0, fmt.Errorf("filing backlog: %w", err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}
