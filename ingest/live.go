package ingest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/internal/ctxsleep"
	"github.com/wagate/wagate/store/redis"
)

// liveSource is what the live hub reads: every shard's notices and
// statuses from now on.
type liveSource interface {
	LiveTail(ctx context.Context) (*redis.LiveTail, error)
}

// liveHub fans one tail of Redis's notify and events streams out to the
// inbox clients of this process: it runs while a client listens and stops
// a while after the last one left. Any API process serves any client:
// every process tails the same streams.
type liveHub struct {
	src  liveSource
	log  *slog.Logger
	idle time.Duration

	// epoch names this hub in the streams' event ids; seq numbers its
	// events; ring keeps the latest, so that a browser that reconnects to
	// this process (Last-Event-ID) misses nothing in between.
	epoch string

	mu      sync.Mutex
	seq     uint64
	ring    []liveItem
	subs    map[*liveSub]struct{}
	running bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
	// tailing is closed once the running tail has its place in the
	// streams: what happens after that reaches the clients.
	tailing chan struct{}
}

// liveItem is an event with its place in the hub's sequence.
type liveItem struct {
	seq uint64
	ev  redis.LiveEvent
}

// liveRing is how many of the latest events a hub keeps at least for
// reconnecting browsers (all tenants; at most twice as many): several
// seconds' worth at a busy gateway's notice rate, a fraction of one at
// its status rate (a browser away longer reloads).
const liveRing = 4096

// liveSub is one client's share: the events of its tenant, dropped when
// it does not keep up (the client resynchronises at every reconnection).
type liveSub struct {
	tenant string
	ch     chan liveItem
}

func newLiveHub(src liveSource, log *slog.Logger) *liveHub {
	var b [6]byte
	rand.Read(b[:])
	return &liveHub{src: src, log: log, idle: 30 * time.Second, subs: map[*liveSub]struct{}{}, epoch: hex.EncodeToString(b[:])}
}

// eventID is the id of the hub's event seq in a stream.
func (h *liveHub) eventID(seq uint64) string { return h.epoch + "-" + strconv.FormatUint(seq, 10) }

// subscribe adds a client of tenant, starting the tail when none runs.
// lastID is the last event the client saw (Last-Event-ID): when it names
// an event this hub still holds, the tenant's events after it are queued
// first and resumed is true; otherwise the client must reload what it
// shows. at is the hub's place now, where a new client starts.
func (h *liveHub) subscribe(tenant, lastID string) (s *liveSub, resumed bool, at uint64) {
	s = &liveSub{tenant: tenant, ch: make(chan liveItem, 256)}
	h.mu.Lock()
	defer h.mu.Unlock()
	at = h.seq
	if h.closed {
		close(s.ch)
		return s, false, at
	}
	if ep, n, ok := strings.Cut(lastID, "-"); ok && ep == h.epoch {
		after, err := strconv.ParseUint(n, 10, 64)
		// Resumable while the ring still holds the event after it.
		if err == nil && after <= h.seq && (len(h.ring) == 0 || h.ring[0].seq <= after+1) {
			resumed = true
			for _, it := range h.ring {
				if it.seq > after && it.ev.TenantID == tenant {
					select {
					case s.ch <- it:
					default:
						resumed = false // too many missed: reload instead
					}
				}
			}
		}
	}
	h.subs[s] = struct{}{}
	if !h.running {
		h.running = true
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel, h.done, h.tailing = cancel, make(chan struct{}), make(chan struct{})
		go h.run(ctx, h.done, h.tailing)
	}
	return s, resumed, at
}

// following returns a channel closed once the tail follows the streams
// (at once when it does already).
func (h *liveHub) following() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tailing == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return h.tailing
}

func (h *liveHub) unsubscribe(s *liveSub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// close stops the tail and ends every subscription (their streams end
// at once, so that a shutdown does not wait for them).
func (h *liveHub) close() {
	h.mu.Lock()
	h.closed = true
	cancel, done := h.cancel, h.done
	h.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	h.mu.Lock()
	for s := range h.subs {
		close(s.ch)
		delete(h.subs, s)
	}
	h.mu.Unlock()
}

func (h *liveHub) run(ctx context.Context, done, tailing chan struct{}) {
	defer close(done)
	started := false
	defer func() {
		if !started {
			close(tailing)
		}
	}()
	var tail *redis.LiveTail
	var buf []redis.LiveEvent
	lastSub := time.Now()
	for ctx.Err() == nil {
		h.mu.Lock()
		if len(h.subs) > 0 {
			lastSub = time.Now()
		} else if time.Since(lastSub) > h.idle {
			h.running = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		var err error
		if tail == nil {
			if tail, err = h.src.LiveTail(ctx); err != nil {
				h.log.Warn("inbox live tail", "err", err)
				tail = nil
				_ = ctxsleep.Sleep(ctx, time.Second)
				continue
			}
			if !started {
				started = true
				close(tailing)
			}
		}
		buf, err = tail.Read(ctx, 2*time.Second, buf[:0])
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("inbox live tail", "err", err)
				_ = ctxsleep.Sleep(ctx, time.Second)
			}
			continue
		}
		if len(buf) == 0 {
			continue
		}
		h.mu.Lock()
		for i := range buf {
			h.seq++
			it := liveItem{seq: h.seq, ev: buf[i]}
			if len(h.ring) >= 2*liveRing {
				// Halved now and then: a copy per event would cost the
				// hub more than the events.
				h.ring = append(h.ring[:0], h.ring[liveRing:]...)
			}
			h.ring = append(h.ring, it)
			for s := range h.subs {
				if it.ev.TenantID != s.tenant {
					continue
				}
				select {
				case s.ch <- it:
				default: // a slow client: it resynchronises when it reconnects
				}
			}
		}
		h.mu.Unlock()
	}
	h.mu.Lock()
	h.running = false
	h.mu.Unlock()
}

// liveEventJSON is one server-sent event's data.
type liveEventJSON struct {
	Kind           string `json:"kind"`
	ConversationID string `json:"conversation_id,omitempty"`
	MessageID      string `json:"message_id,omitempty"`
	Status         string `json:"status,omitempty"`
	At             string `json:"at"`
}

// handleInboxStream serves GET /api/v1/whatsapp/inbox/stream: the
// tenant's conversation changes as server-sent events (event: the kind;
// data: its conversation, message and status), for the inbox page. A
// stream lasts a few seconds less than the server's write timeout and the
// browser reconnects at once (retry: 1000): every (re)connection starts
// with an event "ready", at which the page reloads what it shows, so that
// nothing in between is missed — unless the browser comes back to the
// same process with the Last-Event-ID of an event it still holds: then it
// gets the events it missed instead, and no "ready". Events carry ids
// only; what they point to is read through the API, with its rules.
func (s *Server) handleInboxStream(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	sub, resumed, at := s.live.subscribe(p.Tenant.ID, string(ctx.Request.Header.Peek("Last-Event-ID")))
	hub := s.live
	// The first client of a hub waits (a round trip) until its tail has
	// its place: "ready" then means that what follows reaches the page.
	select {
	case <-hub.following():
	case <-time.After(2 * time.Second):
	}
	vis := s.newVisibility(p)
	lasts := max(s.cfg.WriteTimeout-2*time.Second, time.Second)
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("X-Accel-Buffering", "no")
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer hub.unsubscribe(sub)
		w.WriteString("retry: 1000\n")
		if !resumed {
			// Its id is where this client starts: a reconnection to this
			// process resumes from here even before any event came.
			w.WriteString("id: " + hub.eventID(at) + "\nevent: ready\ndata: {}\n\n")
		} else {
			w.WriteString(": resumed\n\n")
		}
		if w.Flush() != nil {
			return
		}
		end := time.NewTimer(lasts)
		defer end.Stop()
		for {
			select {
			case it, ok := <-sub.ch:
				if !ok {
					return
				}
				ev := &it.ev
				if !vis.shows(ev.ConversationID, ev.Kind == "conversation_updated") {
					continue
				}
				b, _ := json.Marshal(liveEventJSON{Kind: ev.Kind, ConversationID: ev.ConversationID, MessageID: ev.MessageID,
					Status: ev.Status, At: rfc3339(ev.AtMS)})
				w.WriteString("id: ")
				w.WriteString(hub.eventID(it.seq))
				w.WriteString("\nevent: ")
				w.WriteString(ev.Kind)
				w.WriteString("\ndata: ")
				w.Write(b)
				w.WriteString("\n\n")
				if w.Flush() != nil {
					return
				}
			case <-end.C:
				return
			}
		}
	})
}

// visibility tells which conversations one stream's staff member may hear
// of: an agent only of those they see (their own, their departments',
// unassigned ones), and of the update that takes one they saw out of
// their view (so that the page learns it went); anyone else of all of the
// tenant's. An agent's answers are kept a few seconds (a read per
// conversation), except that an update is always judged afresh: an
// assignment comes as one, before anything that follows it.
type visibility struct {
	s    *Server
	p    Principal
	seen map[string]visibleAt
}

type visibleAt struct {
	ok bool
	at time.Time
}

func (s *Server) newVisibility(p Principal) *visibility {
	return &visibility{s: s, p: p, seen: map[string]visibleAt{}}
}

// shows reports whether the stream carries an event of conv; update says
// the event is the conversation's conversation_updated.
func (v *visibility) shows(conv string, update bool) bool {
	if v.p.Staff == nil || v.p.Staff.StaffRole != redis.StaffAgent {
		return true
	}
	if conv == "" {
		return false
	}
	was, known := v.seen[conv]
	if known && !update && time.Since(was.at) < 3*time.Second {
		return was.ok
	}
	ctx, cancel := v.s.apiCtx()
	c, err := v.s.store.FindConversation(ctx, v.p.Tenant.ID, v.p.Tenant.Senders, conv)
	cancel()
	now := err == nil && v.p.sees(c)
	if len(v.seen) > 10000 {
		clear(v.seen) // a stream lasts seconds: never in practice
	}
	v.seen[conv] = visibleAt{ok: now, at: time.Now()}
	return now || (update && known && was.ok)
}
