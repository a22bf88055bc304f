package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
)

// Job is one message a dispatcher worker took from a shard's queue. The
// worker owns it until Finish or Retry returns.
type Job struct {
	Msg     message.Message
	Shard   int
	EntryID string
	// Redelivered says the message was already "sending" when taken: a
	// worker died during a provider call, so this send may be a second one.
	Redelivered bool
	// QueuedMS is when the message was accepted.
	QueuedMS int64
	// Throttled counts the attempts the provider refused for the sender's
	// rate; they do not use up the retry budget.
	Throttled int
}

// Claim reads up to count new entries of shard's two lanes (transactional
// first) for consumer, waiting up to block for some (block < 0: do not
// wait), and begins each one (see begin.lua). Entries whose message is gone
// or no longer sendable are acknowledged and dropped.
func (s *Store) Claim(ctx context.Context, shard int, consumer string, count int, block time.Duration, dst []*Job) ([]*Job, error) {
	tx, bulk := s.keys.Queue(shard, "tx"), s.keys.Queue(shard, "bulk")
	streams, err := s.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: GroupDispatch, Consumer: consumer,
		Streams: []string{tx, bulk, ">", ">"},
		Count:   int64(count), Block: block,
	}).Result()
	if errors.Is(err, goredis.Nil) {
		return dst, nil
	}
	if err != nil {
		return dst, fmt.Errorf("claim shard %d: %w", shard, err)
	}
	return s.begin(ctx, shard, streams, dst)
}

// PendingCursor pages through a consumer's unacknowledged entries of one
// shard: the zero value starts at the beginning.
type PendingCursor struct {
	tx, bulk string
	// Done is set once both lanes are read to their end.
	Done bool
}

// ClaimPending re-reads, after a restart, up to count entries that were
// delivered to consumer but never acknowledged, from cur on, and begins
// them; it advances cur so that each entry is read once.
func (s *Store) ClaimPending(ctx context.Context, shard int, consumer string, count int, cur *PendingCursor, dst []*Job) ([]*Job, error) {
	if cur.tx == "" {
		cur.tx, cur.bulk = "0", "0"
	}
	tx, bulk := s.keys.Queue(shard, "tx"), s.keys.Queue(shard, "bulk")
	streams, err := s.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: GroupDispatch, Consumer: consumer,
		Streams: []string{tx, bulk, cur.tx, cur.bulk},
		Count:   int64(count), Block: -1,
	}).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return dst, fmt.Errorf("claim pending of shard %d: %w", shard, err)
	}
	got := 0
	for _, st := range streams {
		if n := len(st.Messages); n > 0 {
			got += n
			if st.Stream == tx {
				cur.tx = st.Messages[n-1].ID
			} else {
				cur.bulk = st.Messages[n-1].ID
			}
		}
	}
	if got == 0 {
		cur.Done = true
		return dst, nil
	}
	return s.begin(ctx, shard, streams, dst)
}

// Reclaim takes over entries of shard that another consumer has held for
// longer than minIdle (it died), up to count per lane, and begins them.
func (s *Store) Reclaim(ctx context.Context, shard int, consumer string, minIdle time.Duration, count int, dst []*Job) ([]*Job, error) {
	var streams []goredis.XStream
	for _, lane := range [...]string{"tx", "bulk"} {
		key := s.keys.Queue(shard, lane)
		msgs, _, err := s.rdb.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
			Stream: key, Group: GroupDispatch, Consumer: consumer,
			MinIdle: minIdle, Start: "0-0", Count: int64(count),
		}).Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return dst, fmt.Errorf("reclaim shard %d: %w", shard, err)
		}
		if len(msgs) > 0 {
			streams = append(streams, goredis.XStream{Stream: key, Messages: msgs})
		}
	}
	return s.begin(ctx, shard, streams, dst)
}

// begin runs begin.lua for every entry in one pipeline and turns the
// answers into jobs.
func (s *Store) begin(ctx context.Context, shard int, streams []goredis.XStream, dst []*Job) ([]*Job, error) {
	type entry struct {
		stream, entryID, id string
		lane                message.Lane
		cmd                 *goredis.Cmd
	}
	var entries []entry
	tx := s.keys.Queue(shard, "tx")
	for _, st := range streams {
		lane := message.LaneBulk
		if st.Stream == tx {
			lane = message.LaneTx
		}
		for _, m := range st.Messages {
			id, _ := m.Values["id"].(string)
			entries = append(entries, entry{stream: st.Stream, entryID: m.ID, id: id, lane: lane})
		}
	}
	if len(entries) == 0 {
		return dst, nil
	}
	now := strconv.FormatInt(s.nowMS(), 10)
	run := func(only func(*entry) bool) {
		p := s.rdb.Pipeline()
		for i := range entries {
			if e := &entries[i]; only(e) {
				e.cmd = s.scripts.begin.EvalSha(ctx, p, []string{s.keys.Msg(shard, e.id), s.keys.Events(shard)}, now)
			}
		}
		_, _ = p.Exec(ctx)
	}
	run(func(*entry) bool { return true })
	noScript := func(e *entry) bool { return isNoScript(e.cmd.Err()) }
	for i := range entries {
		if noScript(&entries[i]) {
			// Only the ones that did not run go again.
			if err := s.scripts.load(ctx, s.rdb); err != nil {
				return dst, err
			}
			run(noScript)
			break
		}
	}
	var drop []entry
	for _, e := range entries {
		v, err := e.cmd.Slice()
		if errors.Is(err, goredis.Nil) || (err == nil && len(v) == 1) || e.id == "" {
			drop = append(drop, e) // state gone, or canceled / already done
			continue
		}
		if err != nil {
			// Left pending: Reclaim brings it back.
			return dst, fmt.Errorf("begin %s: %w", e.id, err)
		}
		str := func(i int) string { x, _ := v[i].(string); return x }
		attempt, _ := strconv.Atoi(str(10))
		queued, _ := strconv.ParseInt(str(11), 10, 64)
		throttled, _ := strconv.Atoi(str(12))
		j := &Job{Shard: shard, EntryID: e.entryID, Redelivered: str(1) == string(message.StatusSending), QueuedMS: queued, Throttled: throttled}
		j.Msg = message.Message{
			ID: e.id, TenantID: str(2), Sender: str(3), Recipient: str(4),
			Type: message.Type(str(5)), Content: []byte(str(6)), Lane: e.lane,
			ConversationID: str(8), StaffMemberID: str(9), CreatedMS: queued, Attempt: attempt,
		}
		dst = append(dst, j)
	}
	if len(drop) > 0 {
		p := s.rdb.Pipeline()
		for _, e := range drop {
			p.XAck(ctx, e.stream, GroupDispatch, e.entryID)
			p.XDel(ctx, e.stream, e.entryID)
		}
		if _, err := p.Exec(ctx); err != nil {
			return dst, fmt.Errorf("drop finished entries: %w", err)
		}
	}
	return dst, nil
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
	// Billable is "", "0" or "1" (unknown, no, yes).
	Billable       string
	ConversationID string
}

// finishJob carries one Finish or Retry through the batcher.
type finishJob struct {
	s     *Store
	job   *Job
	res   *Result
	dueMS int64 // > 0: retry at due instead of recording res.Status
	// uncounted: the retry does not count against the budget (throttling).
	uncounted bool
	setPID    *goredis.StatusCmd
	cmd       *goredis.Cmd
	err       error
	done      chan struct{}
}

func (f *finishJob) queue(ctx context.Context, p goredis.Pipeliner) {
	s, j, r := f.s, f.job, f.res
	msgKey := s.keys.Msg(j.Shard, j.Msg.ID)
	queue := s.keys.Queue(j.Shard, string(j.Msg.Lane))
	if f.dueMS > 0 {
		uncounted := "0"
		if f.uncounted {
			uncounted = "1"
		}
		f.cmd = s.scripts.retry.EvalSha(ctx, p, []string{msgKey, queue, s.keys.Delay(j.Shard), s.keys.Events(j.Shard)},
			GroupDispatch, j.EntryID, f.dueMS, string(j.Msg.Lane)+"|"+j.Msg.ID, r.ErrorCode, r.ErrorTitle, s.nowMS(), uncounted)
		return
	}
	if r.ProviderMessageID != "" {
		// Before the state write: a webhook that finds the mapping and
		// applies "delivered" first is fine, transition.lua is forward only.
		f.setPID = p.Set(ctx, s.keys.PID(r.ProviderMessageID), j.Msg.ID, s.cfg.PIDTTL)
	}
	f.cmd = s.scripts.transition.EvalSha(ctx, p, []string{msgKey, s.keys.Events(j.Shard), queue},
		transitionArgs(GroupDispatch, j.EntryID, r, s.stateTTL)...)
}

func (f *finishJob) noScript() bool { return f.cmd != nil && isNoScript(f.cmd.Err()) }

func (f *finishJob) finish(err error) {
	f.err = err
	f.done <- struct{}{}
}

func transitionArgs(group, entryID string, r *Result, ttl string) []interface{} {
	code := ""
	if r.ErrorCode != 0 {
		code = strconv.Itoa(r.ErrorCode)
	}
	ch := r.Channel
	if ch == "" {
		ch = "whatsapp"
	}
	return []interface{}{group, entryID, string(r.Status), r.AtMS, r.Provider, r.ProviderMessageID,
		code, r.ErrorTitle, ch, r.PricingCategory, r.Billable, r.ConversationID, ttl}
}

// Finish records the outcome of a job's send (sent, failed…), writes its
// event and acknowledges its queue entry, in one script. It returns after
// Redis has it; until then the entry stays pending and is redelivered if the
// process dies.
func (s *Store) Finish(ctx context.Context, j *Job, r *Result) error {
	return s.runFinish(ctx, &finishJob{s: s, job: j, res: r, done: make(chan struct{}, 1)})
}

// Retry puts a job back to be sent again at dueMS (Unix ms) after a
// transient failure, and acknowledges its queue entry. An uncounted retry
// (the provider throttled the sender) does not use up the retry budget.
func (s *Store) Retry(ctx context.Context, j *Job, dueMS int64, r *Result, uncounted bool) error {
	if dueMS <= 0 {
		dueMS = 1
	}
	return s.runFinish(ctx, &finishJob{s: s, job: j, res: r, dueMS: dueMS, uncounted: uncounted, done: make(chan struct{}, 1)})
}

func (s *Store) runFinish(ctx context.Context, f *finishJob) error {
	s.batch.submit(ctx, f)
	<-f.done
	if f.err != nil {
		return fmt.Errorf("finish %s: %w", f.job.Msg.ID, f.err)
	}
	if f.setPID != nil && f.setPID.Err() != nil {
		return fmt.Errorf("finish %s: map provider id: %w", f.job.Msg.ID, f.setPID.Err())
	}
	if err := f.cmd.Err(); err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("finish %s: %w", f.job.Msg.ID, err)
	}
	return nil
}

// Promote moves up to limit due retries and scheduled sends of shard into
// their lanes' streams and returns how many it moved.
func (s *Store) Promote(ctx context.Context, shard, limit int) (int, error) {
	n, err := s.scripts.promote.Run(ctx, s.rdb,
		[]string{s.keys.Delay(shard), s.keys.Queue(shard, "tx"), s.keys.Queue(shard, "bulk")},
		s.nowMS(), limit).Int()
	if err != nil {
		return 0, fmt.Errorf("promote shard %d: %w", shard, err)
	}
	return n, nil
}

// QueueDepth returns, per lane, the entries waiting in all shards' streams
// (read or not) plus the delayed ones.
func (s *Store) QueueDepth(ctx context.Context) (tx, bulk, delayed int64, err error) {
	p := s.rdb.Pipeline()
	cmds := make([]*goredis.IntCmd, 0, 3*s.cfg.Shards)
	for sh := 0; sh < s.cfg.Shards; sh++ {
		cmds = append(cmds, p.XLen(ctx, s.keys.Queue(sh, "tx")), p.XLen(ctx, s.keys.Queue(sh, "bulk")), p.ZCard(ctx, s.keys.Delay(sh)))
	}
	if _, err := p.Exec(ctx); err != nil {
		return 0, 0, 0, fmt.Errorf("queue depth: %w", err)
	}
	for i := 0; i < len(cmds); i += 3 {
		tx += cmds[i].Val()
		bulk += cmds[i+1].Val()
		delayed += cmds[i+2].Val()
	}
	return tx, bulk, delayed, nil
}
