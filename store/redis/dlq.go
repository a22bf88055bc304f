package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
)

// ErrNotFailed says a message asked to be requeued has not failed (or is
// no longer in the dead-letter stream).
var ErrNotFailed = errors.New("message has not failed")

// DeadLetter is a message that exhausted its retries.
type DeadLetter struct {
	EntryID    string
	MessageID  string
	TenantID   string
	Sender     string
	Recipient  string
	Attempts   int
	ErrorCode  int
	ErrorTitle string
	// AtMS is when it was dead-lettered.
	AtMS int64
}

// DeadLetters returns up to limit of tenant's dead letters, newest first,
// over all shards, after cursor ("": from the newest). It returns the
// cursor of the next page, "" at the end.
func (s *Store) DeadLetters(ctx context.Context, tenant string, limit int, cursor string) ([]DeadLetter, string, error) {
	// The cursor is the last entry shown: "<stream id>/<shard>". Entries
	// sort by stream id, then shard, both descending.
	var curID string
	curShard := s.cfg.Shards
	if cursor != "" {
		id, sh, ok := strings.Cut(cursor, "/")
		n, err := strconv.Atoi(sh)
		if !ok || err != nil || !validStreamID(id) {
			return nil, "", ErrBadCursor
		}
		curID, curShard = id, n
	}
	type found struct {
		DeadLetter
		shard int
	}
	var out []found
	for sh := 0; sh < s.cfg.Shards; sh++ {
		end := "+"
		if curID != "" {
			end = "(" + curID // after the cursor's entry…
			if sh < curShard {
				end = curID // …or at its id on a shard that sorts after it
			}
		}
		n := 0
		for n < limit {
			msgs, err := s.rdb.XRevRangeN(ctx, s.keys.DLQ(sh), end, "-", 500).Result()
			if err != nil {
				return nil, "", fmt.Errorf("dead letters: %w", err)
			}
			for _, m := range msgs {
				if d := decodeDeadLetter(m); d.TenantID == tenant {
					out = append(out, found{d, sh})
					n++
				}
			}
			if len(msgs) < 500 {
				break
			}
			end = "(" + msgs[len(msgs)-1].ID
		}
	}
	slices.SortFunc(out, func(a, b found) int {
		if c := compareID(b.EntryID, a.EntryID); c != 0 {
			return c
		}
		return b.shard - a.shard
	})
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = last.EntryID + "/" + strconv.Itoa(last.shard)
	}
	dls := make([]DeadLetter, len(out))
	for i := range out {
		dls[i] = out[i].DeadLetter
	}
	return dls, next, nil
}

// ErrBadCursor says a paging cursor is not one this store gave out.
var ErrBadCursor = errors.New("bad cursor")

func validStreamID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	_, e1 := strconv.ParseUint(ms, 10, 64)
	_, e2 := strconv.ParseUint(seq, 10, 64)
	return ok && e1 == nil && e2 == nil
}

// compareID orders stream ids.
func compareID(a, b string) int {
	switch {
	case a == b:
		return 0
	case lessID(a, b):
		return -1
	}
	return 1
}

func decodeDeadLetter(m goredis.XMessage) DeadLetter {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	num := func(k string) int64 { n, _ := strconv.ParseInt(str(k), 10, 64); return n }
	ms, _, _ := strings.Cut(m.ID, "-")
	at, _ := strconv.ParseInt(ms, 10, 64)
	return DeadLetter{EntryID: m.ID, MessageID: str("m"), TenantID: str("t"), Sender: str("f"),
		Recipient: str("r"), Attempts: int(num("a")), ErrorCode: int(num("ec")), ErrorTitle: str("et"), AtMS: at}
}

// Requeue sends tenant's dead-lettered message id again with a fresh retry
// budget. ErrNotFound: no such message of tenant; ErrNotFailed: it is not
// in the dead-letter stream.
func (s *Store) Requeue(ctx context.Context, tenant, id string) error {
	shard, err := message.ShardOf(id)
	if err != nil || shard >= s.cfg.Shards {
		return ErrNotFound
	}
	f, err := s.rdb.HMGet(ctx, s.keys.Msg(shard, id), "t", "f", "qk", "l", "cp", "dl").Result()
	if err != nil {
		return fmt.Errorf("requeue %s: %w", id, err)
	}
	str := func(i int) string { v, _ := f[i].(string); return v }
	if str(0) != tenant {
		return ErrNotFound
	}
	entry := str(5)
	if entry == "" {
		return ErrNotFailed
	}
	sender := str(1)
	queue := str(2) // written by earlier builds; it follows from the number, lane and campaign
	if queue == "" {
		queue = s.keys.SenderQueue(shard, sender, message.Lane(str(3)), str(4))
	}
	res, err := s.scripts.requeue.Run(ctx, s.rdb,
		[]string{s.keys.Msg(shard, id), s.keys.DLQ(shard), queue, s.keys.Senders(shard),
			s.keys.SenderQueues(shard, sender), s.keys.Wake(shard), s.keys.Events(shard), s.keys.TenantQueued(shard), s.keys.Awake(shard)},
		entry, tenant, s.nowMS(), s.stateTTL, str(3)+"\t"+str(4)).Result()
	if err != nil {
		return fmt.Errorf("requeue %s: %w", id, err)
	}
	switch res {
	case int64(1):
		return nil
	case "gone", "not_yours":
		return ErrNotFound
	}
	return ErrNotFailed
}

// DueFallbacks returns up to limit messages of shard whose fallback check
// is due.
func (s *Store) DueFallbacks(ctx context.Context, shard, limit int) ([]string, error) {
	v, err := s.rdb.ZRangeByScore(ctx, s.keys.FallbackChecks(shard), &goredis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(s.nowMS(), 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("due fallbacks of shard %d: %w", shard, err)
	}
	return v, nil
}

// RecheckFallback looks at a message's fallback again at dueMS (its SMS
// could not be sent yet).
func (s *Store) RecheckFallback(ctx context.Context, shard int, id string, dueMS int64) error {
	if err := s.rdb.ZAdd(ctx, s.keys.FallbackChecks(shard), goredis.Z{Score: float64(dueMS), Member: id}).Err(); err != nil {
		return fmt.Errorf("recheck fallback: %w", err)
	}
	return nil
}

// FallbackChecked removes messages from shard's fallback checks.
func (s *Store) FallbackChecked(ctx context.Context, shard int, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	ms := make([]any, len(ids))
	for i, id := range ids {
		ms[i] = id
	}
	if err := s.rdb.ZRem(ctx, s.keys.FallbackChecks(shard), ms...).Err(); err != nil {
		return fmt.Errorf("fallback checked: %w", err)
	}
	return nil
}
