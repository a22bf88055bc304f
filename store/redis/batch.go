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

// batchChunk is how many messages of a batch one script call queues: large
// enough to amortize the call, small enough not to hold Redis long.
const batchChunk = 500

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
	// window is closed as failed instead of queueing them.
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

// manyJob carries one chunk of a batch through the batcher.
type manyJob struct {
	script *function
	keys   []string
	args   []any
	cmd    *goredis.Cmd
	err    error
	done   chan struct{}
}

func (j *manyJob) queue(ctx context.Context, p goredis.Pipeliner) {
	j.cmd = j.script.FCall(ctx, p, j.keys, j.args...)
}
func (j *manyJob) noScript() bool { return j.cmd != nil && isNoScript(j.cmd.Err()) }
func (j *manyJob) finish(err error) {
	j.err = err
	j.done <- struct{}{}
}

// EnqueueBatch queues a batch, a chunk of messages per script call, the
// chunks sharing pipelines with other callers. With an IdempotencyKey, a
// request seen before answers the first batch's id (Outcome Duplicate, or
// Conflict when it asked for something else) and queues again whatever of
// that batch is missing, so that a request cut short by a Redis failure is
// completed by its retry without duplicates. It returns how many messages
// were queued now.
func (s *Store) EnqueueBatch(ctx context.Context, a *BatchArgs) (EnqueueResult, int, error) {
	shard := message.ShardFor(a.Sender, s.cfg.Shards)
	if sh, err := message.BatchShardOf(a.ID); err != nil || sh != shard {
		return EnqueueResult{}, 0, fmt.Errorf("enqueue batch: id %q is not one of this sender's", a.ID)
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
	lane := string(message.LaneBulk)
	ttl := s.cfg.StateTTL
	queue := s.keys.SenderQueue(shard, a.Sender, message.LaneBulk, campaign)
	target := queue
	due := max(a.DueMS, now)
	if due > now {
		target = s.keys.Delay(shard)
		ttl += time.Duration(due-now) * time.Millisecond
	}
	meta := s.keys.Batch(shard, a.ID)
	p := s.rdb.TxPipeline()
	p.HSet(ctx, meta, "t", a.TenantID, "f", a.Sender, "n", len(a.Items), "mps", a.RatePerSecond, "cp", campaign)
	// A replay (the same Idempotency-Key) keeps the batch's first times.
	p.HSetNX(ctx, meta, "ca", now)
	p.HSetNX(ctx, meta, "due", due)
	p.Expire(ctx, meta, ttl)
	p.HSet(ctx, s.keys.Batch(shard, campaign), "mps", a.RatePerSecond)
	p.Expire(ctx, s.keys.Batch(shard, campaign), ttl)
	if _, err := p.Exec(ctx); err != nil {
		return res, 0, fmt.Errorf("enqueue batch: %w", classify(err))
	}
	jobs := make([]*manyJob, 0, (len(a.Items)+batchChunk-1)/batchChunk)
	for lo := 0; lo < len(a.Items); lo += batchChunk {
		hi := min(lo+batchChunk, len(a.Items))
		j := &manyJob{script: s.scripts.enqueueMany, done: make(chan struct{}, 1),
			keys: make([]string, 0, 7+hi-lo), args: make([]any, 0, 17+5*(hi-lo))}
		j.keys = append(j.keys, target, s.keys.Events(shard), s.keys.Senders(shard), s.keys.SenderQueues(shard, a.Sender),
			s.keys.Wake(shard), s.keys.TenantQueued(shard), s.keys.Awake(shard))
		maxAttempts := 0
		if a.NoRetry {
			maxAttempts = 1
		}
		j.args = append(j.args, now, int64(ttl/time.Second), a.TenantID, a.Sender, lane, campaign, due, a.ExpiresMS,
			queue, lane+"\t"+campaign, a.FallbackText, int64(a.FallbackAfter/time.Second), maxAttempts,
			s.keys.ShardPrefix(shard), flag(a.WindowCheck), s.windowMS, s.convTTL)
		for i := lo; i < hi; i++ {
			id := message.BatchMessageID(a.ID, i)
			it := &a.Items[i]
			j.keys = append(j.keys, s.keys.Msg(shard, id))
			j.args = append(j.args, id, it.Recipient, string(it.Type), it.Content, it.Preview)
		}
		jobs = append(jobs, j)
		s.batch.submit(ctx, j)
	}
	queued := 0
	var firstErr error
	for _, j := range jobs {
		if !waitDone(ctx, j.done) {
			firstErr = fmt.Errorf("%w: %w", ErrUnconfirmed, ctx.Err())
			continue
		}
		err := j.err
		if err == nil {
			err = j.cmd.Err()
		}
		if err != nil {
			if firstErr == nil {
				firstErr = classify(err)
			}
			continue
		}
		if v, _ := j.cmd.Slice(); len(v) == 3 {
			n, _ := v[0].(int64)
			queued += int(n)
		}
	}
	if firstErr != nil {
		return res, queued, fmt.Errorf("enqueue batch: %w", firstErr)
	}
	return res, queued, nil
}

// BatchInfo is a batch and how its messages stand.
type BatchInfo struct {
	ID            string
	TenantID      string
	Sender        string
	Campaign      string
	Total         int
	RatePerSecond float64
	CreatedMS     int64
	DueMS         int64
	// Counts are the batch's messages by status.
	Counts map[message.Status]int
}

// Batch returns batch id with its counts by status, or ErrNotFound.
func (s *Store) Batch(ctx context.Context, id string) (*BatchInfo, error) {
	shard, err := message.BatchShardOf(id)
	if err != nil || shard >= s.cfg.Shards {
		return nil, ErrNotFound
	}
	m, err := s.rdb.HGetAll(ctx, s.keys.Batch(shard, id)).Result()
	if err != nil {
		return nil, fmt.Errorf("batch %s: %w", id, err)
	}
	if m["t"] == "" {
		return nil, ErrNotFound
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(m[k], 10, 64); return n }
	rate, _ := strconv.ParseFloat(m["mps"], 64)
	b := &BatchInfo{ID: id, TenantID: m["t"], Sender: m["f"], Campaign: m["cp"], Total: int(num("n")),
		RatePerSecond: rate, CreatedMS: num("ca"), DueMS: num("due"), Counts: map[message.Status]int{}}
	ids := batchMessageIDs(id, 0, b.Total)
	p := s.rdb.Pipeline()
	cmds := make([]*goredis.StringCmd, len(ids))
	for i, mid := range ids {
		cmds[i] = p.HGet(ctx, s.keys.Msg(shard, mid), "st")
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("batch %s: %w", id, err)
	}
	for _, c := range cmds {
		if st := c.Val(); st != "" {
			b.Counts[message.Status(st)]++
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
	shard, err := message.BatchShardOf(id)
	if err != nil || shard >= s.cfg.Shards {
		return nil, -1, ErrNotFound
	}
	total, err := s.rdb.HGet(ctx, s.keys.Batch(shard, id), "n").Int()
	if errors.Is(err, goredis.Nil) {
		return nil, -1, ErrNotFound
	}
	if err != nil {
		return nil, -1, fmt.Errorf("batch %s messages: %w", id, err)
	}
	var out []BatchMessage
	for scanned := 0; scanned < batchScanMax && len(out) < limit; {
		n := min(500, batchScanMax-scanned, total-cursor)
		if n <= 0 {
			return out, -1, nil
		}
		ids := batchMessageIDs(id, cursor, n)
		p := s.rdb.Pipeline()
		cmds := make([]*goredis.SliceCmd, len(ids))
		for i, mid := range ids {
			cmds[i] = p.HMGet(ctx, s.keys.Msg(shard, mid), "st", "r", "ec", "et")
		}
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
			return nil, -1, fmt.Errorf("batch %s messages: %w", id, err)
		}
		for i, c := range cmds {
			v := c.Val()
			st, _ := v[0].(string)
			if st == "" || (len(want) > 0 && !slices.Contains(want, message.Status(st))) {
				continue
			}
			r, _ := v[1].(string)
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
// how many. ErrNotFound: no such batch of tenant.
func (s *Store) CancelBatch(ctx context.Context, tenant, id string) (int, error) {
	b, err := s.Batch(ctx, id)
	if err != nil {
		return 0, err
	}
	if b.TenantID != tenant {
		return 0, ErrNotFound
	}
	shard, _ := message.BatchShardOf(id)
	ids := batchMessageIDs(id, 0, b.Total)
	n := 0
	for lo := 0; lo < len(ids); lo += batchChunk {
		hi := min(lo+batchChunk, len(ids))
		keys := []string{s.keys.Events(shard), s.keys.TenantQueued(shard)}
		for _, mid := range ids[lo:hi] {
			keys = append(keys, s.keys.Msg(shard, mid))
		}
		c, err := s.scripts.cancelMany.Run(ctx, s.rdb, keys, s.nowMS(), s.stateTTL, tenant).Int()
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
