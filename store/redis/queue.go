package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
)

// ErrFenced says the caller's shard lease is not the current one: another
// instance owns the shard now, and the write was refused.
var ErrFenced = errors.New("shard lease lost")

// ErrQueueGone says a queue stream was dropped (drained and collected) while
// it was being read; the reader should refresh its list of queues.
var ErrQueueGone = errors.New("queue stream is gone")

// QueueRef is one of a sender's queue streams.
type QueueRef struct {
	Stream   string
	Lane     message.Lane
	Campaign string
}

// Entry is one read queue entry: a message waiting to be sent, the single
// sends one call of the enqueue function queued (Sends), or a chunk of a
// batch (BatchID set: Count messages, in its packed record).
type Entry struct {
	Stream    string
	ID        string
	MessageID string
	Recipient string
	// HasFallback says the message (or the batch's) carries a fallback
	// text for SMS.
	HasFallback bool
	// BatchID, Chunk and Count name a batch's chunk (enqueue_chunk.lua).
	BatchID string
	Chunk   int
	Count   int
	// Sends are the single sends of an entry of the enqueue function, in
	// the order they were accepted; the entry stands for all of them.
	Sends []PendingSend
}

// PendingSend is a single send read from its queue, as enqueue.lua's entry
// names it: Begin makes its state from its send record (reccodec.go) if it
// has none yet.
type PendingSend struct {
	ID, Recipient string
	// HasFallback says the message carries a fallback text for SMS.
	HasFallback bool
}

// appendPendingSends appends the sends an entry of enqueue.lua names, one
// "<id>\t<recipient>\t<0|1>" per line; a line not of that shape is not ours
// and skipped.
func appendPendingSends(dst []PendingSend, parts string) []PendingSend {
	for len(parts) > 0 {
		line, rest, _ := strings.Cut(parts, "\n")
		parts = rest
		id, tail, ok1 := strings.Cut(line, "\t")
		to, fb, ok2 := strings.Cut(tail, "\t")
		if ok1 && ok2 && id != "" {
			dst = append(dst, PendingSend{ID: id, Recipient: to, HasFallback: fb == "1"})
		}
	}
	return dst
}

// ShardSenders returns the senders that have queues on shard.
func (s *Store) ShardSenders(ctx context.Context, shard int) ([]string, error) {
	v, err := s.rdb.HKeys(ctx, s.keys.Senders(shard)).Result()
	if err != nil {
		return nil, fmt.Errorf("senders of shard %d: %w", shard, err)
	}
	return v, nil
}

// SenderQueueRefs returns sender's queue streams on shard.
func (s *Store) SenderQueueRefs(ctx context.Context, shard int, sender string) ([]QueueRef, error) {
	v, err := s.rdb.HGetAll(ctx, s.keys.SenderQueues(shard, sender)).Result()
	if err != nil {
		return nil, fmt.Errorf("queues of %s: %w", sender, err)
	}
	refs := make([]QueueRef, 0, len(v))
	for stream, reg := range v {
		lane, campaign, _ := strings.Cut(reg, "\t")
		refs = append(refs, QueueRef{Stream: stream, Lane: message.Lane(lane), Campaign: campaign})
	}
	return refs, nil
}

// ReadEntries reads up to count new entries of each of streams for
// consumer, without waiting, and appends them to dst stream by stream.
func (s *Store) ReadEntries(ctx context.Context, consumer string, streams []string, count int, dst []Entry) ([]Entry, error) {
	if len(streams) == 0 {
		return dst, nil
	}
	args := make([]string, 0, 2*len(streams))
	args = append(args, streams...)
	for range streams {
		args = append(args, ">")
	}
	res, err := s.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: GroupDispatch, Consumer: consumer, Streams: args, Count: int64(count), Block: -1,
	}).Result()
	if errors.Is(err, goredis.Nil) {
		return dst, nil
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			return dst, fmt.Errorf("read queues: %w", ErrQueueGone)
		}
		return dst, fmt.Errorf("read queues: %w", err)
	}
	for _, st := range res {
		dst = appendEntries(dst, st.Stream, st.Messages)
	}
	return dst, nil
}

// ReadLanes reads, in one round trip, up to txCount new entries of each of
// the transactional streams, bulkCount of each bulk stream and chunkCount
// of each of the bulk streams that carry batches' chunks (an entry there
// may stand for ChunkSize messages), for consumer, without waiting.
func (s *Store) ReadLanes(ctx context.Context, consumer string, tx []string, txCount int, bulk []string, bulkCount int, chunked []string, chunkCount int) ([]Entry, error) {
	p := s.rdb.Pipeline()
	var cmds []*goredis.XStreamSliceCmd
	for _, lane := range []struct {
		streams []string
		count   int
	}{{tx, txCount}, {bulk, bulkCount}, {chunked, chunkCount}} {
		if len(lane.streams) == 0 || lane.count <= 0 {
			continue
		}
		args := append(append(make([]string, 0, 2*len(lane.streams)), lane.streams...), repeat(">", len(lane.streams))...)
		cmds = append(cmds, p.XReadGroup(ctx, &goredis.XReadGroupArgs{
			Group: GroupDispatch, Consumer: consumer, Streams: args, Count: int64(lane.count), Block: -1,
		}))
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	_, _ = p.Exec(ctx)
	var out []Entry
	for _, c := range cmds {
		res, err := c.Result()
		if errors.Is(err, goredis.Nil) {
			continue
		}
		if err != nil {
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				return out, fmt.Errorf("read queues: %w", ErrQueueGone)
			}
			return out, fmt.Errorf("read queues: %w", err)
		}
		for _, st := range res {
			out = appendEntries(out, st.Stream, st.Messages)
		}
	}
	return out, nil
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func appendEntries(dst []Entry, stream string, msgs []goredis.XMessage) []Entry {
	for _, m := range msgs {
		e := Entry{Stream: stream, ID: m.ID, HasFallback: m.Values["fb"] == "1"}
		if parts, ok := m.Values["s"].(string); ok {
			e.Sends = appendPendingSends(e.Sends, parts)
			e.Count = len(e.Sends)
			if len(e.Sends) == 1 {
				e.MessageID, e.Recipient, e.HasFallback = e.Sends[0].ID, e.Sends[0].Recipient, e.Sends[0].HasFallback
			}
		} else if b, ok := m.Values["bk"].(string); ok {
			k, _ := m.Values["k"].(string)
			n, _ := m.Values["n"].(string)
			e.BatchID = b
			e.Chunk, _ = strconv.Atoi(k)
			e.Count, _ = strconv.Atoi(n)
		} else {
			e.MessageID, _ = m.Values["id"].(string)
			e.Recipient, _ = m.Values["r"].(string)
		}
		dst = append(dst, e)
	}
	return dst
}

// ChunkDone records that every message of a batch's chunk is settled: the
// chunk's queue entry is acknowledged and its packed record dropped
// (chunk_done.lua). With batchID "", the entry is one of single sends
// (Entry.Sends), all settled: it is acknowledged. ErrFenced: the shard has
// a new owner.
func (s *Store) ChunkDone(ctx context.Context, l *Lease, shard int, stream, entryID, batchID string, chunk int) error {
	record := ""
	if batchID != "" {
		record = s.keys.BatchChunk(shard, batchID, chunk)
	}
	v, err := s.scripts.chunkDone.Run(ctx, s.rdb,
		[]string{s.keys.Batch(shard, batchID), stream, s.keys.Lease(shard, l.Role)},
		l.Value, GroupDispatch, entryID, record, s.stateTTL).Result()
	if err != nil {
		return fmt.Errorf("chunk %d of %s done: %w", chunk, batchID, err)
	}
	if vs, ok := v.([]any); ok && len(vs) == 1 && vs[0] == "fenced" {
		return fmt.Errorf("chunk %d of %s done: %w", chunk, batchID, ErrFenced)
	}
	return nil
}

// ClaimEntries takes over, for consumer, the pending entries of stream from
// start on (whoever held them: the caller owns the shard's lease, so their
// holder is gone), up to count, and returns them with the cursor of the
// next page ("0-0" at the end).
func (s *Store) ClaimEntries(ctx context.Context, stream, consumer, start string, count int, dst []Entry) ([]Entry, string, error) {
	msgs, next, err := s.rdb.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
		Stream: stream, Group: GroupDispatch, Consumer: consumer, MinIdle: 0, Start: start, Count: int64(count),
	}).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			return dst, "0-0", nil
		}
		return dst, "0-0", fmt.Errorf("claim pending of %s: %w", stream, err)
	}
	return appendEntries(dst, stream, msgs), next, nil
}

// Job is one message a dispatcher took from a queue, from Begin until
// Finish or Retry. The dispatcher owns it.
type Job struct {
	// Lease is the shard's lease under which the job runs; writes under a
	// lease that is no longer current are refused (ErrFenced).
	Lease   *Lease
	Shard   int
	Stream  string
	EntryID string
	Msg     message.Message
	// Redelivered says the message was already "sending" when taken: an
	// owner died during a provider call, so this send may be a second one.
	Redelivered bool
	QueuedMS    int64
	// Throttled counts attempts the provider refused for the sender's rate,
	// and AttemptBase attempts made before a requeue: neither uses up the
	// retry budget (see Counted).
	Throttled   int
	AttemptBase int
	// FallbackText and FallbackAfter are the message's SMS fallback.
	FallbackText  string
	FallbackAfter time.Duration
	ExpiresMS     int64
	// MaxAttempts, when not 0, lowers the dispatcher's limit for this
	// message (a batch sent with retry_failed false: 1).
	MaxAttempts int
	// RetryDue is when a message taken over while waiting for its retry
	// may be tried again (BeginLater).
	RetryDue time.Time
	// Batch and Item make the state of a batch's message that has none
	// yet (begin.lua), Pending that of a single send; EntryID is then ""
	// (the entry standing for many messages is the caller's to
	// acknowledge once all are settled, ChunkDone).
	Batch   *BatchInfo
	Item    *BatchItem
	Pending *PendingSend
}

// Counted is how many attempts count against the retry budget.
func (j *Job) Counted() int { return j.Msg.Attempt - j.Throttled - j.AttemptBase }

// NewJob returns the job for a read entry of sender's queue on shard that
// stands for one message: an entry of one message, or of the single sends
// of a call that had one (the job then acknowledges the entry, as for the
// other). An entry of many is the caller's to split (Entry.Sends).
func NewJob(l *Lease, shard int, sender string, e *Entry) *Job {
	j := &Job{Lease: l, Shard: shard, Stream: e.Stream, EntryID: e.ID,
		Msg: message.Message{ID: e.MessageID, Sender: sender, Recipient: e.Recipient}}
	if len(e.Sends) == 1 {
		ps := &e.Sends[0]
		j.Pending, j.Msg.ID, j.Msg.Recipient = ps, ps.ID, ps.Recipient
	}
	return j
}

// Begun says what Begin found.
type Begun uint8

// Begin outcomes.
const (
	// BeginGo: the message is marked "sending"; send it.
	BeginGo Begun = iota
	// BeginGone: its state expired; the entry was dropped.
	BeginGone
	// BeginDone: it is not sendable any more (canceled, already sent); the
	// entry was dropped.
	BeginDone
	// BeginExpired: its validity passed; it is now "expired".
	BeginExpired
	// BeginLater: it waits for a retry until j.RetryDue (a previous owner
	// scheduled it); nothing was changed.
	BeginLater
)

// beginJob carries one Begin through the batcher, which merges the
// begins of one shard and flush into one call of the begin function.
type beginJob struct {
	s    *Store
	job  *Job
	now  int64
	vals []any
	err  error
	done chan struct{}
}

// beginWidth is how many values the begin function answers per message
// (begin.lua's BEGIN_WIDTH).
const beginWidth = 18

func (b *beginJob) mergeKey() mergeKey {
	return mergeKey{fn: b.s.scripts.begin, shard: b.job.Shard, role: b.job.Lease.Role}
}

func (b *beginJob) mergeHead() (keys, head []any) {
	s, sh := b.s, b.job.Shard
	return []any{s.keys.Lease(sh, b.job.Lease.Role), s.keys.Events(sh), s.keys.TenantQueued(sh)}, s.beginHead[sh]
}

func (b *beginJob) mergeArgs(dst []any) []any {
	s, j := b.s, b.job
	if j.Pending != nil {
		return append(dst, j.Lease.Value, b.now, j.Msg.ID, j.Stream, j.EntryID, 1, "S")
	}
	if j.Batch == nil {
		return append(dst, j.Lease.Value, b.now, j.Msg.ID, j.Stream, j.EntryID, 0)
	}
	bt, it := j.Batch, j.Item
	entry := appendOutEntry(nil, j.Msg.ID, b.now, &EnqueueArgs{Type: it.Type, Preview: it.Preview})
	file := appendFilePre(nil, "o", bt.TenantID, bt.Sender, j.Msg.Recipient, b.now, it.Preview, entry, 0, "", "")
	return append(dst, j.Lease.Value, b.now, j.Msg.ID, j.Stream, j.EntryID, 15,
		bt.TenantID, bt.Sender, j.Msg.Recipient, string(it.Type), it.Content,
		bt.Campaign, bt.CreatedMS, bt.ExpiresMS, bt.FallbackText, int64(bt.FallbackAfter/time.Second), bt.MaxAttempts,
		flag(bt.WindowCheck && it.Type != message.TypeTemplate), s.windowMS, s.convTTL, file)
}

func (b *beginJob) mergeWidth() int { return beginWidth }

func (b *beginJob) merged(vals []any, err error) {
	b.vals, b.err = vals, err
	b.done <- struct{}{}
}

func (b *beginJob) finish(err error) { b.merged(nil, err) }

// queue and noScript are never used: the batcher merges begin jobs.
func (b *beginJob) queue(context.Context, goredis.Pipeliner) {}
func (b *beginJob) noScript() bool                           { return false }

// Begin marks j's message "sending" and loads it into j.Msg (see
// begin.lua), batched with other callers' into one pipeline.
func (s *Store) Begin(ctx context.Context, j *Job) (Begun, error) {
	b := &beginJob{s: s, job: j, now: s.nowMS(), done: make(chan struct{}, 1)}
	s.batch.submit(ctx, b)
	<-b.done
	return b.result()
}

// result reads the begin function's answer for b's job into it.
func (b *beginJob) result() (Begun, error) {
	j := b.job
	if b.err != nil {
		return 0, fmt.Errorf("begin %s: %w", j.Msg.ID, b.err)
	}
	v := b.vals
	str := func(i int) string { x, _ := v[i].(string); return x }
	switch str(0) {
	case "fenced":
		return 0, fmt.Errorf("begin %s: %w", j.Msg.ID, ErrFenced)
	case "error":
		return 0, fmt.Errorf("begin %s: %s", j.Msg.ID, str(1))
	case "gone":
		return BeginGone, nil
	case "expired":
		return BeginExpired, nil
	case "later":
		due, _ := strconv.ParseInt(str(1), 10, 64)
		j.RetryDue = time.UnixMilli(due)
		return BeginLater, nil
	case "go":
	default:
		return BeginDone, nil
	}
	num := func(i int) int64 { n, _ := strconv.ParseInt(str(i), 10, 64); return n }
	j.Redelivered = str(1) == string(message.StatusSending)
	j.QueuedMS = num(11)
	j.Throttled, j.AttemptBase = int(num(12)), int(num(13))
	j.FallbackText, j.FallbackAfter = str(14), time.Duration(num(15))*time.Second
	j.ExpiresMS = num(16)
	j.MaxAttempts = int(num(17))
	j.Msg = message.Message{
		ID: j.Msg.ID, TenantID: str(2), Sender: str(3), Recipient: str(4),
		Type: message.Type(str(5)), Content: []byte(str(6)), Lane: message.Lane(str(7)),
		ConversationID: str(8), StaffMemberID: str(9), CreatedMS: j.QueuedMS, Attempt: int(num(10)),
	}
	return BeginGo, nil
}

// Result is the outcome of one provider call, or a provider's status report.
type Result struct {
	Status            message.Status
	AtMS              int64
	Provider          string
	ProviderMessageID string
	ErrorCode         int
	ErrorTitle        string
	// Channel is "whatsapp" unless the message went out by fallback.
	Channel         string
	PricingCategory string
	// PricingModel and PricingType complete Meta's pricing object
	// (provider.StatusUpdate).
	PricingModel, PricingType string
	// Billable is "", "0" or "1" (unknown, no, yes).
	Billable       string
	ConversationID string
}

func (r *Result) channel() string {
	if r.Channel == "" {
		return "whatsapp"
	}
	return r.Channel
}

func (r *Result) code() string {
	if r.ErrorCode == 0 {
		return ""
	}
	return strconv.Itoa(r.ErrorCode)
}

// FinishOptions say what else Finish does.
type FinishOptions struct {
	// DeadLetter adds the message to the dead-letter stream (its retries
	// are exhausted).
	DeadLetter bool
	// NoReceipts says the provider that carried it reports no delivery
	// (Gallabox, ChatApp here): no fallback is scheduled for want of one.
	NoReceipts bool
}

// finishJob carries one Finish (as a finishCall) or Retry through the
// batcher.
type finishJob struct {
	s     *Store
	job   *Job
	res   *Result
	dueMS int64 // Retry: when to try again
	// uncounted: the retry does not count against the budget (throttling).
	uncounted bool
	opts      FinishOptions
	now       int64
	setPID    *goredis.StatusCmd
	cmd       *goredis.Cmd // Retry's
	vals      []any        // Finish's answer (finishCall)
	err       error
	done      chan struct{}
}

func (f *finishJob) queue(ctx context.Context, p goredis.Pipeliner) {
	s, j, r := f.s, f.job, f.res
	uncounted := "0"
	if f.uncounted {
		uncounted = "1"
	}
	f.cmd = s.scripts.retry.FCall(ctx, p, []string{s.keys.Msg(j.Shard, j.Msg.ID), s.keys.Events(j.Shard), s.keys.Lease(j.Shard, j.Lease.Role)},
		j.Lease.Value, f.dueMS, r.code(), r.ErrorTitle, f.now, uncounted, s.stateTTL)
}

// finishCall is a Finish's job as the batcher merges it: the finishes of
// one shard and flush share one call of the finish function.
type finishCall finishJob

// finishWidth is how many values the finish function answers per message.
const finishWidth = 2

func (f *finishCall) mergeKey() mergeKey {
	return mergeKey{fn: f.s.scripts.finish, shard: f.job.Shard, role: f.job.Lease.Role}
}

func (f *finishCall) mergeHead() (keys, head []any) {
	s, sh := f.s, f.job.Shard
	return []any{s.keys.Lease(sh, f.job.Lease.Role), s.keys.Events(sh), s.keys.TenantQueued(sh), s.keys.DLQ(sh),
		s.keys.FallbackChecks(sh)}, s.finishHead[sh]
}

// prequeue maps the provider's id to the message before the call: a
// webhook that finds the mapping and applies "delivered" first is fine,
// statuses move forward only. (The mapping's key is not of the shard's
// slot.)
func (f *finishCall) prequeue(ctx context.Context, p goredis.Pipeliner) {
	if r := f.res; r.ProviderMessageID != "" && r.Status != message.StatusFallback {
		f.setPID = p.Set(ctx, f.s.keys.PID(r.ProviderMessageID), f.job.Msg.ID, f.s.cfg.PIDTTL)
	}
}

func (f *finishCall) mergeArgs(dst []any) []any {
	j, r := f.job, f.res
	var fbDue int64
	switch {
	case r.Status == message.StatusSent && j.FallbackAfter > 0 && j.FallbackText != "" && !f.opts.NoReceipts:
		fbDue = r.AtMS + j.FallbackAfter.Milliseconds()
	case r.Status == message.StatusFailed && j.FallbackText != "":
		fbDue = f.now
	}
	return append(dst, j.Lease.Value, j.Msg.ID, j.Stream, j.EntryID, string(r.Status), r.AtMS, r.Provider,
		r.ProviderMessageID, r.code(), r.ErrorTitle, r.channel(), flag(f.opts.DeadLetter), fbDue)
}

func (f *finishCall) mergeWidth() int { return finishWidth }

func (f *finishCall) merged(vals []any, err error) {
	f.vals, f.err = vals, err
	f.done <- struct{}{}
}

func (f *finishCall) finish(err error) { f.merged(nil, err) }

// queue and noScript are never used: the batcher merges finish calls.
func (f *finishCall) queue(context.Context, goredis.Pipeliner) {}
func (f *finishCall) noScript() bool                           { return false }

func (f *finishJob) noScript() bool { return f.cmd != nil && isNoScript(f.cmd.Err()) }

func (f *finishJob) finish(err error) {
	f.err = err
	f.done <- struct{}{}
}

// Finish records the outcome of a job's send (sent, failed, fallback…),
// writes its event and acknowledges its queue entry, in one script (see
// finish.lua). It returns after Redis has it; until then the entry stays
// pending and is redelivered if the process dies. ErrFenced: the shard has
// a new owner.
func (s *Store) Finish(ctx context.Context, j *Job, r *Result, opts FinishOptions) error {
	f := &finishCall{s: s, job: j, res: r, opts: opts, now: s.nowMS(), done: make(chan struct{}, 1)}
	s.batch.submit(ctx, f)
	<-f.done
	return f.result()
}

// result reads the finish function's answer for f's job.
func (f *finishCall) result() error {
	j := f.job
	if f.err != nil {
		return fmt.Errorf("finish %s: %w", j.Msg.ID, f.err)
	}
	if f.setPID != nil && f.setPID.Err() != nil {
		return fmt.Errorf("finish %s: map provider id: %w", j.Msg.ID, f.setPID.Err())
	}
	switch v, _ := f.vals[0].(string); v {
	case "fenced":
		return fmt.Errorf("finish %s: %w", j.Msg.ID, ErrFenced)
	case "error":
		why, _ := f.vals[1].(string)
		return fmt.Errorf("finish %s: %s", j.Msg.ID, why)
	}
	return nil
}

// Retry marks a job to be sent again from dueMS (Unix ms) after a failed
// attempt; its queue entry stays pending in place (see retry.lua). An
// uncounted retry (the provider throttled) does not use up the retry budget.
func (s *Store) Retry(ctx context.Context, j *Job, dueMS int64, r *Result, uncounted bool) error {
	f := &finishJob{s: s, job: j, res: r, dueMS: max(dueMS, 1), uncounted: uncounted, now: s.nowMS(), done: make(chan struct{}, 1)}
	s.batch.submit(ctx, f)
	<-f.done
	if f.err != nil {
		return fmt.Errorf("retry %s: %w", j.Msg.ID, f.err)
	}
	if err := f.cmd.Err(); err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("retry %s: %w", j.Msg.ID, err)
	}
	if v, _ := f.cmd.Slice(); len(v) == 1 && v[0] == "fenced" {
		return fmt.Errorf("retry %s: %w", j.Msg.ID, ErrFenced)
	}
	return nil
}

// Promote moves up to limit due retries and scheduled sends of shard back
// to their queues and returns how many it moved.
func (s *Store) Promote(ctx context.Context, shard, limit int) (int, error) {
	n, err := s.scripts.promote.Run(ctx, s.rdb,
		[]string{s.keys.Delay(shard), s.keys.Wake(shard), s.keys.Senders(shard), s.keys.Awake(shard)},
		s.nowMS(), limit, s.keys.ShardPrefix(shard)).Int()
	if err != nil {
		return 0, fmt.Errorf("promote shard %d: %w", shard, err)
	}
	return n, nil
}

// NextDue is the due time of shard's earliest delayed message, or false.
func (s *Store) NextDue(ctx context.Context, shard int) (time.Time, bool, error) {
	z, err := s.rdb.ZRangeWithScores(ctx, s.keys.Delay(shard), 0, 0).Result()
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next due of shard %d: %w", shard, err)
	}
	if len(z) == 0 {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(int64(z[0].Score)), true, nil
}

// NextFallbackDue is when shard's earliest fallback check is due, or false
// when none waits.
func (s *Store) NextFallbackDue(ctx context.Context, shard int) (time.Time, bool, error) {
	z, err := s.rdb.ZRangeWithScores(ctx, s.keys.FallbackChecks(shard), 0, 0).Result()
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next fallback check of shard %d: %w", shard, err)
	}
	if len(z) == 0 {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(int64(z[0].Score)), true, nil
}

// WakeTail returns the id of shard's last wake-up, to read the ones after,
// and clears every wake-up flag: the new owner reads all queues at start,
// and every message queued from then on wakes its sender again.
func (s *Store) WakeTail(ctx context.Context, shard int) (string, error) {
	p := s.rdb.TxPipeline()
	tail := p.XRevRangeN(ctx, s.keys.Wake(shard), "+", "-", 1)
	p.Del(ctx, s.keys.Awake(shard))
	if _, err := p.Exec(ctx); err != nil {
		return "", fmt.Errorf("wake tail of shard %d: %w", shard, err)
	}
	v := tail.Val()
	if len(v) == 0 {
		return "0-0", nil
	}
	return v[0].ID, nil
}

// ReadWakes waits up to block for wake-ups of shard after id after and
// returns the senders woken (with repeats) and the id to read after next.
// It clears their flags before it returns: a message queued from then on
// wakes its sender again, and one queued before is in the queue by the time
// the caller has the sender's pump read it.
func (s *Store) ReadWakes(ctx context.Context, shard int, after string, block time.Duration, dst []string) ([]string, string, error) {
	w, err := s.ReadWakeUps(ctx, shard, after, block, dst)
	return w.Senders, w.After, err
}

// WakeUps are what one read of a shard's wake-ups found.
type WakeUps struct {
	// Senders woken, with repeats.
	Senders []string
	// Due is the earliest due time of the sends scheduled meanwhile (zero
	// when none was): the shard's housekeeping looks at it then.
	Due time.Time
	// After is the id to read after next.
	After string
}

// ReadWakeUps is ReadWakes telling also of newly scheduled sends.
func (s *Store) ReadWakeUps(ctx context.Context, shard int, after string, block time.Duration, dst []string) (WakeUps, error) {
	w := WakeUps{Senders: dst, After: after}
	res, err := s.rdb.XRead(ctx, &goredis.XReadArgs{
		Streams: []string{s.keys.Wake(shard), after}, Count: 1000, Block: block,
	}).Result()
	if errors.Is(err, goredis.Nil) {
		return w, nil
	}
	if err != nil {
		return w, fmt.Errorf("read wake-ups of shard %d: %w", shard, err)
	}
	n := len(dst)
	for _, st := range res {
		for _, m := range st.Messages {
			if sender, ok := m.Values["s"].(string); ok {
				w.Senders = append(w.Senders, sender)
			} else if d, ok := m.Values["d"].(string); ok {
				if ms, err := strconv.ParseInt(d, 10, 64); err == nil && (w.Due.IsZero() || ms < w.Due.UnixMilli()) {
					w.Due = time.UnixMilli(ms)
				}
			}
			w.After = m.ID
		}
	}
	if len(w.Senders) > n {
		if err := s.rdb.HDel(ctx, s.keys.Awake(shard), w.Senders[n:]...).Err(); err != nil {
			return w, fmt.Errorf("clear wake-ups of shard %d: %w", shard, err)
		}
	}
	return w, nil
}

// CollectQueue drops sender's queue stream when it is empty with nothing
// pending (enqueue makes it again when needed), and forgets consumers idle
// for a day with nothing pending. It reports whether the stream was dropped.
func (s *Store) CollectQueue(ctx context.Context, shard int, sender, stream string) (bool, error) {
	n, err := s.scripts.gc.Run(ctx, s.rdb, []string{stream, s.keys.SenderQueues(shard, sender), s.keys.Senders(shard)},
		sender, GroupDispatch, (24 * time.Hour).Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("collect %s: %w", stream, err)
	}
	return n == 1, nil
}

// depthExact is the longest delay set, and depthQueue the longest queue
// stream, that QueueDepth reads whole to count their messages; a longer one
// is estimated from its first entries. A queue entry may name a whole
// call's sends (up to PipelineMax, ~45 bytes each): reading 200 of them
// is at most a few MB even then, which a scrape may ask of Redis.
const (
	depthExact = 2000
	depthQueue = 200
)

// QueueDepth returns the messages waiting in all shards' queue streams by
// lane (read or not) and the delayed ones (retries, scheduled). A batch's
// chunk, and an entry of a call's single sends, counts as its messages; a
// queue longer than depthQueue entries, or a delay set longer than
// depthExact, is estimated from its first ones.
func (s *Store) QueueDepth(ctx context.Context) (tx, bulk, delayed int64, err error) {
	all := make([]int, s.cfg.Shards)
	for sh := range all {
		all[sh] = sh
	}
	st, err := s.ShardQueueStats(ctx, all)
	if err != nil {
		return 0, 0, 0, err
	}
	for _, q := range st {
		tx, bulk, delayed = tx+q.Tx, bulk+q.Bulk, delayed+q.Delayed
	}
	return tx, bulk, delayed, nil
}

// QueueStats is what waits on one shard.
type QueueStats struct {
	Shard int
	// Tx and Bulk are the messages in the shard's queues, read or not (see
	// QueueDepth); Delayed the scheduled ones not due yet.
	Tx, Bulk, Delayed int64
	// DeadLetters is the length of the shard's dead-letter stream.
	DeadLetters int64
	// Oldest is when the oldest message in the shard's queues was queued
	// (zero when they are empty): a settled message's entry is deleted, so
	// this one is waiting, in flight or waiting for its retry.
	Oldest time.Time
}

// ShardQueueStats returns what waits on each of shards, in a few round
// trips however many shards.
func (s *Store) ShardQueueStats(ctx context.Context, shards []int) ([]QueueStats, error) {
	out := make([]QueueStats, len(shards))
	p := s.rdb.Pipeline()
	senders := make([]*goredis.StringSliceCmd, len(shards))
	delays := make([]*goredis.IntCmd, len(shards))
	dlqs := make([]*goredis.IntCmd, len(shards))
	for i, sh := range shards {
		out[i].Shard = sh
		senders[i] = p.HKeys(ctx, s.keys.Senders(sh))
		delays[i] = p.ZCard(ctx, s.keys.Delay(sh))
		dlqs[i] = p.XLen(ctx, s.keys.DLQ(sh))
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("queue depth: %w", err)
	}
	p = s.rdb.Pipeline()
	type senderQueues struct {
		i   int
		cmd *goredis.MapStringStringCmd
	}
	var queues []senderQueues
	delayMembers := make([]*goredis.StringSliceCmd, len(shards))
	for i, sh := range shards {
		out[i].DeadLetters = dlqs[i].Val()
		if n := delays[i].Val(); n > 0 {
			delayMembers[i] = p.ZRange(ctx, s.keys.Delay(sh), 0, depthExact-1)
		}
		for _, sender := range senders[i].Val() {
			queues = append(queues, senderQueues{i, p.HGetAll(ctx, s.keys.SenderQueues(sh, sender))})
		}
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("queue depth: %w", err)
	}
	for i, c := range delayMembers {
		if c != nil {
			out[i].Delayed = scaled(delays[i].Val(), c.Val(), delayMessages)
		}
	}
	// Each queue's length, and its first entries: the oldest, and the
	// entries of many messages to count (a batch's chunks, a call's sends).
	p = s.rdb.Pipeline()
	type queueCmds struct {
		i    int
		bulk bool
		len  *goredis.IntCmd
		head *goredis.XMessageSliceCmd
	}
	var qs []queueCmds
	for _, q := range queues {
		for stream, reg := range q.cmd.Val() {
			bulk := strings.HasPrefix(reg, string(message.LaneBulk))
			qs = append(qs, queueCmds{q.i, bulk, p.XLen(ctx, stream), p.XRangeN(ctx, stream, "-", "+", depthQueue)})
		}
	}
	if len(qs) == 0 {
		return out, nil
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("queue depth: %w", err)
	}
	for _, q := range qs {
		o := &out[q.i]
		head := q.head.Val()
		if q.bulk {
			o.Bulk += scaled(q.len.Val(), head, entryMessages)
		} else {
			o.Tx += scaled(q.len.Val(), head, entryMessages)
		}
		if len(head) > 0 {
			if at := entryTime(head[0].ID); o.Oldest.IsZero() || at.Before(o.Oldest) {
				o.Oldest = at
			}
		}
	}
	return out, nil
}

// entryTime is when a stream entry was added, from its id ("<ms>-<seq>").
func entryTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return time.UnixMilli(n)
}

// scaled counts the messages of n entries of which first are the first
// ones: exactly when first holds them all, else in proportion.
func scaled[T any](n int64, first []T, count func(T) int64) int64 {
	var m int64
	for _, e := range first {
		m += count(e)
	}
	if len(first) == 0 || int64(len(first)) >= n {
		return m
	}
	return m * n / int64(len(first))
}

// entryMessages is how many messages a queue entry stands for.
func entryMessages(m goredis.XMessage) int64 {
	if n, ok := m.Values["n"].(string); ok {
		v, _ := strconv.ParseInt(n, 10, 64)
		return v
	}
	return 1
}

// delayMessages is how many messages a delay set member stands for (see
// promote.lua).
func delayMessages(member string) int64 {
	if !strings.HasPrefix(member, "@") {
		return 1
	}
	v, _ := strconv.ParseInt(member[strings.LastIndexByte(member, '\n')+1:], 10, 64)
	return v
}

// TenantOpen returns how many of tenant's messages are not sent yet
// (queued, scheduled, sending or waiting to be retried), over all shards.
func (s *Store) TenantOpen(ctx context.Context, tenant string) (int64, error) {
	p := s.rdb.Pipeline()
	cmds := make([]*goredis.StringCmd, s.cfg.Shards)
	for sh := range cmds {
		cmds[sh] = p.HGet(ctx, s.keys.TenantQueued(sh), tenant)
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return 0, fmt.Errorf("open messages of %s: %w", tenant, err)
	}
	var n int64
	for _, c := range cmds {
		v, _ := c.Int64()
		n += v
	}
	return n, nil
}
