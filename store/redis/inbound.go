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

// inboundJob carries one AppendInbound through the batcher.
type inboundJob struct {
	key  string
	args goredis.XAddArgs
	cmd  *goredis.StringCmd
	err  error
	done chan struct{}
}

func (j *inboundJob) queue(ctx context.Context, p goredis.Pipeliner) {
	j.cmd = p.XAdd(ctx, &j.args)
}

// noScript: an XADD needs no script.
func (j *inboundJob) noScript() bool { return false }

func (j *inboundJob) finish(err error) {
	j.err = err
	j.done <- struct{}{}
}

// AppendInbound makes a verified raw provider webhook durable, spreading
// bodies over the inbound partitions. It returns after Redis has it, so the
// caller may then answer the provider 200.
func (s *Store) AppendInbound(ctx context.Context, provider string, body []byte) error {
	part := int(s.inboundSeq.Add(1) % uint64(s.cfg.InboundParts))
	j := &inboundJob{done: make(chan struct{}, 1)}
	j.args = goredis.XAddArgs{
		Stream: s.keys.Inbound(part),
		Values: []interface{}{"p", provider, "b", body, "ts", s.nowMS()},
	}
	s.batch.submit(ctx, j)
	<-j.done
	if j.err == nil {
		j.err = j.cmd.Err()
	}
	if j.err != nil {
		return fmt.Errorf("append inbound: %w", j.err)
	}
	return nil
}

// InboundEntry is one stored webhook body.
type InboundEntry struct {
	Part       int
	ID         string
	Provider   string
	Body       []byte
	ReceivedMS int64
}

// ReadInbound reads up to count webhook bodies of partition part for
// consumer, waiting up to block (block < 0: do not wait). With pending it
// re-reads what consumer was given before but never acknowledged.
func (s *Store) ReadInbound(ctx context.Context, part int, consumer string, count int, block time.Duration, pending bool, dst []InboundEntry) ([]InboundEntry, error) {
	from := ">"
	if pending {
		from, block = "0", -1
	}
	streams, err := s.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: GroupInbound, Consumer: consumer,
		Streams: []string{s.keys.Inbound(part), from},
		Count:   int64(count), Block: block,
	}).Result()
	if errors.Is(err, goredis.Nil) {
		return dst, nil
	}
	if err != nil {
		return dst, fmt.Errorf("read inbound %d: %w", part, err)
	}
	for _, st := range streams {
		dst = appendInbound(dst, part, st.Messages)
	}
	return dst, nil
}

// ReclaimInbound takes over bodies another consumer has held for longer
// than minIdle.
func (s *Store) ReclaimInbound(ctx context.Context, part int, consumer string, minIdle time.Duration, count int, dst []InboundEntry) ([]InboundEntry, error) {
	msgs, _, err := s.rdb.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
		Stream: s.keys.Inbound(part), Group: GroupInbound, Consumer: consumer,
		MinIdle: minIdle, Start: "0-0", Count: int64(count),
	}).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return dst, fmt.Errorf("reclaim inbound %d: %w", part, err)
	}
	return appendInbound(dst, part, msgs), nil
}

func appendInbound(dst []InboundEntry, part int, msgs []goredis.XMessage) []InboundEntry {
	for _, m := range msgs {
		p, _ := m.Values["p"].(string)
		b, _ := m.Values["b"].(string)
		ts, _ := m.Values["ts"].(string)
		ms, _ := strconv.ParseInt(ts, 10, 64)
		dst = append(dst, InboundEntry{Part: part, ID: m.ID, Provider: p, Body: []byte(b), ReceivedMS: ms})
	}
	return dst
}

// AckInbound acknowledges and deletes processed webhook bodies.
func (s *Store) AckInbound(ctx context.Context, entries []InboundEntry) error {
	if len(entries) == 0 {
		return nil
	}
	// One XACK and one XDEL per partition, with all its ids.
	byPart := map[int][]string{}
	for _, e := range entries {
		byPart[e.Part] = append(byPart[e.Part], e.ID)
	}
	p := s.rdb.Pipeline()
	for part, ids := range byPart {
		key := s.keys.Inbound(part)
		p.XAck(ctx, key, GroupInbound, ids...)
		p.XDel(ctx, key, ids...)
	}
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("ack inbound: %w", err)
	}
	return nil
}

// LookupProviderIDs maps provider message ids to wagate message ids, ""
// for the ones not (yet) known, in one round trip.
func (s *Store) LookupProviderIDs(ctx context.Context, pids []string) ([]string, error) {
	if len(pids) == 0 {
		return nil, nil
	}
	p := s.rdb.Pipeline()
	cmds := make([]*goredis.StringCmd, len(pids))
	for i, pid := range pids {
		cmds[i] = p.Get(ctx, s.keys.PID(pid))
	}
	_, _ = p.Exec(ctx)
	out := make([]string, len(pids))
	for i, c := range cmds {
		v, err := c.Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return nil, fmt.Errorf("lookup provider ids: %w", err)
		}
		out[i] = v
	}
	return out, nil
}

// StatusApply is a provider status for a known message.
type StatusApply struct {
	MessageID string
	Result    Result
}

// Applied says what a status did to its message.
type Applied uint8

// What ApplyStatuses did per status.
const (
	// AppliedNew: the status was seen for the first time and recorded.
	AppliedNew Applied = iota
	// AppliedDuplicate: seen before; nothing changed.
	AppliedDuplicate
	// AppliedUnknown: the message's state is gone (or the id is not ours).
	AppliedUnknown
)

// ApplyStatuses records provider statuses forward only (transition.lua):
// each shard's in one call, all shards' in one round trip, each shard's in
// the order given. It returns what each did.
func (s *Store) ApplyStatuses(ctx context.Context, sts []StatusApply) ([]Applied, error) {
	out := make([]Applied, len(sts))
	if len(sts) == 0 {
		return out, nil
	}
	// Each shard's statuses, by index into sts; ids not ours are unknown.
	byShard := map[int][]int{}
	var shards []int
	for i := range sts {
		shard, err := message.ShardOf(sts[i].MessageID)
		if err != nil || shard >= s.cfg.Shards {
			out[i] = AppliedUnknown
			continue
		}
		if _, ok := byShard[shard]; !ok {
			shards = append(shards, shard)
		}
		byShard[shard] = append(byShard[shard], i)
	}
	now := s.nowMS()
	cmds := make([]*goredis.Cmd, len(shards))
	run := func(only func(k int) bool) {
		p := s.rdb.Pipeline()
		for k, sh := range shards {
			if !only(k) {
				continue
			}
			idx := byShard[sh]
			args := make([]any, 0, 3+9*len(idx))
			args = append(args, s.keys.ShardPrefix(sh), s.stateTTL, now)
			for _, i := range idx {
				r := &sts[i].Result
				args = append(args, sts[i].MessageID, string(r.Status), r.AtMS, string(appendProviderPart(nil, r)), 0)
				n := len(args)
				args = appendStatusFields(args, r)
				args[n-1] = len(args) - n
			}
			cmds[k] = s.scripts.transition.FCall(ctx, p,
				[]string{s.keys.Events(sh), s.keys.TenantQueued(sh), s.keys.FallbackChecks(sh)}, args...)
		}
		_, _ = p.Exec(ctx)
	}
	run(func(int) bool { return true })
	noScript := func(k int) bool { return isNoScript(cmds[k].Err()) }
	for k := range shards {
		if noScript(k) {
			if err := s.scripts.load(ctx, s.rdb); err != nil {
				return nil, err
			}
			run(noScript)
			break
		}
	}
	for k, sh := range shards {
		v, err := cmds[k].Slice()
		idx := byShard[sh]
		if err != nil {
			return nil, fmt.Errorf("apply statuses: %w", err)
		}
		if len(v) != 3*len(idx) {
			return nil, fmt.Errorf("apply statuses: %d answers for %d statuses", len(v)/3, len(idx))
		}
		for j, i := range idx {
			switch {
			case v[3*j] == int64(-1):
				out[i] = AppliedUnknown
			case v[3*j+1] == int64(1):
				out[i] = AppliedNew
			default:
				out[i] = AppliedDuplicate
			}
		}
	}
	return out, nil
}

// appendProviderPart packs r's channel and provider values as an event
// carries them (ch p pid ec et pc b pcv pm pt: lib.lua's provider_part).
func appendProviderPart(dst []byte, r *Result) []byte {
	for _, v := range [...]string{r.channel(), r.Provider, r.ProviderMessageID, r.code(), r.ErrorTitle,
		r.PricingCategory, r.Billable, r.ConversationID, r.PricingModel, r.PricingType} {
		dst = appendPacked(dst, v)
	}
	return dst
}

// appendStatusFields appends the state's fields status r brings besides
// its status, as field/value pairs: lib.lua's status_fields, which the
// dispatcher's own statuses use (TestStatusFieldsAsLuaLaysThemOut).
func appendStatusFields(dst []any, r *Result) []any {
	if r.Status == message.StatusFallback {
		dst = append(dst, "fbp", r.Provider, "fbid", r.ProviderMessageID, "fbch", r.channel())
	} else {
		if r.Provider != "" {
			dst = append(dst, "p", r.Provider)
		}
		if r.ProviderMessageID != "" {
			dst = append(dst, "pid", r.ProviderMessageID)
		}
	}
	if r.PricingCategory != "" {
		dst = append(dst, "pc", r.PricingCategory, "bl", r.Billable, "pm", r.PricingModel, "pt", r.PricingType)
	}
	if r.ConversationID != "" {
		dst = append(dst, "pcv", r.ConversationID)
	}
	switch r.Status {
	case message.StatusFailed, message.StatusExpired, message.StatusCanceled:
		dst = append(dst, "ec", r.code(), "et", r.ErrorTitle)
	}
	return dst
}

// Orphan is a parked status: Member is opaque to the store, DueMS is when
// to look at it again.
type Orphan struct {
	Member string
	DueMS  int64
}

// ParkOrphans keeps statuses whose provider id is not known yet, to be
// looked at again when due. A member parked already keeps its due time.
func (s *Store) ParkOrphans(ctx context.Context, part int, os []Orphan) error {
	return s.zaddOrphans(ctx, part, os, true)
}

// RescheduleOrphans moves parked statuses' next look.
func (s *Store) RescheduleOrphans(ctx context.Context, part int, os []Orphan) error {
	return s.zaddOrphans(ctx, part, os, false)
}

func (s *Store) zaddOrphans(ctx context.Context, part int, os []Orphan, park bool) error {
	if len(os) == 0 {
		return nil
	}
	zs := make([]goredis.Z, len(os))
	for i, o := range os {
		zs[i] = goredis.Z{Score: float64(o.DueMS), Member: o.Member}
	}
	if err := s.rdb.ZAddArgs(ctx, s.keys.Orphans(part), goredis.ZAddArgs{Members: zs, NX: park, XX: !park}).Err(); err != nil {
		return fmt.Errorf("park orphan statuses: %w", err)
	}
	return nil
}

// DueOrphans returns up to limit parked statuses of part that are due.
func (s *Store) DueOrphans(ctx context.Context, part, limit int) ([]string, error) {
	v, err := s.rdb.ZRangeByScore(ctx, s.keys.Orphans(part), &goredis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(s.nowMS(), 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("due orphan statuses: %w", err)
	}
	return v, nil
}

// RemoveOrphans forgets parked statuses (applied, or too old).
func (s *Store) RemoveOrphans(ctx context.Context, part int, members []string) error {
	if len(members) == 0 {
		return nil
	}
	ms := make([]interface{}, len(members))
	for i, m := range members {
		ms[i] = m
	}
	if err := s.rdb.ZRem(ctx, s.keys.Orphans(part), ms...).Err(); err != nil {
		return fmt.Errorf("remove orphan statuses: %w", err)
	}
	return nil
}

// OrphanCount is the number of parked statuses in all partitions.
func (s *Store) OrphanCount(ctx context.Context) (int64, error) {
	p := s.rdb.Pipeline()
	cmds := make([]*goredis.IntCmd, s.cfg.InboundParts)
	for i := range cmds {
		cmds[i] = p.ZCard(ctx, s.keys.Orphans(i))
	}
	if _, err := p.Exec(ctx); err != nil {
		return 0, fmt.Errorf("orphan count: %w", err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}
