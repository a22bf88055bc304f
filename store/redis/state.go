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

// ErrNotFound says there is no such message (never was, or its state expired).
var ErrNotFound = errors.New("message not found")

// State is a message's current state as its hash holds it (or, before it
// has one, its send record or its batch's chunk).
type State struct {
	ID             string
	TenantID       string
	Sender         string
	Recipient      string
	Status         message.Status
	Type           message.Type
	Lane           message.Lane
	ConversationID string
	StaffMemberID  string
	// Times of each status, Unix ms, 0 when not (yet) reached.
	QueuedMS, SentMS, DeliveredMS, ReadMS, FailedMS, ExpiredMS, CanceledMS, FallbackMS int64

	Attempts          int
	Provider          string
	ProviderMessageID string
	ErrorCode         int
	ErrorTitle        string
	PricingCategory   string
	// PricingModel, PricingType and Billable ("", "0", "1") are the rest of
	// the provider's pricing object, from its status webhooks.
	PricingModel, PricingType, Billable string
	// Campaign groups bulk messages; DueMS is a scheduled send's time and
	// ExpiresMS the end of its validity (0: none).
	Campaign         string
	DueMS, ExpiresMS int64
	// FallbackText is the SMS sent if WhatsApp fails or is late (after
	// FallbackAfterS); FallbackProvider, FallbackChannel and
	// FallbackMessageID describe that send once made.
	FallbackText                                         string
	FallbackAfterS                                       int64
	FallbackProvider, FallbackChannel, FallbackMessageID string
	// Content is Meta's object for Type (JSON).
	Content []byte
}

// stateFields are the hash fields State reads, in State's order.
var stateFields = []string{"t", "f", "r", "st", "ty", "l", "c", "sm",
	"qa", "sa", "da", "ra", "fa", "xa", "ca", "fb", "a", "p", "pid", "ec", "et", "pc",
	"cp", "due", "x", "ft", "fas", "fbp", "fbch", "fbid", "b", "pm", "pt", "bl"}

// State returns the state of message id, or ErrNotFound.
func (s *Store) State(ctx context.Context, id string) (*State, error) {
	shard, err := message.ShardOf(id)
	if err != nil || shard >= s.cfg.Shards {
		return nil, ErrNotFound
	}
	// The send record first: the dispatcher takes it and makes the state
	// in one step, so one of the two is found.
	p := s.rdb.Pipeline()
	rec := p.HGet(ctx, s.keys.Pending(shard), id)
	vals := p.HMGet(ctx, s.keys.Msg(shard, id), stateFields...)
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("message state: %w", err)
	}
	if st := stateOf(id, rec, vals); st != nil {
		return st, nil
	}
	return s.unsentState(ctx, id)
}

// stateOf is the state of message id from its state hash's values, or
// from its send record while it has none; nil when neither is there.
func stateOf(id string, rec *goredis.StringCmd, vals *goredis.SliceCmd) *State {
	if st := decodeState(id, vals.Val()); st != nil {
		return st
	}
	if r, _, ok := decodeRecordPrefix(rec.Val()); ok && r.id == id {
		return r.state()
	}
	return nil
}

// unsentState answers for a batch's message the dispatcher has not taken
// yet, from its batch and its chunk's packed record; ErrNotFound when id
// is no such message.
func (s *Store) unsentState(ctx context.Context, id string) (*State, error) {
	bid, pos, err := message.BatchOf(id)
	if err != nil {
		return nil, ErrNotFound
	}
	b, _, err := s.batchMeta(ctx, bid)
	if err != nil || pos >= b.Total {
		if errors.Is(err, ErrNotFound) || err == nil {
			return nil, ErrNotFound
		}
		return nil, err
	}
	items, err := s.BatchChunk(ctx, bid, pos/ChunkSize)
	if err != nil {
		return nil, err
	}
	if pos%ChunkSize >= len(items) {
		return nil, ErrNotFound
	}
	// The record was read after the state: if the message was taken and
	// settled meanwhile, its state is there now.
	v, err := s.rdb.HMGet(ctx, s.keys.Msg(message.ShardFor(b.Sender, s.cfg.Shards), id), stateFields...).Result()
	if err != nil {
		return nil, fmt.Errorf("message state: %w", err)
	}
	if st := decodeState(id, v); st != nil {
		return st, nil
	}
	it := &items[pos%ChunkSize]
	st := &State{ID: id, TenantID: b.TenantID, Sender: b.Sender, Recipient: it.Recipient, Status: s.unsent(b),
		Type: it.Type, Lane: message.LaneBulk, QueuedMS: b.CreatedMS, Campaign: b.Campaign, ExpiresMS: b.ExpiresMS,
		FallbackText: b.FallbackText, FallbackAfterS: int64(b.FallbackAfter / time.Second), Content: it.Content}
	if st.Status == message.StatusScheduled {
		st.DueMS = b.DueMS
	}
	return st, nil
}

// States returns the states of ids in one round trip, nil for the ones
// not found.
func (s *Store) States(ctx context.Context, ids []string) ([]*State, error) {
	out := make([]*State, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	p := s.rdb.Pipeline()
	cmds := make([]*goredis.SliceCmd, len(ids))
	recs := make([]*goredis.StringCmd, len(ids))
	for i, id := range ids {
		if shard, err := message.ShardOf(id); err == nil && shard < s.cfg.Shards {
			recs[i] = p.HGet(ctx, s.keys.Pending(shard), id)
			cmds[i] = p.HMGet(ctx, s.keys.Msg(shard, id), stateFields...)
		}
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("message states: %w", err)
	}
	for i, c := range cmds {
		if c != nil {
			out[i] = stateOf(ids[i], recs[i], c)
		}
	}
	return out, nil
}

// decodeState reads the values of stateFields; nil when the hash is gone.
func decodeState(id string, v []interface{}) *State {
	str := func(i int) string { x, _ := v[i].(string); return x }
	num := func(i int) int64 { n, _ := strconv.ParseInt(str(i), 10, 64); return n }
	if str(3) == "" {
		return nil
	}
	return &State{
		ID: id, TenantID: str(0), Sender: str(1), Recipient: str(2),
		Status: message.Status(str(3)), Type: message.Type(str(4)), Lane: message.Lane(str(5)),
		ConversationID: str(6), StaffMemberID: str(7),
		QueuedMS: num(8), SentMS: num(9), DeliveredMS: num(10), ReadMS: num(11),
		FailedMS: num(12), ExpiredMS: num(13), CanceledMS: num(14), FallbackMS: num(15),
		Attempts: int(num(16)), Provider: str(17), ProviderMessageID: str(18),
		ErrorCode: int(num(19)), ErrorTitle: str(20), PricingCategory: str(21),
		Campaign: str(22), DueMS: num(23), ExpiresMS: num(24), FallbackText: str(25), FallbackAfterS: num(26),
		FallbackProvider: str(27), FallbackChannel: str(28), FallbackMessageID: str(29), Content: []byte(str(30)),
		PricingModel: str(31), PricingType: str(32), Billable: str(33),
	}
}
