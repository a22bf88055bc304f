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

	"github.com/wagate/wagate/message"
)

// BatchItem is one message of a batch.
type BatchItem struct {
	Recipient string
	Type      message.Type
	Content   []byte
	// Preview is what the inbox shows of the message.
	Preview string
}

// BatchArgs is a batch to queue: messages from one sender on its bulk lane.
type BatchArgs struct {
	// ID comes from NewBatchID; message i gets message.BatchMessageID(ID, i).
	ID       string
	TenantID string
	Sender   string
	// Campaign names the bulk queue; the batch id when empty.
	Campaign string
	// RatePerSecond caps the batch below the number's rate (0: no cap).
	RatePerSecond float64
	DueMS         int64
	ExpiresMS     int64
	FallbackText  string
	FallbackAfter time.Duration
	// NoRetry sends each message once: a failed attempt is final.
	NoRetry bool
	// WindowCheck records free-form messages to guests whose 24-hour
	// window is closed as failed instead of sending them (when the
	// dispatcher comes to them).
	WindowCheck bool
	// IdempotencyKey and Fingerprint make a repeated request find the first
	// batch (see EnqueueBatch).
	IdempotencyKey string
	Fingerprint    uint64
	Items          []BatchItem
}

// NewBatchID returns an id for a batch of sender's.
func (s *Store) NewBatchID(sender string) string {
	return message.NewBatchID(message.ShardFor(sender, s.cfg.Shards), s.nowMS())
}

// chunksJob carries a batch's chunks through the batcher: one call per
// chunk, all in one pipeline, so that they are queued in the batch's order
// (one recipient's messages of a batch go out in order).
type chunksJob struct {
	fn   *function
	keys []string
	args [][]any
	cmds []*goredis.Cmd
	err  error
	done chan struct{}
}

func (j *chunksJob) queue(ctx context.Context, p goredis.Pipeliner) {
	j.cmds = j.cmds[:0]
	for _, a := range j.args {
		j.cmds = append(j.cmds, j.fn.FCall(ctx, p, j.keys, a...))
	}
}

func (j *chunksJob) noScript() bool {
	return slices.ContainsFunc(j.cmds, func(c *goredis.Cmd) bool { return isNoScript(c.Err()) })
}

func (j *chunksJob) finish(err error) {
	j.err = err
	j.done <- struct{}{}
}

// ErrBatchTooLarge: a batch holds more messages than its ids can number.
var ErrBatchTooLarge = errors.New("a batch takes at most 16384 messages")

// EnqueueBatch queues a batch: its hash (the options every message shares)
// and, per chunk of up to ChunkSize messages, one packed record and one
// queue entry (enqueue_chunk.lua), the chunks sharing pipelines with other
// callers. Each message's state, conversation and "queued" event are made
// by the dispatcher when it takes the message. With an IdempotencyKey, a
// request seen before answers the first batch's id (Outcome Duplicate, or
// Conflict when it asked for something else) and stores whatever chunk of
// that batch is missing, so that a request cut short by a Redis failure is
// completed by its retry without duplicates. It returns how many messages
// were queued now.
func (s *Store) EnqueueBatch(ctx context.Context, a *BatchArgs) (EnqueueResult, int, error) {
	shard := message.ShardFor(a.Sender, s.cfg.Shards)
	if sh, err := message.BatchShardOf(a.ID); err != nil || sh != shard {
		return EnqueueResult{}, 0, fmt.Errorf("enqueue batch: id %q is not one of this sender's", a.ID)
	}
	if len(a.Items) > 1<<message.BatchIndexBits {
		return EnqueueResult{}, 0, fmt.Errorf("enqueue batch: %w", ErrBatchTooLarge)
	}
	res := EnqueueResult{ID: a.ID, Outcome: Queued, Status: message.StatusQueued}
	now := s.nowMS()
	if a.DueMS > now {
		res.Status = message.StatusScheduled
	}
	if a.IdempotencyKey != "" {
		key := s.keys.Idem(shard, a.TenantID, a.IdempotencyKey)
		fp := strconv.FormatUint(a.Fingerprint, 36)
		ok, err := s.rdb.SetNX(ctx, key, a.ID+"\n"+fp, s.cfg.IdempotencyTTL).Result()
		if err != nil {
			return res, 0, fmt.Errorf("enqueue batch: %w", classify(err))
		}
		if !ok {
			prev, err := s.rdb.Get(ctx, key).Result()
			if err != nil {
				return res, 0, fmt.Errorf("enqueue batch: %w", classify(err))
			}
			first, pfp, _ := strings.Cut(prev, "\n")
			if pfp != fp {
				return EnqueueResult{ID: first, Outcome: Conflict}, 0, nil
			}
			a.ID, res.ID, res.Outcome = first, first, Duplicate
		}
	}
	campaign := a.Campaign
	if campaign == "" {
		campaign = a.ID
	}
	queue := s.keys.SenderQueue(shard, a.Sender, message.LaneBulk, campaign)
	due := int64(0)
	if a.DueMS > now {
		due = a.DueMS
	}
	chunks := (len(a.Items) + ChunkSize - 1) / ChunkSize
	maxAttempts := 0
	if a.NoRetry {
		maxAttempts = 1
	}
	meta := s.keys.Batch(shard, a.ID)
	p := s.rdb.TxPipeline()
	// The hash lives until every chunk is settled (chunk_done.lua): a
	// campaign may wait longer than any TTL for its number's rate.
	p.HSet(ctx, meta, "t", a.TenantID, "f", a.Sender, "n", len(a.Items), "mps", a.RatePerSecond, "cp", campaign,
		"ck", chunks, "x", a.ExpiresMS, "ft", a.FallbackText, "fas", int64(a.FallbackAfter/time.Second),
		"ma", maxAttempts, "wc", flag(a.WindowCheck))
	// A replay (the same Idempotency-Key) keeps the batch's first times.
	p.HSetNX(ctx, meta, "ca", now)
	p.HSetNX(ctx, meta, "due", max(due, now))
	if campaign != a.ID {
		ck := s.keys.Batch(shard, campaign)
		p.HSet(ctx, ck, "mps", a.RatePerSecond)
		p.Expire(ctx, ck, s.cfg.StateTTL+time.Duration(max(due-now, 0))*time.Millisecond)
	}
	if _, err := p.Exec(ctx); err != nil {
		return res, 0, fmt.Errorf("enqueue batch: %w", classify(err))
	}
	fb := flag(a.FallbackText != "")
	regval := string(message.LaneBulk) + "\t" + campaign
	j := &chunksJob{fn: s.scripts.enqueueChunk, done: make(chan struct{}, 1), keys: []string{meta}}
	for k := 0; k < chunks; k++ {
		lo, hi := k*ChunkSize, min((k+1)*ChunkSize, len(a.Items))
		j.args = append(j.args, []any{s.keys.ShardPrefix(shard), a.ID, k, appendChunk(nil, a.Items[lo:hi]), hi - lo,
			a.TenantID, a.Sender, queue, regval, due, fb})
	}
	s.batch.submit(ctx, j)
	queued := 0
	var firstErr error
	if !waitDone(ctx, j.done) {
		return res, 0, fmt.Errorf("enqueue batch: %w: %w", ErrUnconfirmed, ctx.Err())
	}
	if j.err != nil {
		firstErr = classify(j.err)
	}
	for _, c := range j.cmds {
		if err := c.Err(); err != nil {
			if firstErr == nil {
				firstErr = classify(err)
			}
			continue
		}
		if v, _ := c.Slice(); len(v) == 2 {
			n, _ := v[0].(int64)
			queued += int(n)
		}
	}
	if firstErr != nil {
		return res, queued, fmt.Errorf("enqueue batch: %w", firstErr)
	}
	return res, queued, nil
}

// BatchInfo is a batch, its options and how its messages stand.
type BatchInfo struct {
	ID            string
	TenantID      string
	Sender        string
	Campaign      string
	Total         int
	RatePerSecond float64
	CreatedMS     int64
	DueMS         int64
	// The options every message of the batch shares.
	ExpiresMS     int64
	FallbackText  string
	FallbackAfter time.Duration
	MaxAttempts   int
	WindowCheck   bool
	// Chunks is how many packed records the batch was stored in.
	Chunks int
	// Counts are the batch's messages by status (Batch only).
	Counts map[message.Status]int
}

// batchMeta reads batch id's hash, or ErrNotFound.
func (s *Store) batchMeta(ctx context.Context, id string) (*BatchInfo, int, error) {
	shard, err := message.BatchShardOf(id)
	if err != nil || shard >= s.cfg.Shards {
		return nil, 0, ErrNotFound
	}
	m, err := s.rdb.HGetAll(ctx, s.keys.Batch(shard, id)).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("batch %s: %w", id, err)
	}
	if m["t"] == "" {
		return nil, 0, ErrNotFound
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(m[k], 10, 64); return n }
	rate, _ := strconv.ParseFloat(m["mps"], 64)
	return &BatchInfo{ID: id, TenantID: m["t"], Sender: m["f"], Campaign: m["cp"], Total: int(num("n")),
		RatePerSecond: rate, CreatedMS: num("ca"), DueMS: num("due"), ExpiresMS: num("x"), FallbackText: m["ft"],
		FallbackAfter: time.Duration(num("fas")) * time.Second, MaxAttempts: int(num("ma")), WindowCheck: m["wc"] == "1",
		Chunks: int(num("ck"))}, shard, nil
}

// BatchSpec returns batch id's options (for the dispatcher), or ErrNotFound.
func (s *Store) BatchSpec(ctx context.Context, id string) (*BatchInfo, error) {
	b, _, err := s.batchMeta(ctx, id)
	return b, err
}

// BatchChunk returns the messages of chunk k of batch id, or ErrNotFound
// when the record is gone (every message of it is settled).
func (s *Store) BatchChunk(ctx context.Context, id string, k int) ([]BatchItem, error) {
	shard, err := message.BatchShardOf(id)
	if err != nil || shard >= s.cfg.Shards {
		return nil, ErrNotFound
	}
	b, err := s.rdb.Get(ctx, s.keys.BatchChunk(shard, id, k)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("batch %s chunk %d: %w", id, k, err)
	}
	items, err := decodeChunk(b)
	if err != nil {
		return nil, fmt.Errorf("batch %s chunk %d: %w", id, k, err)
	}
	return items, nil
}

// unsent is the status of a batch's message the dispatcher has not taken
// yet: scheduled until the batch is due, then queued.
func (s *Store) unsent(b *BatchInfo) message.Status {
	if b.DueMS > s.nowMS() {
		return message.StatusScheduled
	}
	return message.StatusQueued
}

// Batch returns batch id with its counts by status, or ErrNotFound. A
// message the dispatcher has not taken yet (no state of its own, its chunk's
// record still there) counts as queued, or scheduled.
func (s *Store) Batch(ctx context.Context, id string) (*BatchInfo, error) {
	b, shard, err := s.batchMeta(ctx, id)
	if err != nil {
		return nil, err
	}
	b.Counts = map[message.Status]int{}
	// The records first, then the states: a record is dropped only once
	// every message of it has a state, so a state missing after its
	// record was seen is a message not taken yet.
	p := s.rdb.Pipeline()
	recs := make([]*goredis.IntCmd, b.Chunks)
	for k := range recs {
		recs[k] = p.Exists(ctx, s.keys.BatchChunk(shard, id, k))
	}
	ids := batchMessageIDs(id, 0, b.Total)
	cmds := make([]*goredis.StringCmd, len(ids))
	for i, mid := range ids {
		cmds[i] = p.HGet(ctx, s.keys.Msg(shard, mid), "st")
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("batch %s: %w", id, err)
	}
	unsent := s.unsent(b)
	for i, c := range cmds {
		switch st := c.Val(); {
		case st != "":
			b.Counts[message.Status(st)]++
		case recs[i/ChunkSize].Val() == 1:
			b.Counts[unsent]++
		}
	}
	return b, nil
}

// BatchMessage is one message of a batch as BatchMessages lists it.
type BatchMessage struct {
	ID        string
	Recipient string
	Status    message.Status
	// ErrorCode and ErrorTitle are the provider's (or wagate's) last error.
	ErrorCode  int
	ErrorTitle string
}

// batchScanMax bounds the ids one BatchMessages call reads, however few
// of them match: a page may be short, and its cursor goes on.
const batchScanMax = 5000

// BatchMessages lists batch id's messages from position cursor (0 first)
// in the order the batch gave them, keeping those whose status is in want
// (all when empty), at most limit. next is where the following page
// begins, -1 after the last message. The caller checks the tenant (Batch).
func (s *Store) BatchMessages(ctx context.Context, id string, want []message.Status, cursor, limit int) ([]BatchMessage, int, error) {
	b, shard, err := s.batchMeta(ctx, id)
	if err != nil {
		return nil, -1, err
	}
	total := b.Total
	unsent := s.unsent(b)
	var out []BatchMessage
	for scanned := 0; scanned < batchScanMax && len(out) < limit; {
		n := min(500, batchScanMax-scanned, total-cursor)
		if n <= 0 {
			return out, -1, nil
		}
		ids := batchMessageIDs(id, cursor, n)
		p := s.rdb.Pipeline()
		// The records of the page's chunks first (see Batch).
		first, last := cursor/ChunkSize, (cursor+n-1)/ChunkSize
		recs := make([]*goredis.StringCmd, last-first+1)
		for k := range recs {
			recs[k] = p.Get(ctx, s.keys.BatchChunk(shard, id, first+k))
		}
		cmds := make([]*goredis.SliceCmd, len(ids))
		for i, mid := range ids {
			cmds[i] = p.HMGet(ctx, s.keys.Msg(shard, mid), "st", "r", "ec", "et")
		}
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
			return nil, -1, fmt.Errorf("batch %s messages: %w", id, err)
		}
		items := make([][]BatchItem, len(recs))
		for k, r := range recs {
			if raw, err := r.Bytes(); err == nil {
				items[k], _ = decodeChunk(raw)
			}
		}
		for i, c := range cmds {
			v := c.Val()
			st, _ := v[0].(string)
			r, _ := v[1].(string)
			if st == "" {
				pos := cursor + i
				if its := items[pos/ChunkSize-first]; pos%ChunkSize < len(its) {
					st, r = string(unsent), its[pos%ChunkSize].Recipient
				}
			}
			if st == "" || (len(want) > 0 && !slices.Contains(want, message.Status(st))) {
				continue
			}
			ec, _ := v[2].(string)
			et, _ := v[3].(string)
			code, _ := strconv.Atoi(ec)
			out = append(out, BatchMessage{ID: ids[i], Recipient: r, Status: message.Status(st), ErrorCode: code, ErrorTitle: et})
			if len(out) == limit {
				if next := cursor + i + 1; next < total {
					return out, next, nil
				}
				return out, -1, nil
			}
		}
		cursor += n
		scanned += n
	}
	if cursor >= total {
		return out, -1, nil
	}
	return out, cursor, nil
}

// batchMessageIDs are the ids of n messages of batch id from position
// from: they follow from the batch's id (message.BatchMessageID), so the
// batch keeps no list of them.
func batchMessageIDs(id string, from, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = message.BatchMessageID(id, from+i)
	}
	return ids
}

// CancelBatch cancels tenant's batch's messages not sent yet and returns
// how many, chunk by chunk (cancel_chunk.lua): a message the dispatcher
// has not taken yet gets a state "canceled", one it has taken and not
// begun sending is canceled as a single send would be. ErrNotFound: no
// such batch of tenant.
func (s *Store) CancelBatch(ctx context.Context, tenant, id string) (int, error) {
	b, shard, err := s.batchMeta(ctx, id)
	if err != nil {
		return 0, err
	}
	if b.TenantID != tenant {
		return 0, ErrNotFound
	}
	n := 0
	for k := 0; k < b.Chunks; k++ {
		items, err := s.BatchChunk(ctx, id, k)
		if errors.Is(err, ErrNotFound) {
			continue // every message of the chunk is settled
		}
		if err != nil {
			return n, fmt.Errorf("cancel batch %s: %w", id, err)
		}
		args := make([]any, 0, 7+3*len(items))
		args = append(args, s.keys.ShardPrefix(shard), s.nowMS(), s.stateTTL, tenant, b.Sender, b.Campaign, b.CreatedMS)
		for i := range items {
			args = append(args, message.BatchMessageID(id, k*ChunkSize+i), items[i].Recipient, string(items[i].Type))
		}
		c, err := s.scripts.cancelChunk.Run(ctx, s.rdb, []string{s.keys.Events(shard)}, args...).Int()
		if err != nil {
			return n, fmt.Errorf("cancel batch %s: %w", id, err)
		}
		n += c
	}
	return n, nil
}

// CampaignRate is the cap a batch set on its campaign's rate (0: none).
func (s *Store) CampaignRate(ctx context.Context, shard int, campaign string) (float64, error) {
	v, err := s.rdb.HGet(ctx, s.keys.Batch(shard, campaign), "mps").Float64()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("campaign rate: %w", err)
	}
	return v, nil
}
