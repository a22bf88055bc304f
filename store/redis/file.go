package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// fileBatch is about the most messages one call of the file function
// files (read as entries: fileBatch over the messages an entry held lately).
// A call holds Redis for its whole length: 250 new conversations take
// about 2.5 ms, which the accepts waiting meanwhile see in their latency
// (1 000 made the single send's p99 10.7 ms against 8.5 at 250).
const fileBatch = 250

// FileNow files the messages of shards that wait to be filed into their
// conversations (the filer role does the same in the background), so
// that a read or a staff action that follows sees every message accepted
// or received before it. It files what was waiting when it began, or what
// it can within Config.FileWait, and then returns: a read is never held
// longer by a backlog.
func (s *Store) FileNow(ctx context.Context, shards []int) error {
	if len(shards) == 0 {
		return nil
	}
	deadline := time.Now().Add(s.cfg.FileWait)
	// What waits now: each shard's newest entry.
	p := s.rdb.Pipeline()
	tails := make([]*goredis.XMessageSliceCmd, len(shards))
	for i, sh := range shards {
		tails[i] = p.XRevRangeN(ctx, s.keys.File(sh), "+", "-", 1)
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("file conversations: %w", err)
	}
	var todo []int
	var upto []string
	for i, c := range tails {
		if v := c.Val(); len(v) > 0 {
			todo, upto = append(todo, shards[i]), append(upto, v[0].ID)
		}
	}
	for len(todo) > 0 {
		res, err := s.fileRound(ctx, todo, upto)
		if err != nil {
			return err
		}
		more, moreUpto := todo[:0:0], upto[:0:0]
		for i, r := range res {
			if r.More {
				more, moreUpto = append(more, todo[i]), append(moreUpto, upto[i])
			}
		}
		if time.Now().After(deadline) {
			return nil
		}
		todo, upto = more, moreUpto
	}
	return nil
}

// Filed is what one round of filing did on a shard.
type Filed struct {
	Shard int
	// N messages were filed; the oldest of them was accepted or received
	// at FirstMS (Redis's clock, Unix ms; 0 when none).
	N       int
	FirstMS int64
	// More: more may be waiting (the round filed a whole batch, or
	// another caller filed the same entries first).
	More bool
}

// FileShards files, for each of shards, the oldest messages waiting to be
// filed into their conversations (at most a batch each).
func (s *Store) FileShards(ctx context.Context, shards []int) ([]Filed, error) {
	upto := make([]string, len(shards))
	for i := range upto {
		upto[i] = "+"
	}
	return s.fileRound(ctx, shards, upto)
}

// fileRound reads up to fileBatch waiting entries of each of shards (up to
// the stream id upto[i], "+" for any) in one round trip, groups them by
// conversation, and files each shard's in one call of the file function
// (which files nothing if another caller filed them first).
func (s *Store) fileRound(ctx context.Context, shards []int, upto []string) ([]Filed, error) {
	p := s.rdb.Pipeline()
	reads := make([]*goredis.XMessageSliceCmd, len(shards))
	count := int64(fileBatch) / max(s.filePerEntry.Load(), 1)
	for i, sh := range shards {
		reads[i] = p.XRangeN(ctx, s.keys.File(sh), "-", upto[i], count)
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("file conversations: %w", err)
	}
	out := make([]Filed, len(shards))
	args := make([][]any, len(shards))
	for i, sh := range shards {
		out[i].Shard = sh
		if ms := reads[i].Val(); len(ms) > 0 {
			args[i], out[i].N = s.fileArgs(sh, ms)
			out[i].FirstMS, out[i].More = streamIDMS(ms[0].ID), int64(len(ms)) == count
			s.filePerEntry.Store((s.filePerEntry.Load() + int64((out[i].N+len(ms)-1)/len(ms))) / 2)
		}
	}
	cmds := make([]*goredis.Cmd, len(shards))
	for attempt := 0; ; attempt++ {
		p := s.rdb.Pipeline()
		for i, sh := range shards {
			if args[i] != nil {
				cmds[i] = s.scripts.file.FCall(ctx, p, s.keys.fileKeys[sh], args[i]...)
			}
		}
		if _, err := p.Exec(ctx); err != nil && !isNoScript(err) && !errors.Is(err, goredis.Nil) {
			return nil, fmt.Errorf("file conversations: %w", err)
		}
		if attempt == 0 && slices.ContainsFunc(cmds, func(c *goredis.Cmd) bool { return c != nil && isNoScript(c.Err()) }) {
			if err := s.scripts.load(ctx, s.rdb); err != nil {
				return nil, err
			}
			continue
		}
		break
	}
	for i, c := range cmds {
		if c == nil {
			continue
		}
		n, err := c.Int()
		if err != nil {
			return nil, fmt.Errorf("file conversations: %w", err)
		}
		if n == 0 { // filed by another caller meanwhile
			out[i].N, out[i].FirstMS, out[i].More = 0, 0, true
		}
	}
	return out, nil
}

// convShare is one conversation's share of a filing round.
type convShare struct {
	tenant, id, sender, guest string
	made                      bool
	created, last             int64
	preview, dir              string
	n, unread                 int
	li                        int64
	name                      string
	md                        map[string]string
	entries                   []any
}

// fileArgs groups the read entries ms of shard by conversation, in the
// order they were first met, as the file function takes them, and counts
// their messages.
func (s *Store) fileArgs(shard int, ms []goredis.XMessage) ([]any, int) {
	type key struct{ tenant, id string }
	var order []*convShare
	byKey := map[key]*convShare{}
	var es []fileEntry
	for _, m := range ms {
		raw, _ := m.Values["e"].(string)
		es = appendFileEntries(es, m.ID, raw) // what is not ours is dropped with the rest
	}
	for i := range es {
		e := &es[i]
		c := byKey[key{e.tenant, e.conv}]
		if c == nil {
			c = &convShare{tenant: e.tenant, id: e.conv, sender: e.sender, guest: e.guest, made: e.newlyMade, created: e.at}
			byKey[key{e.tenant, e.conv}] = c
			order = append(order, c)
		}
		c.entries = append(c.entries, e.entry)
		c.n++
		c.last, c.preview = e.at, e.preview
		if e.kind == "i" {
			c.dir = "in"
			c.unread++
			c.li = max(c.li, e.li)
			if e.nm != "" {
				c.name = e.nm
			}
		} else {
			c.dir = "out"
		}
		if e.md != "" {
			var md map[string]string
			if json.Unmarshal([]byte(e.md), &md) == nil {
				if c.md == nil {
					c.md = map[string]string{}
				}
				maps.Copy(c.md, md)
			}
		}
	}
	args := make([]any, 0, 4+len(order)*15+len(ms))
	args = append(args, s.keys.ShardPrefix(shard), s.convTTL, ms[0].ID, ms[len(ms)-1].ID)
	for _, c := range order {
		md := ""
		if c.md != nil {
			b, _ := json.Marshal(c.md) // a map of strings always encodes
			md = string(b)
		}
		if c.made {
			// A new conversation: its hash whole, as file.lua writes it
			// without reading anything.
			fv := []any{"la", c.last, "lp", c.preview, "ld", c.dir, "t", c.tenant, "f", c.sender, "g", c.guest,
				"st", ConvOpen, "ca", c.created, "n", c.n, "un", c.unread}
			if c.li != 0 {
				fv = append(fv, "li", c.li)
			}
			if md != "" {
				fv = append(fv, "md", md)
			}
			if c.name != "" {
				fv = append(fv, "nm", c.name)
			}
			args = append(args, "N", s.keys.Conversation(shard, c.tenant, c.id), s.keys.ConversationHistory(shard, c.tenant, c.id),
				c.tenant, c.id, c.last, len(fv))
			args = append(args, fv...)
			args = append(args, len(c.entries))
			args = append(args, c.entries...)
			continue
		}
		args = append(args, c.tenant, c.id, c.sender, c.guest, flag(c.made), c.created, c.last, c.preview, c.dir,
			c.n, c.unread, c.li, c.name, md, len(c.entries))
		args = append(args, c.entries...)
	}
	return args, len(es)
}

// streamIDMS is the time part of a stream id ("1700000000000-3").
func streamIDMS(id string) int64 {
	ms, _ := strconv.ParseInt(id[:max(strings.IndexByte(id, '-'), 0)], 10, 64)
	return ms
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

// FileBacklog is how many file stream entries wait to be filed, over all
// shards: a message received, or a call of accepted messages.
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
