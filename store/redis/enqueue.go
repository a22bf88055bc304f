package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
)

// EnqueueArgs is one message to accept. The caller keeps ownership; Enqueue
// copies what it needs before it returns.
type EnqueueArgs struct {
	TenantID       string
	Sender         string
	Recipient      string
	Type           message.Type
	Content        []byte
	Lane           message.Lane
	ConversationID string
	StaffMemberID  string
	// IdempotencyKey, when set, makes a repeat of the request return the
	// first message instead of queueing another.
	IdempotencyKey string
	// Fingerprint identifies the request's content, so that a key reused
	// for a different message is refused instead of silently answered.
	Fingerprint uint64
	// DueMS schedules the send (Unix ms); 0 or the past means now.
	DueMS int64
	// Campaign groups bulk messages: campaigns share a number fairly.
	Campaign string
	// ExpiresMS is when the message stops being worth sending (Unix ms; 0:
	// never). It ends "expired" if it has not been sent by then.
	ExpiresMS int64
	// FallbackText is sent by SMS when WhatsApp fails, or is not delivered
	// within FallbackAfter.
	FallbackText  string
	FallbackAfter time.Duration
	// Template names the template of a template message; every other
	// message is free-form and needs the guest's 24-hour window open.
	Template string
	// Preview is what the inbox shows of the message.
	Preview string
	// ConversationMeta is merged into the conversation's metadata.
	ConversationMeta map[string]string
	// WindowCheck refuses the message (Outcome WindowClosed) unless the
	// guest wrote within the window: set it for free-form messages.
	WindowCheck bool
	// Force sends even to an opted-out guest: only for the confirmation
	// of the opt-out itself.
	Force bool
}

// Outcome says what Enqueue did.
type Outcome uint8

// Enqueue outcomes.
const (
	// Queued: a new message is durable in Redis.
	Queued Outcome = iota
	// Duplicate: the Idempotency-Key was used before for the same request;
	// ID is the first message's.
	Duplicate
	// Conflict: the Idempotency-Key was used before for another request.
	Conflict
	// OptedOut: the guest has opted out of this number's messages; Since
	// and How say when and how.
	OptedOut
	// WindowClosed: a free-form message outside the guest's 24-hour
	// window; LastInboundMS is the guest's last message (0: never).
	WindowClosed
	// ConversationOther: the conversation asked for is another guest's or
	// another number's.
	ConversationOther
	// ConversationClosed: the conversation asked for is closed.
	ConversationClosed
)

// EnqueueResult is what Enqueue did and for which message.
type EnqueueResult struct {
	ID      string
	Outcome Outcome
	// Status is "queued" or "scheduled" for a new message, the current
	// status for a duplicate.
	Status message.Status
	// Conversation is the conversation the new message joined.
	Conversation string
	// SinceMS and How describe an opt-out; LastInboundMS a closed window.
	SinceMS       int64
	How           string
	LastInboundMS int64
}

// enqueueJob is one Enqueue call travelling through the batcher, which
// merges the jobs of one shard in a flush into one call of the enqueue
// function (or, for a scheduled send, the schedule function): group
// commit. Jobs come from enqueuePool; Enqueue owns one from Get to Put.
type enqueueJob struct {
	s     *Store
	shard int
	// scheduled: the message is due later (schedule.lua), else it goes now
	// as a send record (enqueue.lua).
	scheduled bool
	args      []any
	// The job's own buffers (it may outlive the call when its caller stops
	// waiting), passed as pointers so that boxing them allocates nothing:
	// the message id, the time and the recipient; a send's record head and
	// tail and its part of its queue's entry; a
	// scheduled send's content, history entry and packed "scheduled" event
	// around its conversation id.
	id, now, to, recHead, recTail, part  bytesArg
	content, file, evHead, evPre, evPost bytesArg
	// entry is scratch for the history entry.
	entry []byte
	vals  []any
	err   error
	done  chan struct{}
}

// enqFields and schedFields are how many arguments one message takes
// (enqueue.lua's ENQ_FIELDS, schedule.lua's SCHED_FIELDS); enqAnswer how
// many values it is answered with.
const (
	enqFields   = 15
	schedFields = 25
	enqAnswer   = 4
)

var enqueuePool = sync.Pool{New: func() any {
	return &enqueueJob{args: make([]any, 0, schedFields), done: make(chan struct{}, 1)}
}}

func (j *enqueueJob) mergeKey() mergeKey {
	if j.scheduled {
		return mergeKey{fn: j.s.scripts.schedule, shard: j.s.callShard(j.shard)}
	}
	return mergeKey{fn: j.s.scripts.enqueue, shard: j.s.callShard(j.shard)}
}

func (j *enqueueJob) mergeHead() (keys, head []any) {
	if j.scheduled {
		return j.s.eventsKeyArgs[j.shard], j.s.scheduleHead
	}
	return j.s.eventsKeyArgs[j.shard], j.s.enqueueHead
}

func (j *enqueueJob) mergeArgs(dst []any) []any { return append(dst, j.args...) }
func (j *enqueueJob) mergeWidth() int           { return enqAnswer }
func (j *enqueueJob) merged(vals []any, err error) {
	j.vals, j.err = vals, err
	j.done <- struct{}{}
}

// Enqueue makes one message durable: a send to go now as its send record
// (reccodec.go: in the shard's pending hash, its queue's entry for the
// call, the call's events and file entries), a scheduled one as its state
// hash, delay entry, "scheduled" event and file entry; in one call of the
// enqueue (or schedule) function shared with the other callers of the same
// shard (group commit). It returns only after Redis has answered.
func (s *Store) Enqueue(ctx context.Context, a *EnqueueArgs) (EnqueueResult, error) {
	if a.ConversationID != "" && !ValidConversationID(a.ConversationID) {
		return EnqueueResult{}, fmt.Errorf("enqueue: %w", ErrBadConversationID)
	}
	j := enqueuePool.Get().(*enqueueJob)
	s.prepareEnqueue(j, a)

	s.batch.submit(ctx, j)
	if !waitDone(ctx, j.done) {
		// The call may still run: the job stays with the batcher (and out
		// of the pool), and the caller learns it cannot know.
		return EnqueueResult{}, fmt.Errorf("enqueue: %w: %w", ErrUnconfirmed, ctx.Err())
	}
	defer enqueuePool.Put(j)
	defer clear(j.args)
	if j.err != nil {
		return EnqueueResult{}, fmt.Errorf("enqueue: %w", classify(j.err))
	}
	str := func(i int) string {
		if i < len(j.vals) {
			v, _ := j.vals[i].(string)
			return v
		}
		return ""
	}
	kind, rid := str(0), str(1)
	switch kind {
	case "ok":
		return EnqueueResult{ID: rid, Outcome: Queued, Status: message.Status(str(3)), Conversation: str(2)}, nil
	case "dup":
		return EnqueueResult{ID: rid, Outcome: Duplicate, Status: message.Status(str(3)), Conversation: str(2)}, nil
	case "conflict":
		return EnqueueResult{ID: rid, Outcome: Conflict}, nil
	case "optout":
		since, _ := strconv.ParseInt(str(1), 10, 64)
		return EnqueueResult{Outcome: OptedOut, SinceMS: since, How: str(2)}, nil
	case "window":
		li, _ := strconv.ParseInt(str(1), 10, 64)
		return EnqueueResult{Outcome: WindowClosed, LastInboundMS: li}, nil
	case "conv_other":
		return EnqueueResult{Outcome: ConversationOther}, nil
	case "conv_closed":
		return EnqueueResult{Outcome: ConversationClosed}, nil
	case "error":
		return EnqueueResult{}, fmt.Errorf("enqueue: %s", rid)
	}
	return EnqueueResult{}, fmt.Errorf("enqueue: unexpected answer %q", kind)
}

// prepareEnqueue lays out a's message as the enqueue (or schedule)
// function's arguments in job j.
func (s *Store) prepareEnqueue(j *enqueueJob, a *EnqueueArgs) {
	shard := message.ShardFor(a.Sender, s.cfg.Shards)
	now := s.nowMS()
	j.id.b = message.AppendID(j.id.b[:0], shard, now)
	j.now.b = strconv.AppendInt(j.now.b[:0], now, 10)
	j.to.b = append(j.to.b[:0], a.Recipient...)
	lane := a.Lane
	if lane == "" {
		lane = message.LaneTx
	}
	idem, fp := "", ""
	if a.IdempotencyKey != "" {
		idem, fp = s.keys.Idem(shard, a.TenantID, a.IdempotencyKey), strconv.FormatUint(a.Fingerprint, 36)
	}
	flags := ""
	switch {
	case a.Force:
		flags = "f"
	case a.WindowCheck:
		flags = "w"
	}

	j.s, j.shard, j.vals, j.err, j.scheduled = s, shard, nil, nil, a.DueMS > now
	c := &s.args
	queue := c.queue(s.keys, queueRef{shard, a.Sender, lane, a.Campaign})
	if !j.scheduled {
		j.recHead.b, j.recTail.b = appendRecordParts(j.recHead.b[:0], j.recTail.b[:0], j.id.b, a, lane, now)
		j.part.b = append(append(append(append(j.part.b[:0], j.id.b...), '\t'), a.Recipient...), '\t', '0')
		if a.FallbackText != "" {
			j.part.b[len(j.part.b)-1] = '1'
		}
		j.args = append(j.args[:0], c.str(s.keys.ShardPrefix(shard)), &j.id, &j.now, c.str(a.TenantID), c.str(a.Sender),
			&j.to, queue, c.reg(lane, a.Campaign), a.ConversationID, c.str(flags), idem, fp, &j.recHead, &j.recTail, &j.part)
		return
	}
	id := string(j.id.b)
	j.content.b = append(j.content.b[:0], a.Content...)
	j.entry = appendOutEntry(j.entry[:0], id, now, a)
	j.file.b = appendFilePre(j.file.b[:0], "o", a.TenantID, a.Sender, a.Recipient, now, a.Preview, j.entry, 0, "",
		metaJSON(a.ConversationMeta))
	j.evHead.b, j.evPre.b, j.evPost.b = appendQueuedEvent(j.evHead.b[:0], j.evPre.b[:0], j.evPost.b[:0], id, a, lane, message.StatusScheduled, now)
	j.args = append(j.args[:0], c.str(s.keys.ShardPrefix(shard)), id, &j.now, c.str(a.TenantID), c.str(a.Sender),
		&j.to, c.str(string(a.Type)), &j.content, c.str(string(lane)), a.Campaign,
		queue, a.ConversationID, a.StaffMemberID, a.DueMS, a.ExpiresMS, a.FallbackText, int64(a.FallbackAfter/time.Second), flags,
		idem, fp, &j.file, &j.evHead, &j.evPre, &j.evPost, a.Template)
}

// appendOutEntry appends the history entry (HistoryEntry's JSON) of an
// outbound message.
func appendOutEntry(dst []byte, id string, now int64, a *EnqueueArgs) []byte {
	dst = append(dst, `{"d":"out","id":`...)
	dst = message.AppendJSONString(dst, id)
	dst = append(dst, `,"at":`...)
	dst = strconv.AppendInt(dst, now, 10)
	dst = append(dst, `,"ty":`...)
	dst = message.AppendJSONString(dst, string(a.Type))
	dst = append(dst, `,"p":`...)
	dst = message.AppendJSONString(dst, a.Preview)
	if a.StaffMemberID != "" {
		dst = append(dst, `,"sm":`...)
		dst = message.AppendJSONString(dst, a.StaffMemberID)
	}
	return append(dst, '}')
}

// flag is a boolean as a script argument.
func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// metaJSON encodes conversation metadata for a script ("" when none).
func metaJSON(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	b, _ := json.Marshal(m) // a map of strings always encodes
	return string(b)
}

// ErrUnconfirmed says Redis did not answer in time: the write may or may not
// have happened. Callers must not claim either.
var ErrUnconfirmed = errors.New("redis did not confirm in time")

// classify wraps err in ErrUnconfirmed unless it shows the command never
// reached Redis (the connection could not be made).
func classify(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return err
	}
	if errors.Is(err, errClosed) || errors.Is(err, errNotSent) {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("%w: %w", ErrUnconfirmed, err)
	}
	return err
}

// waitDone waits for done until ctx ends; a job finished by then counts as
// finished even if ctx ended at the same time.
func waitDone(ctx context.Context, done chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-ctx.Done():
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
}

// IdempotencyKnown reports whether tenant used key before with sender.
func (s *Store) IdempotencyKnown(ctx context.Context, tenant, sender, key string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.keys.Idem(message.ShardFor(sender, s.cfg.Shards), tenant, key)).Result()
	if err != nil {
		return false, fmt.Errorf("idempotency key: %w", err)
	}
	return n == 1, nil
}

func (j *enqueueJob) finish(err error) { j.merged(nil, err) }

// queue and noScript are never used: the batcher merges enqueue jobs.
func (j *enqueueJob) queue(context.Context, goredis.Pipeliner) {}
func (j *enqueueJob) noScript() bool                           { return false }

// bytesArg is a byte slice as a command argument: go-redis writes it
// through MarshalBinary, and a pointer to it boxes without allocating.
type bytesArg struct{ b []byte }

// MarshalBinary implements encoding.BinaryMarshaler.
func (a *bytesArg) MarshalBinary() ([]byte, error) { return a.b, nil }
