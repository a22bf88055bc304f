package redis

import (
	"context"
	"errors"
	"fmt"
	"math"
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
//
// A reader is a member of its group while the context of its reads lives:
// it heartbeats into the group's membership (every MemberTTL/3), whether
// or not it reads meanwhile, so a loader holding a batch while ClickHouse
// is down keeps its events. Readers take over the events of consumers
// whose heartbeat is MemberTTL old (a crashed process; a restarted one has
// a new name) within about half a MemberTTL more.
type EventReader struct {
	s        *Store
	group    string
	consumer string
	members  string // the group's membership zset
	streams  []string
	// pending[shard] is true until the shard's own unacknowledged entries
	// (from before a restart) have been read again, once each: cursor[shard]
	// is the last one read.
	pending       []bool
	cursor        []string
	lastReclaim   time.Time
	lastDeadCheck time.Time
	// alive is the context the heartbeat runs under (the last Read's that
	// started it).
	alive context.Context
	// lastRead is when the last read that was not full began: the next
	// waits until Poll after it, so that a busy stream is read in batches
	// of Poll's worth rather than a few entries per round trip.
	lastRead time.Time
	// MemberTTL is how long after its last heartbeat a consumer is taken
	// for dead and its events taken over (5 s).
	MemberTTL time.Duration
	// ReclaimIdle is how long a consumer that is no member at all (its
	// membership long gone, or never written) may hold events before this
	// one takes them over (5 min). A live member's events are never taken.
	ReclaimIdle time.Duration
	// entries counts the stream entries read; perEntry is how many events
	// an entry held lately (a call's gathered events share one), so that a
	// read asks for about max events, not max entries of up to a call's
	// worth each.
	entries  int
	perEntry float64
	// Poll is the least time between two reads of the streams unless the
	// first came back full (50 ms). Without it a reader keeping up with a
	// busy gateway read every shard for a handful of events per round
	// trip. An idle reader waits in Redis (XREADGROUP BLOCK over every
	// shard's stream at once; on a Cluster, whose shards are apart, it
	// reads again each Poll).
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
	r := &EventReader{s: s, group: group, consumer: consumer, members: s.keys.Members("events-" + group),
		pending: make([]bool, s.cfg.Shards), cursor: make([]string, s.cfg.Shards),
		MemberTTL: 5 * time.Second, ReclaimIdle: 5 * time.Minute, Poll: 50 * time.Millisecond, lastReclaim: time.Now()}
	for i := range r.pending {
		r.pending[i], r.cursor[i] = true, "0"
		r.streams = append(r.streams, s.keys.Events(i))
	}
	return r
}

// Read appends up to about max events to dst, waiting up to block for the
// first. Events it returned before and that were never acknowledged come
// back after a restart, and those of a consumer that is no longer a live
// member are taken over.
func (r *EventReader) Read(ctx context.Context, dst []message.Event, max int, block time.Duration) ([]message.Event, error) {
	r.keepAlive(ctx)
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
		dst, switched, err = r.readOnce(ctx, dst, max, time.Until(deadline))
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
		if err := ctx.Err(); err != nil {
			return dst, err
		}
	}
}

// keepAlive heartbeats the reader's membership while ctx lives, from a
// goroutine of its own: a reader that holds events without reading (its
// caller retrying a batch) is alive all the same.
func (r *EventReader) keepAlive(ctx context.Context) {
	if r.alive != nil && r.alive.Err() == nil {
		return
	}
	r.alive = ctx
	ttl, key, consumer, rdb, now := r.MemberTTL, r.members, r.consumer, r.s.rdb, r.s.nowMS
	beat := func() {
		bctx, cancel := context.WithTimeout(ctx, ttl/3)
		defer cancel()
		// A failed beat is retried at the next; its cost is a take-over
		// (and events stored twice) only if they all fail for MemberTTL.
		rdb.ZAdd(bctx, key, goredis.Z{Score: float64(now()), Member: consumer})
	}
	beat()
	go func() {
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				beat()
			}
		}
	}()
}

// readOnce reads every shard once, waiting up to block for the first
// entry when it may (none of its own pending entries left to read again);
// switched reports that some shard has just run out of pending entries.
func (r *EventReader) readOnce(ctx context.Context, dst []message.Event, max int, block time.Duration) (_ []message.Event, switched bool, err error) {
	s := r.s
	shards := s.cfg.Shards
	per := int(float64(max) / float64(shards) / math.Max(r.perEntry, 1))
	if per < 1 {
		per = 1
	}
	n := len(dst)
	r.entries = 0
	defer func() {
		if r.entries > 0 {
			r.perEntry = (r.perEntry + float64(len(dst)-n)/float64(r.entries)) / 2
		}
	}()
	// Reclaimed entries become this consumer's pending ones: take them only
	// once its own pending ones were read, or they would come twice.
	if !slices.Contains(r.pending, true) {
		if time.Since(r.lastDeadCheck) > r.MemberTTL/2 {
			r.lastDeadCheck = time.Now()
			if dst, err = r.reclaimDead(ctx, dst, per); err != nil {
				return dst, false, err
			}
		}
		if time.Since(r.lastReclaim) > r.ReclaimIdle/2 {
			r.lastReclaim = time.Now()
			if dst, err = r.reclaimIdle(ctx, dst, per); err != nil {
				return dst, false, err
			}
		}
	}
	if s.cluster {
		return r.readShards(ctx, dst, per)
	}
	// One call over every shard's stream: it waits in Redis while all are
	// empty, and comes back with the first entry.
	args := make([]string, 0, 2*shards)
	args = append(args, r.streams...)
	waits := block >= time.Millisecond && len(dst) == n
	for sh := 0; sh < shards; sh++ {
		from := ">"
		if r.pending[sh] {
			from, waits = r.cursor[sh], false // history: Redis answers at once
		}
		args = append(args, from)
	}
	wait := time.Duration(-1)
	if waits {
		wait = block.Truncate(time.Millisecond)
	}
	res, err := s.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: r.group, Consumer: r.consumer, Streams: args, Count: int64(per), Block: wait,
	}).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return dst, false, fmt.Errorf("read events: %w", err)
	}
	got := make([]int, shards)
	for _, st := range res {
		sh := slices.Index(r.streams, st.Stream)
		if sh < 0 {
			continue
		}
		got[sh] += len(st.Messages)
		for _, m := range st.Messages {
			dst = r.appendEntry(dst, sh, m)
		}
		if k := len(st.Messages); k > 0 && r.pending[sh] {
			r.cursor[sh] = st.Messages[k-1].ID
		}
	}
	for sh := range got {
		if got[sh] == 0 && r.pending[sh] {
			switched, r.pending[sh] = true, false
		}
	}
	return dst, switched, nil
}

// readShards reads every shard once without waiting, a call per shard in
// one pipeline: on a Cluster one call's keys must share a slot.
func (r *EventReader) readShards(ctx context.Context, dst []message.Event, per int) (_ []message.Event, switched bool, err error) {
	p := r.s.rdb.Pipeline()
	cmds := make([]*goredis.XStreamSliceCmd, len(r.streams))
	for sh, key := range r.streams {
		from := ">"
		if r.pending[sh] {
			from = r.cursor[sh]
		}
		cmds[sh] = p.XReadGroup(ctx, &goredis.XReadGroupArgs{
			Group: r.group, Consumer: r.consumer,
			Streams: []string{key, from}, Count: int64(per), Block: -1,
		})
	}
	_, _ = p.Exec(ctx)
	for sh, c := range cmds {
		streams, err := c.Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return dst, switched, fmt.Errorf("read events: %w", err)
		}
		got := 0
		for _, st := range streams {
			got += len(st.Messages)
			for _, m := range st.Messages {
				dst = r.appendEntry(dst, sh, m)
			}
			if k := len(st.Messages); k > 0 && r.pending[sh] {
				r.cursor[sh] = st.Messages[k-1].ID
			}
		}
		if got == 0 && r.pending[sh] {
			switched, r.pending[sh] = true, false
		}
	}
	return dst, switched, nil
}

// reclaimDead takes over the events held by consumers whose heartbeat is
// MemberTTL old, and forgets those that hold none. Its own are never taken,
// even when its heartbeat failed: they are in its caller's hands.
func (r *EventReader) reclaimDead(ctx context.Context, dst []message.Event, per int) ([]message.Event, error) {
	s := r.s
	ttl := r.MemberTTL
	dead, err := s.rdb.ZRangeByScore(ctx, r.members, &goredis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(s.nowMS()-ttl.Milliseconds(), 10)}).Result()
	if err != nil {
		return dst, fmt.Errorf("reclaim events: members: %w", err)
	}
	dead = slices.DeleteFunc(dead, func(c string) bool { return c == r.consumer })
	if len(dead) == 0 {
		return dst, nil
	}
	p := s.rdb.Pipeline()
	held := make([][]*goredis.XPendingExtCmd, len(dead))
	for i, c := range dead {
		held[i] = make([]*goredis.XPendingExtCmd, len(r.streams))
		for sh, key := range r.streams {
			held[i][sh] = p.XPendingExt(ctx, &goredis.XPendingExtArgs{
				Stream: key, Group: r.group, Start: "-", End: "+", Count: int64(per), Consumer: c})
		}
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return dst, fmt.Errorf("reclaim events: pending: %w", err)
	}
	p = s.rdb.Pipeline()
	var claims []*goredis.XMessageSliceCmd
	var claimShards []int
	for i, c := range dead {
		empty := true
		for sh, cmd := range held[i] {
			ids := make([]string, 0, len(cmd.Val()))
			for _, e := range cmd.Val() {
				ids = append(ids, e.ID)
			}
			if len(ids) == 0 {
				continue
			}
			empty = false
			if len(ids) >= per {
				r.lastDeadCheck = time.Time{} // more held: take them at the next read
			}
			// MinIdle: a dead consumer touched none of these for most of
			// a TTL; another reader that claimed them just now did.
			claims = append(claims, p.XClaim(ctx, &goredis.XClaimArgs{
				Stream: r.streams[sh], Group: r.group, Consumer: r.consumer, MinIdle: ttl / 2, Messages: ids}))
			claimShards = append(claimShards, sh)
		}
		if empty {
			p.ZRem(ctx, r.members, c)
		}
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return dst, fmt.Errorf("reclaim events: claim: %w", err)
	}
	for i, c := range claims {
		for _, m := range c.Val() {
			dst = r.appendEntry(dst, claimShards[i], m)
		}
	}
	return dst, nil
}

// reclaimIdle takes over events that consumers which are not live members
// (a membership long gone, or one from before memberships) have held for
// ReclaimIdle.
func (r *EventReader) reclaimIdle(ctx context.Context, dst []message.Event, per int) ([]message.Event, error) {
	s := r.s
	live, err := s.rdb.ZRangeByScore(ctx, r.members, &goredis.ZRangeBy{
		Min: strconv.FormatInt(s.nowMS()-r.MemberTTL.Milliseconds(), 10), Max: "+inf"}).Result()
	if err != nil {
		return dst, fmt.Errorf("reclaim events: members: %w", err)
	}
	for sh, key := range r.streams {
		idle, err := s.rdb.XPendingExt(ctx, &goredis.XPendingExtArgs{
			Stream: key, Group: r.group, Idle: r.ReclaimIdle, Start: "-", End: "+", Count: int64(per),
		}).Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return dst, fmt.Errorf("reclaim events: %w", err)
		}
		var ids []string
		for _, p := range idle {
			if p.Consumer != r.consumer && !slices.Contains(live, p.Consumer) {
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
			dst = r.appendEntry(dst, sh, m)
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
		ids := byShard[evs[i].Shard]
		// The events of one entry come one after another: its id once.
		if n := len(ids); n == 0 || ids[n-1] != evs[i].StreamID {
			byShard[evs[i].Shard] = append(ids, evs[i].StreamID)
		}
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

// appendEntry is appendEvents for the reader, which counts the entries.
func (r *EventReader) appendEntry(dst []message.Event, shard int, m goredis.XMessage) []message.Event {
	r.entries++
	return appendEvents(dst, shard, m)
}

// appendEvents appends the events of an events stream entry: packed ones
// (field "e": one, or several a function gathered, eventcodec.go) or one of
// fields (older wagates' functions). An entry it cannot read still yields
// one event, empty but for where it is, so that it is acknowledged.
func appendEvents(dst []message.Event, shard int, m goredis.XMessage) []message.Event {
	var v [len(eventSlots)]string
	e, packed := m.Values["e"].(string)
	if !packed {
		for i, k := range eventSlots {
			v[i], _ = m.Values[k].(string)
		}
		return append(dst, eventOf(shard, m.ID, 0, &v))
	}
	for i := 0; ; i++ {
		rest, ok := decodePackedPrefix(e, &v)
		if !ok && i > 0 {
			return dst // the readable ones; the rest is none of ours
		}
		dst = append(dst, eventOf(shard, m.ID, i, &v))
		if !ok || rest == "" {
			return dst
		}
		e, v = rest, [len(eventSlots)]string{}
	}
}

// eventOf is the event of slot values v, index i of entry id.
func eventOf(shard int, id string, i int, v *[len(eventSlots)]string) message.Event {
	num := func(i int) int64 { n, _ := strconv.ParseInt(v[i], 10, 64); return n }
	// v holds eventSlots' values: m t f r s ts ty l c sm a ch p pid ec et pc b pcv pm pt cp tn.
	return message.Event{
		Shard: shard, StreamID: id, Index: i,
		MessageID: v[0], TenantID: v[1], Sender: v[2], Recipient: v[3],
		Status: message.Status(v[4]), AtMS: num(5), Type: message.Type(v[6]), Lane: message.Lane(v[7]),
		ConversationID: v[8], StaffMemberID: v[9], Attempt: int(num(10)), Channel: v[11],
		Provider: v[12], ProviderMessageID: v[13], ErrorCode: int(num(14)), ErrorTitle: v[15],
		PricingCategory: v[16], Billable: v[17] == "1", ProviderConversationID: v[18],
		PricingModel: v[19], PricingType: v[20], Campaign: v[21], TemplateName: v[22],
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
