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

	"github.com/wagate/wagate/internal/ctxsleep"
	"github.com/wagate/wagate/message"
)

// EventReader drains all shards' events streams for one consumer of the
// loader group. It implements store/clickhouse's EventSource. One goroutine
// uses a reader at a time.
type EventReader struct {
	s        *Store
	group    string
	consumer string
	// pending[shard] is true until the shard's own unacknowledged entries
	// (from before a restart) have been read again, once each: cursor[shard]
	// is the last one read.
	pending     []bool
	cursor      []string
	lastReclaim time.Time
	// lastRead is when the last read that was not full began: the next
	// waits until Poll after it, so that a busy stream is read in batches
	// of Poll's worth rather than a few entries per round trip.
	lastRead time.Time
	// ReclaimIdle is how long another consumer may hold events before this
	// one takes them over (5 min): that consumer is taken to be dead. A live
	// loader holds a batch while ClickHouse is down, so this errs long.
	ReclaimIdle time.Duration
	// Poll is the least time between two reads of the streams unless the
	// first came back full (50 ms): an empty read waits as long for the
	// next, and one that found a few entries too. Without it a reader
	// keeping up with a busy gateway read every shard for a handful of
	// events per round trip (half an XREADGROUP per message accepted).
	Poll time.Duration
}

// EventReader returns a reader of the loader group named consumer. Use a
// name that stays the same across restarts of the same instance, so that it
// picks up its own unacknowledged events at once.
func (s *Store) EventReader(consumer string) *EventReader {
	return s.eventReader(GroupLoader, consumer)
}

// HookEventReader returns a reader of the hooks group (the tenants'
// webhooks) named consumer.
func (s *Store) HookEventReader(consumer string) *EventReader {
	return s.eventReader(GroupHooks, consumer)
}

func (s *Store) eventReader(group, consumer string) *EventReader {
	r := &EventReader{s: s, group: group, consumer: consumer, pending: make([]bool, s.cfg.Shards), cursor: make([]string, s.cfg.Shards),
		ReclaimIdle: 5 * time.Minute, Poll: 50 * time.Millisecond, lastReclaim: time.Now()}
	for i := range r.pending {
		r.pending[i], r.cursor[i] = true, "0"
	}
	return r
}

// Read appends up to about max events to dst, waiting up to block for the
// first. Events it returned before and that were never acknowledged come
// back after a restart, and those of a consumer idle for ReclaimIdle are
// taken over.
func (r *EventReader) Read(ctx context.Context, dst []message.Event, max int, block time.Duration) ([]message.Event, error) {
	deadline := time.Now().Add(block)
	for {
		if next := r.lastRead.Add(r.Poll); time.Now().Before(next) {
			if !next.Before(deadline) {
				if err := ctxsleep.Sleep(ctx, time.Until(deadline)); err != nil {
					return dst, err
				}
				return dst, nil
			}
			if err := ctxsleep.Sleep(ctx, time.Until(next)); err != nil {
				return dst, err
			}
		}
		n := len(dst)
		began := time.Now()
		var err error
		var switched bool
		dst, switched, err = r.readOnce(ctx, dst, max)
		if switched && len(dst) == n && err == nil {
			continue // caught up with the pending entries: read new ones now
		}
		r.lastRead = time.Time{}
		if len(dst)-n < max/2 {
			r.lastRead = began
		}
		if err != nil || len(dst) > n || !time.Now().Before(deadline) {
			return dst, err
		}
	}
}

// readOnce reads every shard once; switched reports that some shard has
// just run out of pending entries.
func (r *EventReader) readOnce(ctx context.Context, dst []message.Event, max int) (_ []message.Event, switched bool, err error) {
	s := r.s
	shards := s.cfg.Shards
	per := max / shards
	if per < 1 {
		per = 1
	}
	// Reclaimed entries become this consumer's pending ones: take them only
	// once its own pending ones were read, or they would come twice.
	if !slices.Contains(r.pending, true) && time.Since(r.lastReclaim) > r.ReclaimIdle/2 {
		r.lastReclaim = time.Now()
		if dst, err = r.reclaim(ctx, dst, per); err != nil {
			return dst, false, err
		}
	}
	p := s.rdb.Pipeline()
	cmds := make([]*goredis.XStreamSliceCmd, shards)
	for sh := 0; sh < shards; sh++ {
		from := ">"
		if r.pending[sh] {
			from = r.cursor[sh]
		}
		cmds[sh] = p.XReadGroup(ctx, &goredis.XReadGroupArgs{
			Group: r.group, Consumer: r.consumer,
			Streams: []string{s.keys.Events(sh), from}, Count: int64(per), Block: -1,
		})
	}
	_, _ = p.Exec(ctx)
	for sh, c := range cmds {
		streams, err := c.Result()
		if errors.Is(err, goredis.Nil) {
			switched = switched || r.pending[sh]
			r.pending[sh] = false
			continue
		}
		if err != nil {
			return dst, switched, fmt.Errorf("read events: %w", err)
		}
		got := 0
		for _, st := range streams {
			got += len(st.Messages)
			for _, m := range st.Messages {
				dst = append(dst, decodeEvent(sh, m))
			}
			if n := len(st.Messages); n > 0 && r.pending[sh] {
				r.cursor[sh] = st.Messages[n-1].ID
			}
		}
		if got == 0 {
			switched = switched || r.pending[sh]
			r.pending[sh] = false
		}
	}
	return dst, switched, nil
}

// reclaim takes over events other consumers have held for ReclaimIdle. Its
// own held events are not taken: they are still in its caller's hands.
func (r *EventReader) reclaim(ctx context.Context, dst []message.Event, per int) ([]message.Event, error) {
	s := r.s
	for sh := 0; sh < s.cfg.Shards; sh++ {
		key := s.keys.Events(sh)
		idle, err := s.rdb.XPendingExt(ctx, &goredis.XPendingExtArgs{
			Stream: key, Group: r.group, Idle: r.ReclaimIdle, Start: "-", End: "+", Count: int64(per),
		}).Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return dst, fmt.Errorf("reclaim events: %w", err)
		}
		var ids []string
		for _, p := range idle {
			if p.Consumer != r.consumer {
				ids = append(ids, p.ID)
			}
		}
		if len(ids) == 0 {
			continue
		}
		msgs, err := s.rdb.XClaim(ctx, &goredis.XClaimArgs{
			Stream: key, Group: r.group, Consumer: r.consumer, MinIdle: r.ReclaimIdle, Messages: ids,
		}).Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return dst, fmt.Errorf("reclaim events: %w", err)
		}
		for _, m := range msgs {
			dst = append(dst, decodeEvent(sh, m))
		}
	}
	return dst, nil
}

// Ack acknowledges events stored in ClickHouse. Entries stay in the stream
// until the Trimmer removes what every group has acknowledged.
func (r *EventReader) Ack(ctx context.Context, evs []message.Event) error {
	if len(evs) == 0 {
		return nil
	}
	byShard := make(map[int][]string)
	for i := range evs {
		byShard[evs[i].Shard] = append(byShard[evs[i].Shard], evs[i].StreamID)
	}
	p := r.s.rdb.Pipeline()
	for sh, ids := range byShard {
		p.XAck(ctx, r.s.keys.Events(sh), r.group, ids...)
	}
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("ack events: %w", err)
	}
	return nil
}

// decodeEvent turns an events stream entry into an Event: a packed one
// (field "e": the accept path's, eventcodec.go) or one of fields (the
// other functions', lib.lua's emit_with).
func decodeEvent(shard int, m goredis.XMessage) message.Event {
	var v [len(eventSlots)]string
	if e, ok := m.Values["e"].(string); ok {
		decodePacked(e, &v)
	} else {
		for i, k := range eventSlots {
			v[i], _ = m.Values[k].(string)
		}
	}
	num := func(i int) int64 { n, _ := strconv.ParseInt(v[i], 10, 64); return n }
	// v holds eventSlots' values: m t f r s ts ty l c sm a ch p pid ec et pc b pcv.
	return message.Event{
		Shard: shard, StreamID: m.ID,
		MessageID: v[0], TenantID: v[1], Sender: v[2], Recipient: v[3],
		Status: message.Status(v[4]), AtMS: num(5), Type: message.Type(v[6]), Lane: message.Lane(v[7]),
		ConversationID: v[8], StaffMemberID: v[9], Attempt: int(num(10)), Channel: v[11],
		Provider: v[12], ProviderMessageID: v[13], ErrorCode: int(num(14)), ErrorTitle: v[15],
		PricingCategory: v[16], Billable: v[17] == "1", ProviderConversationID: v[18],
	}
}

// TrimEvents removes from every events stream the entries that all its
// consumer groups have acknowledged, and dead letters older than the state
// they point to; it returns how many events it removed.
func (s *Store) TrimEvents(ctx context.Context) (int64, error) {
	var removed int64
	oldest := strconv.FormatInt(s.nowMS()-s.cfg.StateTTL.Milliseconds(), 10)
	for sh := 0; sh < s.cfg.Shards; sh++ {
		if err := s.rdb.XTrimMinID(ctx, s.keys.DLQ(sh), oldest).Err(); err != nil {
			return removed, fmt.Errorf("trim dead letters: %w", err)
		}
		key := s.keys.Events(sh)
		groups, err := s.rdb.XInfoGroups(ctx, key).Result()
		if err != nil {
			return removed, fmt.Errorf("trim events: %w", err)
		}
		bound := ""
		for _, g := range groups {
			b := nextID(g.LastDeliveredID)
			if g.Pending > 0 {
				pe, err := s.rdb.XPending(ctx, key, g.Name).Result()
				if err != nil {
					return removed, fmt.Errorf("trim events: %w", err)
				}
				b = pe.Lower
			}
			if bound == "" || lessID(b, bound) {
				bound = b
			}
		}
		if bound == "" {
			continue
		}
		n, err := s.rdb.XTrimMinID(ctx, key, bound).Result()
		if err != nil {
			return removed, fmt.Errorf("trim events: %w", err)
		}
		removed += n
	}
	return removed, nil
}

// nextID is the stream id right after id ("5-3" → "5-4").
func nextID(id string) string {
	ms, seq, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseUint(seq, 10, 64)
	return ms + "-" + strconv.FormatUint(n+1, 10)
}

// lessID compares two stream ids.
func lessID(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	x, _ := strconv.ParseUint(am, 10, 64)
	y, _ := strconv.ParseUint(bm, 10, 64)
	if x != y {
		return x < y
	}
	p, _ := strconv.ParseUint(as, 10, 64)
	q, _ := strconv.ParseUint(bs, 10, 64)
	return p < q
}
