package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
)

// Conversation errors callers act on.
var (
	// ErrBadConversationID: a conversation id a caller chose holds
	// characters other than letters, digits, '.', '_' and '-', or is
	// longer than 128.
	ErrBadConversationID = errors.New("conversation id may hold letters, digits, '.', '_' and '-', at most 128")
	// ErrConversationNotFound: no such conversation of the tenant.
	ErrConversationNotFound = errors.New("conversation not found")
	// ErrConversationClosed: the conversation is closed and takes only
	// reopen.
	ErrConversationClosed = errors.New("conversation is closed")
)

// ValidConversationID reports whether id can name a conversation.
func ValidConversationID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Conversation states as stored. "initiated", "active" and "expired" are
// read off an open conversation and the guest's window (see the API).
const (
	ConvOpen     = "open"
	ConvArchived = "archived"
	ConvClosed   = "closed"
)

// Conversation is a conversation's summary.
type Conversation struct {
	ID       string
	Shard    int
	TenantID string
	Sender   string
	Guest    string
	// GuestName is the guest's WhatsApp profile name, when they wrote.
	GuestName string
	// GuestUserID is the guest's business-scoped user id, when known.
	GuestUserID string
	// State is ConvOpen, ConvArchived or ConvClosed.
	State          string
	CreatedMS      int64
	LastActivityMS int64
	LastPreview    string
	// LastDirection is "in" or "out".
	LastDirection string
	Messages      int
	Unread        int
	// LastInboundMS is the guest's last message in this conversation (0:
	// none yet: the conversation is business-initiated).
	LastInboundMS int64
	// WindowFromMS is the guest's last message to the number in any
	// conversation: the 24-hour window runs from it.
	WindowFromMS int64
	AssignedTo   string
	// Department is the department the conversation is assigned to
	// (front_desk, housekeeping…), "" when none.
	Department     string
	ServiceRequest string
	Metadata       map[string]string
	// Resolution is the resolve action's fields (JSON), "" if never resolved.
	Resolution string
	ReadMS     int64
	// OptedOut: the guest opted out of the number's messages.
	OptedOut bool
}

var convFields = []string{"t", "f", "g", "st", "ca", "la", "lp", "ld", "n", "un", "li", "as", "sr", "md", "rs", "rda", "nm", "dp"}

// decodeConversation fills c from the values of convFields; false when the
// hash is gone.
func decodeConversation(c *Conversation, v []interface{}) bool {
	str := func(i int) string { s, _ := v[i].(string); return s }
	num := func(i int) int64 { n, _ := strconv.ParseInt(str(i), 10, 64); return n }
	if str(0) == "" {
		return false
	}
	c.TenantID, c.Sender, c.Guest, c.State = str(0), str(1), str(2), str(3)
	c.CreatedMS, c.LastActivityMS, c.LastPreview, c.LastDirection = num(4), num(5), str(6), str(7)
	c.Messages, c.Unread, c.LastInboundMS = int(num(8)), int(num(9)), num(10)
	c.AssignedTo, c.ServiceRequest, c.Resolution, c.ReadMS, c.GuestName = str(11), str(12), str(14), num(15), str(16)
	c.Department = str(17)
	c.Metadata = map[string]string{}
	if md := str(13); md != "" {
		_ = json.Unmarshal([]byte(md), &c.Metadata) // written by conv_meta from a map of strings
	}
	return true
}

// tenantShards returns the distinct shards of senders.
func (s *Store) tenantShards(senders []string) []int {
	var out []int
	for _, sd := range senders {
		sh := message.ShardFor(sd, s.cfg.Shards)
		if !slices.Contains(out, sh) {
			out = append(out, sh)
		}
	}
	return out
}

// FindConversation returns tenant's conversation id, or
// ErrConversationNotFound. senders are the tenant's numbers: a conversation
// lives on its number's shard, which an id wagate made names and a
// caller's id does not.
func (s *Store) FindConversation(ctx context.Context, tenant string, senders []string, id string) (*Conversation, error) {
	if !ValidConversationID(id) {
		return nil, ErrConversationNotFound
	}
	shards := s.tenantShards(senders)
	if sh, err := message.ConversationShardOf(id); err == nil && slices.Contains(shards, sh) {
		shards = []int{sh}
	}
	if err := s.FileNow(ctx, shards); err != nil {
		return nil, err
	}
	p := s.rdb.Pipeline()
	cmds := make([]*goredis.SliceCmd, len(shards))
	for i, sh := range shards {
		cmds[i] = p.HMGet(ctx, s.keys.Conversation(sh, tenant, id), convFields...)
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("find conversation: %w", err)
	}
	for i, c := range cmds {
		conv := &Conversation{ID: id, Shard: shards[i]}
		if decodeConversation(conv, c.Val()) && conv.TenantID == tenant {
			if err := s.fillGuest(ctx, []*Conversation{conv}); err != nil {
				return nil, err
			}
			return conv, nil
		}
	}
	return nil, ErrConversationNotFound
}

// fillGuest reads each conversation's guest window and opt-out.
func (s *Store) fillGuest(ctx context.Context, cs []*Conversation) error {
	p := s.rdb.Pipeline()
	cmds := make([]*goredis.SliceCmd, len(cs))
	for i, c := range cs {
		cmds[i] = p.HMGet(ctx, s.keys.Guest(c.Shard, c.Sender, c.Guest), "li", "oo", "nm", "uid")
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("guest of conversation: %w", err)
	}
	for i, c := range cs {
		v := cmds[i].Val()
		li, _ := v[0].(string)
		oo, _ := v[1].(string)
		nm, _ := v[2].(string)
		uid, _ := v[3].(string)
		c.GuestUserID = userIDOf(c.Guest, uid)
		c.WindowFromMS, _ = strconv.ParseInt(li, 10, 64)
		c.OptedOut = oo == "1"
		if c.GuestName == "" {
			c.GuestName = nm
		}
	}
	return nil
}

// HistoryEntry is one message of a conversation, as the history holds it
// plus, for outbound messages, their state.
type HistoryEntry struct {
	// Direction is "in" or "out".
	Direction string `json:"d"`
	// ID is wagate's message id (out) or the provider's (in).
	ID      string `json:"id"`
	AtMS    int64  `json:"at"`
	Type    string `json:"ty"`
	Preview string `json:"p"`
	// StaffMemberID sent it (out).
	StaffMemberID string `json:"sm,omitempty"`
	// ReplyTo is the provider id of the message an inbound one answers;
	// ReplyID a button or list row id it picked; MediaID and MimeType its
	// attachment (a wagate media id, whose record says whether its bytes
	// are had; entries from before downloads hold the provider's id);
	// Name the guest's profile name.
	ReplyTo  string `json:"ctx,omitempty"`
	ReplyID  string `json:"rid,omitempty"`
	MediaID  string `json:"mid,omitempty"`
	MimeType string `json:"mt,omitempty"`
	Name     string `json:"nm,omitempty"`
	// ProviderMediaID is the provider's id of the attachment, Filename a
	// document's name, Caption the attachment's caption, Contacts the
	// cards a guest shared (Meta's contacts array).
	ProviderMediaID string          `json:"pmid,omitempty"`
	Filename        string          `json:"fn,omitempty"`
	Caption         string          `json:"cap,omitempty"`
	Contacts        json.RawMessage `json:"ct,omitempty"`
	// State is the outbound message's current state (nil when it is gone
	// or for inbound messages).
	State *State `json:"-"`
}

// ConversationHistory returns up to limit entries of c's history ending
// before index before (-1: the newest), oldest first, and the index to
// pass as before for the page older than these (-1 when there is none).
func (s *Store) ConversationHistory(ctx context.Context, c *Conversation, limit int, before int64) ([]HistoryEntry, int64, error) {
	if err := s.FileNow(ctx, []int{c.Shard}); err != nil {
		return nil, -1, err
	}
	key := s.keys.ConversationHistory(c.Shard, c.TenantID, c.ID)
	n, err := s.rdb.LLen(ctx, key).Result()
	if err != nil {
		return nil, -1, fmt.Errorf("conversation history: %w", err)
	}
	end := n - 1
	if before >= 0 && before-1 < end {
		end = before - 1
	}
	if end < 0 {
		return nil, -1, nil
	}
	start := max(end-int64(limit)+1, 0)
	raw, err := s.rdb.LRange(ctx, key, start, end).Result()
	if err != nil {
		return nil, -1, fmt.Errorf("conversation history: %w", err)
	}
	out := make([]HistoryEntry, 0, len(raw))
	var ids []string
	for _, r := range raw {
		var e HistoryEntry
		if json.Unmarshal([]byte(r), &e) != nil {
			continue
		}
		out = append(out, e)
		if e.Direction == "out" {
			ids = append(ids, e.ID)
		}
	}
	states, err := s.States(ctx, ids)
	if err != nil {
		return nil, -1, err
	}
	k := 0
	for i := range out {
		if out[i].Direction == "out" {
			out[i].State = states[k]
			k++
		}
	}
	next := int64(-1)
	if start > 0 {
		next = start
	}
	return out, next, nil
}

// ConversationFilter narrows ListConversations. Empty fields match all.
type ConversationFilter struct {
	Guest string
	// States are stored states (ConvOpen…) to keep.
	States     []string
	AssignedTo string
	// Match, when set, decides on what the stored fields cannot (the
	// window-derived states): it sees each candidate with its guest filled.
	Match func(*Conversation) bool
}

// ConversationCursor is where a listing stopped: the last conversation's
// activity time and id.
type ConversationCursor struct {
	AtMS int64
	ID   string
}

// String encodes the cursor for an API.
func (c ConversationCursor) String() string { return strconv.FormatInt(c.AtMS, 36) + "." + c.ID }

// ParseConversationCursor decodes a cursor String made; ErrBadCursor else.
func ParseConversationCursor(s string) (ConversationCursor, error) {
	a, id, ok := strings.Cut(s, ".")
	ms, err := strconv.ParseInt(a, 36, 64)
	if !ok || err != nil || ms < 0 || !ValidConversationID(id) {
		return ConversationCursor{}, ErrBadCursor
	}
	return ConversationCursor{AtMS: ms, ID: id}, nil
}

// listScanMax bounds how many conversations one listing looks at, so that
// a rare filter on a large inbox answers a partial page with a cursor
// instead of reading everything.
const listScanMax = 5000

// ListConversations returns up to limit of tenant's conversations, most
// recently active first, after cursor (nil: from the newest), and the
// cursor of the next page (nil when there is none). A page may hold fewer
// than limit with a cursor when a rare filter made it look at listScanMax
// conversations.
func (s *Store) ListConversations(ctx context.Context, tenant string, senders []string, f ConversationFilter, limit int, cursor *ConversationCursor) ([]*Conversation, *ConversationCursor, error) {
	type cand struct {
		id    string
		shard int
		at    int64
	}
	var cands []cand
	truncated := false
	p := s.rdb.Pipeline()
	var cmds []*goredis.ZSliceCmd
	var shards []int
	if err := s.FileNow(ctx, s.tenantShards(senders)); err != nil {
		return nil, nil, err
	}
	if f.Guest != "" {
		// A guest has few conversations (its hash lists them): read them
		// all, order them below.
		var lists []*goredis.StringCmd
		for _, sd := range senders {
			sh := message.ShardFor(sd, s.cfg.Shards)
			lists = append(lists, p.HGet(ctx, s.keys.Guest(sh, sd, f.Guest), "cvl"))
			shards = append(shards, sh)
		}
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
			return nil, nil, fmt.Errorf("list conversations: %w", err)
		}
		for i, c := range lists {
			fields := strings.Fields(c.Val())
			for k := 0; k+1 < len(fields); k += 2 {
				ms, _ := strconv.ParseInt(fields[k+1], 10, 64)
				cands = append(cands, cand{id: fields[k], shard: shards[i], at: ms})
			}
		}
	} else {
		max := "+inf"
		if cursor != nil {
			max = strconv.FormatInt(cursor.AtMS, 10)
		}
		for _, sh := range s.tenantShards(senders) {
			cmds = append(cmds, p.ZRevRangeByScoreWithScores(ctx, s.keys.Conversations(sh, tenant), &goredis.ZRangeBy{
				Max: max, Min: "-inf", Count: listScanMax}))
			shards = append(shards, sh)
		}
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
			return nil, nil, fmt.Errorf("list conversations: %w", err)
		}
		for i, c := range cmds {
			zs := c.Val()
			truncated = truncated || len(zs) == listScanMax
			for _, z := range zs {
				cands = append(cands, cand{id: z.Member.(string), shard: shards[i], at: int64(z.Score)})
			}
		}
	}
	if f.Guest == "" {
		slices.SortFunc(cands, func(a, b cand) int {
			if a.at != b.at {
				if a.at > b.at {
					return -1
				}
				return 1
			}
			return strings.Compare(b.id, a.id)
		})
	}
	// Read them in pages, in the listing's order, until limit match.
	var out []*Conversation
	var lastSeen *Conversation
	scanned := 0
	for len(cands) > 0 && len(out) <= limit && scanned < listScanMax {
		n := min(len(cands), max(limit*2, 50))
		if f.Guest != "" {
			n = len(cands)
		}
		page := cands[:n]
		cands = cands[n:]
		p := s.rdb.Pipeline()
		hs := make([]*goredis.SliceCmd, len(page))
		for i, c := range page {
			hs[i] = p.HMGet(ctx, s.keys.Conversation(c.shard, tenant, c.id), convFields...)
		}
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
			return nil, nil, fmt.Errorf("list conversations: %w", err)
		}
		var got []*Conversation
		for i, c := range page {
			conv := &Conversation{ID: c.id, Shard: c.shard}
			// A conversation gone (expired) or moved past the cursor since
			// the index was read is left out.
			if decodeConversation(conv, hs[i].Val()) && conv.TenantID == tenant && (cursor == nil || after(conv, cursor)) {
				got = append(got, conv)
			}
		}
		if err := s.fillGuest(ctx, got); err != nil {
			return nil, nil, err
		}
		sortConversations(got)
		for _, c := range got {
			scanned++
			lastSeen = c
			if (f.Guest == "" || c.Guest == f.Guest) && (len(f.States) == 0 || slices.Contains(f.States, c.State)) &&
				(f.AssignedTo == "" || c.AssignedTo == f.AssignedTo) && (f.Match == nil || f.Match(c)) {
				out = append(out, c)
			}
		}
	}
	sortConversations(out)
	switch {
	case len(out) > limit:
		c := out[limit-1]
		return out[:limit], &ConversationCursor{AtMS: c.LastActivityMS, ID: c.ID}, nil
	case (len(cands) > 0 || truncated) && lastSeen != nil:
		return out, &ConversationCursor{AtMS: lastSeen.LastActivityMS, ID: lastSeen.ID}, nil
	}
	return out, nil, nil
}

// sortConversations orders most recently active first, then by id.
func sortConversations(cs []*Conversation) {
	slices.SortFunc(cs, func(a, b *Conversation) int {
		if a.LastActivityMS != b.LastActivityMS {
			if a.LastActivityMS > b.LastActivityMS {
				return -1
			}
			return 1
		}
		return strings.Compare(b.ID, a.ID)
	})
}

// after reports whether c comes after cursor in the listing's order (most
// recent first, then by id descending).
func after(c *Conversation, cur *ConversationCursor) bool {
	if c.LastActivityMS != cur.AtMS {
		return c.LastActivityMS < cur.AtMS
	}
	return c.ID < cur.ID
}

// Conversation actions (see conv_action.lua).
const (
	ActionResolve = "resolve"
	ActionAssign  = "assign"
	ActionLink    = "link"
	ActionRead    = "read"
	ActionArchive = "archive"
	ActionClose   = "close"
	ActionReopen  = "reopen"
)

// ConversationAction applies one staff action with its fields to c and
// returns the state before and after it. ErrConversationNotFound,
// ErrConversationClosed.
func (s *Store) ConversationAction(ctx context.Context, c *Conversation, action string, fields map[string]any) (string, string, error) {
	if fields == nil {
		fields = map[string]any{}
	}
	f, err := json.Marshal(fields)
	if err != nil {
		return "", "", fmt.Errorf("conversation %s: %w", action, err)
	}
	// The action comes after what was accepted or received before it.
	if err := s.FileNow(ctx, []int{c.Shard}); err != nil {
		return "", "", fmt.Errorf("conversation %s: %w", action, err)
	}
	v, err := s.scripts.convAction.Run(ctx, s.rdb, []string{s.keys.Conversation(c.Shard, c.TenantID, c.ID)},
		s.keys.ShardPrefix(c.Shard), c.TenantID, action, s.nowMS(), string(f), s.cfg.Window.Milliseconds()).StringSlice()
	if err != nil {
		return "", "", fmt.Errorf("conversation %s: %w", action, err)
	}
	switch v[0] {
	case "missing":
		return "", "", ErrConversationNotFound
	case "closed":
		return "", "", ErrConversationClosed
	}
	return v[1], v[2], nil
}
