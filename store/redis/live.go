package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
)

// LiveEvent is a change the staff inbox shows as it happens: a notice of
// one of a tenant's conversations (a guest's message, an assignment, an
// opt-out…) or a message's new status (its ticks).
type LiveEvent struct {
	TenantID       string
	ConversationID string
	// Kind is the notice's kind (inbound_message, media_received,
	// conversation_updated, guest_opted_out, guest_opted_in) or
	// "message_status".
	Kind      string
	MessageID string
	Status    string
	AtMS      int64
}

// LiveTail follows every shard's notify and events streams from the time
// it was made: one reader per process, whatever the number of inbox
// clients, so that watching costs Redis the same for one or fifty staff.
// One goroutine uses a tail at a time.
type LiveTail struct {
	s    *Store
	keys []string
	ids  []string
}

// LiveTail returns a tail that starts after the streams' newest entries.
func (s *Store) LiveTail(ctx context.Context) (*LiveTail, error) {
	n := s.cfg.Shards
	t := &LiveTail{s: s, keys: make([]string, 0, 2*n), ids: make([]string, 2*n)}
	for sh := 0; sh < n; sh++ {
		t.keys = append(t.keys, s.keys.Notify(sh))
	}
	for sh := 0; sh < n; sh++ {
		t.keys = append(t.keys, s.keys.Events(sh))
	}
	p := s.rdb.Pipeline()
	last := make([]*goredis.XMessageSliceCmd, len(t.keys))
	for i, k := range t.keys {
		last[i] = p.XRevRangeN(ctx, k, "+", "-", 1)
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("live tail: %w", err)
	}
	for i, c := range last {
		t.ids[i] = "0-0"
		if v := c.Val(); len(v) > 0 {
			t.ids[i] = v[0].ID
		}
	}
	return t, nil
}

// Read appends the events after the last read to dst, waiting up to
// block for the first.
func (t *LiveTail) Read(ctx context.Context, block time.Duration, dst []LiveEvent) ([]LiveEvent, error) {
	args := make([]string, 0, 2*len(t.keys))
	args = append(args, t.keys...)
	args = append(args, t.ids...)
	res, err := t.s.rdb.XRead(ctx, &goredis.XReadArgs{Streams: args, Count: 500, Block: block}).Result()
	if errors.Is(err, goredis.Nil) {
		return dst, nil
	}
	if err != nil {
		return dst, fmt.Errorf("live tail: %w", err)
	}
	n := t.s.cfg.Shards
	var evs []message.Event
	for _, st := range res {
		i := slices.Index(t.keys, st.Stream)
		if i < 0 || len(st.Messages) == 0 {
			continue
		}
		t.ids[i] = st.Messages[len(st.Messages)-1].ID
		for _, m := range st.Messages {
			if i < n {
				nt := decodeNotice(i, m)
				dst = append(dst, LiveEvent{TenantID: nt.TenantID, ConversationID: nt.ConversationID, Kind: nt.Kind, AtMS: nt.AtMS})
				continue
			}
			evs = appendEvents(evs[:0], i-n, m)
			for _, ev := range evs {
				dst = append(dst, LiveEvent{TenantID: ev.TenantID, ConversationID: ev.ConversationID, Kind: "message_status",
					MessageID: ev.MessageID, Status: string(ev.Status), AtMS: ev.AtMS})
			}
		}
	}
	return dst, nil
}
