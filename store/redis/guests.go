package redis

import (
	"context"
	"encoding/json"
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

// Guest is what a business number knows of a guest.
type Guest struct {
	Sender string
	Phone  string
	Name   string
	// Conversation is the current conversation ("" when none).
	Conversation string
	// UserID is the guest's business-scoped user id, when Meta gave it.
	UserID string
	// LastInboundMS is the guest's last message (0: never): the 24-hour
	// window runs from it.
	LastInboundMS int64
	OptedOut      bool
	// OptChangedMS and OptSource tell when and how the opt-out last
	// changed ("keyword", "api"); zero when it never did.
	OptChangedMS int64
	OptSource    string
}

// Guest returns what sender knows of guest (zero fields when nothing).
func (s *Store) Guest(ctx context.Context, sender, guest string) (*Guest, error) {
	sh := message.ShardFor(sender, s.cfg.Shards)
	v, err := s.rdb.HMGet(ctx, s.keys.Guest(sh, sender, guest), "cv", "li", "oo", "ooa", "oos", "nm", "uid").Result()
	if err != nil {
		return nil, fmt.Errorf("guest: %w", err)
	}
	str := func(i int) string { x, _ := v[i].(string); return x }
	num := func(i int) int64 { n, _ := strconv.ParseInt(str(i), 10, 64); return n }
	return &Guest{Sender: sender, Phone: guest, Conversation: str(0), LastInboundMS: num(1), OptedOut: str(2) == "1",
		OptChangedMS: num(3), OptSource: str(4), Name: str(5), UserID: userIDOf(guest, str(6))}, nil
}

// SetOptOut opts guest out of sender's messages (out) or back in, by API,
// with a reason; the change is an event for the tenant's webhook. It
// reports whether anything changed.
func (s *Store) SetOptOut(ctx context.Context, tenant, sender, guest string, out bool, source, reason string) (bool, error) {
	sh := message.ShardFor(sender, s.cfg.Shards)
	dir := "in"
	if out {
		dir = "out"
	}
	v, err := s.scripts.optset.Run(ctx, s.rdb, []string{s.keys.Guest(sh, sender, guest)},
		s.keys.ShardPrefix(sh), tenant, sender, guest, dir, s.nowMS(), source, reason, s.convTTL).Slice()
	if err != nil {
		return false, fmt.Errorf("opt %s: %w", dir, err)
	}
	changed, _ := v[0].(int64)
	return changed == 1, nil
}

// InboundArgs is a guest's message to a business number.
type InboundArgs struct {
	TenantID string
	Sender   string
	Guest    string
	// Name is the guest's profile name ("" when the provider gave none).
	Name string
	// ProviderMessageID makes the message filed once however often the
	// provider delivers it.
	ProviderMessageID string
	// AtMS is when the guest sent it.
	AtMS int64
	// Entry is its history entry (Direction "in").
	Entry HistoryEntry
	// Opt is "out" or "in" when the message is an opt-out or opt-in
	// keyword (Keyword), else "".
	Opt     string
	Keyword string
	// NotifyKind ("inbound_message", "media_received") and NotifyData
	// (JSON) are the event for the tenant's webhook.
	NotifyKind string
	NotifyData []byte
	// MediaJob, when the message carries media, is its download job: a
	// JSON object, given its conversation ("c") and queued in the shard's
	// MediaQueue with the message.
	MediaJob []byte
}

// InboundResult says what RecordInbound did.
type InboundResult struct {
	// Duplicate: the message was filed before; nothing changed.
	Duplicate    bool
	Conversation string
	// Change is "created" (a new conversation), "reopened" (an archived
	// one) or "".
	Change string
	// Opt is "out" or "in" when the message changed the guest's opt-out.
	Opt string
}

// inboundSeenTTL is how long an inbound message id is remembered: Meta
// retries a webhook for up to 7 days.
const inboundSeenTTL = 8 * 24 * time.Hour

// RecordInbound files a guest's message (inbound.lua): it opens or extends
// the 24-hour window, opens, reopens or begins the conversation, and
// applies an opt-out or opt-in keyword.
func (s *Store) RecordInbound(ctx context.Context, a *InboundArgs) (InboundResult, error) {
	sh := message.ShardFor(a.Sender, s.cfg.Shards)
	a.Entry.Direction = "in"
	entry, err := json.Marshal(&a.Entry)
	if err != nil {
		return InboundResult{}, fmt.Errorf("record inbound: %w", err)
	}
	data := a.NotifyData
	if len(data) == 0 {
		data = []byte("{}")
	}
	now := s.nowMS()
	v, err := s.scripts.inbound.Run(ctx, s.rdb,
		[]string{s.keys.Guest(sh, a.Sender, a.Guest), s.keys.InboundSeen(sh, a.ProviderMessageID)},
		s.keys.ShardPrefix(sh), a.TenantID, a.Sender, a.Guest, a.Name, a.AtMS, now,
		appendFilePre(nil, "i", a.TenantID, a.Sender, a.Guest, now, a.Entry.Preview, entry, a.AtMS, a.Name, ""),
		a.TenantID+"\t"+a.Sender+"\t"+a.Guest,
		message.NewConversationID(sh, now), a.Opt, a.Keyword, s.convTTL, int64(inboundSeenTTL/time.Second),
		a.NotifyKind, data, s.cfg.Window.Milliseconds(), a.MediaJob).StringSlice()
	if err != nil {
		return InboundResult{}, fmt.Errorf("record inbound: %w", err)
	}
	if v[0] == "dup" {
		return InboundResult{Duplicate: true}, nil
	}
	return InboundResult{Conversation: v[1], Change: v[2], Opt: v[3]}, nil
}

// Notice is an event of the notify stream: a conversation change, a
// guest's message or an opt-out, for the tenant's webhook.
type Notice struct {
	Shard    int
	StreamID string
	// Kind is the webhook event name (inbound_message, media_received,
	// guest_opted_out, guest_opted_in, conversation_updated).
	Kind           string
	TenantID       string
	Sender         string
	Guest          string
	ConversationID string
	AtMS           int64
	// Data is the kind's own fields (JSON object).
	Data []byte
}

func decodeNotice(shard int, m goredis.XMessage) Notice {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	at, _ := strconv.ParseInt(str("ts"), 10, 64)
	return Notice{Shard: shard, StreamID: m.ID, Kind: str("k"), TenantID: str("t"), Sender: str("f"),
		Guest: str("g"), ConversationID: str("c"), AtMS: at, Data: []byte(str("d"))}
}

// ReadNotices reads up to count new notices of shard for consumer of the
// hooks group; with pending it re-reads those consumer was given before
// and never acknowledged.
func (s *Store) ReadNotices(ctx context.Context, shard int, consumer string, count int, pending bool) ([]Notice, error) {
	from := ">"
	if pending {
		from = "0"
	}
	streams, err := s.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: GroupHooks, Consumer: consumer, Streams: []string{s.keys.Notify(shard), from},
		Count: int64(count), Block: -1,
	}).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read notices: %w", err)
	}
	var out []Notice
	for _, st := range streams {
		for _, m := range st.Messages {
			out = append(out, decodeNotice(shard, m))
		}
	}
	return out, nil
}

// ReadNoticesAll reads up to count new notices of every shard for consumer
// in one call, waiting up to block for the first (an idle deliverer waits
// in Redis instead of asking each shard in turn).
func (s *Store) ReadNoticesAll(ctx context.Context, consumer string, count int, block time.Duration) ([]Notice, error) {
	n := s.cfg.Shards
	if s.cluster {
		return s.readNoticesShards(ctx, consumer, count, block)
	}
	args := make([]string, 0, 2*n)
	for sh := 0; sh < n; sh++ {
		args = append(args, s.keys.Notify(sh))
	}
	for range n {
		args = append(args, ">")
	}
	streams, err := s.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: GroupHooks, Consumer: consumer, Streams: args, Count: int64(count), Block: block,
	}).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read notices: %w", err)
	}
	var out []Notice
	for _, st := range streams {
		sh := slices.Index(args[:n], st.Stream)
		for _, m := range st.Messages {
			out = append(out, decodeNotice(sh, m))
		}
	}
	return out, nil
}

// noticesPoll is how long ReadNoticesAll waits between looks on a Redis
// Cluster, where one call cannot wait on the shards' streams together.
const noticesPoll = 100 * time.Millisecond

// readNoticesShards is ReadNoticesAll on a Redis Cluster: a call per
// shard (one slot each) in one pipeline, then, when none had anything, a
// pause of at most noticesPoll.
func (s *Store) readNoticesShards(ctx context.Context, consumer string, count int, block time.Duration) ([]Notice, error) {
	p := s.rdb.Pipeline()
	cmds := make([]*goredis.XStreamSliceCmd, s.cfg.Shards)
	for sh := range cmds {
		cmds[sh] = p.XReadGroup(ctx, &goredis.XReadGroupArgs{
			Group: GroupHooks, Consumer: consumer, Streams: []string{s.keys.Notify(sh), ">"}, Count: int64(count), Block: -1,
		})
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("read notices: %w", err)
	}
	var out []Notice
	for sh, c := range cmds {
		for _, st := range c.Val() {
			for _, m := range st.Messages {
				out = append(out, decodeNotice(sh, m))
			}
		}
	}
	if len(out) == 0 && block > 0 {
		_ = ctxsleep.Sleep(ctx, min(block, noticesPoll))
	}
	return out, nil
}

// ReclaimNotices takes over notices another consumer held for minIdle.
func (s *Store) ReclaimNotices(ctx context.Context, shard int, consumer string, minIdle time.Duration, count int) ([]Notice, error) {
	msgs, _, err := s.rdb.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
		Stream: s.keys.Notify(shard), Group: GroupHooks, Consumer: consumer,
		MinIdle: minIdle, Start: "0-0", Count: int64(count),
	}).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("reclaim notices: %w", err)
	}
	out := make([]Notice, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, decodeNotice(shard, m))
	}
	return out, nil
}

// AckNotices acknowledges and deletes delivered notices: the hooks group
// is the notify stream's only reader.
func (s *Store) AckNotices(ctx context.Context, ns []Notice) error {
	if len(ns) == 0 {
		return nil
	}
	p := s.rdb.Pipeline()
	for _, n := range ns {
		key := s.keys.Notify(n.Shard)
		p.XAck(ctx, key, GroupHooks, n.StreamID)
		p.XDel(ctx, key, n.StreamID)
	}
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("ack notices: %w", err)
	}
	return nil
}

// InboundOrigin is who exchanged a guest's message: the tenant and business
// number that received it from guest.
type InboundOrigin struct {
	TenantID, Sender, Guest string
}

// ErrInboundUnknown says no guest's message with that provider id reached
// any of the numbers asked about within inboundSeenTTL.
var ErrInboundUnknown = errors.New("guest's message not known")

// FindInbound finds which of senders received the guest's message with
// provider id providerMessageID (its seen marker, kept inboundSeenTTL),
// in one round trip.
func (s *Store) FindInbound(ctx context.Context, senders []string, providerMessageID string) (InboundOrigin, error) {
	p := s.rdb.Pipeline()
	seen := map[int]bool{}
	var cmds []*goredis.StringCmd
	for _, snd := range senders {
		sh := message.ShardFor(snd, s.cfg.Shards)
		if !seen[sh] {
			seen[sh] = true
			cmds = append(cmds, p.Get(ctx, s.keys.InboundSeen(sh, providerMessageID)))
		}
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return InboundOrigin{}, fmt.Errorf("find inbound: %w", err)
	}
	for _, c := range cmds {
		t, rest, ok := strings.Cut(c.Val(), "\t")
		snd, guest, ok2 := strings.Cut(rest, "\t")
		if ok && ok2 && slices.Contains(senders, snd) {
			return InboundOrigin{TenantID: t, Sender: snd, Guest: guest}, nil
		}
	}
	return InboundOrigin{}, ErrInboundUnknown
}

// userIDTTL is how long a guest's business-scoped user id stays linked to
// the number it came with after the guest's last message with both: the
// guest's own keys live as long.
const userIDTTL = 90 * 24 * time.Hour

// LinkUserID records that guest's business-scoped user id bsuid is the
// guest with number phone, for sender: when Meta later withholds the
// number, the guest is still the same guest.
func (s *Store) LinkUserID(ctx context.Context, sender, bsuid, phone string) error {
	sh := message.ShardFor(sender, s.cfg.Shards)
	p := s.rdb.Pipeline()
	p.Set(ctx, s.keys.UserID(sh, sender, bsuid), phone, userIDTTL)
	// The guest's own hash names the id too (uid), for the API to show.
	p.HSet(ctx, s.keys.Guest(sh, sender, phone), "uid", bsuid)
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("link user id: %w", err)
	}
	return nil
}

// PhoneOfUserID is the number of the guest with business-scoped user id
// bsuid for sender, "" when none is known.
func (s *Store) PhoneOfUserID(ctx context.Context, sender, bsuid string) (string, error) {
	sh := message.ShardFor(sender, s.cfg.Shards)
	v, err := s.rdb.Get(ctx, s.keys.UserID(sh, sender, bsuid)).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("user id's number: %w", err)
	}
	return v, nil
}

// userIDOf is a guest's business-scoped user id: the guest's own key when
// it is one, else what the guest's hash linked (uid).
func userIDOf(guest, uid string) string {
	if message.ValidBSUID(guest) {
		return guest
	}
	return uid
}
